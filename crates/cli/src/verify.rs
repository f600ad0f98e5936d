//! `keep verify`: the tenant's view of attestation evidence, checked offline by the
//! verifier library against a policy, with every failed check listed by name.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use keep_verifier::bundle::{Bundle, looks_like_bundle, verify_bundle};
use keep_verifier::pki::Cert;
use keep_verifier::{Options, Policy, Tee, UnixTime, Verdict, Verification, attestation_result};
use serde_json::{Value, json};

use crate::cli::VerifyArgs;
use crate::output::{StdoutError, outln};
use crate::usage::usage;

/// Exit status when the evidence is not genuine.
pub const EXIT_NOT_GENUINE: u8 = 10;
/// Exit status when genuine evidence is refused by the policy.
pub const EXIT_REFUSED: u8 = 11;

/// Largest input file read, whatever it is (file, pipe, device); a bundle is
/// bounded by the library too.
const MAX_INPUT: u64 = 8 * 1024 * 1024;

pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let now = match &args.now {
        Some(t) => match UnixTime::parse(t) {
            Ok(t) => t,
            Err(e) => usage!("--now: {e}"),
        },
        None => UnixTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        ),
    };
    let mut policy = match &args.policy {
        Some(p) => {
            let text = String::from_utf8(read(p)?)
                .with_context(|| format!("{}: not UTF-8", p.display()))?;
            Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("{}:{e}", p.display()))?
        }
        None => Policy::default(),
    };
    if let Some(hexdata) = &args.report_data {
        let data = match hex::decode(hexdata.trim()) {
            Ok(d) => d,
            Err(e) => usage!("--report-data: not hex: {e}"),
        };
        if data.len() > 64 {
            usage!(
                "--report-data: {} bytes, but report_data holds at most 64",
                data.len()
            );
        }
        policy.require_report_data(&data);
    }
    let mut anchors = Vec::new();
    for path in &args.trust_anchor {
        anchors.push(
            Cert::from_der_or_pem(&read(path)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        );
    }
    let (amd, intel): (Vec<Cert>, Vec<Cert>) = anchors
        .into_iter()
        .partition(|c| c.subject_name().starts_with("ARK-"));
    let opts = Options {
        cache: None,
        extra_amd_arks: &amd,
        extra_intel_roots: &intel,
    };

    let bundle = evidence_bundle(&args)?;
    if let Some(out) = &args.save_bundle {
        std::fs::write(out, bundle.to_cbor()?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let v = verify_bundle(&bundle, &policy, now, opts)?;

    if let (Some(out), Some(key)) = (&args.ear, &args.ear_key) {
        let ear = attestation_result::to_ear(&v, now, None);
        let token = attestation_result::sign_jwt(&ear, &read(key)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
        std::fs::write(out, token + "\n").with_context(|| format!("writing {}", out.display()))?;
    }

    if args.json {
        let mut out = serde_json::to_value(&v)?;
        if let Value::Object(m) = &mut out {
            m.insert("now".into(), json!(now.to_rfc3339()));
        }
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        print_text(&v, now, args.verbose)?;
    }
    Ok(match v.verdict {
        Verdict::Accepted => ExitCode::SUCCESS,
        Verdict::NotGenuine => ExitCode::from(EXIT_NOT_GENUINE),
        Verdict::RefusedByPolicy => ExitCode::from(EXIT_REFUSED),
    })
}

/// The evidence as one bundle, whether it came as one or as raw files.
fn evidence_bundle(args: &VerifyArgs) -> Result<Bundle> {
    if let Some(path) = &args.bundle {
        let bytes = read(path)?;
        if !looks_like_bundle(&bytes) {
            bail!(
                "{}: not an evidence bundle (for a raw report or quote use --snp-report or --quote)",
                path.display()
            );
        }
        return Bundle::from_cbor(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    if let Some(report) = &args.snp_report {
        let vcek_path = args
            .vcek
            .as_ref()
            .context("--snp-report needs --vcek (or --vlek)")?;
        let mut certs = vec![der_of_cert(vcek_path)?];
        if let Some(chain) = &args.chain {
            let pem = read(chain)?;
            let chain = Cert::chain_from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("{}: {e}", chain.display()))?;
            certs.extend(chain.iter().map(|c| c.der().to_vec()));
        }
        let mut crls = Vec::new();
        for c in &args.crl {
            crls.push(read(c)?);
        }
        // The same limits as a bundle, so that --save-bundle writes one that reads back.
        let bundle = Bundle::snp(read(report)?, certs, crls);
        bundle.check_items()?;
        return Ok(bundle);
    }
    if let Some(quote) = &args.quote {
        let q = read(quote)?;
        // The bundle records the TEE the quote's header names (the verifier checks
        // it again); a quote that does not parse fails `dcap.quote.parse` alone.
        let tee = keep_verifier::dcap::quote_tee(&q);
        let collateral = args.collateral.as_ref().map(|c| read(c)).transpose()?;
        return Ok(Bundle::dcap(tee, q, collateral));
    }
    crate::usage::usage!(
        "no evidence: give a bundle, --snp-report with --vcek, or --quote (see `keep verify --help`)"
    )
}

/// A certificate file as DER (PEM is converted; the first certificate is taken).
fn der_of_cert(path: &Path) -> Result<Vec<u8>> {
    let bytes = read(path)?;
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let cert = Cert::from_der_or_pem(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        return Ok(cert.der().to_vec());
    }
    Ok(bytes)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    crate::input::read_bounded(path, MAX_INPUT)
}

fn print_text(v: &Verification, now: UnixTime, verbose: bool) -> Result<(), StdoutError> {
    // Evidence of the insecure software attester is well formed at best: never genuine.
    let insecure = v.tee == Tee::Insecure;
    let verdict = match v.verdict {
        Verdict::Accepted if insecure => {
            "ACCEPTED: INSECURE evidence (no hardware root of trust, it proves nothing), allowed by the policy"
        }
        Verdict::RefusedByPolicy if insecure => {
            "REFUSED: INSECURE evidence (no hardware root of trust, it proves nothing), refused by the policy"
        }
        Verdict::NotGenuine if insecure => "NOT GENUINE: the insecure evidence is malformed",
        Verdict::Accepted => "ACCEPTED: genuine evidence, policy passed",
        Verdict::RefusedByPolicy => "REFUSED: genuine evidence, refused by the policy",
        Verdict::NotGenuine => "NOT GENUINE: the evidence failed verification",
    };
    outln!("{verdict}")?;
    outln!("  tee: {}   judged at: {}", v.tee.name(), now)?;
    if let Ok(claims) = serde_json::to_value(&v.claims) {
        let mut lines = Vec::new();
        flatten("", &claims, &mut lines);
        let shown: Vec<_> = lines
            .iter()
            .filter(|(k, _)| verbose || is_summary_claim(k))
            .collect();
        if !shown.is_empty() {
            let all = if verbose {
                ""
            } else {
                " (all of them with -v)"
            };
            outln!("claims{all}:")?;
            for (k, val) in shown {
                outln!("  {k}: {val}")?;
            }
        }
    }
    for (title, checks) in [
        ("evidence checks", &v.evidence),
        ("policy rules", &v.policy),
    ] {
        let failed = checks.failures().count();
        let skipped = checks.iter().filter(|c| c.skipped.is_some()).count();
        let passed = checks.len() - failed - skipped;
        let skipped = if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        };
        outln!("{title}: {passed} passed, {failed} failed{skipped}")?;
        // Failures, skipped checks and notes always; plain passes with -v.
        for c in checks.iter() {
            match (c.passed, c.skipped) {
                (false, _) => outln!("  FAIL {}: {}", c.name, c.detail)?,
                (true, Some(why)) => {
                    outln!("  {} {}: {}", why.text().to_uppercase(), c.name, c.detail)?
                }
                (true, None) if !c.detail.is_empty() => outln!("  note {}: {}", c.name, c.detail)?,
                (true, None) if verbose => outln!("  ok   {}", c.name)?,
                (true, None) => {}
            }
        }
    }
    Ok(())
}

/// The claims shown without `-v`: platform, measurements, TCB, status, advisories,
/// report_data and the flags a policy most often turns on.
fn is_summary_claim(key: &str) -> bool {
    const EXACT: [&str; 24] = [
        "product",
        "signing_key",
        "version",
        "quote_version",
        "fmspc",
        "measurement",
        "host_data",
        "vmpl",
        "policy.debug",
        "policy.migrate_ma",
        "mrtd",
        "rtmr0",
        "rtmr1",
        "rtmr2",
        "rtmr3",
        "mrconfigid",
        "mrenclave",
        "mrsigner",
        "isv_prod_id",
        "isv_svn",
        "td_attributes.debug",
        "attributes.debug",
        "report_data",
        "tdx_module_identity",
    ];
    const PREFIX: [&str; 4] = ["reported_tcb.", "tcb_", "advisory_ids", "tee_type"];
    EXACT.contains(&key)
        || PREFIX.iter().any(|p| key.starts_with(p))
        || (key.ends_with("tcb_status") && !key.contains('.'))
}

/// Nested JSON as `a.b.c: value` lines.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, val, out);
            }
        }
        Value::Null => {}
        Value::Array(a) => out.push((
            prefix.to_owned(),
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        )),
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}
