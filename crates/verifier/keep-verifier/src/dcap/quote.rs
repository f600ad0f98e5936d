//! The DCAP quote layouts: SGX quote v3 and TDX quote v4 and v5, all signed with an
//! ECDSA P-256 attestation key.
//!
//! ```text
//! header (48) | body | signature data length (u32) | signature data | zero padding
//! v3 body: SGX enclave report (384)          v4 body: TD report 1.0 (584)
//! v5 body: type (u16) | size (u32) | report (SGX 384, TD 1.0 584, TD 1.5 648)
//!
//! v3 signature data: signature (64) | attestation key (64) | QE report (384) |
//!     QE report signature (64) | QE auth data (u16 + bytes) | certification data
//! v4/v5 signature data: signature (64) | attestation key (64) | certification data
//!     of type 6, whose payload is: QE report (384) | QE report signature (64) |
//!     QE auth data (u16 + bytes) | certification data
//! certification data: type (u16) | size (u32) | bytes; type 5 = PEM PCK chain
//! ```
//!
//! The signed part is the header and the body (for v5 including the body type and
//! size). Every length is checked against what is left; a length field must match
//! the data exactly. Bytes after the signature data (zero padding to a fixed buffer
//! size, or anything else) are accepted and ignored, as Intel's QVL does: no
//! signature covers them, so they can say nothing. Their count is kept
//! ([`Quote::trailing_bytes`]) and reported by the verifier.

use super::error::DcapError;
use super::reader::Reader;
use super::report::{
    ENCLAVE_REPORT_LEN, EnclaveReport, TD_REPORT10_LEN, TD_REPORT15_LEN, TdReport10, TdReport15,
};

/// The largest quote accepted (real ones are about 5 KiB).
pub const MAX_QUOTE: usize = 64 * 1024;
/// Header size, the same in every version.
pub const HEADER_LEN: usize = 48;
/// TEE type of SGX quotes.
pub const TEE_TYPE_SGX: u32 = 0;
/// TEE type of TDX quotes.
pub const TEE_TYPE_TDX: u32 = 0x81;
/// Attestation key type ECDSA-256-with-P-256 curve.
pub const KEY_TYPE_ECDSA_P256: u16 = 2;
/// Certification data: PEM chain PCK leaf, PCK CA, root.
pub const CERT_DATA_PCK_CHAIN: u16 = 5;
/// Certification data: QE report, its signature, QE auth data and inner certification data.
pub const CERT_DATA_QE_REPORT: u16 = 6;
/// The QE vendor ID of Intel's quoting enclaves.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// The quote header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 3 (SGX), 4 or 5 (TDX).
    pub version: u16,
    /// Always [`KEY_TYPE_ECDSA_P256`] once parsed.
    pub attestation_key_type: u16,
    /// [`TEE_TYPE_SGX`] or [`TEE_TYPE_TDX`] (reserved, zero, in v3).
    pub tee_type: u32,
    /// QE SVN in v3; reserved in v4 and v5.
    pub qe_svn: u16,
    /// PCE SVN in v3; reserved in v4 and v5.
    pub pce_svn: u16,
    /// Who made the quoting enclave ([`INTEL_QE_VENDOR_ID`] for Intel).
    pub qe_vendor_id: [u8; 16],
    /// Free data from the quoting enclave (the first bytes hold the QE's key ID).
    pub user_data: [u8; 20],
}

/// The attested report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// An SGX enclave report (quote v3).
    Sgx(EnclaveReport),
    /// A TD report 1.0 (quote v4, or v5 body type 2).
    Td10(TdReport10),
    /// A TD report 1.5 (quote v5 body type 3).
    Td15(TdReport15),
}

impl Body {
    /// The TD report fields shared by both TD layouts; `None` for SGX.
    pub fn td(&self) -> Option<&TdReport10> {
        match self {
            Body::Sgx(_) => None,
            Body::Td10(r) => Some(r),
            Body::Td15(r) => Some(&r.base),
        }
    }
}

/// A parsed quote. The signed bytes are kept exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The header.
    pub header: Header,
    /// The attested report.
    pub body: Body,
    /// Header and body as received: what the attestation key signed.
    signed: Vec<u8>,
    /// ECDSA P-256 signature (raw `r || s`) over the signed part.
    pub signature: [u8; 64],
    /// The attestation key (raw `x || y`).
    pub attestation_key: [u8; 64],
    /// The QE report as received (signed by the PCK).
    pub qe_report_raw: [u8; ENCLAVE_REPORT_LEN],
    /// The QE report, parsed.
    pub qe_report: EnclaveReport,
    /// ECDSA P-256 signature (raw `r || s`) of the PCK over the QE report.
    pub qe_report_signature: [u8; 64],
    /// QE authentication data, hashed with the attestation key into the QE report.
    pub qe_auth_data: Vec<u8>,
    /// Type of the innermost certification data (5 = PEM PCK chain).
    pub cert_data_type: u16,
    /// The innermost certification data.
    pub cert_data: Vec<u8>,
    /// How many bytes followed the signature data (ignored: no signature covers them).
    pub trailing_bytes: usize,
}

impl Quote {
    /// Parses a quote. Never panics; every malformation is a [`DcapError`].
    pub fn parse(bytes: &[u8]) -> Result<Quote, DcapError> {
        if bytes.len() > MAX_QUOTE {
            return Err(DcapError::TooLarge {
                what: "quote",
                len: bytes.len(),
                max: MAX_QUOTE,
            });
        }
        let mut r = Reader::new(bytes);
        let header = read_header(&mut r)?;
        let body = read_body(&mut r, &header)?;
        let signed = bytes.get(..r.pos()).unwrap_or_default().to_vec();
        let sig_data = r.sized_u32("signature data")?;
        let trailing_bytes = r.rest().len();
        let mut s = Reader::new(sig_data);
        let signature = s.array("quote signature")?;
        let attestation_key = s.array("attestation key")?;
        let qe = if header.version == 3 {
            let qe = read_qe_report_data(&mut s)?;
            s.finish("signature data")?;
            qe
        } else {
            let outer_type = s.u16("certification data type")?;
            if outer_type != CERT_DATA_QE_REPORT {
                return Err(DcapError::CertificationDataType {
                    found: outer_type,
                    expected: CERT_DATA_QE_REPORT,
                });
            }
            let outer = s.sized_u32("QE report certification data")?;
            s.finish("signature data")?;
            let mut o = Reader::new(outer);
            let qe = read_qe_report_data(&mut o)?;
            o.finish("QE report certification data")?;
            qe
        };
        Ok(Quote {
            header,
            body,
            signed,
            signature,
            attestation_key,
            qe_report_raw: qe.report_raw,
            qe_report: qe.report,
            qe_report_signature: qe.signature,
            qe_auth_data: qe.auth_data,
            cert_data_type: qe.cert_type,
            cert_data: qe.cert_data,
            trailing_bytes,
        })
    }

    /// The bytes the attestation key signed: the header and the body.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed
    }

    /// The PEM PCK chain (leaf first), when the certification data carries one.
    pub fn pck_chain_pem(&self) -> Option<&[u8]> {
        (self.cert_data_type == CERT_DATA_PCK_CHAIN).then_some(self.cert_data.as_slice())
    }

    /// True for TDX quotes.
    pub fn is_tdx(&self) -> bool {
        self.header.tee_type == TEE_TYPE_TDX
    }
}

fn read_header(r: &mut Reader<'_>) -> Result<Header, DcapError> {
    let version = r.u16("header version")?;
    let attestation_key_type = r.u16("header attestation key type")?;
    let tee_type = r.u32("header TEE type")?;
    let qe_svn = r.u16("header QE SVN")?;
    let pce_svn = r.u16("header PCE SVN")?;
    let qe_vendor_id = r.array("header QE vendor ID")?;
    let user_data = r.array("header user data")?;
    if !matches!(version, 3..=5) {
        return Err(DcapError::UnsupportedVersion(version));
    }
    if attestation_key_type != KEY_TYPE_ECDSA_P256 {
        return Err(DcapError::UnsupportedKeyType(attestation_key_type));
    }
    let tee_ok = match version {
        3 => tee_type == TEE_TYPE_SGX,
        _ => tee_type == TEE_TYPE_TDX,
    };
    if !tee_ok {
        return Err(DcapError::UnsupportedTee { version, tee_type });
    }
    Ok(Header {
        version,
        attestation_key_type,
        tee_type,
        qe_svn,
        pce_svn,
        qe_vendor_id,
        user_data,
    })
}

fn read_body(r: &mut Reader<'_>, header: &Header) -> Result<Body, DcapError> {
    match header.version {
        3 => Ok(Body::Sgx(EnclaveReport::parse(
            r.take(ENCLAVE_REPORT_LEN, "SGX enclave report")?,
        )?)),
        4 => Ok(Body::Td10(TdReport10::parse(
            r.take(TD_REPORT10_LEN, "TD report 1.0")?,
        )?)),
        _ => {
            let body_type = r.u16("body type")?;
            let size = r.u32("body size")?;
            let expected = match body_type {
                2 => TD_REPORT10_LEN,
                3 => TD_REPORT15_LEN,
                other => return Err(DcapError::UnsupportedBodyType(other)),
            };
            if usize::try_from(size).ok() != Some(expected) {
                return Err(DcapError::BodySize {
                    body_type,
                    size,
                    expected,
                });
            }
            let bytes = r.take(expected, "TD report")?;
            if body_type == 2 {
                Ok(Body::Td10(TdReport10::parse(bytes)?))
            } else {
                Ok(Body::Td15(TdReport15::parse(bytes)?))
            }
        }
    }
}

/// The QE report and what follows it (the v3 signature data tail, or the payload of
/// certification data type 6).
struct QeReportData {
    report_raw: [u8; ENCLAVE_REPORT_LEN],
    report: EnclaveReport,
    signature: [u8; 64],
    auth_data: Vec<u8>,
    cert_type: u16,
    cert_data: Vec<u8>,
}

fn read_qe_report_data(r: &mut Reader<'_>) -> Result<QeReportData, DcapError> {
    let report_raw: [u8; ENCLAVE_REPORT_LEN] = r.array("QE report")?;
    let report = EnclaveReport::parse(&report_raw)?;
    let signature = r.array("QE report signature")?;
    let auth_data = r.sized_u16("QE authentication data")?.to_vec();
    let cert_type = r.u16("certification data type")?;
    let cert_data = r.sized_u32("certification data")?.to_vec();
    Ok(QeReportData {
        report_raw,
        report,
        signature,
        auth_data,
        cert_type,
        cert_data,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a structurally valid quote of `version` around `body` with dummy
    /// signature material and the given certification data.
    pub(crate) fn build(version: u16, body: &[u8], cert: &[u8]) -> Vec<u8> {
        let mut q = Vec::new();
        q.extend(version.to_le_bytes());
        q.extend(KEY_TYPE_ECDSA_P256.to_le_bytes());
        let tee = if version == 3 {
            TEE_TYPE_SGX
        } else {
            TEE_TYPE_TDX
        };
        q.extend(tee.to_le_bytes());
        q.extend([0u8; 4]);
        q.extend(INTEL_QE_VENDOR_ID);
        q.extend([0u8; 20]);
        if version == 5 {
            let t: u16 = if body.len() == TD_REPORT15_LEN { 3 } else { 2 };
            q.extend(t.to_le_bytes());
            q.extend((body.len() as u32).to_le_bytes());
        }
        q.extend(body);
        let mut qe = Vec::new();
        qe.extend([0x11u8; ENCLAVE_REPORT_LEN]);
        qe.extend([0x22u8; 64]);
        qe.extend(32u16.to_le_bytes());
        qe.extend([0x33u8; 32]);
        qe.extend(CERT_DATA_PCK_CHAIN.to_le_bytes());
        qe.extend((cert.len() as u32).to_le_bytes());
        qe.extend(cert);
        let mut sig = Vec::new();
        sig.extend([0x44u8; 64]);
        sig.extend([0x55u8; 64]);
        if version == 3 {
            sig.extend(qe);
        } else {
            sig.extend(CERT_DATA_QE_REPORT.to_le_bytes());
            sig.extend((qe.len() as u32).to_le_bytes());
            sig.extend(qe);
        }
        q.extend((sig.len() as u32).to_le_bytes());
        q.extend(sig);
        q
    }

    #[test]
    fn parses_v3_sgx() {
        let mut body = [0u8; ENCLAVE_REPORT_LEN];
        body[64] = 0xee;
        let q = Quote::parse(&build(3, &body, b"pem")).unwrap();
        assert_eq!(q.header.version, 3);
        assert!(!q.is_tdx());
        assert!(matches!(&q.body, Body::Sgx(r) if r.mr_enclave[0] == 0xee));
        assert_eq!(q.signed_bytes().len(), HEADER_LEN + ENCLAVE_REPORT_LEN);
        assert_eq!(q.signature, [0x44; 64]);
        assert_eq!(q.attestation_key, [0x55; 64]);
        assert_eq!(q.qe_report_raw, [0x11; ENCLAVE_REPORT_LEN]);
        assert_eq!(q.qe_auth_data, vec![0x33; 32]);
        assert_eq!(q.pck_chain_pem(), Some(&b"pem"[..]));
    }

    #[test]
    fn parses_v4_and_v5_tdx() {
        let q4 = Quote::parse(&build(4, &[0u8; TD_REPORT10_LEN], b"x")).unwrap();
        assert!(q4.is_tdx());
        assert!(matches!(q4.body, Body::Td10(_)));
        assert_eq!(q4.signed_bytes().len(), HEADER_LEN + TD_REPORT10_LEN);
        let q5 = Quote::parse(&build(5, &[0u8; TD_REPORT15_LEN], b"x")).unwrap();
        assert!(matches!(q5.body, Body::Td15(_)));
        assert_eq!(q5.signed_bytes().len(), HEADER_LEN + 6 + TD_REPORT15_LEN);
        let q5a = Quote::parse(&build(5, &[0u8; TD_REPORT10_LEN], b"x")).unwrap();
        assert!(matches!(q5a.body, Body::Td10(_)));
        assert!(q5a.body.td().is_some());
    }

    #[test]
    fn refuses_bad_headers_and_counts_trailing_data() {
        let good = build(4, &[0u8; TD_REPORT10_LEN], b"x");
        let mut v = good.clone();
        v[0] = 6;
        assert_eq!(Quote::parse(&v), Err(DcapError::UnsupportedVersion(6)));
        let mut k = good.clone();
        k[2] = 3;
        assert_eq!(Quote::parse(&k), Err(DcapError::UnsupportedKeyType(3)));
        let mut t = good.clone();
        t[4] = 0;
        assert!(matches!(
            Quote::parse(&t),
            Err(DcapError::UnsupportedTee { .. })
        ));
        assert_eq!(Quote::parse(&good).unwrap().trailing_bytes, 0);
        let mut padded = good.clone();
        padded.extend([0u8; 100]);
        assert_eq!(Quote::parse(&padded).unwrap().trailing_bytes, 100);
        let mut junk = good.clone();
        junk.extend(b"junk");
        let q = Quote::parse(&junk).unwrap();
        assert_eq!(q.trailing_bytes, 4);
        // Everything else is what the quote without them says.
        assert_eq!(
            Quote {
                trailing_bytes: 0,
                ..q
            },
            Quote::parse(&good).unwrap()
        );
        for n in 0..good.len() {
            assert!(Quote::parse(&good[..n]).is_err(), "prefix {n} parsed");
        }
        assert!(matches!(
            Quote::parse(&vec![0u8; MAX_QUOTE + 1]),
            Err(DcapError::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_inconsistent_v5_bodies_and_cert_data() {
        let mut q = build(5, &[0u8; TD_REPORT15_LEN], b"x");
        q[48] = 9;
        assert_eq!(Quote::parse(&q), Err(DcapError::UnsupportedBodyType(9)));
        let mut s = build(5, &[0u8; TD_REPORT15_LEN], b"x");
        s[50] = 0;
        assert!(matches!(Quote::parse(&s), Err(DcapError::BodySize { .. })));
        let mut c = build(4, &[0u8; TD_REPORT10_LEN], b"x");
        let at = HEADER_LEN + TD_REPORT10_LEN + 4 + 128;
        c[at] = 5;
        assert!(matches!(
            Quote::parse(&c),
            Err(DcapError::CertificationDataType { found: 5, .. })
        ));
    }
}
