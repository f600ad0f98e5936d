//! The **insecure** software attester's evidence (process and KVM backends).
//!
//! There is no hardware root of trust behind this evidence: the exec writes it
//! itself. It only *binds* a report_data value (SHA-384 of the tenant's nonce, the
//! Keep's public key and the runtime measurement) to a claimed measurement, so the
//! rest of the attested flow (nonce, key binding, sealing) can be exercised without a
//! TEE. It proves nothing: anyone can produce it. Every policy refuses it unless the
//! policy says `allow_insecure = true` (rule `insecure.allowed`).
//!
//! Format (JSON, at most [`MAX_EVIDENCE`] bytes, unknown fields refused):
//! ```text
//! {"attester":"keep-insecure-software","warning":"...","report_data":"<hex 48>","measurement":"<hex 48>"}
//! ```

use serde::{Deserialize, Serialize};

use crate::check::Checks;
use crate::policy::{HexBytes, report_data_matches};
use crate::verdict::{Claims, Tee, Verification};

/// The `attester` value of insecure evidence.
pub const ATTESTER: &str = "keep-insecure-software";
/// The largest insecure evidence accepted.
pub const MAX_EVIDENCE: usize = 4096;

/// Rules for insecure evidence (besides the top-level `allow_insecure`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsecurePolicy {
    /// The runtime measurement required, if pinned: the exec's SHA-384 (process
    /// backend) or the KVM launch digest (`keep measure`), both host-reported.
    pub measurement: Option<HexBytes>,
    /// The exact report_data required (the caller sets it from its nonce).
    pub report_data: Option<HexBytes>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Evidence {
    attester: String,
    #[allow(dead_code)]
    warning: String,
    report_data: HexBytes,
    measurement: HexBytes,
}

/// What insecure evidence claims (nothing of it is proven).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InsecureClaims {
    /// Always "insecure: no hardware root of trust".
    pub warning: &'static str,
    pub report_data: HexBytes,
    pub measurement: HexBytes,
}

/// The warning carried by every insecure claim.
pub const WARNING: &str =
    "INSECURE software attester: no hardware root of trust, it proves nothing";

/// Verifies insecure evidence against a policy. The evidence checks only say it is
/// well formed; the policy refuses it unless `allow_insecure` is set.
pub fn verify(evidence: &[u8], policy: &crate::Policy) -> Verification {
    let mut ev = Checks::new();
    let mut rules = Checks::new();
    let parsed = if evidence.len() > MAX_EVIDENCE {
        ev.fail(
            "insecure.parse",
            format!("{} bytes, over {MAX_EVIDENCE}", evidence.len()),
        );
        None
    } else {
        match serde_json::from_slice::<Evidence>(evidence) {
            Ok(e) => {
                ev.pass("insecure.parse");
                Some(e)
            }
            Err(e) => {
                ev.fail("insecure.parse", e.to_string());
                None
            }
        }
    };
    let Some(e) = parsed else {
        return Verification::new(Tee::Insecure, Claims::None, ev, rules);
    };
    ev.expect("insecure.attester", e.attester == ATTESTER, || {
        format!("attester is {:?}, expected {ATTESTER:?}", e.attester)
    });
    ev.expect(
        "insecure.fields",
        e.report_data.0.len() == 48 && e.measurement.0.len() == 48,
        || "report_data and measurement must be 48 bytes each".into(),
    );
    rules.expect("insecure.allowed", policy.allow_insecure, || {
        "the evidence comes from the insecure software attester (no hardware root of trust) \
         and the policy does not say allow_insecure = true"
            .into()
    });
    if let Some(m) = &policy.insecure.measurement {
        rules.expect("insecure.measurement", m.0 == e.measurement.0, || {
            format!(
                "measurement {} is not the pinned {}",
                hex::encode(&e.measurement.0),
                hex::encode(&m.0)
            )
        });
    }
    if let Some(rd) = &policy.insecure.report_data {
        rules.expect(
            "insecure.report_data",
            report_data_matches(&rd.0, &e.report_data.0),
            || "report_data does not bind the expected nonce, key and measurement".into(),
        );
    }
    let claims = Claims::Insecure(InsecureClaims {
        warning: WARNING,
        report_data: e.report_data,
        measurement: e.measurement,
    });
    Verification::new(Tee::Insecure, claims, ev, rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;

    fn evidence(rd: &[u8]) -> Vec<u8> {
        serde_json::json!({
            "attester": ATTESTER, "warning": WARNING,
            "report_data": hex::encode(rd), "measurement": hex::encode([7u8; 48]),
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn refused_by_default_policy() {
        let v = verify(&evidence(&[1; 48]), &crate::Policy::default());
        assert_eq!(v.verdict, Verdict::RefusedByPolicy);
        assert!(v.policy.failed("insecure.allowed"));
    }

    #[test]
    fn allowed_only_when_policy_says_so_and_report_data_binds() {
        let mut p = crate::Policy {
            allow_insecure: true,
            ..Default::default()
        };
        p.require_report_data(&[1; 48]);
        assert_eq!(verify(&evidence(&[1; 48]), &p).verdict, Verdict::Accepted);
        let v = verify(&evidence(&[2; 48]), &p);
        assert!(v.policy.failed("insecure.report_data"));
    }

    #[test]
    fn garbage_is_not_genuine() {
        for bad in [&b""[..], b"{", b"{\"attester\":1}", &[0xff; 5000]] {
            assert_eq!(
                verify(bad, &crate::Policy::default()).verdict,
                Verdict::NotGenuine
            );
        }
    }
}
