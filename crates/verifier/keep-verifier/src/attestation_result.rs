//! Attestation results as EAR (IETF RATS "EAT Attestation Results", with AR4SI trust
//! vectors), signed as a JWT by the verifier's key, so that relying parties built for
//! Veraison or Trustee can consume what this verifier concludes.
//!
//! Mapping from a [`Verification`]:
//! - evidence not genuine: `instance-identity` = 99 (cryptographic validation failed)
//!   and `hardware` = 96 (contraindicated);
//! - genuine: `hardware` = 2 (genuine) and `runtime-opaque` = 2 (encrypted memory);
//!   a failed TCB-status rule lowers `hardware` to 32 (known vulnerabilities);
//! - evidence of the insecure software attester, even when the policy allows it:
//!   `hardware` = 97 (unrecognized) and `runtime-opaque` = 96 (visible memory), so
//!   the status is never better than contraindicated;
//! - policy rules on measurements and signers set `executables` (2 approved, 33
//!   unrecognized); rules on debug, VMPL, migration, SMT and attributes set
//!   `configuration` (2 approved, 96 unsupportable); the report_data rule sets
//!   `instance-identity` (2 trustworthy, 96 untrustworthy).
//!
//! The appraisal's status is the worst tier in its trust vector. The claims read from
//! the evidence travel as `ear.veraison.annotated-evidence`-style attester claims, and
//! every failed check by name as the verifier claim `keep.failed`, every skipped one
//! (e.g. `snp.crl.revocation` without a CRL) as `keep.skipped`.

use std::collections::BTreeMap;

use ear::{Algorithm, Appraisal, Ear, RawValue, VerifierID};
use thiserror::Error;

use crate::UnixTime;
use crate::verdict::{Tee, Verdict, Verification};

/// Failure to build, sign or check an EAR.
#[derive(Debug, Error)]
pub enum EarError {
    #[error("the signing key is not a PKCS#8 PEM EC P-256 or P-384 private key: {0}")]
    Key(String),
    #[error("signing the EAR: {0}")]
    Sign(String),
    #[error("the EAR does not verify: {0}")]
    Verify(String),
}

/// What identifies this verifier in the `ear.verifier-id` claim.
pub fn verifier_id() -> VerifierID {
    VerifierID {
        build: format!("keep-verifier {}", env!("CARGO_PKG_VERSION")),
        developer: "https://example.invalid/keep".to_owned(),
    }
}

fn policy_area(rule: &str) -> Area {
    const EXEC: [&str; 14] = [
        "guest_svn",
        "mrowner",
        "measurement",
        "host_data",
        "id_key",
        "author_key",
        "mrtd",
        "rtmr",
        "mrconfig",
        "mrenclave",
        "mrsigner",
        "isv",
        "mr_servicetd",
        "family",
    ];
    const CONFIG: [&str; 7] = [
        "debug",
        "migration",
        "smt",
        "socket",
        "vmpl",
        "attributes",
        "sept",
    ];
    const HW: [&str; 5] = ["tcb", "status", "advisor", "product", "signing_key"];
    if rule.contains("report_data") {
        Area::Identity
    } else if EXEC.iter().any(|k| rule.contains(k)) {
        Area::Executables
    } else if CONFIG.iter().any(|k| rule.contains(k)) {
        Area::Configuration
    } else if HW.iter().any(|k| rule.contains(k)) {
        Area::Hardware
    } else {
        Area::Configuration
    }
}

enum Area {
    Identity,
    Executables,
    Configuration,
    Hardware,
}

/// Builds the EAR for one verification, issued at `now`, echoing `nonce` if given.
pub fn to_ear(v: &Verification, now: UnixTime, nonce: Option<&str>) -> Ear {
    use ear::claim::*;
    let mut appraisal = Appraisal::new();
    let tv = &mut appraisal.trust_vector;
    if v.verdict == Verdict::NotGenuine {
        tv.instance_identity.set(CRYPTO_VALIDATION_FAILED);
        tv.hardware.set(CONTRAINDICATED_HARDWARE);
    } else {
        if v.tee == Tee::Insecure {
            // The insecure software attester: no hardware, nothing hidden from the host.
            tv.hardware.set(UNRECOGNIZED_HARDWARE);
            tv.runtime_opaque.set(VISIBLE_MEMORY_RUNTIME);
        } else {
            tv.hardware.set(GENUINE_HARDWARE);
            tv.runtime_opaque.set(ENCRYPTED_MEMORY_RUNTIME);
        }
        let (mut exec, mut config, mut identity, mut hw_ok) = (None, None, None, true);
        for rule in v.policy.iter() {
            match policy_area(&rule.name) {
                Area::Executables => exec = Some(exec.unwrap_or(true) && rule.passed),
                Area::Configuration => config = Some(config.unwrap_or(true) && rule.passed),
                Area::Identity => identity = Some(identity.unwrap_or(true) && rule.passed),
                Area::Hardware => hw_ok &= rule.passed,
            }
        }
        if !hw_ok && v.tee != Tee::Insecure {
            tv.hardware.set(UNSAFE_HARDWARE);
        }
        if let Some(ok) = exec {
            tv.executables.set(if ok {
                APPROVED_RUNTIME
            } else {
                UNRECOGNIZED_RUNTIME
            });
        }
        if let Some(ok) = config {
            tv.configuration.set(if ok {
                APPROVED_CONFIG
            } else {
                UNSUPPORTABLE_CONFIG
            });
        }
        if let Some(ok) = identity {
            tv.instance_identity.set(if ok {
                TRUSTWORTHY_INSTANCE
            } else {
                UNTRUSTWORTHY_INSTANCE
            });
        }
    }
    appraisal.update_status_from_trust_vector();
    appraisal.policy_ids = vec!["keep-policy".to_owned()];
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&v.claims) {
        appraisal.attester_claims = map.into_iter().map(|(k, val)| (k, to_raw(val))).collect();
    }
    let failed: Vec<RawValue> = v
        .evidence
        .failures()
        .chain(v.policy.failures())
        .map(|c| RawValue::String(c.name.clone()))
        .collect();
    appraisal.verifier_claims.insert(
        "keep.verdict".to_owned(),
        RawValue::String(verdict_name(v.verdict).into()),
    );
    if !failed.is_empty() {
        appraisal
            .verifier_claims
            .insert("keep.failed".to_owned(), RawValue::Array(failed));
    }
    let skipped: Vec<RawValue> = v
        .evidence
        .iter()
        .chain(v.policy.iter())
        .filter(|c| c.skipped.is_some())
        .map(|c| RawValue::String(c.name.clone()))
        .collect();
    if !skipped.is_empty() {
        appraisal
            .verifier_claims
            .insert("keep.skipped".to_owned(), RawValue::Array(skipped));
    }

    // Built field by field: `Ear::new` would read the clock, and `now` is an input.
    let mut ear = Ear {
        profile: ear::EAR_PROFILE.to_owned(),
        iat: now.0,
        exp: None,
        vid: verifier_id(),
        submods: BTreeMap::new(),
        nonce: nonce.and_then(|n| ear::Nonce::try_from(n).ok()),
        status: None,
        raw_evidence: None,
        topology: None,
        extensions: ear::Extensions::new(),
    };
    ear.submods = BTreeMap::from([(v.tee.name().to_owned(), appraisal)]);
    ear.update_status_from_trust_vector();
    ear
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Accepted => "accepted",
        Verdict::RefusedByPolicy => "refused-by-policy",
        Verdict::NotGenuine => "not-genuine",
    }
}

fn to_raw(v: serde_json::Value) -> RawValue {
    match v {
        serde_json::Value::Null => RawValue::Null,
        serde_json::Value::Bool(b) => RawValue::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => RawValue::Integer(i),
            None => RawValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => RawValue::String(s),
        serde_json::Value::Array(a) => RawValue::Array(a.into_iter().map(to_raw).collect()),
        serde_json::Value::Object(m) => RawValue::Map(
            m.into_iter()
                .map(|(k, v)| (RawValue::String(k), to_raw(v)))
                .collect(),
        ),
    }
}

/// Signs the EAR as a JWT with a PKCS#8 PEM EC key (ES256 for P-256, ES384 for P-384).
pub fn sign_jwt(ear: &Ear, key_pem: &[u8]) -> Result<String, EarError> {
    let alg = ec_algorithm(key_pem)?;
    ear.sign_jwt_pem(alg, key_pem)
        .map_err(|e| EarError::Sign(e.to_string()))
}

/// Checks an EAR JWT with the verifier's public key (PEM SubjectPublicKeyInfo) and
/// returns it. For relying parties and tests.
pub fn verify_jwt(token: &str, public_key_pem: &[u8]) -> Result<Ear, EarError> {
    let key = jsonwebtoken::DecodingKey::from_ec_pem(public_key_pem)
        .map_err(|e| EarError::Key(e.to_string()))?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| EarError::Verify(e.to_string()))?;
    if !matches!(
        header.alg,
        jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::ES384
    ) {
        return Err(EarError::Verify(format!(
            "algorithm {:?} is not accepted",
            header.alg
        )));
    }
    Ear::from_jwt(token, header.alg, &key).map_err(|e| EarError::Verify(e.to_string()))
}

fn ec_algorithm(key_pem: &[u8]) -> Result<Algorithm, EarError> {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    };
    let der = crate::pki::pem_blocks(key_pem, "PRIVATE KEY")
        .map_err(|e| EarError::Key(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| EarError::Key("no PRIVATE KEY block".into()))?;
    if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).is_ok() {
        Ok(Algorithm::ES256)
    } else if EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &der).is_ok() {
        Ok(Algorithm::ES384)
    } else {
        Err(EarError::Key("not an EC P-256 or P-384 key".into()))
    }
}

/// A fresh P-256 signing key as PKCS#8 PEM, and its public key as SPKI PEM.
pub fn generate_key() -> Result<(String, String), EarError> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|e| EarError::Key(e.to_string()))?;
    let pkcs8 = pair
        .to_pkcs8v1()
        .map_err(|e| EarError::Key(e.to_string()))?;
    let spki = pair
        .public_key()
        .as_der()
        .map_err(|e| EarError::Key(e.to_string()))?;
    Ok((
        pem("PRIVATE KEY", pkcs8.as_ref()),
        pem("PUBLIC KEY", spki.as_ref()),
    ))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Checks;
    use crate::verdict::{Claims, Tee};

    fn verification(evidence_ok: bool, rules: &[(&str, bool)]) -> Verification {
        let mut ev = Checks::new();
        ev.expect("snp.report.signature", evidence_ok, || "bad".into());
        let mut p = Checks::new();
        for (name, ok) in rules {
            p.expect(*name, *ok, || "no".into());
        }
        Verification::new(Tee::SevSnp, Claims::None, ev, p)
    }

    #[test]
    fn trust_vector_follows_the_verdict() {
        use ear::claim::*;
        let ok = to_ear(
            &verification(
                true,
                &[("policy.snp.measurement", true), ("policy.snp.debug", true)],
            ),
            UnixTime(10),
            None,
        );
        let tv = &ok.submods["sev-snp"].trust_vector;
        assert_eq!(tv.hardware.get(), GENUINE_HARDWARE);
        assert_eq!(tv.executables.get(), APPROVED_RUNTIME);
        assert_eq!(tv.configuration.get(), APPROVED_CONFIG);
        assert_eq!(ok.iat, 10);
        assert_eq!(ok.submods["sev-snp"].status, ear::TrustTier::Affirming);

        let refused = to_ear(
            &verification(true, &[("policy.snp.debug", false)]),
            UnixTime(10),
            None,
        );
        assert_eq!(
            refused.submods["sev-snp"].trust_vector.configuration.get(),
            UNSUPPORTABLE_CONFIG
        );
        assert_eq!(
            refused.submods["sev-snp"].status,
            ear::TrustTier::Contraindicated
        );

        let stale = to_ear(
            &verification(true, &[("policy.tdx.tcb_status", false)]),
            UnixTime(10),
            None,
        );
        assert_eq!(
            stale.submods["sev-snp"].trust_vector.hardware.get(),
            UNSAFE_HARDWARE
        );
        assert_eq!(stale.submods["sev-snp"].status, ear::TrustTier::Warning);

        let fake = to_ear(&verification(false, &[]), UnixTime(10), None);
        assert_eq!(
            fake.submods["sev-snp"].trust_vector.instance_identity.get(),
            CRYPTO_VALIDATION_FAILED
        );
        assert_eq!(
            fake.submods["sev-snp"].status,
            ear::TrustTier::Contraindicated
        );
        assert_eq!(
            fake.submods["sev-snp"].verifier_claims["keep.failed"],
            RawValue::Array(vec![RawValue::String("snp.report.signature".into())])
        );
    }

    #[test]
    fn insecure_evidence_is_never_genuine_hardware_even_when_allowed() {
        use ear::claim::*;
        let evidence = serde_json::json!({
            "attester": crate::insecure::ATTESTER, "warning": crate::insecure::WARNING,
            "report_data": hex::encode([1u8; 48]), "measurement": hex::encode([7u8; 48]),
        })
        .to_string();
        let policy = crate::Policy {
            allow_insecure: true,
            ..Default::default()
        };
        let v = crate::insecure::verify(evidence.as_bytes(), &policy);
        assert_eq!(v.verdict, Verdict::Accepted);
        let ear = to_ear(&v, UnixTime(10), None);
        let a = &ear.submods["insecure"];
        assert_eq!(a.trust_vector.hardware.get(), UNRECOGNIZED_HARDWARE);
        assert_eq!(a.trust_vector.runtime_opaque.get(), VISIBLE_MEMORY_RUNTIME);
        assert_eq!(a.status, ear::TrustTier::Contraindicated);
    }

    #[test]
    fn signed_ear_verifies_with_the_public_key_only() {
        let (private, public) = generate_key().unwrap();
        let ear = to_ear(
            &verification(true, &[]),
            UnixTime(1_700_000_000),
            Some("bm9uY2Vub25jZW5vbmNl"),
        );
        let token = sign_jwt(&ear, private.as_bytes()).unwrap();
        let back = verify_jwt(&token, public.as_bytes()).unwrap();
        assert_eq!(back.iat, 1_700_000_000);
        assert_eq!(
            back.submods["sev-snp"].trust_vector.hardware.get(),
            ear::claim::GENUINE_HARDWARE
        );

        let (_, other_public) = generate_key().unwrap();
        assert!(verify_jwt(&token, other_public.as_bytes()).is_err());
        let mut forged = token.clone();
        forged.replace_range(forged.len() - 5.., "AAAAA");
        assert!(verify_jwt(&forged, public.as_bytes()).is_err());
        assert!(sign_jwt(&ear, b"not a key").is_err());
    }
}
