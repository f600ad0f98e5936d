//! X.509 certificates and CRLs, checked with aws-lc-rs: signatures (RSA-PSS with
//! SHA-384 as AMD uses it, ECDSA P-256/P-384 as Intel and the SNP VCEK use it),
//! validity windows at a given `now`, and revocation. Everything here takes bytes from
//! outside the Keep's trust and fails with a typed error, never a panic.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use der::{Decode, Encode};
use std::sync::Arc;

use thiserror::Error;
use x509_cert::Certificate;
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::cache::SignatureCache;
use crate::time::UnixTime;
use crate::tlv;

/// The largest certificate or CRL accepted (Intel's PCK CRLs are a few KiB).
pub const MAX_DER: usize = 256 * 1024;
/// The most certificates accepted in one PEM chain.
pub const MAX_CHAIN: usize = 8;

/// Why a certificate or CRL was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PkiError {
    #[error("{what} is not valid DER: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("{what} is {len} bytes, over the {max} byte limit")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("no certificate in PEM input")]
    EmptyPem,
    #[error("PEM input holds more than {MAX_CHAIN} certificates")]
    ChainTooLong,
    #[error("unsupported signature algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("signature by {issuer:?} does not verify")]
    BadSignature { issuer: String },
    #[error("issuer name {found:?} is not the signer's subject {expected:?}")]
    IssuerMismatch { found: String, expected: String },
    #[error("{subject:?} is not valid until {not_before}")]
    NotYetValid {
        subject: String,
        not_before: UnixTime,
    },
    #[error("{subject:?} expired at {not_after}")]
    Expired {
        subject: String,
        not_after: UnixTime,
    },
    #[error("CRL from {issuer:?} is not valid until {this_update}")]
    CrlNotYetValid {
        issuer: String,
        this_update: UnixTime,
    },
    #[error("CRL from {issuer:?} expired at {next_update}")]
    CrlExpired {
        issuer: String,
        next_update: UnixTime,
    },
    #[error("{subject:?} (serial {serial}) is revoked")]
    Revoked { subject: String, serial: String },
    #[error("public key of {0:?} is not an uncompressed EC point")]
    BadPublicKey(String),
}

/// The signature schemes the supported TEE vendors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    /// RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48 (AMD ARK/ASK/ASVK/VCEK/VLEK and CRLs).
    RsaPssSha384,
    /// ECDSA P-256 with SHA-256, DER signature (Intel PCK chain and CRLs).
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384, DER signature.
    EcdsaP384Sha384,
    /// ECDSA P-256 with SHA-256, raw `r || s` (32 + 32 bytes, big-endian): DCAP quotes,
    /// QE reports, TCB info and QE identity.
    EcdsaP256Sha256Fixed,
    /// ECDSA P-384 with SHA-384, raw `r || s` (48 + 48 bytes, big-endian): SNP reports
    /// once their little-endian fields are converted.
    EcdsaP384Sha384Fixed,
}

impl SigAlg {
    fn name(self) -> &'static str {
        match self {
            SigAlg::RsaPssSha384 => "rsa-pss-sha384",
            SigAlg::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SigAlg::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            SigAlg::EcdsaP256Sha256Fixed => "ecdsa-p256-sha256-fixed",
            SigAlg::EcdsaP384Sha384Fixed => "ecdsa-p384-sha384-fixed",
        }
    }

    fn aws(self) -> &'static dyn VerificationAlgorithm {
        match self {
            SigAlg::RsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
            SigAlg::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            SigAlg::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
            SigAlg::EcdsaP256Sha256Fixed => &signature::ECDSA_P256_SHA256_FIXED,
            SigAlg::EcdsaP384Sha384Fixed => &signature::ECDSA_P384_SHA384_FIXED,
        }
    }

    /// Maps an X.509 AlgorithmIdentifier to a scheme; RSA-PSS only with exactly the
    /// SHA-384 parameters (trailer field explicit or omitted).
    pub fn from_x509(alg: &AlgorithmIdentifierOwned) -> Result<Self, PkiError> {
        const RSA_PSS: &str = "1.2.840.113549.1.1.10";
        const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
        const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
        let oid = alg.oid.to_string();
        let params = alg.parameters.as_ref().and_then(|p| p.to_der().ok());
        match oid.as_str() {
            RSA_PSS => {
                let p = params.unwrap_or_default();
                if p == PSS_SHA384_PARAMS || p == PSS_SHA384_PARAMS_NO_TRAILER {
                    Ok(SigAlg::RsaPssSha384)
                } else {
                    Err(PkiError::UnsupportedAlgorithm(format!(
                        "RSA-PSS with parameters {}",
                        hex::encode(p)
                    )))
                }
            }
            ECDSA_SHA256 if params.is_none() => Ok(SigAlg::EcdsaP256Sha256),
            ECDSA_SHA384 if params.is_none() => Ok(SigAlg::EcdsaP384Sha384),
            _ => Err(PkiError::UnsupportedAlgorithm(oid)),
        }
    }
}

/// RSASSA-PSS-params for SHA-384 / MGF1-SHA-384 / salt 48 / trailer 1, as AMD encodes them.
const PSS_SHA384_PARAMS: &[u8] = &[
    0x30, 0x39, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
    0x02, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
    0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0xa2, 0x03, 0x02, 0x01, 0x30, 0xa3, 0x03, 0x02, 0x01, 0x01,
];
/// The same parameters with the default trailer field left out (canonical DER).
const PSS_SHA384_PARAMS_NO_TRAILER: &[u8] = &[
    0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
    0x02, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
    0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0xa2, 0x03, 0x02, 0x01, 0x30,
];

/// Verifies `signature` over `message` with `public_key` (an RSAPublicKey DER for
/// RSA, an uncompressed SEC1 point for ECDSA). A cache hit skips the math.
pub fn verify_signature(
    alg: SigAlg,
    public_key: &[u8],
    message: &[u8],
    sig: &[u8],
    cache: Option<&SignatureCache>,
) -> bool {
    if cache.is_some_and(|c| c.contains(alg.name(), public_key, message, sig)) {
        return true;
    }
    let ok = UnparsedPublicKey::new(alg.aws(), public_key)
        .verify(message, sig)
        .is_ok();
    if ok && let Some(c) = cache {
        c.insert(alg.name(), public_key, message, sig);
    }
    ok
}

/// A parsed certificate that keeps its exact DER bytes.
/// Cloning is cheap (the bytes and the parsed form are shared).
#[derive(Debug, Clone)]
pub struct Cert {
    der: Arc<[u8]>,
    cert: Arc<Certificate>,
    tbs: std::ops::Range<usize>,
}

impl Cert {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        if der.len() > MAX_DER {
            return Err(PkiError::TooLarge {
                what: "certificate",
                len: der.len(),
                max: MAX_DER,
            });
        }
        let cert = Certificate::from_der(der).map_err(|e| PkiError::Malformed {
            what: "certificate",
            reason: e.to_string(),
        })?;
        let tbs = tlv::signed_part(der).ok_or(PkiError::Malformed {
            what: "certificate",
            reason: "no tbsCertificate".into(),
        })?;
        let start = tbs.as_ptr() as usize - der.as_ptr() as usize;
        Ok(Cert {
            der: der.into(),
            cert: Arc::new(cert),
            tbs: start..start + tbs.len(),
        })
    }

    /// Parses every certificate in PEM text (leaf first, as Intel and AMD ship them).
    pub fn chain_from_pem(pem: &[u8]) -> Result<Vec<Self>, PkiError> {
        let mut out = Vec::new();
        for der in pem_blocks(pem, "CERTIFICATE")? {
            if out.len() == MAX_CHAIN {
                return Err(PkiError::ChainTooLong);
            }
            out.push(Cert::from_der(&der)?);
        }
        if out.is_empty() {
            return Err(PkiError::EmptyPem);
        }
        Ok(out)
    }

    /// Parses a chain given as PEM text, or as DER certificates back to back (each is
    /// self-delimiting), leaf first.
    pub fn chain_from_pem_or_der(bytes: &[u8]) -> Result<Vec<Self>, PkiError> {
        if bytes.first() != Some(&0x30) {
            return Cert::chain_from_pem(bytes);
        }
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            if out.len() == MAX_CHAIN {
                return Err(PkiError::ChainTooLong);
            }
            let (one, tail) = tlv::read(rest).ok_or(PkiError::Malformed {
                what: "certificate chain",
                reason: "not DER certificates back to back".into(),
            })?;
            out.push(Cert::from_der(one.whole)?);
            rest = tail;
        }
        Ok(out)
    }

    /// Parses DER, or the first certificate of PEM text.
    pub fn from_der_or_pem(bytes: &[u8]) -> Result<Self, PkiError> {
        if bytes.starts_with(b"-----BEGIN")
            || bytes.first().is_some_and(|b| b.is_ascii_whitespace())
        {
            let mut chain = Cert::chain_from_pem(bytes)?;
            return Ok(chain.swap_remove(0));
        }
        Cert::from_der(bytes)
    }

    /// The certificate's DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed certificate.
    pub fn x509(&self) -> &Certificate {
        &self.cert
    }

    /// SHA-256 over the DER: the fingerprint roots are pinned by.
    pub fn sha256(&self) -> [u8; 32] {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// The subject's common name, or the whole subject when it has none.
    pub fn subject_name(&self) -> String {
        common_name(self.cert.tbs_certificate().subject())
    }

    /// The serial number's content bytes (big-endian, as encoded).
    pub fn serial(&self) -> &[u8] {
        self.cert.tbs_certificate().serial_number().as_bytes()
    }

    /// `notBefore`.
    pub fn not_before(&self) -> UnixTime {
        to_unix(self.cert.tbs_certificate().validity().not_before)
    }

    /// `notAfter`.
    pub fn not_after(&self) -> UnixTime {
        to_unix(self.cert.tbs_certificate().validity().not_after)
    }

    /// Checks `notBefore <= now <= notAfter`.
    pub fn check_valid_at(&self, now: UnixTime) -> Result<(), PkiError> {
        if now < self.not_before() {
            return Err(PkiError::NotYetValid {
                subject: self.subject_name(),
                not_before: self.not_before(),
            });
        }
        if now > self.not_after() {
            return Err(PkiError::Expired {
                subject: self.subject_name(),
                not_after: self.not_after(),
            });
        }
        Ok(())
    }

    /// The subjectPublicKey bits: an RSAPublicKey DER or an uncompressed EC point.
    pub fn public_key(&self) -> &[u8] {
        self.cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes()
    }

    /// The OID of the subject key's algorithm and, for EC keys, its curve.
    pub fn public_key_algorithm(&self) -> (String, Option<String>) {
        let spki = self.cert.tbs_certificate().subject_public_key_info();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
            .map(|o| o.to_string());
        (spki.algorithm.oid.to_string(), curve)
    }

    /// The raw `extnValue` contents of the extension with this OID, if present once.
    pub fn extension(&self, oid: &str) -> Option<&[u8]> {
        let exts = self.cert.tbs_certificate().extensions()?;
        let mut found = exts.iter().filter(|e| e.extn_id.to_string() == oid);
        let first = found.next()?;
        if found.next().is_some() {
            return None;
        }
        Some(first.extn_value.as_bytes())
    }

    /// The signature scheme this certificate was signed with.
    pub fn signature_algorithm(&self) -> Result<SigAlg, PkiError> {
        SigAlg::from_x509(self.cert.signature_algorithm())
    }

    /// Checks that `issuer` signed this certificate: the issuer name matches the
    /// signer's subject, the outer and inner algorithms agree, and the signature
    /// over the exact `tbsCertificate` bytes verifies with the signer's key.
    pub fn verify_issued_by(
        &self,
        issuer: &Cert,
        cache: Option<&SignatureCache>,
    ) -> Result<(), PkiError> {
        let tbs = self.cert.tbs_certificate();
        if tbs.issuer() != issuer.cert.tbs_certificate().subject() {
            return Err(PkiError::IssuerMismatch {
                found: common_name(tbs.issuer()),
                expected: issuer.subject_name(),
            });
        }
        if tbs.signature() != self.cert.signature_algorithm() {
            return Err(PkiError::UnsupportedAlgorithm(
                "inner and outer signature algorithms differ".into(),
            ));
        }
        let alg = self.signature_algorithm()?;
        if self.cert.signature().unused_bits() != 0 {
            return Err(PkiError::Malformed {
                what: "certificate",
                reason: "signature BIT STRING has unused bits".into(),
            });
        }
        let sig = self.cert.signature().raw_bytes();
        let message = self.der.get(self.tbs.clone()).unwrap_or_default();
        if verify_signature(alg, issuer.public_key(), message, sig, cache) {
            Ok(())
        } else {
            Err(PkiError::BadSignature {
                issuer: issuer.subject_name(),
            })
        }
    }
}

/// A parsed CRL that keeps its exact DER bytes.
///
/// The small fields (algorithms, issuer, dates, signature) are decoded with
/// `x509-cert`; the list of revoked certificates, which can hold thousands of
/// entries, is only checked for shape at parse time (every entry a SEQUENCE that
/// starts with an INTEGER serial) and walked again, without allocating, when a
/// certificate is looked up. The signature covers the exact bytes either way.
/// Cloning is cheap (the bytes are shared).
#[derive(Debug, Clone)]
pub struct Crl {
    der: Arc<[u8]>,
    tbs: std::ops::Range<usize>,
    /// Contents of the `revokedCertificates` SEQUENCE (empty when absent).
    revoked: std::ops::Range<usize>,
    revoked_count: usize,
    inner_alg: AlgorithmIdentifierOwned,
    outer_alg: AlgorithmIdentifierOwned,
    issuer: x509_cert::name::Name,
    this_update: x509_cert::time::Time,
    next_update: Option<x509_cert::time::Time>,
    signature: der::asn1::BitString,
}

impl Crl {
    /// Parses a DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        if der.len() > MAX_DER {
            return Err(PkiError::TooLarge {
                what: "CRL",
                len: der.len(),
                max: MAX_DER,
            });
        }
        let malformed = |reason: &str| PkiError::Malformed {
            what: "CRL",
            reason: reason.into(),
        };
        let decode_err = |e: der::Error| PkiError::Malformed {
            what: "CRL",
            reason: e.to_string(),
        };
        let offset = |part: &[u8]| part.as_ptr() as usize - der.as_ptr() as usize;
        let (outer, trailing) = tlv::read(der).ok_or_else(|| malformed("not a DER element"))?;
        if outer.tag != 0x30 || !trailing.is_empty() {
            return Err(malformed("not one SEQUENCE"));
        }
        let (tbs, rest) = tlv::read(outer.contents).ok_or_else(|| malformed("no tbsCertList"))?;
        let (outer_alg, rest) =
            tlv::read(rest).ok_or_else(|| malformed("no signatureAlgorithm"))?;
        let (sig, rest) = tlv::read(rest).ok_or_else(|| malformed("no signatureValue"))?;
        if tbs.tag != 0x30 || outer_alg.tag != 0x30 || sig.tag != 0x03 || !rest.is_empty() {
            return Err(malformed(
                "CertificateList is not tbsCertList, algorithm, signature",
            ));
        }
        let mut fields = tbs.contents;
        let mut next = |what: &str| -> Result<Option<tlv::Tlv<'_>>, PkiError> {
            if fields.is_empty() {
                return Ok(None);
            }
            let (t, rest) = tlv::read(fields).ok_or_else(|| malformed(what))?;
            fields = rest;
            Ok(Some(t))
        };
        let mut field = next("tbsCertList")?.ok_or_else(|| malformed("empty tbsCertList"))?;
        if field.tag == 0x02 {
            // version v2 (INTEGER 1)
            if field.contents != [1] {
                return Err(malformed("version is not v2"));
            }
            field = next("tbsCertList")?.ok_or_else(|| malformed("no signature algorithm"))?;
        }
        let inner_alg = AlgorithmIdentifierOwned::from_der(field.whole).map_err(decode_err)?;
        let issuer = next("issuer")?.ok_or_else(|| malformed("no issuer"))?;
        let issuer = x509_cert::name::Name::from_der(issuer.whole).map_err(decode_err)?;
        let this = next("thisUpdate")?.ok_or_else(|| malformed("no thisUpdate"))?;
        let this_update = x509_cert::time::Time::from_der(this.whole).map_err(decode_err)?;
        let mut field = next("tbsCertList")?;
        let mut next_update = None;
        if let Some(t) = field.filter(|t| t.tag == 0x17 || t.tag == 0x18) {
            next_update = Some(x509_cert::time::Time::from_der(t.whole).map_err(decode_err)?);
            field = next("tbsCertList")?;
        }
        let mut revoked = 0..0;
        let mut revoked_count = 0;
        if let Some(t) = field.filter(|t| t.tag == 0x30) {
            revoked_count = revoked_serials(t.contents)
                .try_fold(0usize, |n, s| s.map(|_| n + 1))
                .ok_or_else(|| malformed("a revokedCertificates entry"))?;
            revoked = offset(t.contents)..offset(t.contents) + t.contents.len();
            field = next("tbsCertList")?;
        }
        if let Some(t) = field {
            if t.tag != 0xa0 {
                return Err(malformed(
                    "unexpected element after the revoked certificates",
                ));
            }
            x509_cert::ext::Extensions::from_der(t.contents).map_err(decode_err)?;
            if next("tbsCertList")?.is_some() {
                return Err(malformed("trailing data in tbsCertList"));
            }
        }
        Ok(Crl {
            der: der.into(),
            tbs: offset(tbs.whole)..offset(tbs.whole) + tbs.whole.len(),
            revoked,
            revoked_count,
            inner_alg,
            outer_alg: AlgorithmIdentifierOwned::from_der(outer_alg.whole).map_err(decode_err)?,
            issuer,
            this_update,
            next_update,
            signature: der::asn1::BitString::from_der(sig.whole).map_err(decode_err)?,
        })
    }

    /// Parses DER, PEM (`X509 CRL`), or hex-encoded DER (as PCCS ships `pck_crl`).
    pub fn from_any(bytes: &[u8]) -> Result<Self, PkiError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.starts_with(b"-----BEGIN") {
            let blocks = pem_blocks(trimmed, "X509 CRL")?;
            let first = blocks.into_iter().next().ok_or(PkiError::EmptyPem)?;
            return Crl::from_der(&first);
        }
        if !trimmed.is_empty() && trimmed.iter().all(|b| b.is_ascii_hexdigit()) {
            let der = decode_hex(trimmed).ok_or(PkiError::Malformed {
                what: "CRL",
                reason: "hex: odd number of digits".into(),
            })?;
            return Crl::from_der(&der);
        }
        Crl::from_der(bytes)
    }

    /// The CRL's DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The issuer's common name.
    pub fn issuer_name(&self) -> String {
        common_name(&self.issuer)
    }

    /// Whether this CRL names `cert`'s subject as its issuer (says nothing of the
    /// signature: see [`Crl::verify_issued_by`]).
    pub fn names_issuer(&self, cert: &Cert) -> bool {
        self.issuer == *cert.cert.tbs_certificate().subject()
    }

    /// Checks that `issuer` signed this CRL.
    pub fn verify_issued_by(
        &self,
        issuer: &Cert,
        cache: Option<&SignatureCache>,
    ) -> Result<(), PkiError> {
        if self.issuer != *issuer.cert.tbs_certificate().subject() {
            return Err(PkiError::IssuerMismatch {
                found: self.issuer_name(),
                expected: issuer.subject_name(),
            });
        }
        if self.inner_alg != self.outer_alg {
            return Err(PkiError::UnsupportedAlgorithm(
                "inner and outer signature algorithms differ".into(),
            ));
        }
        let alg = SigAlg::from_x509(&self.outer_alg)?;
        if self.signature.unused_bits() != 0 {
            return Err(PkiError::Malformed {
                what: "CRL",
                reason: "signature BIT STRING has unused bits".into(),
            });
        }
        let message = self.der.get(self.tbs.clone()).unwrap_or_default();
        if verify_signature(
            alg,
            issuer.public_key(),
            message,
            self.signature.raw_bytes(),
            cache,
        ) {
            Ok(())
        } else {
            Err(PkiError::BadSignature {
                issuer: issuer.subject_name(),
            })
        }
    }

    /// Checks `thisUpdate <= now <= nextUpdate` (a CRL without nextUpdate never expires).
    pub fn check_valid_at(&self, now: UnixTime) -> Result<(), PkiError> {
        let this_update = to_unix(self.this_update);
        if now < this_update {
            return Err(PkiError::CrlNotYetValid {
                issuer: self.issuer_name(),
                this_update,
            });
        }
        if let Some(next) = self.next_update {
            let next_update = to_unix(next);
            if now > next_update {
                return Err(PkiError::CrlExpired {
                    issuer: self.issuer_name(),
                    next_update,
                });
            }
        }
        Ok(())
    }

    /// Whether this CRL lists `cert` (same issuer name and serial number).
    pub fn revokes(&self, cert: &Cert) -> bool {
        if self.issuer != *cert.cert.tbs_certificate().issuer() {
            return false;
        }
        let serial = normalize_serial(cert.serial());
        let list = self.der.get(self.revoked.clone()).unwrap_or_default();
        revoked_serials(list).any(|r| r.is_some_and(|r| normalize_serial(r) == serial))
    }

    /// Fails with [`PkiError::Revoked`] when this CRL lists `cert`.
    pub fn check_not_revoked(&self, cert: &Cert) -> Result<(), PkiError> {
        if self.revokes(cert) {
            Err(PkiError::Revoked {
                subject: cert.subject_name(),
                serial: hex::encode(cert.serial()),
            })
        } else {
            Ok(())
        }
    }

    /// Number of revoked serials listed.
    pub fn revoked_count(&self) -> usize {
        self.revoked_count
    }
}

/// The serial numbers (INTEGER contents) of a `revokedCertificates` list, in order;
/// `None` for an entry that is not a SEQUENCE starting with an INTEGER (then the
/// walk stops).
fn revoked_serials(mut list: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    std::iter::from_fn(move || {
        if list.is_empty() {
            return None;
        }
        let entry = tlv::read(list).and_then(|(entry, rest)| {
            let (serial, _) = tlv::read(entry.contents)?;
            (entry.tag == 0x30 && serial.tag == 0x02 && !serial.contents.is_empty())
                .then_some((serial.contents, rest))
        });
        match entry {
            Some((serial, rest)) => {
                list = rest;
                Some(Some(serial))
            }
            None => {
                list = &[];
                Some(None)
            }
        }
    })
}

/// Decodes hex digits (either case); `None` for an odd count or a non-digit.
fn decode_hex(digits: &[u8]) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

/// Serial numbers compare without leading zero bytes.
fn normalize_serial(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != 0).unwrap_or(s.len());
    &s[start..]
}

fn to_unix(t: x509_cert::time::Time) -> UnixTime {
    UnixTime(i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX))
}

fn common_name(name: &x509_cert::name::Name) -> String {
    match name.common_name() {
        Ok(Some(cn)) => String::from(cn),
        _ => name.to_string(),
    }
}

/// Decodes every PEM block with the given label; other labels are skipped.
pub fn pem_blocks(pem: &[u8], label: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    use base64::Engine;
    if pem.len() > MAX_DER * 4 {
        return Err(PkiError::TooLarge {
            what: "PEM input",
            len: pem.len(),
            max: MAX_DER * 4,
        });
    }
    let text = std::str::from_utf8(pem).map_err(|_| PkiError::Malformed {
        what: "PEM input",
        reason: "not UTF-8".into(),
    })?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(b) = rest.find(&begin) {
        let after = &rest[b + begin.len()..];
        let Some(e) = after.find(&end) else {
            return Err(PkiError::Malformed {
                what: "PEM input",
                reason: format!("no {end}"),
            });
        };
        let mut body = Vec::with_capacity(e);
        for line in after.as_bytes()[..e].split(|c| *c == b'\n') {
            let line = line.trim_ascii();
            if line.iter().any(u8::is_ascii_whitespace) {
                body.extend(line.iter().filter(|c| !c.is_ascii_whitespace()));
            } else {
                body.extend_from_slice(line);
            }
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(&body)
            .map_err(|e| PkiError::Malformed {
                what: "PEM input",
                reason: format!("base64: {e}"),
            })?;
        out.push(der);
        rest = &after[e + end.len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod crl_tests {
    use super::*;
    use x509_cert::crl::CertificateList;

    /// Every CRL among the vectors: AMD's (DER) and Intel's (hex DER in collateral).
    fn vector_crls() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let mut out = Vec::new();
        for name in ["crl0.der", "crl1.der"] {
            let p = dir.join("snp/genoa-revoked-ask").join(name);
            out.push((name.to_string(), std::fs::read(p).unwrap()));
        }
        for case in [
            "tdx/dcap-qvl-uptodate",
            "tdx/gcp-outofdate",
            "sgx/dcap-rs-v3-outofdate",
        ] {
            let json = std::fs::read(dir.join(case).join("collateral.json")).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            for field in ["root_ca_crl", "pck_crl"] {
                let text = v[field].as_str().unwrap().trim().to_string();
                let der = decode_hex(text.as_bytes()).unwrap_or_else(|| text.into_bytes());
                out.push((format!("{case} {field}"), der));
            }
        }
        out
    }

    #[test]
    fn the_lazy_parse_agrees_with_a_full_decode() {
        for (name, der) in vector_crls() {
            let full: CertificateList = CertificateList::from_der(&der).unwrap();
            let lazy = Crl::from_der(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
            let serials: Vec<&[u8]> = full
                .tbs_cert_list
                .revoked_certificates
                .iter()
                .flatten()
                .map(|r| r.serial_number.as_bytes())
                .collect();
            assert_eq!(lazy.revoked_count(), serials.len(), "{name}");
            let walked: Vec<&[u8]> = revoked_serials(&der[lazy.revoked.clone()])
                .map(Option::unwrap)
                .collect();
            assert_eq!(walked, serials, "{name}");
            assert_eq!(
                to_unix(full.tbs_cert_list.this_update),
                to_unix(lazy.this_update)
            );
            assert_eq!(lazy.issuer, full.tbs_cert_list.issuer, "{name}");
        }
    }

    #[test]
    fn truncated_or_extended_crls_are_refused() {
        for (name, der) in vector_crls() {
            for len in (0..der.len()).step_by(7) {
                assert!(Crl::from_der(&der[..len]).is_err(), "{name} cut at {len}");
            }
            let mut long = der.clone();
            long.push(0);
            assert!(Crl::from_der(&long).is_err(), "{name} with a trailing byte");
        }
    }

    #[test]
    fn a_malformed_revoked_entry_is_refused() {
        // Find a CRL with entries and make the first entry's serial tag not INTEGER.
        let (name, der) = vector_crls()
            .into_iter()
            .find(|(_, d)| Crl::from_der(d).is_ok_and(|c| c.revoked_count() > 0))
            .unwrap();
        let crl = Crl::from_der(&der).unwrap();
        let mut bad = der.clone();
        let first_entry = crl.revoked.start;
        let (entry, _) = tlv::read(&der[first_entry..]).unwrap();
        let serial_tag_at =
            first_entry + (entry.contents.as_ptr() as usize - entry.whole.as_ptr() as usize);
        assert_eq!(bad[serial_tag_at], 0x02, "{name}");
        bad[serial_tag_at] = 0x04;
        assert!(Crl::from_der(&bad).is_err(), "{name}");
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex(b"00aB10ff"), Some(vec![0, 0xab, 0x10, 0xff]));
        assert_eq!(decode_hex(b""), Some(vec![]));
        assert_eq!(decode_hex(b"abc"), None);
        assert_eq!(decode_hex(b"zz"), None);
    }
}
