//! AMD SEV-SNP: attestation reports (versions 2 to 5) from Milan, Genoa and Turin,
//! signed by a VCEK (chip key, chained ARK -> ASK -> VCEK) or a VLEK (cloud
//! provider key, chained ARK -> ASVK -> VLEK).
//!
//! [`verify`] records these evidence checks, by name, and never stops at the first
//! failure (a check that cannot run because what it needs did not parse is left
//! out; the parse failure is recorded). A check recorded as skipped
//! ([`crate::Skipped`]) does not fail the evidence but says what was not checked. `<key>` is `vcek` or `vlek` and `<inter>`
//! is `ask` or `asvk`, after the key the report names.
//!
//! | check | what |
//! |---|---|
//! | `snp.report.parse` | the report is 1184 bytes |
//! | `snp.report.version` | version 2 to 5 |
//! | `snp.report.signature_algorithm` | 1, ECDSA P-384 with SHA-384 |
//! | `snp.report.reserved` | the reserved bytes of this version, the reserved flag bits and the unused high bytes of `r` and `s` are zero |
//! | `snp.<key>.parse` | the VCEK or VLEK is a certificate (DER or PEM) |
//! | `snp.<key>.public_key` | its key is an uncompressed P-384 point |
//! | `snp.<key>.extensions` | its AMD extensions are well formed |
//! | `snp.chain.parse` | the supplied chain (PEM, or DER certificates back to back) parses (only when supplied) |
//! | `snp.ark.pinned` | the chain ends at a pinned ARK (or one in `extra_amd_arks`), and the supplied chain holds no other root |
//! | `snp.ark.self_signature`, `snp.ark.validity` | the ARK signed itself and is valid at `now` |
//! | `snp.<inter>.signature`, `snp.<inter>.validity` | the ARK signed the ASK / ASVK, valid at `now` |
//! | `snp.<key>.signature`, `snp.<key>.validity` | the ASK / ASVK signed the VCEK / VLEK, valid at `now` |
//! | `snp.crl.parse` | only when CRLs are supplied: each parses |
//! | `snp.crl.applicable` | skipped, *not applicable*, naming each CRL whose issuer is neither the chain's ARK nor its intermediate (e.g. another product line's); such a CRL is ignored |
//! | `snp.crl.signature`, `snp.crl.validity` | only for applicable CRLs: each is signed by its issuer in the chain and current |
//! | `snp.crl.revocation` | no applicable CRL lists the intermediate or the key; skipped, *not checked*, when no CRL was supplied or none applicable verified |
//! | `snp.product` | the report's CPUID, the VCEK's `productName` and the chain's names agree on a supported product |
//! | `snp.report.signing_key` | the report names a key (VCEK or VLEK) and the endorsement is of that kind |
//! | `snp.vcek.hwid` | VCEK only: `hwID` equals `CHIP_ID` (64 bytes, or Turin's first 8) |
//! | `snp.<key>.tcb` | the SPL extensions equal `REPORTED_TCB` decoded for the product |
//! | `snp.report.signature` | the report's ECDSA P-384 signature over bytes `0..0x2A0` verifies with the key |
//!
//! The policy ([`SnpPolicy`]) is then evaluated on the report and recorded as
//! `policy.snp.<rule>`.

mod chain;
pub mod claims;
pub mod policy;
pub mod report;
pub mod tcb;
pub mod vcek;
mod verify;

use thiserror::Error;

pub use claims::SnpClaims;
pub use policy::{MinTcb, Product, SnpPolicy, VmplRule};
pub use report::{Report, SigningKey};
pub use tcb::TcbVersion;
pub use vcek::{VcekExtensions, parse_vcek_extensions};
pub use verify::{SnpEvidence, verify};

/// Why a report or a VCEK was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SnpError {
    /// The report does not have the one size every version has.
    #[error("report is {0} bytes, expected {size}", size = report::REPORT_SIZE)]
    ReportLength(usize),
    /// Bytes or bits the report's version reserves are set.
    #[error("reserved bits are not zero: {0}")]
    ReservedNotZero(String),
    /// The signature's `r` or `s` has bits above the 384 a P-384 value can have.
    #[error("a signature component does not fit in 48 bytes")]
    SignatureComponentTooLarge,
    /// An AMD extension of the VCEK or VLEK is malformed or duplicated.
    #[error("certificate extension {name} is malformed: {reason}")]
    Extension { name: &'static str, reason: String },
    /// A required AMD extension is absent.
    #[error("certificate extension {0} is missing")]
    MissingExtension(&'static str),
    /// The VCEK was issued for another chip.
    #[error("{0}")]
    HwidMismatch(String),
    /// The VCEK was issued for another TCB than the report's `REPORTED_TCB`.
    #[error("TCB extensions differ from REPORTED_TCB: {0}")]
    TcbMismatch(String),
}
