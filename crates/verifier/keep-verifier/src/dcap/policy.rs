//! The `[tdx]` and `[sgx]` sections of the policy, and their evaluation against the
//! claims of a genuine quote. Each rule is recorded as `policy.tdx.<rule>` or
//! `policy.sgx.<rule>`, passed or failed, whatever the others say.
//!
//! The defaults are strict: only `UpToDate`, no advisory, no debug, for TDX
//! SEPT_VE_DISABLE set, no reserved TD attribute bit and no service TD bound. Lists
//! of reference values are empty by default, which accepts any value until the
//! tenant pins one.
//!
//! ```toml
//! [tdx]
//! accepted_tcb_statuses = ["UpToDate", "OutOfDate"]
//! accepted_advisory_ids = ["INTEL-SA-00960"]
//! mrtd = ["b7f2..."]
//!
//! [sgx]
//! mrsigner = ["83d7..."]
//! min_isv_svn = 2
//! ```

use serde::{Deserialize, Serialize};

use super::claims::{PlatformClaims, SgxClaims, TdxClaims};
use super::status::TcbStatus;
use crate::check::Checks;
use crate::policy::{HexBytes, report_data_matches};

/// Rules for TDX quotes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TdxPolicy {
    /// Combined TCB statuses accepted. Default `["UpToDate"]`. `Revoked` is never
    /// accepted (such evidence is not genuine), whatever is listed.
    pub accepted_tcb_statuses: Vec<TcbStatus>,
    /// Intel security advisory IDs tolerated (e.g. `"INTEL-SA-00960"`). Default empty:
    /// any advisory that applies to the platform, module or QE refuses the quote.
    pub accepted_advisory_ids: Vec<String>,
    /// Accept a TD in debug mode (TD_ATTRIBUTES.DEBUG or a profiling bit). Default false.
    pub allow_debug: bool,
    /// Require TD_ATTRIBUTES.SEPT_VE_DISABLE, so that the host cannot inject #VE on
    /// pending pages. Default true (the Linux guest sets it; every vector does).
    pub require_sept_ve_disable: bool,
    /// Allowed MRSERVICETD values. Default empty: MRSERVICETD must be all zero (no
    /// service TD bound); TD report 1.0 quotes have none, which counts as zero.
    pub mr_servicetd: Vec<HexBytes>,
    /// Allowed MRTD values (empty: any).
    pub mrtd: Vec<HexBytes>,
    /// Allowed RTMR0 values (empty: any).
    pub rtmr0: Vec<HexBytes>,
    /// Allowed RTMR1 values (empty: any).
    pub rtmr1: Vec<HexBytes>,
    /// Allowed RTMR2 values (empty: any).
    pub rtmr2: Vec<HexBytes>,
    /// Allowed RTMR3 values (empty: any).
    pub rtmr3: Vec<HexBytes>,
    /// Allowed MRCONFIGID values (empty: any).
    pub mrconfigid: Vec<HexBytes>,
    /// Allowed MROWNER values (empty: any).
    pub mrowner: Vec<HexBytes>,
    /// Allowed MROWNERCONFIG values (empty: any).
    pub mrownerconfig: Vec<HexBytes>,
    /// Expected REPORTDATA (a shorter value must be a prefix, the rest zero). Unset: any.
    pub report_data: Option<HexBytes>,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        TdxPolicy {
            accepted_tcb_statuses: vec![TcbStatus::UpToDate],
            accepted_advisory_ids: Vec::new(),
            allow_debug: false,
            require_sept_ve_disable: true,
            mr_servicetd: Vec::new(),
            mrtd: Vec::new(),
            rtmr0: Vec::new(),
            rtmr1: Vec::new(),
            rtmr2: Vec::new(),
            rtmr3: Vec::new(),
            mrconfigid: Vec::new(),
            mrowner: Vec::new(),
            mrownerconfig: Vec::new(),
            report_data: None,
        }
    }
}

/// Rules for SGX quotes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgxPolicy {
    /// Combined TCB statuses accepted. Default `["UpToDate"]`.
    pub accepted_tcb_statuses: Vec<TcbStatus>,
    /// Advisory IDs tolerated. Default empty: any advisory refuses the quote.
    pub accepted_advisory_ids: Vec<String>,
    /// Accept a debug enclave (ATTRIBUTES.DEBUG). Default false.
    pub allow_debug: bool,
    /// Allowed MRENCLAVE values (empty: any).
    pub mrenclave: Vec<HexBytes>,
    /// Allowed MRSIGNER values (empty: any).
    pub mrsigner: Vec<HexBytes>,
    /// Required ISVPRODID (unset: any).
    pub isv_prod_id: Option<u16>,
    /// Minimum ISVSVN (unset: any).
    pub min_isv_svn: Option<u16>,
    /// Expected REPORTDATA (a shorter value must be a prefix, the rest zero). Unset: any.
    pub report_data: Option<HexBytes>,
}

impl Default for SgxPolicy {
    fn default() -> Self {
        SgxPolicy {
            accepted_tcb_statuses: vec![TcbStatus::UpToDate],
            accepted_advisory_ids: Vec::new(),
            allow_debug: false,
            mrenclave: Vec::new(),
            mrsigner: Vec::new(),
            isv_prod_id: None,
            min_isv_svn: None,
            report_data: None,
        }
    }
}

fn status_rule(c: &mut Checks, name: String, accepted: &[TcbStatus], p: &PlatformClaims) {
    match p.tcb_status {
        None => c.fail(
            name,
            "TCB status unknown (no collateral, or no status could be established)",
        ),
        Some(s) => c.expect(name, s.is_genuine() && accepted.contains(&s), || {
            let list: Vec<&str> = accepted.iter().map(|a| a.name()).collect();
            format!("TCB status {s} is not among the accepted {list:?}")
        }),
    }
}

fn advisory_rule(c: &mut Checks, name: String, accepted: &[String], p: &PlatformClaims) {
    if p.tcb_status.is_none() {
        return c.fail(
            name,
            "advisories unknown (no collateral, or no status could be established)",
        );
    }
    let refused: Vec<&String> = p
        .advisory_ids
        .iter()
        .filter(|a| !accepted.iter().any(|x| x.eq_ignore_ascii_case(a)))
        .collect();
    c.expect(name, refused.is_empty(), || {
        format!("advisories not accepted: {refused:?}")
    });
}

fn one_of(c: &mut Checks, name: String, allowed: &[HexBytes], actual: &HexBytes) {
    c.expect(name, allowed.is_empty() || allowed.contains(actual), || {
        format!(
            "{} is not among the {} allowed values",
            hex::encode(&actual.0),
            allowed.len()
        )
    });
}

fn report_data_rule(c: &mut Checks, name: String, expected: Option<&HexBytes>, actual: &HexBytes) {
    match expected {
        None => c.pass(name),
        Some(e) => c.expect(name, report_data_matches(&e.0, &actual.0), || {
            format!(
                "report_data {} is not the expected {}",
                hex::encode(&actual.0),
                hex::encode(&e.0)
            )
        }),
    }
}

/// Evaluates every TDX rule.
pub fn evaluate_tdx(p: &TdxPolicy, claims: &TdxClaims) -> Checks {
    let n = |rule: &str| format!("policy.tdx.{rule}");
    let mut c = Checks::new();
    status_rule(
        &mut c,
        n("tcb_status"),
        &p.accepted_tcb_statuses,
        &claims.platform,
    );
    advisory_rule(
        &mut c,
        n("advisory_ids"),
        &p.accepted_advisory_ids,
        &claims.platform,
    );
    let a = &claims.td_attributes;
    c.expect(
        n("debug"),
        p.allow_debug || !(a.debug || a.profiling),
        || "the TD is in debug mode (TD_ATTRIBUTES.DEBUG or a profiling bit set)".into(),
    );
    c.expect(
        n("sept_ve_disable"),
        !p.require_sept_ve_disable || a.sept_ve_disable,
        || "TD_ATTRIBUTES.SEPT_VE_DISABLE is not set".into(),
    );
    c.expect(n("reserved_attributes"), a.reserved_bits == 0, || {
        format!("reserved TD_ATTRIBUTES bits set: {:#018x}", a.reserved_bits)
    });
    let zero = HexBytes(vec![0; 48]);
    let service = claims.mrservicetd.as_ref().unwrap_or(&zero);
    if p.mr_servicetd.is_empty() {
        c.expect(n("mr_servicetd"), service.0.iter().all(|&b| b == 0), || {
            format!("MRSERVICETD {} is not zero", hex::encode(&service.0))
        });
    } else {
        one_of(&mut c, n("mr_servicetd"), &p.mr_servicetd, service);
    }
    one_of(&mut c, n("mrtd"), &p.mrtd, &claims.mrtd);
    one_of(&mut c, n("rtmr0"), &p.rtmr0, &claims.rtmr0);
    one_of(&mut c, n("rtmr1"), &p.rtmr1, &claims.rtmr1);
    one_of(&mut c, n("rtmr2"), &p.rtmr2, &claims.rtmr2);
    one_of(&mut c, n("rtmr3"), &p.rtmr3, &claims.rtmr3);
    one_of(&mut c, n("mrconfigid"), &p.mrconfigid, &claims.mrconfigid);
    one_of(&mut c, n("mrowner"), &p.mrowner, &claims.mrowner);
    one_of(
        &mut c,
        n("mrownerconfig"),
        &p.mrownerconfig,
        &claims.mrownerconfig,
    );
    report_data_rule(
        &mut c,
        n("report_data"),
        p.report_data.as_ref(),
        &claims.report_data,
    );
    c
}

/// Evaluates every SGX rule.
pub fn evaluate_sgx(p: &SgxPolicy, claims: &SgxClaims) -> Checks {
    let n = |rule: &str| format!("policy.sgx.{rule}");
    let mut c = Checks::new();
    status_rule(
        &mut c,
        n("tcb_status"),
        &p.accepted_tcb_statuses,
        &claims.platform,
    );
    advisory_rule(
        &mut c,
        n("advisory_ids"),
        &p.accepted_advisory_ids,
        &claims.platform,
    );
    c.expect(
        n("debug"),
        p.allow_debug || !claims.attributes.debug,
        || "the enclave is a debug enclave (ATTRIBUTES.DEBUG set)".into(),
    );
    one_of(&mut c, n("mrenclave"), &p.mrenclave, &claims.mrenclave);
    one_of(&mut c, n("mrsigner"), &p.mrsigner, &claims.mrsigner);
    match p.isv_prod_id {
        None => c.pass(n("isv_prod_id")),
        Some(want) => c.expect(n("isv_prod_id"), claims.isv_prod_id == want, || {
            format!("ISVPRODID {} is not {want}", claims.isv_prod_id)
        }),
    }
    match p.min_isv_svn {
        None => c.pass(n("isv_svn")),
        Some(min) => c.expect(n("isv_svn"), claims.isv_svn >= min, || {
            format!("ISVSVN {} is below {min}", claims.isv_svn)
        }),
    }
    report_data_rule(
        &mut c,
        n("report_data"),
        p.report_data.as_ref(),
        &claims.report_data,
    );
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcap::claims::{SgxAttributes, TdAttributes};

    fn h(b: u8, n: usize) -> HexBytes {
        HexBytes(vec![b; n])
    }

    fn platform(status: TcbStatus, adv: &[&str]) -> PlatformClaims {
        PlatformClaims {
            tcb_status: Some(status),
            advisory_ids: adv.iter().map(|s| s.to_string()).collect(),
            ..PlatformClaims::default()
        }
    }

    fn tdx_claims() -> TdxClaims {
        TdxClaims {
            quote_version: 4,
            tee_type: 0x81,
            td_report: "1.0",
            platform: platform(TcbStatus::UpToDate, &[]),
            tdx_module_tcb_status: None,
            tdx_module_identity: None,
            td_attributes: TdAttributes::decode([0, 0, 0, 0x10, 0, 0, 0, 0]),
            xfam: h(0, 8),
            mrtd: h(1, 48),
            mrconfigid: h(2, 48),
            mrowner: h(3, 48),
            mrownerconfig: h(4, 48),
            rtmr0: h(5, 48),
            rtmr1: h(6, 48),
            rtmr2: h(7, 48),
            rtmr3: h(8, 48),
            mrservicetd: None,
            mrsignerseam: h(0, 48),
            mrseam: h(9, 48),
            seam_attributes: h(0, 8),
            tee_tcb_svn: h(0, 16),
            tee_tcb_svn2: None,
            report_data: h(0xaa, 64),
        }
    }

    fn sgx_claims() -> SgxClaims {
        SgxClaims {
            quote_version: 3,
            platform: platform(TcbStatus::UpToDate, &[]),
            mrenclave: h(1, 32),
            mrsigner: h(2, 32),
            isv_prod_id: 7,
            isv_svn: 3,
            attributes: SgxAttributes {
                raw: h(0, 16),
                debug: false,
            },
            miscselect: h(0, 4),
            cpusvn: h(0, 16),
            report_data: h(0xaa, 64),
        }
    }

    fn only_failure(c: &Checks) -> Vec<String> {
        c.failures().map(|f| f.name.clone()).collect()
    }

    #[test]
    fn default_tdx_policy_accepts_a_clean_td_and_records_every_rule() {
        let c = evaluate_tdx(&TdxPolicy::default(), &tdx_claims());
        assert!(c.all_passed(), "{c:?}");
        assert_eq!(c.len(), 15);
    }

    #[test]
    fn each_tdx_rule_both_ways() {
        type Case = (&'static str, fn(&mut TdxClaims), fn(&mut TdxPolicy));
        let cases: [Case; 15] = [
            (
                "tcb_status",
                |c| c.platform.tcb_status = Some(TcbStatus::OutOfDate),
                |p| p.accepted_tcb_statuses.push(TcbStatus::OutOfDate),
            ),
            (
                "advisory_ids",
                |c| c.platform.advisory_ids = vec!["INTEL-SA-00960".into()],
                |p| p.accepted_advisory_ids = vec!["INTEL-SA-00960".into()],
            ),
            (
                "debug",
                |c| c.td_attributes = TdAttributes::decode([1, 0, 0, 0x10, 0, 0, 0, 0]),
                |p| p.allow_debug = true,
            ),
            (
                "sept_ve_disable",
                |c| c.td_attributes = TdAttributes::decode([0; 8]),
                |p| p.require_sept_ve_disable = false,
            ),
            (
                "reserved_attributes",
                |c| c.td_attributes = TdAttributes::decode([0, 1, 0, 0x10, 0, 0, 0, 0]),
                |_| {},
            ),
            (
                "mr_servicetd",
                |c| c.mrservicetd = Some(h(0xee, 48)),
                |p| p.mr_servicetd = vec![h(0xee, 48)],
            ),
            (
                "mrtd",
                |c| c.mrtd = h(0xff, 48),
                |p| p.mrtd = vec![h(0xff, 48)],
            ),
            (
                "rtmr0",
                |c| c.rtmr0 = h(0xff, 48),
                |p| p.rtmr0 = vec![h(0xff, 48)],
            ),
            (
                "rtmr1",
                |c| c.rtmr1 = h(0xff, 48),
                |p| p.rtmr1 = vec![h(0xff, 48)],
            ),
            (
                "rtmr2",
                |c| c.rtmr2 = h(0xff, 48),
                |p| p.rtmr2 = vec![h(0xff, 48)],
            ),
            (
                "rtmr3",
                |c| c.rtmr3 = h(0xff, 48),
                |p| p.rtmr3 = vec![h(0xff, 48)],
            ),
            (
                "mrconfigid",
                |c| c.mrconfigid = h(0xff, 48),
                |p| p.mrconfigid = vec![h(0xff, 48)],
            ),
            (
                "mrowner",
                |c| c.mrowner = h(0xff, 48),
                |p| p.mrowner = vec![h(0xff, 48)],
            ),
            (
                "mrownerconfig",
                |c| c.mrownerconfig = h(0xff, 48),
                |p| p.mrownerconfig = vec![h(0xff, 48)],
            ),
            (
                "report_data",
                |c| c.report_data = h(0xbb, 64),
                |p| p.report_data = Some(h(0xbb, 64)),
            ),
        ];
        for (rule, break_claims, relax) in cases {
            let mut claims = tdx_claims();
            let mut policy = TdxPolicy::default();
            // Pin the reference-value rules to the clean claims' values first.
            match rule {
                "mrtd" => policy.mrtd = vec![h(1, 48)],
                "rtmr0" => policy.rtmr0 = vec![h(5, 48)],
                "rtmr1" => policy.rtmr1 = vec![h(6, 48)],
                "rtmr2" => policy.rtmr2 = vec![h(7, 48)],
                "rtmr3" => policy.rtmr3 = vec![h(8, 48)],
                "mrconfigid" => policy.mrconfigid = vec![h(2, 48)],
                "mrowner" => policy.mrowner = vec![h(3, 48)],
                "mrownerconfig" => policy.mrownerconfig = vec![h(4, 48)],
                "report_data" => policy.report_data = Some(h(0xaa, 64)),
                _ => {}
            }
            assert!(evaluate_tdx(&policy, &claims).all_passed(), "{rule}: clean");
            break_claims(&mut claims);
            let c = evaluate_tdx(&policy, &claims);
            assert_eq!(
                only_failure(&c),
                vec![format!("policy.tdx.{rule}")],
                "{rule}"
            );
            if rule != "reserved_attributes" {
                relax(&mut policy);
                assert!(
                    evaluate_tdx(&policy, &claims).all_passed(),
                    "{rule}: relaxed"
                );
            }
        }
    }

    #[test]
    fn revoked_and_unknown_statuses_never_pass() {
        let mut p = TdxPolicy::default();
        p.accepted_tcb_statuses.push(TcbStatus::Revoked);
        let mut c = tdx_claims();
        c.platform.tcb_status = Some(TcbStatus::Revoked);
        assert!(evaluate_tdx(&p, &c).failed("policy.tdx.tcb_status"));
        c.platform.tcb_status = None;
        let checks = evaluate_tdx(&p, &c);
        assert!(checks.failed("policy.tdx.tcb_status"));
        assert!(checks.failed("policy.tdx.advisory_ids"));
    }

    #[test]
    fn each_sgx_rule_both_ways() {
        let clean = sgx_claims();
        assert!(evaluate_sgx(&SgxPolicy::default(), &clean).all_passed());
        let fails = |p: &SgxPolicy, c: &SgxClaims| only_failure(&evaluate_sgx(p, c));

        let mut c = clean.clone();
        c.platform = platform(
            TcbStatus::ConfigurationAndSWHardeningNeeded,
            &["INTEL-SA-00615"],
        );
        let mut p = SgxPolicy::default();
        assert_eq!(
            fails(&p, &c),
            ["policy.sgx.tcb_status", "policy.sgx.advisory_ids"]
        );
        p.accepted_tcb_statuses
            .push(TcbStatus::ConfigurationAndSWHardeningNeeded);
        p.accepted_advisory_ids.push("intel-sa-00615".into());
        assert!(fails(&p, &c).is_empty());

        let mut c = clean.clone();
        c.attributes.debug = true;
        let mut p = SgxPolicy::default();
        assert_eq!(fails(&p, &c), ["policy.sgx.debug"]);
        p.allow_debug = true;
        assert!(fails(&p, &c).is_empty());

        let mut p = SgxPolicy {
            mrenclave: vec![h(1, 32)],
            mrsigner: vec![h(2, 32)],
            isv_prod_id: Some(7),
            min_isv_svn: Some(3),
            report_data: Some(h(0xaa, 64)),
            ..SgxPolicy::default()
        };
        assert!(fails(&p, &clean).is_empty());
        p.mrenclave = vec![h(9, 32)];
        p.mrsigner = vec![h(9, 32)];
        p.isv_prod_id = Some(8);
        p.min_isv_svn = Some(4);
        p.report_data = Some(h(0xab, 64));
        assert_eq!(
            fails(&p, &clean),
            [
                "policy.sgx.mrenclave",
                "policy.sgx.mrsigner",
                "policy.sgx.isv_prod_id",
                "policy.sgx.isv_svn",
                "policy.sgx.report_data"
            ]
        );
    }

    #[test]
    fn policy_sections_parse_from_toml_and_refuse_unknown_fields() {
        let p = crate::Policy::from_toml(
            "[tdx]\naccepted_tcb_statuses = [\"UpToDate\", \"OutOfDate\"]\n\
             accepted_advisory_ids = [\"INTEL-SA-00960\"]\nmrtd = [\"00ff\"]\n\
             [sgx]\nmin_isv_svn = 2\nallow_debug = true\n",
        )
        .unwrap();
        assert_eq!(
            p.tdx.accepted_tcb_statuses,
            [TcbStatus::UpToDate, TcbStatus::OutOfDate]
        );
        assert!(p.tdx.require_sept_ve_disable);
        assert_eq!(p.tdx.mrtd, [HexBytes(vec![0, 0xff])]);
        assert_eq!((p.sgx.min_isv_svn, p.sgx.allow_debug), (Some(2), true));
        assert!(crate::Policy::from_toml("[tdx]\nmrtdd = []\n").is_err());
        assert!(crate::Policy::from_toml("[tdx]\naccepted_tcb_statuses = [\"Fine\"]\n").is_err());
        let d = crate::Policy::default();
        assert_eq!(d.tdx.accepted_tcb_statuses, [TcbStatus::UpToDate]);
        assert_eq!(d.sgx.accepted_tcb_statuses, [TcbStatus::UpToDate]);
    }
}
