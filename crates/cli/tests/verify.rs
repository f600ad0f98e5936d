//! `keep verify` as a user runs it, on the real hardware evidence committed with the
//! verifier (crates/verifier/keep-verifier/tests/vectors).

mod common;

use std::path::PathBuf;

use common::{assert_one_line, run, stderr, stdout};
use serde_json::Value;

fn vector(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../verifier/keep-verifier/tests/vectors")
        .join(path)
        .display()
        .to_string()
}

fn json_of(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn failed_names(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == Value::Bool(false))
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

const SNP_VIRTEE: [&str; 4] = [
    "--snp-report",
    "snp/milan-virtee/report.bin",
    "--vcek",
    "snp/milan-virtee/vcek.der",
];

fn snp_virtee(extra: &[&str]) -> std::process::Output {
    let report = vector(SNP_VIRTEE[1]);
    let vcek = vector(SNP_VIRTEE[3]);
    let mut args = vec!["verify", "--snp-report", &report, "--vcek", &vcek];
    args.extend_from_slice(extra);
    run(&args, None)
}

#[test]
fn a_genuine_snp_report_is_accepted_with_its_claims_shown() {
    let o = snp_virtee(&["--now", "2025-01-01"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("ACCEPTED"), "{out}");
    assert!(out.contains("sev-snp"), "{out}");
    assert!(out.contains("measurement"), "{out}");
    assert!(out.contains("0 failed"), "{out}");
}

#[test]
fn the_vlek_report_is_genuine_in_its_window_refused_for_vmpl_and_expired_today() {
    let report = vector("snp/milan-vlek-aws/report.bin");
    let vlek = vector("snp/milan-vlek-aws/vlek.der");
    let o = run(
        &[
            "verify",
            "--snp-report",
            &report,
            "--vlek",
            &vlek,
            "--now",
            "2025-06-01",
            "--json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(11), "{}{}", stdout(&o), stderr(&o));
    let v = json_of(&o);
    assert_eq!(v["verdict"], "refused-by-policy");
    assert!(failed_names(&v, "evidence").is_empty(), "{v}");
    assert!(
        failed_names(&v, "policy")
            .iter()
            .any(|n| n.contains("vmpl")),
        "{v}"
    );

    let o = run(
        &[
            "verify",
            "--snp-report",
            &report,
            "--vlek",
            &vlek,
            "--now",
            "2026-11-23T00:00:00Z",
            "--json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(10), "{}{}", stdout(&o), stderr(&o));
    let v = json_of(&o);
    assert_eq!(v["verdict"], "not-genuine");
    let failed = failed_names(&v, "evidence");
    assert!(failed.iter().any(|n| n.contains("validity")), "{failed:?}");
    // Every failure is listed, not only the first: the policy was still evaluated.
    assert!(
        failed_names(&v, "policy")
            .iter()
            .any(|n| n.contains("vmpl")),
        "{v}"
    );
}

#[test]
fn a_tdx_quote_with_collateral_is_accepted_at_its_time_and_expired_today() {
    let quote = vector("tdx/dcap-qvl-uptodate/quote.bin");
    let coll = vector("tdx/dcap-qvl-uptodate/collateral.json");
    let o = run(
        &[
            "verify",
            "--quote",
            &quote,
            "--collateral",
            &coll,
            "--now",
            "1752919234",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("UpToDate"), "{}", stdout(&o));

    let o = run(
        &[
            "verify",
            "--quote",
            &quote,
            "--collateral",
            &coll,
            "--now",
            "2026-11-23",
            "--json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(10), "{}", stdout(&o));
}

#[test]
fn an_out_of_date_tdx_platform_is_refused_unless_the_policy_accepts_it() {
    let quote = vector("tdx/gcp-outofdate/quote.bin");
    let coll = vector("tdx/gcp-outofdate/collateral.json");
    let o = run(
        &[
            "verify",
            "--quote",
            &quote,
            "--collateral",
            &coll,
            "--now",
            "1739419232",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(11), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    for a in [
        "OutOfDate",
        "INTEL-SA-00960",
        "INTEL-SA-00982",
        "INTEL-SA-00986",
    ] {
        assert!(out.contains(a), "{a} missing: {out}");
    }

    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[tdx]\naccepted_tcb_statuses = [\"UpToDate\", \"OutOfDate\"]\n\
         accepted_advisory_ids = [\"INTEL-SA-00960\", \"INTEL-SA-00982\", \"INTEL-SA-00986\"]\n",
    )
    .unwrap();
    let o = run(
        &[
            "verify",
            "--quote",
            &quote,
            "--collateral",
            &coll,
            "--now",
            "1739419232",
            "--policy",
            policy.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn a_debug_td_without_collateral_is_not_genuine_and_breaks_the_debug_rule() {
    let quote = vector("tdx/debug-td/quote.bin");
    let o = run(
        &["verify", "--quote", &quote, "--now", "2025-01-01", "--json"],
        None,
    );
    assert_eq!(o.status.code(), Some(10), "{}", stdout(&o));
    let v = json_of(&o);
    assert!(
        failed_names(&v, "evidence")
            .iter()
            .any(|n| n.contains("collateral")),
        "{v}"
    );
    assert!(
        failed_names(&v, "policy")
            .iter()
            .any(|n| n.contains("debug")),
        "{v}"
    );
}

#[test]
fn raw_files_saved_as_a_bundle_verify_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("evidence.cbor");
    let b = bundle.to_str().unwrap();
    let o = snp_virtee(&["--now", "2025-01-01", "--save-bundle", b]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&["verify", b, "--now", "2025-01-01", "--json"], None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(json_of(&o)["tee"], "sev-snp");

    let quote = vector("sgx/dcap-qvl-config-sw-hardening/quote.bin");
    let coll = vector("sgx/dcap-qvl-config-sw-hardening/collateral.json");
    let o = run(
        &[
            "verify",
            "--quote",
            &quote,
            "--collateral",
            &coll,
            "--now",
            "1752919277",
            "--save-bundle",
            b,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(11), "{}", stdout(&o));
    let o = run(&["verify", b, "--now", "1752919277", "--json"], None);
    assert_eq!(o.status.code(), Some(11), "{}", stdout(&o));
    let v = json_of(&o);
    assert_eq!(v["tee"], "sgx");
    let text = v["claims"].to_string();
    assert!(text.contains("ConfigurationAndSWHardeningNeeded"), "{text}");
}

#[test]
fn report_data_must_match_when_required() {
    let o = snp_virtee(&["--now", "2025-01-01", "--report-data", "00112233", "--json"]);
    assert_eq!(o.status.code(), Some(11), "{}", stdout(&o));
    assert!(
        failed_names(&json_of(&o), "policy")
            .iter()
            .any(|n| n.contains("report_data"))
    );
}

#[test]
fn a_signed_ear_is_written_and_verifies_with_the_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keep_verifier::attestation_result::generate_key().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, private).unwrap();
    let ear = dir.path().join("ear.jwt");
    let o = snp_virtee(&[
        "--now",
        "2025-01-01",
        "--ear",
        ear.to_str().unwrap(),
        "--ear-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let token = std::fs::read_to_string(&ear).unwrap();
    let result =
        keep_verifier::attestation_result::verify_jwt(token.trim(), public.as_bytes()).unwrap();
    assert_eq!(result.iat, 1735689600);
    assert_eq!(result.submods["sev-snp"].status, ear::TrustTier::Affirming);
}

#[test]
fn tampered_and_truncated_evidence_is_not_genuine() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = std::fs::read(vector(SNP_VIRTEE[1])).unwrap();
    report[0x90] ^= 1; // the measurement
    let tampered = dir.path().join("tampered.bin");
    std::fs::write(&tampered, &report).unwrap();
    let truncated = dir.path().join("truncated.bin");
    std::fs::write(&truncated, &report[..1000]).unwrap();
    let vcek = vector(SNP_VIRTEE[3]);
    for f in [&tampered, &truncated] {
        let o = run(
            &[
                "verify",
                "--snp-report",
                f.to_str().unwrap(),
                "--vcek",
                &vcek,
                "--now",
                "2025-01-01",
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(10), "{}", stdout(&o));
        assert!(stdout(&o).starts_with("NOT GENUINE"), "{}", stdout(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn bad_input_gets_one_line_and_status_125_or_2_for_the_command_line() {
    let report = vector(SNP_VIRTEE[1]);
    let o = run(&["verify", "/nonexistent/evidence.cbor"], None);
    assert_one_line(&o, 125, &["/nonexistent/evidence.cbor"]);
    let o = run(&["verify", &report], None);
    assert_one_line(&o, 125, &["not an evidence bundle"]);
    let o = snp_virtee(&["--now", "last tuesday"]);
    assert_one_line(&o, 2, &["--now", "last tuesday"]);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[snp]\nallow_debug = false\nallow_dbug = true\n").unwrap();
    let o = snp_virtee(&["--policy", policy.to_str().unwrap()]);
    assert_one_line(&o, 125, &["p.toml:3:1", "allow_dbug"]);
    let o = run(&["verify"], None);
    assert_one_line(&o, 2, &["no evidence"]);
    let o = snp_virtee(&["--report-data", "zz"]);
    assert_one_line(&o, 2, &["--report-data"]);
}

#[test]
fn crls_are_chosen_by_issuer_and_missing_ones_are_reported_as_not_checked() {
    // milan-virtee's chain is ARK-Milan -> SEV-Milan; crl1 is ARK-Milan's CRL (current
    // until 2023-05-09), crl0 ARK-Genoa's: another product line's, not applicable.
    let (milan, genoa) = (
        vector("snp/genoa-revoked-ask/crl1.der"),
        vector("snp/genoa-revoked-ask/crl0.der"),
    );
    let check = |v: &Value, name: &str| -> Value {
        v["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let o = snp_virtee(&[
        "--now",
        "2023-05-01",
        "--crl",
        &genoa,
        "--crl",
        &milan,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let v = json_of(&o);
    assert!(failed_names(&v, "evidence").is_empty(), "{v}");
    assert_eq!(check(&v, "snp.crl.revocation")["passed"], true, "{v}");
    assert!(check(&v, "snp.crl.revocation")["skipped"].is_null(), "{v}");
    let na = check(&v, "snp.crl.applicable");
    assert_eq!(na["skipped"], "not-applicable", "{v}");
    assert!(na["detail"].as_str().unwrap().contains("ARK-Genoa"), "{na}");

    // The Genoa CRL alone: nothing applies, so revocation was not checked; said in text.
    let o = snp_virtee(&["--now", "2023-05-01", "--crl", &genoa]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("NOT APPLICABLE snp.crl.applicable"), "{out}");
    assert!(out.contains("NOT CHECKED snp.crl.revocation"), "{out}");

    // No CRL at all: a named check says revocation was not checked.
    let o = snp_virtee(&["--now", "2025-01-01", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let r = check(&json_of(&o), "snp.crl.revocation");
    assert_eq!(r["skipped"], "not-checked", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("not checked"), "{r}");
}

/// Runs `keep` and kills it if it has not exited after `secs` (the test then fails).
fn run_within(args: &[&str], stdin: Option<Vec<u8>>, secs: u64) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = common::keep()
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keep");
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin");
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keep {args:?} still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if let Some(f) = feeder {
        let _ = f.join();
    }
    child.wait_with_output().expect("output")
}

#[test]
fn inputs_without_a_size_are_capped_while_reading() {
    // A device reports size 0 and never ends: the read stops at the cap.
    let o = run_within(&["verify", "--quote", "/dev/zero"], None, 30);
    assert_one_line(&o, 125, &["/dev/zero", "limit"]);
    // So does a pipe (as `<(...)` would be) with more than the cap.
    let big = vec![0u8; 8 * 1024 * 1024 + 1];
    let o = run_within(&["verify", "--quote", "/dev/stdin"], Some(big), 30);
    assert_one_line(&o, 125, &["/dev/stdin", "limit"]);
    // A pipe within the cap is read whole, though its reported size is 0.
    let report = std::fs::read(vector(SNP_VIRTEE[1])).unwrap();
    let vcek = vector(SNP_VIRTEE[3]);
    let o = run_within(
        &[
            "verify",
            "--snp-report",
            "/dev/stdin",
            "--vcek",
            &vcek,
            "--now",
            "2025-01-01",
        ],
        Some(report),
        30,
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn a_quote_that_does_not_parse_fails_that_check_alone_and_unsigned_tails_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let quote = std::fs::read(vector("tdx/dcap-qvl-uptodate/quote.bin")).unwrap();
    let coll = vector("tdx/dcap-qvl-uptodate/collateral.json");
    // A cut TDX quote: its header still says TDX; only the parse fails.
    let cut = dir.path().join("cut.bin");
    std::fs::write(&cut, &quote[..1000]).unwrap();
    let o = run(
        &["verify", "--quote", cut.to_str().unwrap(), "--json"],
        None,
    );
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(failed_names(&v, "evidence"), ["dcap.quote.parse"], "{v}");
    assert_eq!(v["tee"], "tdx");

    // Bytes after the signature data: ignored, counted, and the quote is accepted.
    let long = dir.path().join("long.bin");
    let mut bytes = quote.clone();
    bytes.extend_from_slice(b"not signed by anyone");
    std::fs::write(&long, &bytes).unwrap();
    let o = run(
        &[
            "verify",
            "--quote",
            long.to_str().unwrap(),
            "--collateral",
            &coll,
            "--now",
            "1752919234",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // (The vector already ends in zero padding, counted too.)
    let padding = keep_verifier::dcap::Quote::parse(&quote)
        .unwrap()
        .trailing_bytes;
    let out = stdout(&o);
    let note = format!(
        "note dcap.quote.parse: {} bytes after the signature data are ignored",
        padding + 20
    );
    assert!(out.contains(&note), "{note:?} not in {out}");
}

#[test]
fn save_bundle_never_writes_a_bundle_that_keep_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let crl = vector("snp/genoa-revoked-ask/crl1.der");
    let saved = dir.path().join("b.cbor");
    let b = saved.to_str().unwrap();
    let mut args = vec!["--now", "2023-05-01", "--save-bundle", b];
    for _ in 0..8 {
        args.extend(["--crl", crl.as_str()]);
    }
    // Eight CRLs (the limit): written, and read back to the same verdict.
    let o = snp_virtee(&args);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = run(&["verify", b, "--now", "2023-05-01"], None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // A ninth: refused before anything is written.
    std::fs::remove_file(&saved).unwrap();
    args.extend(["--crl", crl.as_str()]);
    let o = snp_virtee(&args);
    assert_one_line(&o, 125, &["9 CRLs", "limit of 8"]);
    assert!(!saved.exists(), "an unreadable bundle was written");
}

#[test]
fn collateral_that_does_not_parse_fails_its_check_not_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let quote = vector("tdx/dcap-qvl-uptodate/quote.bin");
    let bad = dir.path().join("collateral.json");
    std::fs::write(&bad, "{\"tcb_info\": 1").unwrap();
    let o = run(
        &[
            "verify",
            "--quote",
            &quote,
            "--collateral",
            bad.to_str().unwrap(),
            "--now",
            "1752919234",
            "--json",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(!stderr(&o).contains("CBOR"), "{}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(failed_names(&v, "evidence"), ["dcap.collateral"], "{v}");
    let text = v["evidence"].to_string();
    assert!(text.contains("the collateral does not parse"), "{text}");
}

#[test]
fn insecure_evidence_is_never_called_genuine() {
    let dir = tempfile::tempdir().unwrap();
    let evidence = serde_json::json!({
        "attester": keep_verifier::insecure::ATTESTER,
        "warning": keep_verifier::insecure::WARNING,
        "report_data": "11".repeat(48),
        "measurement": "22".repeat(48),
    });
    let bundle = keep_verifier::bundle::Bundle {
        version: 1,
        tee: "insecure".into(),
        evidence: evidence.to_string().into_bytes(),
        certs: vec![],
        crls: vec![],
        collateral: None,
    };
    let b = dir.path().join("insecure.cbor");
    std::fs::write(&b, bundle.to_cbor().unwrap()).unwrap();
    let b = b.to_str().unwrap();
    let o = run(&["verify", b], None);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("REFUSED: INSECURE evidence"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("genuine"), "{}", stdout(&o));

    let policy = dir.path().join("dev.toml");
    std::fs::write(&policy, "allow_insecure = true\n").unwrap();
    let (private, public) = keep_verifier::attestation_result::generate_key().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, private).unwrap();
    let ear = dir.path().join("ear.jwt");
    let o = run(
        &[
            "verify",
            b,
            "--policy",
            policy.to_str().unwrap(),
            "--ear",
            ear.to_str().unwrap(),
            "--ear-key",
            key.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("ACCEPTED: INSECURE evidence"), "{out}");
    assert!(!out.contains("genuine"), "{out}");
    // Nor does the signed result say genuine hardware.
    let token = std::fs::read_to_string(&ear).unwrap();
    let result =
        keep_verifier::attestation_result::verify_jwt(token.trim(), public.as_bytes()).unwrap();
    let a = &result.submods["insecure"];
    assert_eq!(
        a.trust_vector.hardware.get(),
        ear::claim::UNRECOGNIZED_HARDWARE
    );
    assert_eq!(a.status, ear::TrustTier::Contraindicated);
}
