//! Real TDX and SGX quotes with their collateral (tests/vectors/{tdx,sgx}), each
//! verified at the moment it was captured and at a fixed "today" when its
//! collateral has expired.

use keep_verifier::dcap::{self, Collateral, SgxPolicy, TcbStatus, TdxPolicy};
use keep_verifier::pki::Cert;
use keep_verifier::{Claims, Options, UnixTime, Verdict, Verification};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

/// "Today" for the expiry tests: fixed, never read from a clock.
const TODAY: &str = "2026-11-23T00:00:00Z";

fn quote(case: &str) -> Vec<u8> {
    std::fs::read(format!("{VECTORS}/{case}/quote.bin")).unwrap()
}

fn collateral(case: &str) -> Collateral {
    Collateral::from_json(&std::fs::read(format!("{VECTORS}/{case}/collateral.json")).unwrap())
        .unwrap()
}

fn today() -> UnixTime {
    UnixTime::parse(TODAY).unwrap()
}

fn run(
    case: &str,
    with_collateral: bool,
    now: i64,
    tdx: &TdxPolicy,
    sgx: &SgxPolicy,
) -> Verification {
    let c = with_collateral.then(|| collateral(case));
    dcap::verify(
        &quote(case),
        c.as_ref(),
        tdx,
        sgx,
        UnixTime(now),
        Options::default(),
    )
}

fn failures(v: &Verification) -> Vec<String> {
    v.evidence
        .failures()
        .chain(v.policy.failures())
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

fn tdx_claims(v: &Verification) -> &dcap::TdxClaims {
    match &v.claims {
        Claims::Tdx(c) => c,
        other => panic!("not TDX claims: {other:?}"),
    }
}

fn sgx_claims(v: &Verification) -> &dcap::SgxClaims {
    match &v.claims {
        Claims::Sgx(c) => c,
        other => panic!("not SGX claims: {other:?}"),
    }
}

/// Every check a verification with collateral records.
const COLLATERAL_CHECKS: &[&str] = &[
    "dcap.quote.parse",
    "dcap.quote.qe_vendor",
    "dcap.quote.signature",
    "dcap.pck.chain",
    "dcap.pck.validity",
    "dcap.pck.extensions",
    "dcap.qe_report.signature",
    "dcap.qe_report.data",
    "dcap.collateral",
    "dcap.root_crl.signature",
    "dcap.root_crl.validity",
    "dcap.pck_crl.issuer_chain",
    "dcap.pck_crl.signature",
    "dcap.pck_crl.validity",
    "dcap.pck.revocation",
    "dcap.tcb_info.chain",
    "dcap.tcb_info.revocation",
    "dcap.tcb_info.signature",
    "dcap.tcb_info.parse",
    "dcap.tcb_info.validity",
    "dcap.qe_identity.chain",
    "dcap.qe_identity.revocation",
    "dcap.qe_identity.signature",
    "dcap.qe_identity.parse",
    "dcap.qe_identity.validity",
    "dcap.tcb_info.id",
    "dcap.tcb_info.fmspc",
    "dcap.tcb_info.pce_id",
    "dcap.qe_identity.id",
    "dcap.qe_identity.match",
    "dcap.qe_identity.tcb_level",
    "dcap.tcb_level",
];

/// The signature checks, which hold at any time.
const SIGNATURES: &[&str] = &[
    "dcap.quote.signature",
    "dcap.pck.chain",
    "dcap.qe_report.signature",
    "dcap.qe_report.data",
    "dcap.root_crl.signature",
    "dcap.pck_crl.signature",
    "dcap.tcb_info.signature",
    "dcap.qe_identity.signature",
];

fn assert_recorded(v: &Verification, names: &[&str]) {
    for n in names {
        assert!(
            v.evidence.iter().any(|c| c.name == *n),
            "{n} not recorded: {:?}",
            v.evidence
        );
    }
}

#[test]
fn tdx_uptodate_is_accepted_by_the_default_policy() {
    let v = run(
        "tdx/dcap-qvl-uptodate",
        true,
        1752919234,
        &TdxPolicy::default(),
        &SgxPolicy::default(),
    );
    assert_eq!(v.verdict, Verdict::Accepted, "{:?}", failures(&v));
    assert_recorded(&v, COLLATERAL_CHECKS);
    assert_recorded(&v, &["dcap.tdx_module", "dcap.tcb_status"]);
    let c = tdx_claims(&v);
    assert_eq!(c.quote_version, 4);
    assert_eq!(c.platform.tcb_status, Some(TcbStatus::UpToDate));
    assert_eq!(c.platform.platform_tcb_status, Some(TcbStatus::UpToDate));
    assert_eq!(c.platform.qe_tcb_status, Some(TcbStatus::UpToDate));
    assert_eq!(c.tdx_module_tcb_status, Some(TcbStatus::UpToDate));
    assert_eq!(c.tdx_module_identity.as_deref(), Some("TDX_01"));
    assert!(c.platform.advisory_ids.is_empty());
    assert_eq!(
        c.platform.fmspc.as_ref().unwrap().0,
        hex::decode("B0C06F000000").unwrap()
    );
    assert!(c.td_attributes.sept_ve_disable && !c.td_attributes.debug);
    assert!(v.policy.iter().all(|r| r.name.starts_with("policy.tdx.")));
    // The claims serialize with hex strings.
    let json = serde_json::to_value(&v.claims).unwrap();
    assert_eq!(json["tcb_status"], "UpToDate");
    assert_eq!(json["fmspc"], "b0c06f000000");
    assert_eq!(json["tee_tcb_svn"], "06010300000000000000000000000000");
}

#[test]
fn tdx_v5_without_a_matching_tcb_level_is_not_genuine_but_every_signature_holds() {
    let v = run(
        "tdx/dcap-qvl-v5-no-tcb-level",
        true,
        1774003274,
        &TdxPolicy::default(),
        &SgxPolicy::default(),
    );
    assert_eq!(v.verdict, Verdict::NotGenuine);
    let evidence_failures: Vec<&str> = v.evidence.failures().map(|c| c.name.as_str()).collect();
    assert_eq!(evidence_failures, ["dcap.tcb_level"], "{:?}", failures(&v));
    for s in SIGNATURES {
        assert!(v.evidence.passed(s), "{s}");
    }
    let c = tdx_claims(&v);
    assert_eq!(c.quote_version, 5);
    assert_eq!(c.td_report, "1.5");
    assert!(c.tee_tcb_svn2.is_some() && c.mrservicetd.is_some());
    assert_eq!(c.platform.tcb_status, None);
}

#[test]
fn tdx_gcp_is_out_of_date_with_three_advisories() {
    let v = run(
        "tdx/gcp-outofdate",
        true,
        1739419232,
        &TdxPolicy::default(),
        &SgxPolicy::default(),
    );
    assert_eq!(v.verdict, Verdict::RefusedByPolicy, "{:?}", failures(&v));
    assert!(v.evidence.all_passed());
    assert_recorded(&v, COLLATERAL_CHECKS);
    let c = tdx_claims(&v);
    assert_eq!(c.platform.tcb_status, Some(TcbStatus::OutOfDate));
    assert_eq!(
        c.platform.advisory_ids,
        ["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"]
    );
    assert_eq!(c.tdx_module_identity.as_deref(), Some("TDX_01"));
    assert_eq!(c.tdx_module_tcb_status, Some(TcbStatus::UpToDate));
    assert_eq!(c.platform.qe_tcb_status, Some(TcbStatus::UpToDate));
    let refused: Vec<&str> = v.policy.failures().map(|c| c.name.as_str()).collect();
    assert_eq!(
        refused,
        ["policy.tdx.tcb_status", "policy.tdx.advisory_ids"]
    );

    let lenient = TdxPolicy {
        accepted_tcb_statuses: vec![TcbStatus::UpToDate, TcbStatus::OutOfDate],
        accepted_advisory_ids: vec![
            "INTEL-SA-00960".into(),
            "INTEL-SA-00982".into(),
            "INTEL-SA-00986".into(),
        ],
        ..TdxPolicy::default()
    };
    let v = run(
        "tdx/gcp-outofdate",
        true,
        1739419232,
        &lenient,
        &SgxPolicy::default(),
    );
    assert_eq!(v.verdict, Verdict::Accepted, "{:?}", failures(&v));

    let one_missing = TdxPolicy {
        accepted_advisory_ids: vec!["INTEL-SA-00960".into(), "INTEL-SA-00982".into()],
        ..lenient
    };
    let v = run(
        "tdx/gcp-outofdate",
        true,
        1739419232,
        &one_missing,
        &SgxPolicy::default(),
    );
    assert_eq!(v.verdict, Verdict::RefusedByPolicy);
    assert!(v.policy.failed("policy.tdx.advisory_ids"));
    assert!(v.policy.passed("policy.tdx.tcb_status"));
}

#[test]
fn tdx_debug_td_parses_and_the_default_policy_refuses_debug() {
    let q = quote("tdx/debug-td");
    let parsed = dcap::Quote::parse(&q).unwrap();
    assert!(parsed.is_tdx());
    let v = dcap::verify(
        &q,
        None,
        &TdxPolicy::default(),
        &SgxPolicy::default(),
        today(),
        Options::default(),
    );
    assert!(v.evidence.passed("dcap.quote.parse"));
    assert!(v.evidence.passed("dcap.quote.signature"));
    assert!(v.evidence.passed("dcap.qe_report.signature"));
    assert!(v.evidence.passed("dcap.qe_report.data"));
    assert!(v.evidence.failed("dcap.collateral"));
    assert!(v.policy.failed("policy.tdx.debug"));
    assert!(tdx_claims(&v).td_attributes.debug);
    let allow = TdxPolicy {
        allow_debug: true,
        ..TdxPolicy::default()
    };
    let v = dcap::verify(
        &q,
        None,
        &allow,
        &SgxPolicy::default(),
        today(),
        Options::default(),
    );
    assert!(v.policy.passed("policy.tdx.debug"));
}

#[test]
fn sgx_config_and_sw_hardening_needed() {
    let case = "sgx/dcap-qvl-config-sw-hardening";
    let v = run(
        case,
        true,
        1752919277,
        &TdxPolicy::default(),
        &SgxPolicy::default(),
    );
    assert_eq!(v.verdict, Verdict::RefusedByPolicy, "{:?}", failures(&v));
    assert!(v.evidence.all_passed());
    assert_recorded(&v, COLLATERAL_CHECKS);
    assert!(!v.evidence.iter().any(|c| c.name == "dcap.tdx_module"));
    let c = sgx_claims(&v);
    assert_eq!(c.quote_version, 3);
    assert_eq!(
        c.platform.tcb_status,
        Some(TcbStatus::ConfigurationAndSWHardeningNeeded)
    );
    assert_eq!(
        c.platform.advisory_ids,
        ["INTEL-SA-00289", "INTEL-SA-00615"]
    );
    assert_eq!(c.platform.qe_tcb_status, Some(TcbStatus::UpToDate));
    assert!(v.policy.iter().all(|r| r.name.starts_with("policy.sgx.")));

    let accept = SgxPolicy {
        accepted_tcb_statuses: vec![TcbStatus::ConfigurationAndSWHardeningNeeded],
        accepted_advisory_ids: vec!["INTEL-SA-00289".into(), "INTEL-SA-00615".into()],
        mrenclave: vec![c.mrenclave.clone()],
        mrsigner: vec![c.mrsigner.clone()],
        isv_prod_id: Some(c.isv_prod_id),
        min_isv_svn: Some(c.isv_svn),
        report_data: Some(keep_verifier::policy::HexBytes(b"Hello, world!".to_vec())),
        ..SgxPolicy::default()
    };
    let v = run(case, true, 1752919277, &TdxPolicy::default(), &accept);
    assert_eq!(v.verdict, Verdict::Accepted, "{:?}", failures(&v));
}

#[test]
fn sgx_dcap_rs_is_out_of_date_with_a_v2_tcb_info() {
    let v = run(
        "sgx/dcap-rs-v3-outofdate",
        true,
        1739419232,
        &TdxPolicy::default(),
        &SgxPolicy::default(),
    );
    assert_eq!(v.verdict, Verdict::RefusedByPolicy, "{:?}", failures(&v));
    assert!(v.evidence.all_passed());
    // The issuer chain of the PCK CRL is empty: the quote's PCK CA signs it.
    assert!(v.evidence.passed("dcap.pck_crl.issuer_chain"));
    assert!(v.evidence.passed("dcap.pck_crl.signature"));
    let c = sgx_claims(&v);
    assert_eq!(c.platform.tcb_status, Some(TcbStatus::OutOfDate));
    assert_eq!(c.platform.qe_tcb_status, Some(TcbStatus::UpToDate));
    assert!(c.platform.advisory_ids.is_empty());
    let refused: Vec<&str> = v.policy.failures().map(|c| c.name.as_str()).collect();
    assert_eq!(refused, ["policy.sgx.tcb_status"]);
}

#[test]
fn sgx_debug_enclave_parses_and_the_default_policy_refuses_debug() {
    let q = quote("sgx/debug-enclave");
    assert!(!dcap::Quote::parse(&q).unwrap().is_tdx());
    let v = dcap::verify(
        &q,
        None,
        &TdxPolicy::default(),
        &SgxPolicy::default(),
        today(),
        Options::default(),
    );
    assert_eq!(v.verdict, Verdict::NotGenuine);
    assert!(v.evidence.passed("dcap.quote.signature"));
    assert!(v.evidence.failed("dcap.collateral"));
    assert!(v.policy.failed("policy.sgx.debug"));
    assert!(sgx_claims(&v).attributes.debug);
}

#[test]
fn every_collateral_case_has_expired_by_today() {
    for case in [
        "tdx/dcap-qvl-uptodate",
        "tdx/dcap-qvl-v5-no-tcb-level",
        "tdx/gcp-outofdate",
        "sgx/dcap-qvl-config-sw-hardening",
        "sgx/dcap-rs-v3-outofdate",
    ] {
        let v = run(
            case,
            true,
            today().0,
            &TdxPolicy::default(),
            &SgxPolicy::default(),
        );
        assert_eq!(v.verdict, Verdict::NotGenuine, "{case}");
        for expired in [
            "dcap.root_crl.validity",
            "dcap.pck_crl.validity",
            "dcap.tcb_info.validity",
            "dcap.qe_identity.validity",
        ] {
            assert!(
                v.evidence.failed(expired),
                "{case}: {expired} {:?}",
                failures(&v)
            );
        }
        for s in SIGNATURES {
            assert!(v.evidence.passed(s), "{case}: {s}");
        }
    }
}

#[test]
fn without_collateral_the_quote_is_still_checked_and_the_policy_evaluated() {
    let v = run(
        "tdx/dcap-qvl-uptodate",
        false,
        1752919234,
        &TdxPolicy::default(),
        &SgxPolicy::default(),
    );
    assert_eq!(v.verdict, Verdict::NotGenuine);
    let failed: Vec<&str> = v.evidence.failures().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["dcap.collateral"]);
    for s in [
        "dcap.quote.signature",
        "dcap.pck.chain",
        "dcap.pck.validity",
        "dcap.qe_report.signature",
        "dcap.qe_report.data",
    ] {
        assert!(v.evidence.passed(s), "{s}");
    }
    assert!(v.policy.failed("policy.tdx.tcb_status"));
    assert!(v.policy.passed("policy.tdx.debug"));
    assert_eq!(
        v.evidence
            .iter()
            .find(|c| c.name == "dcap.collateral")
            .unwrap()
            .detail,
        "no collateral supplied"
    );
}

#[test]
fn quotes_parse_with_their_versions_and_pck_extensions() {
    for (case, version, fmspc) in [
        ("tdx/dcap-qvl-uptodate", 4, "B0C06F000000"),
        ("tdx/dcap-qvl-v5-no-tcb-level", 5, "90C06F000000"),
        ("tdx/gcp-outofdate", 4, "00806F050000"),
        ("tdx/debug-td", 4, "50806F000000"),
        ("sgx/dcap-qvl-config-sw-hardening", 3, "00A067110000"),
        ("sgx/dcap-rs-v3-outofdate", 3, "00606A000000"),
        ("sgx/debug-enclave", 3, "00606A000000"),
    ] {
        let q = dcap::Quote::parse(&quote(case)).unwrap();
        assert_eq!(q.header.version, version, "{case}");
        assert_eq!(q.is_tdx(), case.starts_with("tdx"));
        let chain = Cert::chain_from_pem(q.pck_chain_pem().unwrap()).unwrap();
        assert_eq!(chain.len(), 3, "{case}");
        let ext = dcap::parse_pck_extensions(&chain[0]).unwrap();
        assert_eq!(hex::encode_upper(ext.fmspc), fmspc, "{case}");
        assert_eq!(ext.pce_id, [0, 0]);
        // The intermediate and the root carry no SGX extension.
        assert!(dcap::parse_pck_extensions(&chain[1]).is_err());
    }
    let v5 = dcap::Quote::parse(&quote("tdx/dcap-qvl-v5-no-tcb-level")).unwrap();
    assert!(matches!(v5.body, dcap::quote::Body::Td15(_)));
    let pck = Cert::chain_from_pem(v5.pck_chain_pem().unwrap()).unwrap();
    let ext = dcap::parse_pck_extensions(&pck[0]).unwrap();
    assert_eq!(
        ext.tcb_components[7], 3,
        "the SEAMLDR component that misses every level"
    );
}

#[test]
fn the_tcb_info_and_qe_identity_of_every_case_parse() {
    for case in [
        "tdx/dcap-qvl-uptodate",
        "tdx/dcap-qvl-v5-no-tcb-level",
        "tdx/gcp-outofdate",
        "sgx/dcap-qvl-config-sw-hardening",
        "sgx/dcap-rs-v3-outofdate",
    ] {
        let c = collateral(case);
        let info = dcap::TcbInfo::parse(c.tcb_info.as_bytes()).unwrap();
        let qe = dcap::QeIdentity::parse(c.qe_identity.as_bytes()).unwrap();
        assert!(!info.tcb_levels.is_empty());
        assert_eq!(
            qe.id,
            if case.starts_with("tdx") {
                "TD_QE"
            } else {
                "QE"
            }
        );
    }
}
