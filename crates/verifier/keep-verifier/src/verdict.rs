//! What one verification concludes: the TEE, the claims read from the evidence, every
//! evidence check and every policy rule, and the verdict that follows from them.

use serde::Serialize;

use crate::cache::SignatureCache;
use crate::check::Checks;
use crate::pki::Cert;

/// The kind of trusted execution environment the evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tee {
    SevSnp,
    Tdx,
    Sgx,
    /// Keep's insecure software attester: no hardware root, refused unless the
    /// policy says `allow_insecure = true`.
    Insecure,
}

impl Tee {
    /// The name used on the command line and in bundles.
    pub fn name(self) -> &'static str {
        match self {
            Tee::SevSnp => "sev-snp",
            Tee::Tdx => "tdx",
            Tee::Sgx => "sgx",
            Tee::Insecure => "insecure",
        }
    }
}

/// Claims read from the evidence (meaningful only as far as the checks passed).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Claims {
    Snp(crate::snp::SnpClaims),
    Tdx(crate::dcap::TdxClaims),
    Sgx(crate::dcap::SgxClaims),
    Insecure(crate::insecure::InsecureClaims),
    /// The evidence could not be parsed far enough to read any claim.
    None,
}

/// The conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Genuine evidence that the policy accepts.
    Accepted,
    /// Genuine evidence that the policy refuses.
    RefusedByPolicy,
    /// The evidence is not genuine (or could not be checked).
    NotGenuine,
}

/// The full record of one verification.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub tee: Tee,
    pub verdict: Verdict,
    pub claims: Claims,
    /// Checks that the evidence is genuine and current.
    pub evidence: Checks,
    /// Rules of the policy.
    pub policy: Checks,
}

impl Verification {
    /// Builds the record and derives the verdict: any failed evidence check makes the
    /// evidence not genuine; otherwise any failed policy rule refuses it. An empty
    /// evidence list is never genuine.
    pub fn new(tee: Tee, claims: Claims, evidence: Checks, policy: Checks) -> Self {
        let verdict = if evidence.is_empty() || !evidence.all_passed() {
            Verdict::NotGenuine
        } else if !policy.all_passed() {
            Verdict::RefusedByPolicy
        } else {
            Verdict::Accepted
        };
        Verification {
            tee,
            verdict,
            claims,
            evidence,
            policy,
        }
    }

    /// True when the evidence is genuine (whatever the policy says).
    pub fn genuine(&self) -> bool {
        self.verdict != Verdict::NotGenuine
    }
}

/// Settings that are not policy: caching and explicitly added trust anchors.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options<'a> {
    /// Reuse signature results across verifications.
    pub cache: Option<&'a SignatureCache>,
    /// Extra AMD roots (ARKs) trusted besides the pinned ones. Never implicit.
    pub extra_amd_arks: &'a [Cert],
    /// Extra Intel roots trusted besides the pinned SGX Root CA. Never implicit.
    pub extra_intel_roots: &'a [Cert],
}
