//! DCAP collateral in the PCCS `QuoteCollateralV3` JSON layout.
//!
//! ```json
//! { "pck_crl_issuer_chain": "PEM (may be empty)", "root_ca_crl": "hex DER",
//!   "pck_crl": "hex DER", "tcb_info_issuer_chain": "PEM", "tcb_info": "JSON text",
//!   "tcb_info_signature": "hex r||s", "qe_identity_issuer_chain": "PEM",
//!   "qe_identity": "JSON text", "qe_identity_signature": "hex r||s" }
//! ```
//!
//! Parsing only checks the shape and the sizes: every value is still untrusted and
//! judged by [`super::verify`] (signatures over the exact `tcb_info` and
//! `qe_identity` strings, chains, CRLs, dates). Unknown fields are ignored.

use serde::{Deserialize, Serialize};

use super::error::DcapError;

/// The largest collateral document accepted.
pub const MAX_COLLATERAL: usize = 2 * 1024 * 1024;

/// DCAP collateral for one quote. The fields are public so that a caller (or a
/// test) can assemble collateral from separate PCS responses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Collateral {
    /// PEM chain of the PCK CRL's issuer (PCK CA, root). May be empty: the PCK CA is
    /// then taken from the quote's own verified PCK chain.
    #[serde(default)]
    pub pck_crl_issuer_chain: String,
    /// The Intel SGX Root CA's CRL (hex DER, DER in PEM, or PEM).
    pub root_ca_crl: String,
    /// The PCK CA's CRL (hex DER or PEM).
    pub pck_crl: String,
    /// PEM chain of the TCB info signer (TCB Signing, root).
    pub tcb_info_issuer_chain: String,
    /// The TCB info JSON exactly as signed.
    pub tcb_info: String,
    /// ECDSA P-256 signature over `tcb_info`, hex `r || s`.
    pub tcb_info_signature: String,
    /// PEM chain of the QE identity signer (TCB Signing, root).
    pub qe_identity_issuer_chain: String,
    /// The QE identity JSON exactly as signed.
    pub qe_identity: String,
    /// ECDSA P-256 signature over `qe_identity`, hex `r || s`.
    pub qe_identity_signature: String,
}

impl Collateral {
    /// Parses the JSON document.
    pub fn from_json(bytes: &[u8]) -> Result<Collateral, DcapError> {
        if bytes.len() > MAX_COLLATERAL {
            return Err(DcapError::TooLarge {
                what: "collateral",
                len: bytes.len(),
                max: MAX_COLLATERAL,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| DcapError::Json {
            what: "collateral",
            reason: e.to_string(),
        })
    }
}

/// Decodes a hex `r || s` signature of 64 bytes.
pub(crate) fn decode_signature(hex_sig: &str, what: &'static str) -> Result<[u8; 64], DcapError> {
    super::error::hex_array::<64>(hex_sig.trim(), what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_missing_fields_are_typed_errors() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"null",
            b"{\"root_ca_crl\": 5}",
            b"\xff\xfe",
        ] {
            assert!(matches!(
                Collateral::from_json(bad),
                Err(DcapError::Json { .. })
            ));
        }
        assert!(matches!(
            Collateral::from_json(&vec![b' '; MAX_COLLATERAL + 1]),
            Err(DcapError::TooLarge { .. })
        ));
        let c = Collateral::default();
        let json = serde_json::to_vec(&c).unwrap();
        assert_eq!(Collateral::from_json(&json).unwrap(), c);
    }

    #[test]
    fn signatures_must_be_64_hex_bytes() {
        assert!(decode_signature(&"ab".repeat(64), "s").is_ok());
        assert!(decode_signature(&"ab".repeat(63), "s").is_err());
        assert!(decode_signature("zz", "s").is_err());
    }
}
