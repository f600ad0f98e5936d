//! Verification of one SEV-SNP report with its endorsements: every check is run and
//! recorded (see the module documentation of [`super`] for the list), then the
//! policy is evaluated on the report.

use super::chain::{self, ChainInput};
use super::claims::SnpClaims;
use super::policy::{Context, SnpPolicy};
use super::report::{Report, SIG_ALGO_ECDSA_P384_SHA384, SigningKey, VERSIONS};
use super::tcb::{TcbVersion, product_from_cpuid, product_from_name};
use super::vcek::{self, VcekExtensions, parse_vcek_extensions};
use crate::check::Checks;
use crate::pki::{Cert, SigAlg, verify_signature};
use crate::roots::{self, AmdProduct};
use crate::time::UnixTime;
use crate::verdict::{Claims, Options, Tee, Verification};

const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const SECP384R1: &str = "1.3.132.0.34";

/// The evidence of one SEV-SNP guest, as bytes from outside the verifier's trust.
#[derive(Debug, Clone, Copy)]
pub struct SnpEvidence<'a> {
    /// The 1184-byte `ATTESTATION_REPORT`.
    pub report: &'a [u8],
    /// The VCEK or VLEK certificate, DER or PEM.
    pub vcek: &'a [u8],
    /// Optional ASK or ASVK (and maybe the ARK, which must then be a pinned one), as
    /// PEM or as DER certificates back to back; without it the intermediates
    /// compiled into the verifier are used.
    pub chain: Option<&'a [u8]>,
    /// Optional CRLs signed by the ARK (DER, PEM or hex).
    pub crls: &'a [Vec<u8>],
}

/// Verifies SEV-SNP evidence at time `now` and evaluates `policy` on it.
pub fn verify(
    evidence: &SnpEvidence<'_>,
    policy: &SnpPolicy,
    now: UnixTime,
    opts: Options<'_>,
) -> Verification {
    let mut ev = Checks::new();

    // The report's own fields.
    let report = match Report::parse(evidence.report) {
        Ok(r) => {
            ev.pass("snp.report.parse");
            check_report_fields(&r, &mut ev);
            Some(r)
        }
        Err(e) => {
            ev.fail("snp.report.parse", e.to_string());
            None
        }
    };

    // The VCEK or VLEK; the report says which one it should be.
    let leaf = Cert::from_der_or_pem(evidence.vcek);
    let kind = report
        .as_ref()
        .and_then(Report::signing_key)
        .or_else(|| {
            leaf.as_ref()
                .ok()
                .filter(|c| c.subject_name() == "SEV-VLEK")
                .map(|_| SigningKey::Vlek)
        })
        .unwrap_or(SigningKey::Vcek);
    let key = kind.name();
    let leaf = match leaf {
        Ok(c) => {
            ev.pass(format!("snp.{key}.parse"));
            Some(c)
        }
        Err(e) => {
            ev.fail(format!("snp.{key}.parse"), e.to_string());
            None
        }
    };
    let ext = leaf.as_ref().and_then(|c| {
        check_public_key(c, key, &mut ev);
        match parse_vcek_extensions(c) {
            Ok(x) => {
                ev.pass(format!("snp.{key}.extensions"));
                Some(x)
            }
            Err(e) => {
                ev.fail(format!("snp.{key}.extensions"), e.to_string());
                None
            }
        }
    });

    // Intermediates supplied with the evidence.
    let supplied = match evidence.chain {
        None => Vec::new(),
        Some(bytes) => match Cert::chain_from_pem_or_der(bytes) {
            Ok(certs) => {
                ev.pass("snp.chain.parse");
                certs
            }
            Err(e) => {
                ev.fail("snp.chain.parse", e.to_string());
                Vec::new()
            }
        },
    };

    // The product as the report and the VCEK state it, then the chain.
    let mut sources = ProductSources::default();
    if let Some(r) = &report {
        sources.add_report(r);
    }
    if let Some(c) = &leaf {
        sources.add_leaf(c, ext.as_ref());
    }
    let outcome = chain::validate(
        &ChainInput {
            kind,
            product: sources.first(),
            leaf: leaf.as_ref(),
            supplied: &supplied,
            crls: evidence.crls,
            now,
            opts,
        },
        &mut ev,
    );
    if let Some(i) = outcome.intermediate {
        sources.add_name(
            format!("{} name", kind.intermediate_name().to_uppercase()),
            i,
        );
    }
    if let Some(a) = outcome.ark {
        match roots::is_pinned_amd_ark(a) {
            Some(p) => sources.add("pinned ARK", p),
            None => sources.add_name("ARK name".into(), a),
        }
    }
    let product = sources.check(&mut ev);

    // What binds the report to the VCEK or VLEK.
    if let Some(r) = &report {
        check_signing_key(r, kind, ext.as_ref(), outcome.intermediate, &mut ev);
    }
    if let (Some(r), Some(x)) = (&report, &ext) {
        if kind == SigningKey::Vcek {
            ev.result("snp.vcek.hwid", vcek::check_hwid(x, &r.chip_id, product));
        }
        let tcb = match product {
            Some(p) => vcek::check_tcb(x, &TcbVersion::decode(r.reported_tcb, p))
                .map_err(|e| e.to_string()),
            None => Err("unknown product, so REPORTED_TCB cannot be decoded".to_owned()),
        };
        ev.result(format!("snp.{key}.tcb"), tcb);
    }
    if let (Some(r), Some(c)) = (&report, &leaf) {
        check_report_signature(r, c, key, opts, &mut ev);
    }

    let (claims, policy_checks) = match &report {
        Some(r) => {
            let mut pc = Checks::new();
            policy.evaluate(r, Context { product }, &mut pc);
            (Claims::Snp(SnpClaims::from_report(r, product)), pc)
        }
        None => (Claims::None, Checks::new()),
    };
    Verification::new(Tee::SevSnp, claims, ev, policy_checks)
}

/// `snp.report.version`, `snp.report.signature_algorithm`, `snp.report.reserved`.
fn check_report_fields(r: &Report, ev: &mut Checks) {
    ev.expect("snp.report.version", VERSIONS.contains(&r.version), || {
        format!(
            "version {} is not {} to {}",
            r.version,
            VERSIONS.start(),
            VERSIONS.end()
        )
    });
    ev.expect(
        "snp.report.signature_algorithm",
        r.signature_algo == SIG_ALGO_ECDSA_P384_SHA384,
        || {
            format!(
                "SIGNATURE_ALGO {} is not 1 (ECDSA P-384 with SHA-384)",
                r.signature_algo
            )
        },
    );
    ev.result("snp.report.reserved", r.check_reserved());
}

/// `snp.<key>.public_key`: an uncompressed P-384 point.
fn check_public_key(c: &Cert, key: &str, ev: &mut Checks) {
    let (alg, curve) = c.public_key_algorithm();
    let point = c.public_key();
    ev.expect(
        format!("snp.{key}.public_key"),
        alg == EC_PUBLIC_KEY
            && curve.as_deref() == Some(SECP384R1)
            && point.len() == 97
            && point.first() == Some(&0x04),
        || {
            format!(
                "not an uncompressed P-384 key (algorithm {alg}, curve {}, {} bytes)",
                curve.as_deref().unwrap_or("none"),
                point.len()
            )
        },
    );
}

/// `snp.report.signing_key`: the report names a key (VCEK or VLEK), and the
/// endorsement matches it: a VLEK has no hwID and chains through an ASVK
/// (`SEV-VLEK-<product>`); a VCEK chains through an ASK (`SEV-<product>`).
fn check_signing_key(
    r: &Report,
    kind: SigningKey,
    ext: Option<&VcekExtensions>,
    intermediate: Option<&Cert>,
    ev: &mut Checks,
) {
    let mut problems = Vec::new();
    match r.signing_key() {
        Some(k) if k == kind => {}
        Some(k) => problems.push(format!("the report names {}", k.name())),
        None if r.signing_key_raw() == 7 => {
            problems.push("SIGNING_KEY is 7: the report is not signed".to_owned())
        }
        None => problems.push(format!(
            "SIGNING_KEY {} is a reserved value",
            r.signing_key_raw()
        )),
    }
    if kind == SigningKey::Vlek && ext.is_some_and(|x| x.hwid.is_some()) {
        problems.push("a VLEK must not carry a hwID".to_owned());
    }
    if let Some(i) = intermediate {
        let via_asvk = i.subject_name().starts_with("SEV-VLEK-");
        if via_asvk != (kind == SigningKey::Vlek) {
            problems.push(format!(
                "a {} must chain through an {}, not {:?}",
                kind.name().to_uppercase(),
                kind.intermediate_name().to_uppercase(),
                i.subject_name()
            ));
        }
    }
    ev.expect("snp.report.signing_key", problems.is_empty(), || {
        problems.join("; ")
    });
}

/// `snp.report.signature`: ECDSA P-384 over bytes `0..0x2A0` with the key of `leaf`.
fn check_report_signature(r: &Report, leaf: &Cert, key: &str, opts: Options<'_>, ev: &mut Checks) {
    let result = r
        .signature_p384()
        .map_err(|e| e.to_string())
        .and_then(|sig| {
            if verify_signature(
                SigAlg::EcdsaP384Sha384Fixed,
                leaf.public_key(),
                r.signed_part(),
                &sig,
                opts.cache,
            ) {
                Ok(())
            } else {
                Err(format!(
                    "does not verify with the {}'s key",
                    key.to_uppercase()
                ))
            }
        });
    ev.result("snp.report.signature", result);
}

/// Every statement of the product, to check they agree.
#[derive(Debug, Default)]
struct ProductSources {
    known: Vec<(String, AmdProduct)>,
    unsupported: Vec<String>,
}

impl ProductSources {
    fn add(&mut self, source: &str, p: AmdProduct) {
        self.known.push((source.to_owned(), p));
    }

    /// A product named by a certificate (`SEV-Milan`, `ARK-Genoa`); other names,
    /// e.g. of an explicitly trusted test root, state nothing.
    fn add_name(&mut self, source: String, c: &Cert) {
        if let Some(p) = AmdProduct::from_cert_name(&c.subject_name()) {
            self.known.push((source, p));
        }
    }

    fn add_report(&mut self, r: &Report) {
        if let Some(id) = r.cpuid {
            match product_from_cpuid(id.family, id.model) {
                Some(p) => self.add("report CPUID", p),
                None => self.unsupported.push(format!(
                    "report CPUID family {:#x} model {:#x} is not a supported product",
                    id.family, id.model
                )),
            }
        }
    }

    fn add_leaf(&mut self, c: &Cert, ext: Option<&VcekExtensions>) {
        if let Some(name) = ext.and_then(|x| x.product_name.as_deref()) {
            match product_from_name(name) {
                Some(p) => self.add("productName", p),
                None => self
                    .unsupported
                    .push(format!("productName {name:?} is not a supported product")),
            }
        }
        let issuer = c.x509().tbs_certificate().issuer();
        if let Ok(Some(cn)) = issuer.common_name()
            && let Some(p) = AmdProduct::from_cert_name(&String::from(cn))
        {
            self.add("certificate issuer", p);
        }
    }

    fn first(&self) -> Option<AmdProduct> {
        self.known.first().map(|(_, p)| *p)
    }

    /// `snp.product`: at least one source names a supported product and none
    /// disagrees. Returns the product (the first stated, even on disagreement).
    fn check(&self, ev: &mut Checks) -> Option<AmdProduct> {
        let first = self.first();
        let disagree = self.known.iter().any(|(_, p)| Some(*p) != first);
        let ok = first.is_some() && !disagree && self.unsupported.is_empty();
        ev.expect("snp.product", ok, || {
            let mut why = self.unsupported.clone();
            if first.is_none() {
                why.push("no source names the product".into());
            }
            if disagree {
                let all: Vec<String> = self
                    .known
                    .iter()
                    .map(|(s, p)| format!("{s}: {}", p.name()))
                    .collect();
                why.push(format!("sources disagree ({})", all.join(", ")));
            }
            why.join("; ")
        });
        first
    }
}
