//! # keep-verifier: attestation evidence verification, in the verifier trust domain
//!
//! Pure functions: no network, no file system, no clock. The caller passes the
//! evidence, its endorsements (certificates, CRLs, DCAP collateral), a policy and the
//! time to judge validity at (`now`).
//!
//! **What it trusts:** the vendor roots compiled in ([`roots`], pinned by SHA-256
//! fingerprint), any extra anchor the caller passes explicitly, the policy and `now`.
//! **What it does not trust:** every other byte: reports, quotes, certificates, CRLs
//! and collateral are parsed defensively with bounded sizes and never cause a panic.
//!
//! Every check is recorded by name ([`Checks`]); verification never stops at the first
//! failure, so a caller sees all that is wrong at once.

pub mod attestation_result;
pub mod bundle;
pub mod cache;
pub mod check;
pub mod pki;
pub mod roots;
pub mod time;
mod tlv;

pub use cache::SignatureCache;
pub use check::{Check, Checks, Skipped};
pub use time::UnixTime;
pub mod dcap;
pub mod insecure;
pub mod policy;
pub mod snp;
pub mod verdict;

pub use policy::Policy;
pub use verdict::{Claims, Options, Tee, Verdict, Verification};
