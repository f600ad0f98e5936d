//! Certificate chains up to the Intel SGX Root CA.
//!
//! A chain that arrives with the evidence (the PCK chain in the quote, the issuer
//! chains in the collateral) is never trusted for its root: its last certificate
//! must be byte-identical to a trusted root (the pinned Intel root, or one the
//! caller passed explicitly), or be signed by one. The depth is fixed by Intel's
//! hierarchy (PCK leaf, PCK CA, root; TCB signer, root), so no certificate in the
//! middle needs to be judged by its CA flags: there is no room for an extra link.

use std::sync::OnceLock;

use super::error::DcapError;
use crate::cache::SignatureCache;
use crate::pki::{Cert, Crl, MAX_CHAIN, PkiError, pem_blocks};
use crate::roots;
use crate::time::UnixTime;

/// The pinned Intel SGX Root CA, parsed once.
fn pinned_root() -> Option<&'static Cert> {
    static ROOT: OnceLock<Option<Cert>> = OnceLock::new();
    ROOT.get_or_init(|| roots::intel_sgx_root().ok()).as_ref()
}

/// The roots a DCAP chain may end in: the pinned Intel SGX Root CA and any extra
/// root the caller passed.
pub(crate) fn trusted_roots(extra: &[Cert]) -> Vec<Cert> {
    let mut out: Vec<Cert> = pinned_root().into_iter().cloned().collect();
    out.extend(extra.iter().cloned());
    out
}

/// Parses a PEM chain (leaf first). A certificate byte-identical to a trusted root
/// is taken from `roots` instead of being parsed again.
pub(crate) fn parse_pem_chain(pem: &[u8], roots: &[Cert]) -> Result<Vec<Cert>, DcapError> {
    let blocks = pem_blocks(pem, "CERTIFICATE")?;
    if blocks.is_empty() {
        return Err(PkiError::EmptyPem.into());
    }
    if blocks.len() > MAX_CHAIN {
        return Err(PkiError::ChainTooLong.into());
    }
    blocks
        .iter()
        .map(
            |der| match roots.iter().find(|r| r.der() == der.as_slice()) {
                Some(root) => Ok(root.clone()),
                None => Cert::from_der(der).map_err(DcapError::from),
            },
        )
        .collect()
}

/// Verifies `chain` (leaf first) to a trusted root; returns the full chain with
/// the trusted root last. `depth` is the required length including the root.
/// Every certificate must be signed by the next; the root itself is trusted.
pub(crate) fn verify_to_root<'a>(
    chain: &'a [Cert],
    depth: usize,
    roots: &'a [Cert],
    cache: Option<&SignatureCache>,
) -> Result<Vec<&'a Cert>, DcapError> {
    let last = chain
        .last()
        .ok_or_else(|| DcapError::invalid("certificate chain", "empty"))?;
    let mut full: Vec<&Cert> = chain.iter().collect();
    if !roots.iter().any(|r| r.der() == last.der()) {
        let issuer = roots
            .iter()
            .find(|r| last.verify_issued_by(r, cache).is_ok())
            .ok_or_else(|| {
                DcapError::invalid(
                    "certificate chain",
                    format!(
                        "{:?} is neither a trusted Intel root nor issued by one",
                        last.subject_name()
                    ),
                )
            })?;
        full.push(issuer);
    }
    if full.len() != depth {
        return Err(DcapError::invalid(
            "certificate chain",
            format!(
                "{} certificates up to the root, expected {depth}",
                full.len()
            ),
        ));
    }
    for pair in full.windows(2) {
        if let [child, parent] = pair {
            child.verify_issued_by(parent, cache)?;
        }
    }
    Ok(full)
}

/// Checks that every certificate of `chain` is valid at `now`; reports all failures.
pub(crate) fn check_chain_valid_at<'a>(
    chain: impl IntoIterator<Item = &'a Cert>,
    now: UnixTime,
) -> Result<(), String> {
    let errors: Vec<String> = chain
        .into_iter()
        .filter_map(|c| c.check_valid_at(now).err())
        .map(|e| e.to_string())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Checks that `crl` lists none of `certs`.
pub(crate) fn check_none_revoked(crl: &Crl, certs: &[&Cert]) -> Result<(), PkiError> {
    certs.iter().try_for_each(|c| crl.check_not_revoked(c))
}

/// Finds the trusted root that signed `crl`.
pub(crate) fn crl_signed_by_root<'r>(
    crl: &Crl,
    roots: &'r [Cert],
    cache: Option<&SignatureCache>,
) -> Result<&'r Cert, PkiError> {
    let mut last_err = PkiError::BadSignature {
        issuer: "no trusted Intel root".into(),
    };
    for root in roots {
        match crl.verify_issued_by(root, cache) {
            Ok(()) => return Ok(root),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}
