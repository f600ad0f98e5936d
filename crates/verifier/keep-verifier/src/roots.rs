//! The vendor roots compiled into the verifier, each pinned by the SHA-256 of its DER.
//!
//! AMD: the ARK (root, self-signed) of each product, and its two intermediates (ASK
//! signs VCEKs, ASVK signs VLEKs). The intermediates are shipped for convenience only:
//! they are always verified against the pinned ARK, never trusted on their own.
//! Intel: the SGX Root CA, which anchors both SGX and TDX DCAP.

use serde::Serialize;

use crate::pki::{Cert, PkiError};

/// An AMD EPYC generation with SEV-SNP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum AmdProduct {
    Milan,
    Genoa,
    Turin,
}

impl AmdProduct {
    /// Every supported product.
    pub const ALL: [AmdProduct; 3] = [AmdProduct::Milan, AmdProduct::Genoa, AmdProduct::Turin];

    /// The name AMD uses (KDS paths, certificate names).
    pub fn name(self) -> &'static str {
        match self {
            AmdProduct::Milan => "Milan",
            AmdProduct::Genoa => "Genoa",
            AmdProduct::Turin => "Turin",
        }
    }

    /// The product whose ARK has this subject CN (`ARK-Milan`) or whose ASK / ASVK
    /// is named `SEV-Milan` / `SEV-VLEK-Milan`.
    pub fn from_cert_name(cn: &str) -> Option<Self> {
        let tail = cn.rsplit('-').next()?;
        AmdProduct::ALL.into_iter().find(|p| p.name() == tail)
    }
}

/// SHA-256 of the DER of each pinned AMD ARK.
pub const AMD_ARK_SHA256: [(AmdProduct, &str); 3] = [
    (
        AmdProduct::Milan,
        "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
    ),
    (
        AmdProduct::Genoa,
        "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
    ),
    (
        AmdProduct::Turin,
        "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
    ),
];

/// SHA-256 of the DER of the Intel SGX Root CA.
pub const INTEL_SGX_ROOT_SHA256: &str =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

const ARK: [(AmdProduct, &[u8]); 3] = [
    (
        AmdProduct::Milan,
        include_bytes!("../roots/amd/milan/ark.pem"),
    ),
    (
        AmdProduct::Genoa,
        include_bytes!("../roots/amd/genoa/ark.pem"),
    ),
    (
        AmdProduct::Turin,
        include_bytes!("../roots/amd/turin/ark.pem"),
    ),
];
const ASK: [(AmdProduct, &[u8]); 3] = [
    (
        AmdProduct::Milan,
        include_bytes!("../roots/amd/milan/ask.pem"),
    ),
    (
        AmdProduct::Genoa,
        include_bytes!("../roots/amd/genoa/ask.pem"),
    ),
    (
        AmdProduct::Turin,
        include_bytes!("../roots/amd/turin/ask.pem"),
    ),
];
const ASVK: [(AmdProduct, &[u8]); 3] = [
    (
        AmdProduct::Milan,
        include_bytes!("../roots/amd/milan/asvk.pem"),
    ),
    (
        AmdProduct::Genoa,
        include_bytes!("../roots/amd/genoa/asvk.pem"),
    ),
    (
        AmdProduct::Turin,
        include_bytes!("../roots/amd/turin/asvk.pem"),
    ),
];
const INTEL_ROOT: &[u8] = include_bytes!("../roots/intel/sgx-root-ca.der");

fn pick(table: &[(AmdProduct, &'static [u8]); 3], p: AmdProduct) -> &'static [u8] {
    table
        .iter()
        .find(|(q, _)| *q == p)
        .map(|(_, b)| *b)
        .unwrap_or_default()
}

/// The pinned ARK of `product`, checked against its fingerprint.
pub fn amd_ark(product: AmdProduct) -> Result<Cert, PkiError> {
    let cert = Cert::from_der_or_pem(pick(&ARK, product))?;
    if is_pinned_amd_ark(&cert) == Some(product) {
        Ok(cert)
    } else {
        Err(PkiError::Malformed {
            what: "compiled-in ARK",
            reason: "fingerprint mismatch".into(),
        })
    }
}

/// The ASK shipped for `product` (unverified: check it against [`amd_ark`]).
pub fn amd_ask(product: AmdProduct) -> Result<Cert, PkiError> {
    Cert::from_der_or_pem(pick(&ASK, product))
}

/// The ASVK shipped for `product` (unverified: check it against [`amd_ark`]).
pub fn amd_asvk(product: AmdProduct) -> Result<Cert, PkiError> {
    Cert::from_der_or_pem(pick(&ASVK, product))
}

/// Which product's pinned ARK this is, by fingerprint.
pub fn is_pinned_amd_ark(cert: &Cert) -> Option<AmdProduct> {
    let fp = hex::encode(cert.sha256());
    AMD_ARK_SHA256
        .iter()
        .find(|(_, h)| *h == fp)
        .map(|(p, _)| *p)
}

/// The pinned Intel SGX Root CA, checked against its fingerprint.
pub fn intel_sgx_root() -> Result<Cert, PkiError> {
    let cert = Cert::from_der(INTEL_ROOT)?;
    if is_pinned_intel_root(&cert) {
        Ok(cert)
    } else {
        Err(PkiError::Malformed {
            what: "compiled-in Intel root",
            reason: "fingerprint mismatch".into(),
        })
    }
}

/// Whether this is the pinned Intel SGX Root CA.
pub fn is_pinned_intel_root(cert: &Cert) -> bool {
    hex::encode(cert.sha256()) == INTEL_SGX_ROOT_SHA256
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::UnixTime;

    #[test]
    fn every_compiled_root_matches_its_pin_and_signs_its_intermediates() {
        let now = UnixTime::parse("2026-01-01").unwrap();
        for p in AmdProduct::ALL {
            let ark = amd_ark(p).unwrap();
            assert_eq!(AmdProduct::from_cert_name(&ark.subject_name()), Some(p));
            ark.verify_issued_by(&ark, None).unwrap();
            ark.check_valid_at(now).unwrap();
            for inter in [amd_ask(p).unwrap(), amd_asvk(p).unwrap()] {
                inter.verify_issued_by(&ark, None).unwrap();
                inter.check_valid_at(now).unwrap();
                assert_eq!(AmdProduct::from_cert_name(&inter.subject_name()), Some(p));
            }
        }
        let intel = intel_sgx_root().unwrap();
        intel.verify_issued_by(&intel, None).unwrap();
        assert_eq!(intel.subject_name(), "Intel SGX Root CA");
    }

    #[test]
    fn an_ark_of_one_product_does_not_sign_another_products_ask() {
        let milan = amd_ark(AmdProduct::Milan).unwrap();
        let genoa_ask = amd_ask(AmdProduct::Genoa).unwrap();
        assert!(genoa_ask.verify_issued_by(&milan, None).is_err());
    }
}
