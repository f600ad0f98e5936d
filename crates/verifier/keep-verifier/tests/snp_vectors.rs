//! SEV-SNP verification of real reports from Milan, Genoa and Turin machines (see
//! `tests/vectors/README.md` for where each comes from), each at the time it is
//! expected to verify, at a fixed "today", and with known negatives.

use keep_verifier::roots::AmdProduct;
use keep_verifier::snp::{self, SnpEvidence, SnpPolicy};
use keep_verifier::{Claims, Options, SignatureCache, Skipped, UnixTime, Verdict, Verification};

/// The fixed "today" for expiry tests.
const TODAY: &str = "2026-11-23T00:00:00Z";

fn read(case: &str, file: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/vectors/snp/{case}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One vector: its files, when it verifies, and what the default policy says.
struct Case {
    name: &'static str,
    key: &'static str,
    chain: Option<&'static str>,
    now: &'static str,
    product: AmdProduct,
    default_verdict: Verdict,
}

const CASES: [Case; 6] = [
    Case {
        name: "milan-virtee",
        key: "vcek.der",
        chain: None,
        now: "2023-04-04T00:00:00Z",
        product: AmdProduct::Milan,
        default_verdict: Verdict::Accepted,
    },
    Case {
        name: "milan-trustee",
        key: "vcek.der",
        chain: None,
        now: "2023-01-25T00:00:00Z",
        product: AmdProduct::Milan,
        default_verdict: Verdict::Accepted,
    },
    Case {
        name: "milan-vlek-aws",
        key: "vlek.der",
        chain: None,
        now: "2025-06-01T00:00:00Z",
        product: AmdProduct::Milan,
        default_verdict: Verdict::RefusedByPolicy,
    },
    Case {
        name: "genoa-oak-v5",
        key: "vcek.der",
        chain: None,
        now: "2025-09-12T00:00:00Z",
        product: AmdProduct::Genoa,
        default_verdict: Verdict::Accepted,
    },
    Case {
        name: "turin-oak-v5",
        key: "vcek.der",
        chain: None,
        now: "2025-09-12T00:00:00Z",
        product: AmdProduct::Turin,
        default_verdict: Verdict::Accepted,
    },
    Case {
        name: "milan-debug-policy",
        key: "vcek.der",
        chain: Some("chain.pem"),
        now: "2022-09-25T00:00:00Z",
        product: AmdProduct::Milan,
        default_verdict: Verdict::RefusedByPolicy,
    },
];

/// The bytes of one case.
struct Files {
    report: Vec<u8>,
    key: Vec<u8>,
    chain: Option<Vec<u8>>,
}

impl Case {
    fn files(&self) -> Files {
        Files {
            report: read(self.name, "report.bin"),
            key: read(self.name, self.key),
            chain: self.chain.map(|c| read(self.name, c)),
        }
    }

    fn now(&self) -> UnixTime {
        t(self.now)
    }

    fn is_vlek(&self) -> bool {
        self.key == "vlek.der"
    }
}

fn t(s: &str) -> UnixTime {
    UnixTime::parse(s).unwrap()
}

fn run(
    f: &Files,
    crls: &[Vec<u8>],
    policy: &SnpPolicy,
    now: UnixTime,
    opts: Options<'_>,
) -> Verification {
    snp::verify(
        &SnpEvidence {
            report: &f.report,
            vcek: &f.key,
            chain: f.chain.as_deref(),
            crls,
        },
        policy,
        now,
        opts,
    )
}

fn failed(v: &Verification) -> Vec<String> {
    v.evidence
        .failures()
        .chain(v.policy.failures())
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect()
}

fn failed_names(v: &Verification) -> Vec<String> {
    v.evidence
        .failures()
        .chain(v.policy.failures())
        .map(|c| c.name.clone())
        .collect()
}

#[test]
fn every_case_verifies_at_its_time_with_every_check_recorded() {
    for case in &CASES {
        let f = case.files();
        let v = run(
            &f,
            &[],
            &SnpPolicy::default(),
            case.now(),
            Options::default(),
        );
        assert_eq!(
            v.verdict,
            case.default_verdict,
            "{}: {:?}",
            case.name,
            failed(&v)
        );
        assert!(v.evidence.all_passed(), "{}: {:?}", case.name, failed(&v));
        let (key, inter) = if case.is_vlek() {
            ("vlek", "asvk")
        } else {
            ("vcek", "ask")
        };
        let mut expected = vec![
            "snp.report.parse".to_owned(),
            "snp.report.version".into(),
            "snp.report.signature_algorithm".into(),
            "snp.report.reserved".into(),
            format!("snp.{key}.parse"),
            format!("snp.{key}.public_key"),
            format!("snp.{key}.extensions"),
            "snp.ark.pinned".into(),
            "snp.ark.self_signature".into(),
            "snp.ark.validity".into(),
            format!("snp.{inter}.signature"),
            format!("snp.{inter}.validity"),
            format!("snp.{key}.signature"),
            format!("snp.{key}.validity"),
            "snp.product".into(),
            "snp.report.signing_key".into(),
            format!("snp.{key}.tcb"),
            "snp.report.signature".into(),
        ];
        if !case.is_vlek() {
            expected.push("snp.vcek.hwid".into());
        }
        if case.chain.is_some() {
            expected.push("snp.chain.parse".into());
        }
        for name in &expected {
            assert!(v.evidence.passed(name), "{}: {name} missing", case.name);
        }
        // Without a CRL, revocation is recorded as not checked (not left out).
        assert!(
            v.evidence
                .skipped("snp.crl.revocation", Skipped::NotChecked),
            "{}",
            case.name
        );
        assert_eq!(
            v.evidence.len(),
            expected.len() + 1,
            "{}: {:?}",
            case.name,
            v.evidence
        );
        let Claims::Snp(claims) = &v.claims else {
            panic!("{}: no claims", case.name);
        };
        assert_eq!(claims.product, Some(case.product), "{}", case.name);
        println!(
            "{}: {:?}, {} evidence checks, reported TCB {}",
            case.name,
            v.verdict,
            v.evidence.len(),
            claims.reported_tcb
        );
    }
}

#[test]
fn today_only_the_expired_vlek_fails_and_it_fails_on_validity() {
    let today = t(TODAY);
    for case in &CASES {
        let v = run(
            &case.files(),
            &[],
            &SnpPolicy::default(),
            today,
            Options::default(),
        );
        if case.name == "milan-vlek-aws" {
            assert_eq!(v.verdict, Verdict::NotGenuine);
            let names: Vec<String> = v.evidence.failures().map(|c| c.name.clone()).collect();
            assert_eq!(names, ["snp.vlek.validity"]);
            let detail = &v.evidence.failures().next().unwrap().detail;
            assert!(detail.contains("expired at 2025-12-10"), "{detail}");
        } else {
            assert_eq!(
                v.verdict,
                case.default_verdict,
                "{}: {:?}",
                case.name,
                failed(&v)
            );
        }
    }
    // And before the VCEKs were issued.
    let v = run(
        &CASES[3].files(),
        &[],
        &SnpPolicy::default(),
        t("2025-01-01"),
        Options::default(),
    );
    assert!(v.evidence.failed("snp.vcek.validity"), "{:?}", failed(&v));
}

#[test]
fn the_aws_vlek_is_genuine_but_refused_by_a_vmpl_0_policy() {
    let case = &CASES[2];
    let f = case.files();
    let v = run(
        &f,
        &[],
        &SnpPolicy::default(),
        case.now(),
        Options::default(),
    );
    assert_eq!(v.verdict, Verdict::RefusedByPolicy);
    assert_eq!(failed_names(&v), ["policy.snp.vmpl"]);
    assert!(!v.evidence.iter().any(|c| c.name == "snp.vcek.hwid"));
    let Claims::Snp(claims) = &v.claims else {
        panic!("no claims")
    };
    assert_eq!(claims.vmpl, 1);
    assert_eq!(claims.signing_key, Some(snp::SigningKey::Vlek));
    assert_eq!(claims.chip_id, [0u8; 64]);
    assert_eq!(claims.reported_tcb.microcode, 0xd9);

    let vmpl1 = keep_verifier::Policy::from_toml("[snp]\nvmpl = [0, 1]\nsigning_keys = [\"vlek\"]")
        .unwrap()
        .snp;
    let v = run(&f, &[], &vmpl1, case.now(), Options::default());
    assert_eq!(v.verdict, Verdict::Accepted, "{:?}", failed(&v));
}

#[test]
fn the_debug_guest_is_genuine_but_refused_by_the_default_policy() {
    let case = &CASES[5];
    let mut f = case.files();
    let v = run(
        &f,
        &[],
        &SnpPolicy::default(),
        case.now(),
        Options::default(),
    );
    assert_eq!(v.verdict, Verdict::RefusedByPolicy);
    assert_eq!(failed_names(&v), ["policy.snp.debug"]);
    let allow = keep_verifier::Policy::from_toml("[snp]\nallow_debug = true")
        .unwrap()
        .snp;
    assert_eq!(
        run(&f, &[], &allow, case.now(), Options::default()).verdict,
        Verdict::Accepted
    );
    // The same with the compiled-in intermediates instead of the supplied chain.
    f.chain = None;
    let v = run(&f, &[], &allow, case.now(), Options::default());
    assert_eq!(v.verdict, Verdict::Accepted, "{:?}", failed(&v));
}

#[test]
fn known_peer_negatives() {
    for case in &CASES {
        let now = case.now();
        let policy = SnpPolicy::default();
        let key = if case.is_vlek() { "vlek" } else { "vcek" };
        let mut f = case.files();
        f.report[21] ^= 0x80;
        let v = run(&f, &[], &policy, now, Options::default());
        assert_eq!(failed_names(&v)[0], "snp.report.signature", "{}", case.name);
        assert_eq!(v.verdict, Verdict::NotGenuine);

        let mut f = case.files();
        f.report[42] = f.report[42].wrapping_add(1);
        let v = run(&f, &[], &policy, now, Options::default());
        assert!(v.evidence.failed("snp.report.signature"), "{}", case.name);
        assert_eq!(v.verdict, Verdict::NotGenuine);

        let mut f = case.files();
        f.report[384] = f.report[384].wrapping_add(1);
        let v = run(&f, &[], &policy, now, Options::default());
        assert!(
            v.evidence.failed(&format!("snp.{key}.tcb")),
            "{}: {:?}",
            case.name,
            failed(&v)
        );
        assert!(v.evidence.failed("snp.report.signature"));
        assert_eq!(v.verdict, Verdict::NotGenuine);

        let mut f = case.files();
        f.key[40] ^= 0xff;
        let v = run(&f, &[], &policy, now, Options::default());
        assert!(
            v.evidence.failed(&format!("snp.{key}.signature"))
                || v.evidence.failed(&format!("snp.{key}.parse")),
            "{}: {:?}",
            case.name,
            failed(&v)
        );
        assert_eq!(v.verdict, Verdict::NotGenuine);
    }
}

#[test]
fn a_vcek_of_another_chip_is_refused_by_hwid() {
    let mut f = CASES[0].files();
    f.key = read("milan-trustee", "vcek.der");
    let v = run(
        &f,
        &[],
        &SnpPolicy::default(),
        t("2024-01-01"),
        Options::default(),
    );
    assert_eq!(v.verdict, Verdict::NotGenuine);
    let names = failed_names(&v);
    assert_eq!(
        names,
        ["snp.vcek.hwid", "snp.report.signature"],
        "{:?}",
        failed(&v)
    );
    // Both machines have the same REPORTED_TCB, so the chain and TCB pass.
    assert!(v.evidence.passed("snp.vcek.tcb") && v.evidence.passed("snp.vcek.signature"));
}

#[test]
fn a_vcek_of_another_product_is_refused() {
    // A Turin report (CPUID says Turin) with a Genoa VCEK.
    let mut f = CASES[4].files();
    f.key = read("genoa-oak-v5", "vcek.der");
    let v = run(
        &f,
        &[],
        &SnpPolicy::default(),
        CASES[4].now(),
        Options::default(),
    );
    assert_eq!(v.verdict, Verdict::NotGenuine);
    assert!(v.evidence.failed("snp.product"), "{:?}", failed(&v));
    assert!(v.evidence.failed("snp.vcek.hwid"));
    assert!(v.evidence.failed("snp.report.signature"));
    // A v2 Milan report (no CPUID) with a Genoa VCEK: the product is Genoa's, the
    // binding fails.
    let mut f = CASES[0].files();
    f.key = read("genoa-oak-v5", "vcek.der");
    let v = run(
        &f,
        &[],
        &SnpPolicy::default(),
        CASES[3].now(),
        Options::default(),
    );
    assert_eq!(v.verdict, Verdict::NotGenuine);
    assert!(v.evidence.failed("snp.vcek.hwid") && v.evidence.failed("snp.report.signature"));
}

#[test]
fn a_vlek_report_with_a_vcek_or_the_reverse_is_refused() {
    let mut f = CASES[2].files();
    f.key = read("milan-virtee", "vcek.der");
    let v = run(
        &f,
        &[],
        &SnpPolicy::default(),
        t("2025-06-01"),
        Options::default(),
    );
    assert_eq!(v.verdict, Verdict::NotGenuine);
    assert!(v.evidence.failed("snp.vlek.signature"), "{:?}", failed(&v));
    assert!(
        v.evidence.failed("snp.report.signing_key"),
        "{:?}",
        failed(&v)
    );
    let mut f = CASES[0].files();
    f.key = read("milan-vlek-aws", "vlek.der");
    let v = run(
        &f,
        &[],
        &SnpPolicy::default(),
        t("2025-06-01"),
        Options::default(),
    );
    assert_eq!(v.verdict, Verdict::NotGenuine);
    assert!(v.evidence.failed("snp.vcek.signature"), "{:?}", failed(&v));
}

#[test]
fn crls_with_real_genoa_and_milan_chains() {
    // (The revoked Genoa ASK itself is refused in the chain module's unit tests: no
    // real VCEK chains through it.)
    let crl0 = read("genoa-revoked-ask", "crl0.der");
    let crl1 = read("genoa-revoked-ask", "crl1.der");
    let old_chain = read("genoa-revoked-ask", "old-chain.pem");
    let case = &CASES[3];

    // The revoked ASK is supplied and has the current ASK's name, but it did not sign
    // this VCEK: the current (compiled-in) ASK did and is used; crl0 does not list it.
    let mut f = case.files();
    f.chain = Some(old_chain);
    let v = run(
        &f,
        std::slice::from_ref(&crl0),
        &SnpPolicy::default(),
        case.now(),
        Options::default(),
    );
    assert_eq!(failed_names(&v), ["snp.crl.validity"], "{:?}", failed(&v));
    assert!(v.evidence.passed("snp.crl.revocation") && v.evidence.passed("snp.ask.signature"));

    // The current chain is not on crl0, but crl0 is out of date by 2025.
    let f = case.files();
    let v = run(
        &f,
        std::slice::from_ref(&crl0),
        &SnpPolicy::default(),
        case.now(),
        Options::default(),
    );
    assert_eq!(failed_names(&v), ["snp.crl.validity"], "{:?}", failed(&v));
    // crl1 is ARK-Milan's: it does not apply to a Genoa chain, so it is skipped and
    // revocation was not checked; the evidence stays genuine.
    let v = run(
        &f,
        std::slice::from_ref(&crl1),
        &SnpPolicy::default(),
        case.now(),
        Options::default(),
    );
    assert!(v.genuine(), "{:?}", failed(&v));
    assert!(
        v.evidence
            .skipped("snp.crl.applicable", Skipped::NotApplicable)
    );
    assert!(
        v.evidence
            .skipped("snp.crl.revocation", Skipped::NotChecked)
    );
    // crl1 is valid for a Milan chain in its window (2022-05-09 to 2023-05-09), and
    // crl0 (ARK-Genoa's) beside it is skipped, not a signature failure.
    let milan = CASES[1].files();
    let v = run(
        &milan,
        &[crl0.clone(), crl1],
        &SnpPolicy::default(),
        t("2023-02-01"),
        Options::default(),
    );
    assert_eq!(v.verdict, Verdict::Accepted, "{:?}", failed(&v));
    assert!(v.evidence.passed("snp.crl.revocation"));
    assert!(v.evidence.passed("snp.crl.signature"));
    assert!(
        v.evidence
            .skipped("snp.crl.applicable", Skipped::NotApplicable)
    );
    // A CRL that is not one.
    let v = run(
        &milan,
        &[b"garbage".to_vec()],
        &SnpPolicy::default(),
        t("2023-02-01"),
        Options::default(),
    );
    assert!(v.evidence.failed("snp.crl.parse"));
    assert_eq!(v.verdict, Verdict::NotGenuine);
}

#[test]
fn truncated_overlong_and_garbage_inputs_are_parse_errors() {
    let f = CASES[0].files();
    let now = CASES[0].now();
    for len in [0, 1, 0x2A0, 1183] {
        let g = Files {
            report: f.report[..len].to_vec(),
            key: f.key.clone(),
            chain: None,
        };
        let v = run(&g, &[], &SnpPolicy::default(), now, Options::default());
        assert_eq!(v.verdict, Verdict::NotGenuine);
        assert!(v.evidence.failed("snp.report.parse"));
        assert!(matches!(v.claims, Claims::None));
        assert!(v.policy.is_empty());
    }
    let mut long = f.report.clone();
    long.push(0);
    let g = Files {
        report: long,
        key: f.key.clone(),
        chain: None,
    };
    let v = run(&g, &[], &SnpPolicy::default(), now, Options::default());
    assert!(v.evidence.failed("snp.report.parse"));
    // The chain is still checked without a report.
    assert!(v.evidence.passed("snp.vcek.signature"));

    for key in [
        vec![],
        f.key[..100].to_vec(),
        b"-----BEGIN CERTIFICATE-----\nxx".to_vec(),
    ] {
        let g = Files {
            report: f.report.clone(),
            key,
            chain: Some(b"not pem".to_vec()),
        };
        let v = run(&g, &[], &SnpPolicy::default(), now, Options::default());
        assert_eq!(v.verdict, Verdict::NotGenuine);
        assert!(v.evidence.failed("snp.vcek.parse") && v.evidence.failed("snp.chain.parse"));
        assert!(!v.evidence.iter().any(|c| c.name == "snp.report.signature"));
    }
}

#[test]
fn a_pem_vcek_and_a_chain_with_a_foreign_root() {
    use base64::Engine;
    let mut f = CASES[0].files();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&f.key);
    f.key = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n").into_bytes();
    let v = run(
        &f,
        &[],
        &SnpPolicy::default(),
        CASES[0].now(),
        Options::default(),
    );
    assert_eq!(v.verdict, Verdict::Accepted, "{:?}", failed(&v));

    // A self-signed root that is not a pinned ARK, in the supplied chain.
    let intel = keep_verifier::roots::intel_sgx_root().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(intel.der());
    let mut chain = read("milan-debug-policy", "chain.pem");
    chain
        .extend(format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n").bytes());
    f.chain = Some(chain);
    let v = run(
        &f,
        &[],
        &SnpPolicy::default(),
        CASES[0].now(),
        Options::default(),
    );
    assert_eq!(failed_names(&v), ["snp.ark.pinned"], "{:?}", failed(&v));
}

#[test]
fn a_second_verification_with_the_cache_only_adds_nothing_new() {
    let cache = SignatureCache::new(1000);
    let opts = Options {
        cache: Some(&cache),
        ..Options::default()
    };
    for case in &CASES {
        let f = case.files();
        let before = cache.len();
        let v = run(&f, &[], &SnpPolicy::default(), case.now(), opts);
        assert_eq!(v.verdict, case.default_verdict);
        let after_first = cache.len();
        assert!(after_first > before);
        let again = run(&f, &[], &SnpPolicy::default(), case.now(), opts);
        assert_eq!(again.verdict, case.default_verdict);
        assert_eq!(cache.len(), after_first, "{}", case.name);
    }
    // ARK, ASK and VCEK signatures per case, shared ARKs and ASKs between cases,
    // and one report signature each.
    println!("signature cache holds {} results", cache.len());
}

#[test]
fn claims_serialize_with_hex_bytes() {
    let case = &CASES[0];
    let v = run(
        &case.files(),
        &[],
        &SnpPolicy::default(),
        case.now(),
        Options::default(),
    );
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["tee"], "sev-snp");
    assert_eq!(json["verdict"], "accepted");
    let claims = &json["claims"];
    assert_eq!(claims["product"], "Milan");
    assert_eq!(claims["version"], 2);
    assert_eq!(claims["policy"]["raw"], 0x30000);
    assert_eq!(claims["reported_tcb"]["bootloader"], 3);
    assert_eq!(claims["reported_tcb"]["snp"], 8);
    assert_eq!(claims["reported_tcb"]["microcode"], 115);
    assert!(
        claims["chip_id"]
            .as_str()
            .unwrap()
            .starts_with("d49554ec717f4e5b")
    );
    assert_eq!(claims["measurement"].as_str().unwrap().len(), 96);
}

#[test]
fn the_committed_copies_match_the_shared_vectors_when_present() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../../shared/vectors/snp"
    );
    let Ok(cases) = std::fs::read_dir(shared) else {
        println!("note: {shared} is not present; using the committed copies only");
        return;
    };
    let mut compared = 0;
    for case in cases.flatten() {
        let name = case.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(case.path()) else {
            continue;
        };
        for file in files.flatten() {
            let file_name = file.file_name().to_string_lossy().into_owned();
            let theirs = std::fs::read(file.path()).unwrap();
            assert_eq!(read(&name, &file_name), theirs, "{name}/{file_name}");
            compared += 1;
        }
    }
    println!("{compared} committed SNP vector files match {shared}");
}
