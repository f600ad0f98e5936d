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

/// Certificates already parsed during one verification: the collateral repeats
/// some (the PCK CA in the quote and in the PCK CRL's issuer chain, the TCB Signing
/// certificate in both signed documents' chains), and a certificate byte-identical
/// to one seen before is taken from here instead of being parsed again.
#[derive(Default)]
pub(crate) struct SeenCerts(std::cell::RefCell<Vec<Cert>>);

impl SeenCerts {
    fn find(&self, der: &[u8]) -> Option<Cert> {
        self.0.borrow().iter().find(|c| c.der() == der).cloned()
    }

    fn remember(&self, cert: &Cert) {
        let mut seen = self.0.borrow_mut();
        if seen.len() < 2 * MAX_CHAIN {
            seen.push(cert.clone());
        }
    }
}

/// Parses a PEM chain (leaf first), through the cache when there is one.
pub(crate) fn parse_pem_chain(
    pem: &[u8],
    roots: &[Cert],
    seen: &SeenCerts,
    cache: Option<&SignatureCache>,
) -> Result<Vec<Cert>, DcapError> {
    let chain = crate::cache::parse_with(cache, "dcap.pem_chain", pem, |pem| {
        parse_pem_chain_uncached(pem, roots, seen)
    })?;
    Ok(chain.as_ref().clone())
}

/// Parses a PEM chain (leaf first). A certificate byte-identical to a trusted root
/// (or to one in `seen`) is taken from there instead of being parsed again.
fn parse_pem_chain_uncached(
    pem: &[u8],
    roots: &[Cert],
    seen: &SeenCerts,
) -> Result<Vec<Cert>, DcapError> {
    let blocks = pem_blocks(pem, "CERTIFICATE")?;
    if blocks.is_empty() {
        return Err(PkiError::EmptyPem.into());
    }
    if blocks.len() > MAX_CHAIN {
        return Err(PkiError::ChainTooLong.into());
    }
    blocks
        .iter()
        .map(|der| {
            if let Some(root) = roots.iter().find(|r| r.der() == der.as_slice()) {
                return Ok(root.clone());
            }
            if let Some(cert) = seen.find(der) {
                return Ok(cert);
            }
            let cert = Cert::from_der(der).map_err(DcapError::from)?;
            seen.remember(&cert);
            Ok(cert)
        })
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
