//! Why a DCAP quote, a PCK certificate or a piece of collateral was refused.

use thiserror::Error;

use crate::pki::PkiError;

/// A typed reason for refusing DCAP input. Parsers return it; [`super::verify`]
/// records it as the detail of the failed check.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DcapError {
    /// The input is larger than the parser accepts.
    #[error("{what} is {len} bytes, over the {max} byte limit")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A field runs past the end of its container.
    #[error("{what} is truncated: {need} bytes needed at offset {offset}, {have} left")]
    Truncated {
        what: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    },
    /// A quote version this verifier does not handle.
    #[error("unsupported quote version {0} (supported: 3 for SGX, 4 and 5 for TDX)")]
    UnsupportedVersion(u16),
    /// An attestation key type other than ECDSA P-256.
    #[error("unsupported attestation key type {0} (only 2, ECDSA-256 with P-256)")]
    UnsupportedKeyType(u16),
    /// A TEE type that does not fit the quote version or body.
    #[error("quote version {version} with TEE type {tee_type:#x} is not supported")]
    UnsupportedTee { version: u16, tee_type: u32 },
    /// A v5 body type other than SGX enclave report, TD report 1.0 or 1.5.
    #[error("unsupported quote body type {0}")]
    UnsupportedBodyType(u16),
    /// A v5 body whose declared size does not match its type.
    #[error("quote body of type {body_type} declares {size} bytes, expected {expected}")]
    BodySize {
        body_type: u16,
        size: u32,
        expected: usize,
    },
    /// A length field disagrees with the data it describes.
    #[error("{what} declares {declared} bytes but its fields take {used}")]
    LengthMismatch {
        what: &'static str,
        declared: usize,
        used: usize,
    },
    /// Certification data of an unexpected type.
    #[error("certification data type {found}, expected {expected}")]
    CertificationDataType { found: u16, expected: u16 },
    /// A certificate or CRL problem.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The SGX extension of a PCK certificate is missing or malformed.
    #[error("PCK certificate SGX extension: {0}")]
    PckExtension(String),
    /// A JSON document that does not parse.
    #[error("{what} is not valid JSON of the expected shape: {reason}")]
    Json { what: &'static str, reason: String },
    /// A field of a parsed document with an invalid value.
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

impl DcapError {
    /// Shorthand for [`DcapError::Invalid`].
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        DcapError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// Decodes a hex string into exactly `N` bytes.
pub(crate) fn hex_array<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], DcapError> {
    let bytes = hex::decode(s).map_err(|e| DcapError::invalid(what, format!("not hex: {e}")))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| DcapError::invalid(what, format!("{} bytes, expected {N}", bytes.len())))
}
