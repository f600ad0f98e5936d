//! The evidence bundle: one versioned CBOR document that carries everything a verifier
//! needs for one piece of evidence, so a Keep can hand over a single blob.
//!
//! ```text
//! bundle = {
//!   "version": 1,                  ; this format; other values are refused
//!   "tee": "sev-snp" / "tdx" / "sgx",
//!   "evidence": bstr,              ; SNP ATTESTATION_REPORT, or a DCAP quote
//!   ? "certs": [* bstr],           ; SNP: VCEK or VLEK first, then ASK/ASVK (+ ARK), DER
//!   ? "crls": [* bstr],            ; SNP: CRLs of the ARK or ASK, DER (others skipped)
//!   ? "collateral": bstr,          ; DCAP: QuoteCollateralV3 JSON, as served by a PCCS
//! }
//! ```
//! Unknown keys are refused; sizes are bounded ([`MAX_BUNDLE`]).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::verdict::{Options, Tee, Verification};
use crate::{Policy, UnixTime, dcap, snp};

/// The current bundle format version.
pub const BUNDLE_VERSION: u32 = 1;
/// The largest bundle accepted.
pub const MAX_BUNDLE: usize = 4 * 1024 * 1024;
/// The most certificates or CRLs in a bundle.
pub const MAX_ITEMS: usize = 8;

/// A bundle that could not be read or written.
#[derive(Debug, Error)]
pub enum BundleError {
    #[error("bundle is {0} bytes, over the {MAX_BUNDLE} byte limit")]
    TooLarge(usize),
    #[error("bundle is not valid CBOR for this format: {0}")]
    Malformed(String),
    #[error("bundle version {0} is not supported (this verifier reads version {BUNDLE_VERSION})")]
    Version(u32),
    #[error("bundle tee {0:?} is unknown (expected sev-snp, tdx or sgx)")]
    UnknownTee(String),
    #[error("bundle holds {count} {what}, over the limit of {MAX_ITEMS}")]
    TooManyItems { what: &'static str, count: usize },
    #[error("an SNP bundle needs the VCEK or VLEK as its first certificate")]
    MissingVcek,
    #[error("writing CBOR: {0}")]
    Encode(String),
}

/// One piece of evidence with its endorsements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub version: u32,
    pub tee: String,
    #[serde(with = "serde_bytes")]
    pub evidence: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<serde_bytes::ByteBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crls: Vec<serde_bytes::ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collateral: Option<serde_bytes::ByteBuf>,
}

impl Bundle {
    /// A bundle for an SNP report: `certs` holds the VCEK/VLEK first.
    pub fn snp(report: Vec<u8>, certs: Vec<Vec<u8>>, crls: Vec<Vec<u8>>) -> Self {
        Bundle {
            version: BUNDLE_VERSION,
            tee: Tee::SevSnp.name().into(),
            evidence: report,
            certs: certs.into_iter().map(serde_bytes::ByteBuf::from).collect(),
            crls: crls.into_iter().map(serde_bytes::ByteBuf::from).collect(),
            collateral: None,
        }
    }

    /// A bundle for a DCAP quote of the given TEE (TDX or SGX).
    pub fn dcap(tee: Tee, quote: Vec<u8>, collateral: Option<Vec<u8>>) -> Self {
        Bundle {
            version: BUNDLE_VERSION,
            tee: tee.name().into(),
            evidence: quote,
            certs: Vec::new(),
            crls: Vec::new(),
            collateral: collateral.map(serde_bytes::ByteBuf::from),
        }
    }

    /// Reads and checks a bundle.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE {
            return Err(BundleError::TooLarge(bytes.len()));
        }
        let b: Bundle =
            ciborium::from_reader(bytes).map_err(|e| BundleError::Malformed(e.to_string()))?;
        if b.version != BUNDLE_VERSION {
            return Err(BundleError::Version(b.version));
        }
        b.tee()?;
        b.check_items()?;
        Ok(b)
    }

    /// At most [`MAX_ITEMS`] certificates and CRLs, as [`Bundle::from_cbor`] requires.
    pub fn check_items(&self) -> Result<(), BundleError> {
        for (what, count) in [
            ("certificates", self.certs.len()),
            ("CRLs", self.crls.len()),
        ] {
            if count > MAX_ITEMS {
                return Err(BundleError::TooManyItems { what, count });
            }
        }
        Ok(())
    }

    /// Writes the bundle as CBOR, refusing one that [`Bundle::from_cbor`] would
    /// refuse for its size or number of items, so that what is written reads back.
    pub fn to_cbor(&self) -> Result<Vec<u8>, BundleError> {
        self.check_items()?;
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).map_err(|e| BundleError::Encode(e.to_string()))?;
        if out.len() > MAX_BUNDLE {
            return Err(BundleError::TooLarge(out.len()));
        }
        Ok(out)
    }

    /// The TEE this bundle declares.
    pub fn tee(&self) -> Result<Tee, BundleError> {
        match self.tee.as_str() {
            "sev-snp" => Ok(Tee::SevSnp),
            "tdx" => Ok(Tee::Tdx),
            "sgx" => Ok(Tee::Sgx),
            "insecure" => Ok(Tee::Insecure),
            other => Err(BundleError::UnknownTee(other.to_owned())),
        }
    }
}

/// Whether bytes look like a bundle (a CBOR map) rather than a raw report or quote.
pub fn looks_like_bundle(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|b| b & 0xe0 == 0xa0)
}

/// Verifies the evidence in a bundle. A DCAP bundle whose declared TEE differs from
/// the quote's own header fails the `bundle.tee` check (only when the quote parses:
/// otherwise `dcap.quote.parse` says all there is to say).
pub fn verify_bundle(
    bundle: &Bundle,
    policy: &Policy,
    now: UnixTime,
    opts: Options<'_>,
) -> Result<Verification, BundleError> {
    let declared = bundle.tee()?;
    match declared {
        Tee::SevSnp => {
            let (vcek, chain) = bundle.certs.split_first().ok_or(BundleError::MissingVcek)?;
            let chain_der: Option<Vec<u8>> =
                (!chain.is_empty()).then(|| chain.iter().flat_map(|c| c.iter().copied()).collect());
            let crls: Vec<Vec<u8>> = bundle.crls.iter().map(|c| c.to_vec()).collect();
            let ev = snp::SnpEvidence {
                report: &bundle.evidence,
                vcek,
                chain: chain_der.as_deref(),
                crls: &crls,
            };
            Ok(snp::verify(&ev, &policy.snp, now, opts))
        }
        Tee::Insecure => Ok(crate::insecure::verify(&bundle.evidence, policy)),
        Tee::Tdx | Tee::Sgx => {
            // Collateral that does not parse fails `dcap.collateral` (the bundle
            // itself, its CBOR, was fine).
            let mut v = dcap::verify_json(
                &bundle.evidence,
                bundle.collateral.as_deref().map(|c| c.as_slice()),
                &policy.tdx,
                &policy.sgx,
                now,
                opts,
            );
            if v.evidence.failed("dcap.quote.parse") {
                // Nothing was read from a quote that does not parse: the parse
                // failure alone is the finding, under the TEE the bundle declares.
                v.tee = declared;
            } else if v.tee != declared {
                v.evidence.fail(
                    "bundle.tee",
                    format!(
                        "bundle says {} but the quote is {}",
                        declared.name(),
                        v.tee.name()
                    ),
                );
                v = Verification::new(v.tee, v.claims, v.evidence, v.policy);
            }
            Ok(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_versions_and_unknown_fields() {
        let b = Bundle::snp(vec![1, 2, 3], vec![vec![4; 10]], vec![]);
        let cbor = b.to_cbor().unwrap();
        assert!(looks_like_bundle(&cbor));
        assert_eq!(Bundle::from_cbor(&cbor).unwrap(), b);

        let mut v2 = b.clone();
        v2.version = 2;
        assert!(matches!(
            Bundle::from_cbor(&v2.to_cbor().unwrap()),
            Err(BundleError::Version(2))
        ));

        let mut bad_tee = b.clone();
        bad_tee.tee = "sev".into();
        assert!(matches!(
            Bundle::from_cbor(&bad_tee.to_cbor().unwrap()),
            Err(BundleError::UnknownTee(_))
        ));

        #[derive(Serialize)]
        struct Extra {
            version: u32,
            tee: String,
            #[serde(with = "serde_bytes")]
            evidence: Vec<u8>,
            surprise: u32,
        }
        let mut extra = Vec::new();
        ciborium::into_writer(
            &Extra {
                version: 1,
                tee: "tdx".into(),
                evidence: vec![],
                surprise: 1,
            },
            &mut extra,
        )
        .unwrap();
        assert!(matches!(
            Bundle::from_cbor(&extra),
            Err(BundleError::Malformed(_))
        ));

        assert!(Bundle::from_cbor(&cbor[..cbor.len() - 1]).is_err());

        // What would not be read back is not written either.
        let nine = Bundle::snp(vec![1], vec![vec![4]], vec![vec![5]; MAX_ITEMS + 1]);
        assert!(matches!(
            nine.to_cbor(),
            Err(BundleError::TooManyItems {
                what: "CRLs",
                count: 9
            })
        ));
        let eight = Bundle::snp(vec![1], vec![vec![4]], vec![vec![5]; MAX_ITEMS]);
        assert_eq!(Bundle::from_cbor(&eight.to_cbor().unwrap()).unwrap(), eight);
        let huge = Bundle::dcap(Tee::Tdx, vec![0; MAX_BUNDLE], None);
        assert!(matches!(huge.to_cbor(), Err(BundleError::TooLarge(_))));
        assert!(Bundle::from_cbor(&[]).is_err());
        assert!(!looks_like_bundle(&[0x02, 0, 0, 0]));
    }

    #[test]
    fn a_quote_that_does_not_parse_fails_its_parse_check_alone() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let tdx = std::fs::read(dir.join("tdx/dcap-qvl-uptodate/quote.bin")).unwrap();
        let policy = Policy::default();
        let now = UnixTime(1752919234);
        let failed = |v: &Verification| -> Vec<String> {
            v.evidence.failures().map(|c| c.name.clone()).collect()
        };
        for declared in [Tee::Tdx, Tee::Sgx] {
            let b = Bundle::dcap(declared, tdx[..1000].to_vec(), None);
            let v = verify_bundle(&b, &policy, now, Options::default()).unwrap();
            assert_eq!(failed(&v), ["dcap.quote.parse"], "{declared:?}");
            assert_eq!(v.tee, declared);
        }
        // A quote that parses is still checked against the declared TEE.
        let b = Bundle::dcap(Tee::Sgx, tdx, None);
        let v = verify_bundle(&b, &policy, now, Options::default()).unwrap();
        assert!(v.evidence.failed("bundle.tee"), "{:?}", failed(&v));
        assert_eq!(v.tee, Tee::Tdx);
    }

    #[test]
    fn a_bundled_der_chain_is_judged_like_the_pem_file() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/snp/milan-debug-policy");
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        let (report, vcek, pem) = (read("report.bin"), read("vcek.der"), read("chain.pem"));
        let chain = crate::pki::Cert::chain_from_pem(&pem).unwrap();
        assert_eq!(chain.len(), 2);
        let mut certs = vec![vcek.clone()];
        certs.extend(chain.iter().map(|c| c.der().to_vec()));
        let now = UnixTime::parse("2025-01-01T00:00:00Z").unwrap();
        let policy = Policy::default();
        let bundled = verify_bundle(
            &Bundle::snp(report.clone(), certs, vec![]),
            &policy,
            now,
            Options::default(),
        )
        .unwrap();
        let direct = snp::verify(
            &snp::SnpEvidence {
                report: &report,
                vcek: &vcek,
                chain: Some(&pem),
                crls: &[],
            },
            &policy.snp,
            now,
            Options::default(),
        );
        let names = |v: &Verification| {
            let mut n: Vec<String> = v
                .evidence
                .iter()
                .map(|c| format!("{}={}", c.name, c.passed))
                .collect();
            n.sort();
            n
        };
        assert!(bundled.genuine(), "{:?}", names(&bundled));
        assert!(names(&bundled).contains(&"snp.chain.parse=true".to_string()));
        assert_eq!(names(&bundled), names(&direct));
        assert_eq!(bundled.verdict, direct.verdict);
        // A chain that is neither PEM nor whole DER certificates is refused by name.
        let mut cut = vec![vcek.clone(), chain[0].der()[..100].to_vec()];
        cut.truncate(2);
        let broken = verify_bundle(
            &Bundle::snp(report, cut, vec![]),
            &policy,
            now,
            Options::default(),
        )
        .unwrap();
        assert!(!broken.genuine());
        assert!(names(&broken).contains(&"snp.chain.parse=false".to_string()));
    }
}
