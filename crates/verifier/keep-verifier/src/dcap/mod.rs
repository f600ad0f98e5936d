//! Intel DCAP: TDX quotes (v4, v5) and SGX quotes (v3), verified with the
//! collateral Intel's PCS publishes (the PCCS `QuoteCollateralV3` layout).
//!
//! The chain of trust: the pinned Intel SGX Root CA signs the PCK CA, which signs
//! the platform's PCK certificate (carried in the quote); the PCK signs the quoting
//! enclave's report, whose REPORTDATA binds the attestation key; the attestation
//! key signs the quote. The root also signs (through the TCB Signing certificate)
//! the TCB info and QE identity that say how current the platform, the TDX module
//! and the quoting enclave are. [`verify`] checks every link by name and combines
//! the TCB statuses the way Intel's QVL does ([`status`], [`tcb_level`]).
//!
//! Modules, one job each: [`quote`] and [`report`] parse the binary quote, [`pck`]
//! the PCK certificate's SGX extension, [`collateral`], [`tcb_info`] and
//! [`qe_identity`] the collateral; `chain` and `endorsement` judge certificate
//! chains, CRLs and signed documents; [`tcb_level`] selects levels and combines
//! statuses; `appraise` and `verify` run the checks; [`claims`] and [`policy`] are
//! what the caller sees and decides with.

mod appraise;
mod chain;
pub mod claims;
pub mod collateral;
mod endorsement;
pub mod error;
pub mod pck;
pub mod policy;
pub mod qe_identity;
pub mod quote;
mod reader;
pub mod report;
pub mod status;
pub mod tcb_info;
pub mod tcb_level;
mod verify;

pub use claims::{PlatformClaims, SgxClaims, TdAttributes, TdxClaims};
pub use collateral::Collateral;
pub use error::DcapError;
pub use pck::{PckExtensions, parse_pck_extensions};
pub use policy::{SgxPolicy, TdxPolicy};
pub use qe_identity::QeIdentity;
pub use quote::Quote;
pub use status::TcbStatus;
pub use tcb_info::TcbInfo;
pub use verify::{quote_tee, verify, verify_json};
