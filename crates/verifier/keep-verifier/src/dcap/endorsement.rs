//! Judging the collateral itself: the two CRLs and the two signed JSON documents
//! (TCB info, QE identity), each with its issuer chain. Every step is recorded as a
//! named check; a step that cannot run because an earlier parse failed is skipped.

use super::chain::{
    SeenCerts, check_chain_valid_at, check_none_revoked, crl_signed_by_root, parse_pem_chain,
    verify_to_root,
};
use super::collateral::decode_signature;
use super::error::DcapError;
use std::sync::Arc;

use crate::cache::{SignatureCache, parse_with};
use crate::check::Checks;
use crate::pki::{Cert, Crl, SigAlg, verify_signature};
use crate::time::UnixTime;

/// Common inputs of the collateral checks.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The trusted Intel roots.
    pub roots: &'a [Cert],
    /// The time to judge validity at.
    pub now: UnixTime,
    /// Signature cache.
    pub cache: Option<&'a SignatureCache>,
    /// Certificates parsed so far in this verification.
    pub seen: &'a SeenCerts,
}

/// The subject CN of Intel's TCB info / enclave identity signer.
pub(crate) const TCB_SIGNING_CN: &str = "Intel SGX TCB Signing";

/// Parses and judges the root CA CRL: `dcap.root_crl.signature` (parse and
/// signature by a trusted root) and `dcap.root_crl.validity`.
pub(crate) fn check_root_crl(ev: &mut Checks, text: &str, ctx: Ctx<'_>) -> Option<Arc<Crl>> {
    let crl = match parse_with(ctx.cache, "crl", text.as_bytes(), Crl::from_any) {
        Ok(c) => c,
        Err(e) => {
            ev.fail("dcap.root_crl.signature", format!("root CA CRL: {e}"));
            return None;
        }
    };
    ev.result(
        "dcap.root_crl.signature",
        crl_signed_by_root(&crl, ctx.roots, ctx.cache).map(|_| ()),
    );
    ev.result("dcap.root_crl.validity", crl.check_valid_at(ctx.now));
    Some(crl)
}

/// Parses and judges the PCK CRL against the PCK CA: `dcap.pck_crl.issuer_chain`
/// (the collateral's issuer chain, when not empty, leads to a trusted root, is
/// valid at `now` and names the same CA as the quote), `dcap.pck_crl.signature`
/// and `dcap.pck_crl.validity`. `quote_ca` is the PCK CA from the quote's chain.
pub(crate) fn check_pck_crl(
    ev: &mut Checks,
    text: &str,
    issuer_chain: &str,
    quote_ca: Option<&Cert>,
    ctx: Ctx<'_>,
) -> Option<Arc<Crl>> {
    let mut chain_ca = None;
    if !issuer_chain.trim().is_empty() {
        let r = parse_pem_chain(issuer_chain.as_bytes(), ctx.roots, ctx.seen, ctx.cache)
            .map_err(|e| e.to_string())
            .and_then(|chain| {
                let full =
                    verify_to_root(&chain, 2, ctx.roots, ctx.cache).map_err(|e| e.to_string())?;
                check_chain_valid_at(full.iter().copied(), ctx.now)?;
                let ca = full.first().copied().cloned().ok_or("empty chain")?;
                match quote_ca {
                    Some(q) if q.der() != ca.der() => Err(format!(
                        "issuer chain names {:?}, the quote's PCK chain {:?}",
                        ca.subject_name(),
                        q.subject_name()
                    )),
                    _ => Ok(ca),
                }
            });
        match r {
            Ok(ca) => {
                ev.pass("dcap.pck_crl.issuer_chain");
                chain_ca = Some(ca);
            }
            Err(e) => ev.fail("dcap.pck_crl.issuer_chain", e),
        }
    } else {
        // Empty: the quote's own PCK CA, verified as part of `dcap.pck.chain`.
        ev.expect("dcap.pck_crl.issuer_chain", quote_ca.is_some(), || {
            "empty, and the quote carries no PCK CA".into()
        });
    }
    let crl = match parse_with(ctx.cache, "crl", text.as_bytes(), Crl::from_any) {
        Ok(c) => c,
        Err(e) => {
            ev.fail("dcap.pck_crl.signature", format!("PCK CRL: {e}"));
            return None;
        }
    };
    match quote_ca.or(chain_ca.as_ref()) {
        Some(ca) => {
            ev.result(
                "dcap.pck_crl.signature",
                crl.verify_issued_by(ca, ctx.cache),
            );
        }
        None => ev.fail(
            "dcap.pck_crl.signature",
            "no PCK CA to check the CRL against",
        ),
    }
    ev.result("dcap.pck_crl.validity", crl.check_valid_at(ctx.now));
    Some(crl)
}

/// A signed JSON document of the collateral and how to read it.
pub(crate) struct SignedDoc<'a> {
    /// Check name prefix: `dcap.tcb_info` or `dcap.qe_identity`.
    pub prefix: &'static str,
    /// PEM issuer chain (signer, root).
    pub chain_pem: &'a str,
    /// The JSON text as signed.
    pub json: &'a str,
    /// Hex `r || s`.
    pub signature: &'a str,
}

/// Judges a signed document: `<prefix>.chain` (signer -> trusted root, signer CN,
/// every certificate valid at `now`), `<prefix>.revocation` (the root CRL lists no
/// certificate of the chain), `<prefix>.signature` (over the exact JSON bytes),
/// `<prefix>.parse` and `<prefix>.validity` (`issueDate <= now <= nextUpdate`).
pub(crate) fn check_signed_doc<T: Send + Sync + 'static>(
    ev: &mut Checks,
    doc: &SignedDoc<'_>,
    root_crl: Option<&Crl>,
    ctx: Ctx<'_>,
    parse: fn(&[u8]) -> Result<T, DcapError>,
    window: fn(&T) -> (UnixTime, UnixTime),
) -> Option<Arc<T>> {
    let name = |s: &str| format!("{}.{s}", doc.prefix);
    let signer = match parse_pem_chain(doc.chain_pem.as_bytes(), ctx.roots, ctx.seen, ctx.cache) {
        Err(e) => {
            ev.fail(name("chain"), e.to_string());
            None
        }
        Ok(chain) => {
            let verdict = verify_to_root(&chain, 2, ctx.roots, ctx.cache)
                .map_err(|e| e.to_string())
                .and_then(|full| {
                    let cn = full.first().map(|c| c.subject_name()).unwrap_or_default();
                    if cn != TCB_SIGNING_CN {
                        return Err(format!("signer is {cn:?}, not {TCB_SIGNING_CN:?}"));
                    }
                    check_chain_valid_at(full.iter().copied(), ctx.now)
                });
            ev.result(name("chain"), verdict);
            let not_root: Vec<&Cert> = chain
                .iter()
                .filter(|c| !ctx.roots.iter().any(|r| r.der() == c.der()))
                .collect();
            match root_crl {
                Some(crl) => {
                    ev.result(name("revocation"), check_none_revoked(crl, &not_root));
                }
                None => ev.fail(name("revocation"), "no usable root CA CRL"),
            }
            chain.into_iter().next()
        }
    };
    match (signer, decode_signature(doc.signature, "signature")) {
        (_, Err(e)) => ev.fail(name("signature"), e.to_string()),
        (None, Ok(_)) => ev.fail(name("signature"), "no signer certificate"),
        (Some(cert), Ok(sig)) => ev.expect(
            name("signature"),
            verify_signature(
                SigAlg::EcdsaP256Sha256Fixed,
                cert.public_key(),
                doc.json.as_bytes(),
                &sig,
                ctx.cache,
            ),
            || format!("signature by {:?} does not verify", cert.subject_name()),
        ),
    }
    let parsed = match parse_with(ctx.cache, doc.prefix, doc.json.as_bytes(), parse) {
        Ok(t) => {
            ev.pass(name("parse"));
            t
        }
        Err(e) => {
            ev.fail(name("parse"), e.to_string());
            return None;
        }
    };
    let (issued, next) = window(&parsed);
    ev.expect(
        name("validity"),
        issued <= ctx.now && ctx.now <= next,
        || {
            if ctx.now < issued {
                format!("issued at {issued}, after {}", ctx.now)
            } else {
                format!("expired: next update was due at {next}")
            }
        },
    );
    Some(parsed)
}
