//! Verifying a DCAP quote (TDX v4/v5, SGX v3) with its collateral.
//!
//! Evidence checks, in order (each recorded by name; none stops the others):
//!
//! | check | what |
//! |---|---|
//! | `dcap.quote.parse` | the quote parses (if not, nothing else can be checked); a note gives the count of bytes after the signature data, which are ignored |
//! | `dcap.quote.qe_vendor` | the quoting enclave is Intel's |
//! | `dcap.quote.signature` | the attestation key signed the header and body |
//! | `dcap.pck.chain` | the quote's PEM PCK chain: PCK leaf -> PCK CA -> a trusted Intel root |
//! | `dcap.pck.validity` | every certificate of that chain is valid at `now` |
//! | `dcap.pck.extensions` | the PCK certificate's SGX extension parses |
//! | `dcap.qe_report.signature` | the PCK signed the QE report |
//! | `dcap.qe_report.data` | QE REPORTDATA = SHA-256(attestation key \|\| QE auth data) \|\| 32 zero bytes |
//! | `dcap.collateral` | collateral was supplied (and, with [`verify_json`], parses) |
//! | `dcap.root_crl.signature`, `.validity` | the root CA CRL is the root's and current |
//! | `dcap.pck_crl.issuer_chain`, `.signature`, `.validity` | the PCK CRL is the PCK CA's and current |
//! | `dcap.pck.revocation` | the root CRL does not list the PCK CA, the PCK CRL not the PCK |
//! | `dcap.tcb_info.{chain,revocation,signature,parse,validity}` | the TCB info is Intel's and current |
//! | `dcap.qe_identity.{chain,revocation,signature,parse,validity}` | the same for the QE identity |
//! | `dcap.tcb_info.{id,fmspc,pce_id}` | the TCB info is for this TEE and this platform |
//! | `dcap.qe_identity.{id,match,tcb_level}` | the QE is the one Intel describes, at a known level |
//! | `dcap.tcb_level`, `dcap.tdx_module` | a TCB level (and TDX module level) applies |
//! | `dcap.tcb_status` | the combined status is not `Revoked` |
//!
//! Without collateral, `dcap.collateral` fails and the quote, QE report and PCK
//! chain checks still run; the policy is still evaluated (its status rules fail).

use aws_lc_rs::digest;

use super::appraise::{Appraisal, appraise};
use super::chain::{
    SeenCerts, check_chain_valid_at, parse_pem_chain, trusted_roots, verify_to_root,
};
use super::claims::{SgxClaims, TdxClaims};
use super::collateral::Collateral;
use super::endorsement::{Ctx, SignedDoc, check_pck_crl, check_root_crl, check_signed_doc};
use super::pck::{PckExtensions, parse_pck_extensions};
use super::policy::{SgxPolicy, TdxPolicy, evaluate_sgx, evaluate_tdx};
use super::qe_identity::QeIdentity;
use super::quote::{INTEL_QE_VENDOR_ID, Quote, TEE_TYPE_TDX};
use super::tcb_info::TcbInfo;
use crate::cache::SignatureCache;
use crate::check::Checks;
use crate::pki::{Cert, SigAlg, verify_signature};
use crate::time::UnixTime;
use crate::verdict::{Claims, Options, Tee, Verification};

/// The CNs Intel gives the PCK CAs.
const PCK_CA_CNS: [&str; 2] = ["Intel SGX PCK Platform CA", "Intel SGX PCK Processor CA"];
/// The phrase in every PCK leaf's CN.
const PCK_LEAF_CN: &str = "SGX PCK Certificate";

/// Verifies a quote (TDX or SGX, picked from the header) with its collateral at
/// `now`, and evaluates the policy of that TEE on its claims.
pub fn verify(
    quote: &[u8],
    collateral: Option<&Collateral>,
    tdx: &TdxPolicy,
    sgx: &SgxPolicy,
    now: UnixTime,
    opts: Options<'_>,
) -> Verification {
    verify_with(quote, Ok(collateral), tdx, sgx, now, opts)
}

/// [`verify`] with the collateral as received (QuoteCollateralV3 JSON): collateral
/// that does not parse fails `dcap.collateral`, and every other check still runs.
pub fn verify_json(
    quote: &[u8],
    collateral: Option<&[u8]>,
    tdx: &TdxPolicy,
    sgx: &SgxPolicy,
    now: UnixTime,
    opts: Options<'_>,
) -> Verification {
    match collateral.map(Collateral::from_json).transpose() {
        Ok(c) => verify_with(quote, Ok(c.as_ref()), tdx, sgx, now, opts),
        Err(e) => verify_with(quote, Err(e), tdx, sgx, now, opts),
    }
}

fn verify_with(
    quote: &[u8],
    collateral: Result<Option<&Collateral>, super::DcapError>,
    tdx: &TdxPolicy,
    sgx: &SgxPolicy,
    now: UnixTime,
    opts: Options<'_>,
) -> Verification {
    let mut ev = Checks::new();
    let q = match Quote::parse(quote) {
        Ok(q) if q.trailing_bytes > 0 => {
            ev.pass_with_note(
                "dcap.quote.parse",
                format!(
                    "{} bytes after the signature data are ignored (no signature covers them)",
                    q.trailing_bytes
                ),
            );
            q
        }
        Ok(q) => {
            ev.pass("dcap.quote.parse");
            q
        }
        Err(e) => {
            ev.fail("dcap.quote.parse", e.to_string());
            return Verification::new(guess_tee(quote), Claims::None, ev, Checks::new());
        }
    };
    let roots = trusted_roots(opts.extra_intel_roots);
    // Without a caller's cache, a cache for this call only: the collateral repeats
    // links (PCK CA -> root in the quote's chain and the PCK CRL's issuer chain; TCB
    // Signing -> root for TCB info and QE identity), each verified once.
    let call_cache;
    let cache = match opts.cache {
        Some(c) => Some(c),
        None => {
            call_cache = SignatureCache::new(32);
            Some(&call_cache)
        }
    };
    let seen = SeenCerts::default();
    let ctx = Ctx {
        roots: &roots,
        now,
        cache,
        seen: &seen,
    };
    ev.expect(
        "dcap.quote.qe_vendor",
        q.header.qe_vendor_id == INTEL_QE_VENDOR_ID,
        || {
            format!(
                "QE vendor ID {} is not Intel's",
                hex::encode(q.header.qe_vendor_id)
            )
        },
    );
    check_quote_signature(&mut ev, &q, cache);
    let pck = check_pck_chain(&mut ev, &q, ctx);
    check_qe_report(&mut ev, &q, pck.leaf(), cache);
    let appraisal = match collateral {
        Ok(Some(c)) => {
            ev.pass("dcap.collateral");
            check_collateral(&mut ev, &q, &pck, c, ctx)
        }
        missing => {
            let why = match missing {
                Err(e) => format!("the collateral does not parse: {e}"),
                Ok(_) => "no collateral supplied".to_owned(),
            };
            ev.fail("dcap.collateral", why);
            Appraisal {
                platform: super::claims::PlatformClaims::from_pck(pck.ext.as_ref()),
                ..Appraisal::default()
            }
        }
    };
    let (tee, claims, policy) = if q.is_tdx() {
        match TdxClaims::from_quote(&q, appraisal.platform) {
            Some(mut claims) => {
                claims.tdx_module_tcb_status = appraisal.module_status;
                claims.tdx_module_identity = appraisal.module_identity;
                let policy = evaluate_tdx(tdx, &claims);
                (Tee::Tdx, Claims::Tdx(claims), policy)
            }
            None => (Tee::Tdx, Claims::None, Checks::new()),
        }
    } else {
        match SgxClaims::from_quote(&q, appraisal.platform) {
            Some(claims) => {
                let policy = evaluate_sgx(sgx, &claims);
                (Tee::Sgx, Claims::Sgx(claims), policy)
            }
            None => (Tee::Sgx, Claims::None, Checks::new()),
        }
    };
    Verification::new(tee, claims, ev, policy)
}

/// The TEE a quote that did not parse claims to be (for the record only).
/// The TEE a quote is from: its parsed header's, or for a quote that does not parse
/// the TEE type field of its header read as is (TDX for 0x81, else SGX).
pub fn quote_tee(quote: &[u8]) -> Tee {
    match Quote::parse(quote) {
        Ok(q) if q.is_tdx() => Tee::Tdx,
        Ok(_) => Tee::Sgx,
        Err(_) => guess_tee(quote),
    }
}

fn guess_tee(quote: &[u8]) -> Tee {
    let tee_type = quote
        .get(4..8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes);
    if tee_type == Some(TEE_TYPE_TDX) {
        Tee::Tdx
    } else {
        Tee::Sgx
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn check_quote_signature(ev: &mut Checks, q: &Quote, cache: Option<&SignatureCache>) {
    let mut key = [0x04u8; 65];
    if let Some(tail) = key.get_mut(1..) {
        tail.copy_from_slice(&q.attestation_key);
    }
    ev.expect(
        "dcap.quote.signature",
        verify_signature(
            SigAlg::EcdsaP256Sha256Fixed,
            &key,
            q.signed_bytes(),
            &q.signature,
            cache,
        ),
        || "the attestation key's signature over the header and body does not verify".into(),
    );
}

/// The PCK chain as carried in the quote and what was learned from it.
#[derive(Default)]
struct PckState {
    /// The certificates of the quote's chain, as parsed (leaf first).
    certs: Vec<Cert>,
    /// The SGX extension of the leaf.
    ext: Option<PckExtensions>,
}

impl PckState {
    fn leaf(&self) -> Option<&Cert> {
        self.certs.first()
    }

    fn ca(&self) -> Option<&Cert> {
        self.certs.get(1)
    }
}

fn check_pck_chain(ev: &mut Checks, q: &Quote, ctx: Ctx<'_>) -> PckState {
    let Some(pem) = q.pck_chain_pem() else {
        ev.fail(
            "dcap.pck.chain",
            format!(
                "certification data type {} carries no PCK certificate chain",
                q.cert_data_type
            ),
        );
        return PckState::default();
    };
    let certs = match parse_pem_chain(pem, ctx.roots, ctx.seen, ctx.cache) {
        Ok(c) => c,
        Err(e) => {
            ev.fail("dcap.pck.chain", format!("PCK chain: {e}"));
            return PckState::default();
        }
    };
    let verdict = verify_to_root(&certs, 3, ctx.roots, ctx.cache)
        .map_err(|e| e.to_string())
        .and_then(|full| {
            let leaf = full.first().map(|c| c.subject_name()).unwrap_or_default();
            let ca = full.get(1).map(|c| c.subject_name()).unwrap_or_default();
            if !leaf.contains(PCK_LEAF_CN) {
                return Err(format!("leaf {leaf:?} is not a PCK certificate"));
            }
            if !PCK_CA_CNS.contains(&ca.as_str()) {
                return Err(format!("{ca:?} is not a PCK CA"));
            }
            Ok(full)
        });
    match verdict {
        Ok(full) => {
            ev.pass("dcap.pck.chain");
            ev.result(
                "dcap.pck.validity",
                check_chain_valid_at(full.iter().copied(), ctx.now),
            );
        }
        Err(e) => {
            ev.fail("dcap.pck.chain", e);
            ev.result("dcap.pck.validity", check_chain_valid_at(&certs, ctx.now));
        }
    }
    let ext = certs
        .first()
        .and_then(|leaf| match parse_pck_extensions(leaf) {
            Ok(e) => {
                ev.pass("dcap.pck.extensions");
                Some(e)
            }
            Err(e) => {
                ev.fail("dcap.pck.extensions", e.to_string());
                None
            }
        });
    PckState { certs, ext }
}

fn check_qe_report(
    ev: &mut Checks,
    q: &Quote,
    leaf: Option<&Cert>,
    cache: Option<&SignatureCache>,
) {
    if let Some(leaf) = leaf {
        ev.expect(
            "dcap.qe_report.signature",
            verify_signature(
                SigAlg::EcdsaP256Sha256Fixed,
                leaf.public_key(),
                &q.qe_report_raw,
                &q.qe_report_signature,
                cache,
            ),
            || "the PCK's signature over the QE report does not verify".into(),
        );
    }
    let hash = sha256(&[&q.attestation_key, &q.qe_auth_data]);
    let data = &q.qe_report.report_data;
    let (head, tail) = data.split_at(32);
    ev.expect(
        "dcap.qe_report.data",
        head == hash && tail.iter().all(|&b| b == 0),
        || {
            format!(
                "QE REPORTDATA {} is not SHA-256(attestation key || QE auth data) {} followed by zeros",
                hex::encode(data),
                hex::encode(hash)
            )
        },
    );
}

fn check_collateral(
    ev: &mut Checks,
    q: &Quote,
    pck: &PckState,
    c: &Collateral,
    ctx: Ctx<'_>,
) -> Appraisal {
    let root_crl = check_root_crl(ev, &c.root_ca_crl, ctx);
    let pck_crl = check_pck_crl(ev, &c.pck_crl, &c.pck_crl_issuer_chain, pck.ca(), ctx);
    let revocation = match (pck.leaf(), pck.ca(), &root_crl, &pck_crl) {
        (Some(leaf), Some(ca), Some(root_crl), Some(pck_crl)) => root_crl
            .check_not_revoked(ca)
            .and_then(|()| pck_crl.check_not_revoked(leaf))
            .map_err(|e| e.to_string()),
        (None, _, _, _) | (_, None, _, _) => Err("no PCK chain to check".into()),
        _ => Err("a CRL is unusable, revocation cannot be checked".into()),
    };
    ev.result("dcap.pck.revocation", revocation);
    let tcb_info = check_signed_doc(
        ev,
        &SignedDoc {
            prefix: "dcap.tcb_info",
            chain_pem: &c.tcb_info_issuer_chain,
            json: &c.tcb_info,
            signature: &c.tcb_info_signature,
        },
        root_crl.as_deref(),
        ctx,
        TcbInfo::parse,
        |t| (t.issue_date, t.next_update),
    );
    let qe_identity = check_signed_doc(
        ev,
        &SignedDoc {
            prefix: "dcap.qe_identity",
            chain_pem: &c.qe_identity_issuer_chain,
            json: &c.qe_identity,
            signature: &c.qe_identity_signature,
        },
        root_crl.as_deref(),
        ctx,
        QeIdentity::parse,
        |t| (t.issue_date, t.next_update),
    );
    appraise(
        ev,
        q,
        pck.ext.as_ref(),
        tcb_info.as_deref(),
        qe_identity.as_deref(),
    )
}
