//! The AMD certificate chain: ARK (root, pinned) -> ASK or ASVK (intermediate) ->
//! VCEK or VLEK (the key that signs reports), plus the ARK's CRLs.
//!
//! Trust comes only from the pinned ARKs compiled into the verifier and from ARKs the
//! caller adds explicitly ([`Options::extra_amd_arks`]). A chain supplied with the
//! evidence contributes intermediates only: any self-signed certificate in it must be
//! one of those trusted ARKs. The intermediates compiled into the verifier are used
//! when the evidence brings none, and are verified against the ARK like any other.
//!
//! Check names: `snp.ark.{pinned,self_signature,validity}`,
//! `snp.{ask|asvk}.{signature,validity}`, `snp.{vcek|vlek}.{signature,validity}`, and
//! `snp.crl.{parse,applicable,signature,validity,revocation}` (see `check_crls`).

use std::sync::OnceLock;

use x509_cert::name::Name;

use super::report::SigningKey;
use crate::check::{Checks, Skipped};
use crate::pki::{Cert, Crl};
use crate::roots::{self, AmdProduct};
use crate::time::UnixTime;
use crate::verdict::Options;

/// What the chain is checked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainInput<'a> {
    /// VCEK (through an ASK) or VLEK (through an ASVK): picks the compiled-in
    /// intermediates and names the checks.
    pub kind: SigningKey,
    /// The product, when known, to find the ARK if there is no intermediate.
    pub product: Option<AmdProduct>,
    /// The VCEK or VLEK, when it could be parsed.
    pub leaf: Option<&'a Cert>,
    /// Certificates supplied with the evidence (intermediates, maybe ARKs).
    pub supplied: &'a [Cert],
    /// CRLs supplied with the evidence (DER, PEM or hex).
    pub crls: &'a [Vec<u8>],
    pub now: UnixTime,
    pub opts: Options<'a>,
}

/// The certificates the chain was built from.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChainOutcome<'a> {
    /// The ASK or ASVK used.
    pub intermediate: Option<&'a Cert>,
    /// The trusted ARK used.
    pub ark: Option<&'a Cert>,
}

fn subject(c: &Cert) -> &Name {
    c.x509().tbs_certificate().subject()
}

fn issuer(c: &Cert) -> &Name {
    c.x509().tbs_certificate().issuer()
}

fn self_issued(c: &Cert) -> bool {
    subject(c) == issuer(c)
}

/// The intermediate that issued `leaf`: among the supplied certificates, then the
/// compiled-in ones, those named as the leaf's issuer, preferring the first whose
/// signature on the leaf verifies. Without a leaf: the first supplied intermediate,
/// else the compiled-in one for the product.
fn select_intermediate<'a>(input: &ChainInput<'a>) -> Option<&'a Cert> {
    let mut supplied = input.supplied.iter().filter(|c| !self_issued(c));
    let compiled: &'a [(AmdProduct, Cert)] = match input.kind {
        SigningKey::Vcek => &compiled_roots().asks,
        SigningKey::Vlek => &compiled_roots().asvks,
    };
    match input.leaf {
        Some(leaf) => {
            let named: Vec<&'a Cert> = supplied
                .chain(compiled.iter().map(|(_, c)| c))
                .filter(|c| subject(c) == issuer(leaf))
                .collect();
            named
                .iter()
                .find(|c| leaf.verify_issued_by(c, input.opts.cache).is_ok())
                .or_else(|| named.first())
                .copied()
        }
        None => supplied.next().or_else(|| {
            compiled
                .iter()
                .find(|(p, _)| Some(*p) == input.product)
                .map(|(_, c)| c)
        }),
    }
}

/// The roots compiled into the verifier, parsed once per process: the ARKs that
/// match their pins, and the shipped ASKs and ASVKs (still verified on every use).
struct CompiledRoots {
    arks: Vec<(AmdProduct, Cert)>,
    asks: Vec<(AmdProduct, Cert)>,
    asvks: Vec<(AmdProduct, Cert)>,
}

fn compiled_roots() -> &'static CompiledRoots {
    static ROOTS: OnceLock<CompiledRoots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let load = |f: fn(AmdProduct) -> Result<Cert, crate::pki::PkiError>| {
            AmdProduct::ALL
                .into_iter()
                .filter_map(|p| f(p).ok().map(|c| (p, c)))
                .collect()
        };
        CompiledRoots {
            arks: load(roots::amd_ark),
            asks: load(roots::amd_ask),
            asvks: load(roots::amd_asvk),
        }
    })
}

/// Checks that `issuer` signed `cert`, refusing a signature BIT STRING with unused
/// bits (a non-DER re-encoding of the same signature that the parser tolerates).
fn check_signed_by(
    cert: &Cert,
    issuer: &Cert,
    cache: Option<&crate::cache::SignatureCache>,
) -> Result<(), String> {
    let unused = cert.x509().signature().unused_bits();
    if unused != 0 {
        return Err(format!(
            "the signature of {:?} is a BIT STRING with {unused} unused bits",
            cert.subject_name()
        ));
    }
    cert.verify_issued_by(issuer, cache)
        .map_err(|e| e.to_string())
}

/// Whether `cert` is a trusted ARK: pinned, or byte-identical to an explicit extra.
fn trusted_ark(cert: &Cert, opts: &Options<'_>) -> bool {
    roots::is_pinned_amd_ark(cert).is_some()
        || opts.extra_amd_arks.iter().any(|e| e.der() == cert.der())
}

/// The trusted ARK for `intermediate` (matched by name, preferring one whose
/// signature on it verifies), or without an intermediate the product's pinned ARK.
fn select_ark<'a>(input: &ChainInput<'a>, intermediate: Option<&Cert>) -> Option<&'a Cert> {
    let pinned: &'a [(AmdProduct, Cert)] = &compiled_roots().arks;
    match intermediate {
        Some(inter) => {
            let named: Vec<&'a Cert> = pinned
                .iter()
                .map(|(_, a)| a)
                .chain(input.opts.extra_amd_arks)
                .filter(|a| subject(a) == issuer(inter))
                .collect();
            named
                .iter()
                .find(|a| inter.verify_issued_by(a, input.opts.cache).is_ok())
                .or_else(|| named.first())
                .copied()
        }
        None => pinned
            .iter()
            .find(|(p, _)| Some(*p) == input.product)
            .map(|(_, a)| a),
    }
}

/// Validates the chain, recording every check in `checks`.
pub(crate) fn validate<'a>(input: &ChainInput<'a>, checks: &mut Checks) -> ChainOutcome<'a> {
    let inter_name = input.kind.intermediate_name();
    let leaf_name = input.kind.name();
    let cache = input.opts.cache;
    let intermediate = select_intermediate(input);
    let ark = select_ark(input, intermediate);

    // The ARK: trusted, self-signed, current.
    let untrusted: Vec<String> = input
        .supplied
        .iter()
        .filter(|c| self_issued(c) && !trusted_ark(c, &input.opts))
        .map(|c| format!("{} (sha256 {})", c.subject_name(), hex::encode(c.sha256())))
        .collect();
    match (&ark, untrusted.is_empty()) {
        (Some(_), true) => checks.pass("snp.ark.pinned"),
        (Some(_), false) => checks.fail(
            "snp.ark.pinned",
            format!(
                "supplied root is not a pinned ARK: {}",
                untrusted.join(", ")
            ),
        ),
        (None, _) => {
            let wanted = match &intermediate {
                Some(i) => format!("named {:?}", common_name_of_issuer(i)),
                None => format!(
                    "for product {}",
                    input.product.map_or("unknown", AmdProduct::name)
                ),
            };
            checks.fail("snp.ark.pinned", format!("no pinned ARK {wanted}"));
        }
    }
    if let Some(ark) = &ark {
        checks.result("snp.ark.self_signature", check_signed_by(ark, ark, cache));
        checks.result("snp.ark.validity", ark.check_valid_at(input.now));
    }

    // The intermediate: signed by the ARK, current.
    let sig_name = format!("snp.{inter_name}.signature");
    match (&intermediate, &ark) {
        (Some(inter), Some(ark)) => {
            checks.result(sig_name, check_signed_by(inter, ark, cache));
        }
        (Some(_), None) => checks.fail(sig_name, "no trusted ARK to check it with"),
        (None, _) => checks.fail(
            sig_name,
            match input.leaf {
                Some(leaf) => format!(
                    "no {} named {:?} (the {} issuer)",
                    inter_name.to_uppercase(),
                    common_name_of_issuer(leaf),
                    leaf_name.to_uppercase()
                ),
                None => format!("no {} found", inter_name.to_uppercase()),
            },
        ),
    }
    if let Some(inter) = &intermediate {
        checks.result(
            format!("snp.{inter_name}.validity"),
            inter.check_valid_at(input.now),
        );
    }

    // The VCEK or VLEK: signed by the intermediate, current.
    if let Some(leaf) = input.leaf {
        let name = format!("snp.{leaf_name}.signature");
        match &intermediate {
            Some(inter) => {
                checks.result(name, check_signed_by(leaf, inter, cache));
            }
            None => checks.fail(
                name,
                format!("no {} to check it with", inter_name.to_uppercase()),
            ),
        }
        checks.result(
            format!("snp.{leaf_name}.validity"),
            leaf.check_valid_at(input.now),
        );
    }

    check_crls(input, ark, intermediate, checks);
    ChainOutcome { intermediate, ark }
}

/// The CRL checks. CRLs are chosen by issuer: a CRL issued by the chain's ARK or
/// intermediate applies, and must be signed by that certificate and current; no
/// applicable CRL may list the intermediate or the leaf. A CRL of another issuer (of
/// another product line, say) is skipped as not applicable. Without an applicable
/// CRL whose signature verifies, revocation is recorded as not checked.
fn check_crls(
    input: &ChainInput<'_>,
    ark: Option<&Cert>,
    intermediate: Option<&Cert>,
    checks: &mut Checks,
) {
    let inter_name = input.kind.intermediate_name().to_uppercase();
    let leaf_name = input.kind.name().to_uppercase();
    if input.crls.is_empty() {
        checks.skip(
            "snp.crl.revocation",
            Skipped::NotChecked,
            format!("no CRL was supplied: whether the {inter_name} or the {leaf_name} is revoked was not checked"),
        );
        return;
    }
    let mut parse_errors = Vec::new();
    let mut crls = Vec::new();
    for (i, bytes) in input.crls.iter().enumerate() {
        match Crl::from_any(bytes) {
            Ok(c) => crls.push((i, c)),
            Err(e) => parse_errors.push(format!("CRL {i}: {e}")),
        }
    }
    checks.expect("snp.crl.parse", parse_errors.is_empty(), || {
        parse_errors.join("; ")
    });

    // Each CRL with the certificate of this chain that issued it, if any.
    let issuers: Vec<&Cert> = [ark, intermediate].into_iter().flatten().collect();
    let mut applicable = Vec::new();
    let mut other = Vec::new();
    for (i, crl) in &crls {
        match issuers.iter().find(|c| crl.names_issuer(c)) {
            Some(issuer) => applicable.push((*i, crl, *issuer)),
            None => other.push(format!("CRL {i} (issuer {:?})", crl.issuer_name())),
        }
    }
    if !other.is_empty() {
        let chain: Vec<String> = issuers
            .iter()
            .map(|c| format!("{:?}", c.subject_name()))
            .collect();
        checks.skip(
            "snp.crl.applicable",
            Skipped::NotApplicable,
            format!(
                "{} skipped: not issued by this chain ({})",
                other.join(", "),
                if chain.is_empty() {
                    "no trusted ARK".to_owned()
                } else {
                    chain.join(", ")
                }
            ),
        );
    }

    let mut trusted = Vec::new();
    if !applicable.is_empty() {
        let mut sig_errors = Vec::new();
        for (i, crl, issuer) in &applicable {
            match crl.verify_issued_by(issuer, input.opts.cache) {
                Ok(()) => trusted.push(*crl),
                Err(e) => sig_errors.push(format!("CRL {i}: {e}")),
            }
        }
        checks.expect("snp.crl.signature", sig_errors.is_empty(), || {
            sig_errors.join("; ")
        });
        let validity: Vec<String> = applicable
            .iter()
            .filter_map(|(i, c, _)| {
                c.check_valid_at(input.now)
                    .err()
                    .map(|e| format!("CRL {i}: {e}"))
            })
            .collect();
        checks.expect("snp.crl.validity", validity.is_empty(), || {
            validity.join("; ")
        });
    }

    if trusted.is_empty() {
        let why = if applicable.is_empty() {
            format!("no supplied CRL is issued by this chain's ARK or {inter_name}")
        } else {
            "no CRL of this chain has a valid signature".to_owned()
        };
        checks.skip(
            "snp.crl.revocation",
            Skipped::NotChecked,
            format!(
                "{why}: whether the {inter_name} or the {leaf_name} is revoked was not checked"
            ),
        );
        return;
    }
    let revoked: Vec<String> = trusted
        .iter()
        .flat_map(|crl| {
            [intermediate, input.leaf]
                .into_iter()
                .flatten()
                .filter_map(|c| crl.check_not_revoked(c).err().map(|e| e.to_string()))
        })
        .collect();
    checks.expect("snp.crl.revocation", revoked.is_empty(), || {
        revoked.join("; ")
    });
}

fn common_name_of_issuer(c: &Cert) -> String {
    match issuer(c).common_name() {
        Ok(Some(cn)) => String::from(cn),
        _ => issuer(c).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::SignatureCache;

    const OLD_CHAIN: &[u8] =
        include_bytes!("../../tests/vectors/snp/genoa-revoked-ask/old-chain.pem");
    const CRL0: &[u8] = include_bytes!("../../tests/vectors/snp/genoa-revoked-ask/crl0.der");
    const CRL1: &[u8] = include_bytes!("../../tests/vectors/snp/genoa-revoked-ask/crl1.der");
    const MILAN_CHAIN: &[u8] =
        include_bytes!("../../tests/vectors/snp/milan-debug-policy/chain.pem");
    const MILAN_VCEK: &[u8] = include_bytes!("../../tests/vectors/snp/milan-debug-policy/vcek.der");

    fn t(s: &str) -> UnixTime {
        UnixTime::parse(s).unwrap()
    }

    fn run(
        leaf: Option<&Cert>,
        supplied: &[Cert],
        crls: &[Vec<u8>],
        product: Option<AmdProduct>,
        now: &str,
        opts: Options<'_>,
    ) -> Checks {
        let mut checks = Checks::new();
        validate(
            &ChainInput {
                kind: SigningKey::Vcek,
                product,
                leaf,
                supplied,
                crls,
                now: t(now),
                opts,
            },
            &mut checks,
        );
        checks
    }

    fn failed_names(c: &Checks) -> Vec<String> {
        c.failures().map(|f| f.name.clone()).collect()
    }

    #[test]
    fn the_revoked_genoa_ask_is_rejected_with_crl0() {
        let supplied = Cert::chain_from_pem(OLD_CHAIN).unwrap();
        let c = run(
            None,
            &supplied,
            &[CRL0.to_vec()],
            Some(AmdProduct::Genoa),
            "2023-01-01",
            Options::default(),
        );
        assert_eq!(failed_names(&c), ["snp.crl.revocation"], "{c:?}");
        let detail = &c.failures().next().unwrap().detail;
        assert!(
            detail.contains("020001") && detail.contains("revoked"),
            "{detail}"
        );
        for name in [
            "snp.ark.pinned",
            "snp.ark.self_signature",
            "snp.ark.validity",
            "snp.ask.signature",
            "snp.ask.validity",
            "snp.crl.parse",
            "snp.crl.signature",
            "snp.crl.validity",
        ] {
            assert!(c.passed(name), "{name}: {c:?}");
        }
        // Without the CRL the old chain is, by itself, well formed.
        let c = run(
            None,
            &supplied,
            &[],
            Some(AmdProduct::Genoa),
            "2023-01-01",
            Options::default(),
        );
        assert!(c.all_passed(), "{c:?}");
        // The current Genoa ASK (compiled in) is not on crl0.
        let c = run(
            None,
            &[],
            &[CRL0.to_vec()],
            Some(AmdProduct::Genoa),
            "2023-01-01",
            Options::default(),
        );
        assert!(c.all_passed(), "{c:?}");
    }

    #[test]
    fn a_crl_of_another_issuer_is_not_applicable_and_a_forged_one_fails() {
        // The Milan ARK's CRL beside a Genoa chain: skipped, and revocation not checked.
        let supplied = Cert::chain_from_pem(OLD_CHAIN).unwrap();
        let c = run(
            None,
            &supplied,
            &[CRL1.to_vec()],
            Some(AmdProduct::Genoa),
            "2023-01-01",
            Options::default(),
        );
        assert!(c.all_passed(), "{c:?}");
        assert!(
            c.skipped("snp.crl.applicable", Skipped::NotApplicable),
            "{c:?}"
        );
        assert!(
            c.skipped("snp.crl.revocation", Skipped::NotChecked),
            "{c:?}"
        );
        assert!(!c.passed("snp.crl.signature") && !c.failed("snp.crl.signature"));
        // Beside the right one it changes nothing: the Genoa CRL still revokes.
        let c = run(
            None,
            &supplied,
            &[CRL1.to_vec(), CRL0.to_vec()],
            Some(AmdProduct::Genoa),
            "2023-01-01",
            Options::default(),
        );
        assert_eq!(failed_names(&c), ["snp.crl.revocation"], "{c:?}");
        assert!(c.passed("snp.crl.signature") && c.passed("snp.crl.validity"));
        assert!(c.skipped("snp.crl.applicable", Skipped::NotApplicable));
        // A CRL that names the ARK but whose signature does not verify fails.
        let mut forged = CRL0.to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let c = run(
            None,
            &[],
            &[forged],
            Some(AmdProduct::Genoa),
            "2023-01-01",
            Options::default(),
        );
        assert_eq!(failed_names(&c), ["snp.crl.signature"], "{c:?}");
        assert!(
            c.skipped("snp.crl.revocation", Skipped::NotChecked),
            "{c:?}"
        );
        // No CRL at all: revocation is recorded as not checked.
        let c = run(
            None,
            &[],
            &[],
            Some(AmdProduct::Genoa),
            "2023-01-01",
            Options::default(),
        );
        assert!(c.all_passed(), "{c:?}");
        assert!(
            c.skipped("snp.crl.revocation", Skipped::NotChecked),
            "{c:?}"
        );
        // Expired CRL, and garbage.
        let c = run(
            None,
            &[],
            &[CRL0.to_vec(), b"not a crl".to_vec()],
            Some(AmdProduct::Genoa),
            "2024-01-01",
            Options::default(),
        );
        assert!(c.failed("snp.crl.validity"), "{c:?}");
        assert!(c.failed("snp.crl.parse"), "{c:?}");
        assert!(c.passed("snp.crl.signature"), "{c:?}");
    }

    #[test]
    fn a_full_milan_chain_with_a_supplied_pem_and_the_cache() {
        let supplied = Cert::chain_from_pem(MILAN_CHAIN).unwrap();
        let vcek = Cert::from_der(MILAN_VCEK).unwrap();
        let cache = SignatureCache::new(100);
        let opts = Options {
            cache: Some(&cache),
            ..Options::default()
        };
        let c = run(Some(&vcek), &supplied, &[], None, "2023-01-01", opts);
        assert!(c.all_passed(), "{c:?}");
        assert!(c.passed("snp.vcek.signature") && c.passed("snp.vcek.validity"));
        let cached = cache.len();
        assert_eq!(cached, 3, "ARK self-signature, ASK and VCEK");
        let c = run(Some(&vcek), &[], &[], None, "2023-01-01", opts);
        assert!(c.all_passed(), "compiled-in ASK: {c:?}");
        // Expired and not yet valid.
        let c = run(Some(&vcek), &[], &[], None, "2030-01-01", opts);
        assert_eq!(failed_names(&c), ["snp.vcek.validity"]);
        let c = run(Some(&vcek), &[], &[], None, "2020-01-01", opts);
        assert!(c.failed("snp.vcek.validity") && c.failed("snp.ark.validity"));
    }

    #[test]
    fn an_unpinned_root_in_the_supplied_chain_is_refused_unless_added_explicitly() {
        let intel = roots::intel_sgx_root().unwrap();
        let vcek = Cert::from_der(MILAN_VCEK).unwrap();
        let supplied = [intel.clone()];
        let c = run(
            Some(&vcek),
            &supplied,
            &[],
            None,
            "2023-01-01",
            Options::default(),
        );
        assert_eq!(failed_names(&c), ["snp.ark.pinned"], "{c:?}");
        let extra = [intel];
        let opts = Options {
            extra_amd_arks: &extra,
            ..Options::default()
        };
        let c = run(Some(&vcek), &supplied, &[], None, "2023-01-01", opts);
        assert!(c.all_passed(), "{c:?}");
    }

    #[test]
    fn a_signature_bit_string_with_unused_bits_is_refused() {
        // genoa-oak-v5's VCEK: the signature BIT STRING's unused-bits byte is at 834
        // and its last byte is even, so the parser accepts 1 unused bit there.
        let mut der = include_bytes!("../../tests/vectors/snp/genoa-oak-v5/vcek.der").to_vec();
        assert_eq!(der[830..835], [0x03, 0x82, 0x02, 0x01, 0x00]);
        let good = Cert::from_der(&der).unwrap();
        assert!(
            run(
                Some(&good),
                &[],
                &[],
                None,
                "2025-09-12",
                Options::default()
            )
            .all_passed()
        );
        der[834] = 1;
        let odd = Cert::from_der(&der).unwrap();
        let c = run(Some(&odd), &[], &[], None, "2025-09-12", Options::default());
        assert_eq!(failed_names(&c), ["snp.vcek.signature"]);
        assert!(
            c.failures()
                .next()
                .unwrap()
                .detail
                .contains("1 unused bits")
        );
    }

    #[test]
    fn a_vcek_through_the_wrong_intermediate_kind_or_product_is_refused() {
        let vcek = Cert::from_der(MILAN_VCEK).unwrap();
        let mut checks = Checks::new();
        validate(
            &ChainInput {
                kind: SigningKey::Vlek,
                product: Some(AmdProduct::Milan),
                leaf: Some(&vcek),
                supplied: &[],
                crls: &[],
                now: t("2023-01-01"),
                opts: Options::default(),
            },
            &mut checks,
        );
        assert!(checks.failed("snp.asvk.signature"), "{checks:?}");
        assert!(checks.failed("snp.vlek.signature"), "{checks:?}");
        // A Genoa ASK supplied for a Milan VCEK does not match its issuer name, so
        // the compiled-in Milan ASK is used.
        let genoa = Cert::chain_from_pem(OLD_CHAIN).unwrap();
        let c = run(
            Some(&vcek),
            &genoa,
            &[],
            None,
            "2023-01-01",
            Options::default(),
        );
        assert!(c.all_passed(), "{c:?}");
    }
}
