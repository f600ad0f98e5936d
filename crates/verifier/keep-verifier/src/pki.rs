//! X.509 certificates and CRLs, checked with aws-lc-rs: signatures (RSA-PSS with
//! SHA-384 as AMD uses it, ECDSA P-256/P-384 as Intel and the SNP VCEK use it),
//! validity windows at a given `now`, and revocation. Everything here takes bytes from
//! outside the Keep's trust and fails with a typed error, never a panic.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use der::{Decode, Encode};
use thiserror::Error;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
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
    let key = cache.map(|_| SignatureCache::key(alg.name(), public_key, message, sig));
    if let (Some(c), Some(k)) = (cache, key.as_ref())
        && c.contains(k)
    {
        return true;
    }
    let ok = UnparsedPublicKey::new(alg.aws(), public_key)
        .verify(message, sig)
        .is_ok();
    if ok && let (Some(c), Some(k)) = (cache, key) {
        c.insert(k);
    }
    ok
}

/// A parsed certificate that keeps its exact DER bytes.
#[derive(Debug, Clone)]
pub struct Cert {
    der: Vec<u8>,
    cert: Certificate,
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
            der: der.to_vec(),
            cert,
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
#[derive(Debug, Clone)]
pub struct Crl {
    der: Vec<u8>,
    crl: CertificateList,
    tbs: std::ops::Range<usize>,
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
        let crl = CertificateList::from_der(der).map_err(|e| PkiError::Malformed {
            what: "CRL",
            reason: e.to_string(),
        })?;
        let tbs = tlv::signed_part(der).ok_or(PkiError::Malformed {
            what: "CRL",
            reason: "no tbsCertList".into(),
        })?;
        let start = tbs.as_ptr() as usize - der.as_ptr() as usize;
        Ok(Crl {
            der: der.to_vec(),
            crl,
            tbs: start..start + tbs.len(),
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
            let der = hex::decode(trimmed).map_err(|e| PkiError::Malformed {
                what: "CRL",
                reason: format!("hex: {e}"),
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
        common_name(&self.crl.tbs_cert_list.issuer)
    }

    /// Checks that `issuer` signed this CRL.
    pub fn verify_issued_by(
        &self,
        issuer: &Cert,
        cache: Option<&SignatureCache>,
    ) -> Result<(), PkiError> {
        if self.crl.tbs_cert_list.issuer != *issuer.cert.tbs_certificate().subject() {
            return Err(PkiError::IssuerMismatch {
                found: self.issuer_name(),
                expected: issuer.subject_name(),
            });
        }
        if self.crl.tbs_cert_list.signature != self.crl.signature_algorithm {
            return Err(PkiError::UnsupportedAlgorithm(
                "inner and outer signature algorithms differ".into(),
            ));
        }
        let alg = SigAlg::from_x509(&self.crl.signature_algorithm)?;
        if self.crl.signature.unused_bits() != 0 {
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
            self.crl.signature.raw_bytes(),
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
        let this_update = to_unix(self.crl.tbs_cert_list.this_update);
        if now < this_update {
            return Err(PkiError::CrlNotYetValid {
                issuer: self.issuer_name(),
                this_update,
            });
        }
        if let Some(next) = self.crl.tbs_cert_list.next_update {
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
        if self.crl.tbs_cert_list.issuer != *cert.cert.tbs_certificate().issuer() {
            return false;
        }
        let serial = normalize_serial(cert.serial());
        self.crl
            .tbs_cert_list
            .revoked_certificates
            .iter()
            .flatten()
            .any(|r| normalize_serial(r.serial_number.as_bytes()) == serial)
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
        self.crl
            .tbs_cert_list
            .revoked_certificates
            .as_ref()
            .map_or(0, Vec::len)
    }
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
        let body: String = after[..e]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| PkiError::Malformed {
                what: "PEM input",
                reason: format!("base64: {e}"),
            })?;
        out.push(der);
        rest = &after[e + end.len()..];
    }
    Ok(out)
}
