//! The policy file: one TOML document with a section per TEE that holds the reference
//! values and what TCB is accepted. The default is strict: no debug, UpToDate only,
//! VMPL 0, and no reference values (so any measurement is accepted until the tenant
//! pins one). Unknown fields are errors with line and column.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The whole policy.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Rules for AMD SEV-SNP reports.
    pub snp: crate::snp::SnpPolicy,
    /// Rules for Intel TDX quotes.
    pub tdx: crate::dcap::TdxPolicy,
    /// Rules for Intel SGX quotes.
    pub sgx: crate::dcap::SgxPolicy,
    /// Accept evidence from Keep's insecure software attester (no hardware root of
    /// trust: for development only). Off by default.
    pub allow_insecure: bool,
    /// Rules for the insecure software attester's evidence.
    pub insecure: crate::insecure::InsecurePolicy,
}

/// The largest policy file accepted.
pub const MAX_POLICY: usize = 1024 * 1024;

/// A policy that could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policy is {0} bytes, over the 1 MiB limit")]
    TooLarge(usize),
    #[error("{line}:{column}: {message}")]
    Invalid {
        line: usize,
        column: usize,
        message: String,
    },
}

impl Policy {
    /// Parses a policy; positions in errors are 1-based.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY {
            return Err(PolicyError::TooLarge(text.len()));
        }
        toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            PolicyError::Invalid {
                line,
                column,
                message: e.message().to_owned(),
            }
        })
    }

    /// Requires this exact report_data in every TEE's evidence (e.g. a fresh nonce).
    pub fn require_report_data(&mut self, data: &[u8]) {
        self.snp.report_data = Some(HexBytes(data.to_vec()));
        self.tdx.report_data = Some(HexBytes(data.to_vec()));
        self.sgx.report_data = Some(HexBytes(data.to_vec()));
        self.insecure.report_data = Some(HexBytes(data.to_vec()));
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Bytes written as a hex string in the policy (`"0a1b..."`, case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HexBytes(pub Vec<u8>);

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.trim())
            .map(HexBytes)
            .map_err(|e| serde::de::Error::custom(format!("not hex: {e}")))
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

/// `report_data` in evidence is a fixed 64-byte field; a shorter expected value must
/// match its prefix and the rest must be zero.
pub fn report_data_matches(expected: &[u8], actual: &[u8]) -> bool {
    expected.len() <= actual.len()
        && actual[..expected.len()] == *expected
        && actual[expected.len()..].iter().all(|&b| b == 0)
}
