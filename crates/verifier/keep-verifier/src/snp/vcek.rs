//! The AMD extensions of VCEK and VLEK certificates (OIDs under
//! `1.3.6.1.4.1.3704.1`) and how they bind the certificate to a report: the chip
//! (`hwID` against `CHIP_ID`) and the TCB (the SPL extensions against
//! `REPORTED_TCB`).

use const_oid::ObjectIdentifier;
use serde::Serialize;

use super::SnpError;
use super::tcb::TcbVersion;
use crate::pki::Cert;
use crate::roots::AmdProduct;
use crate::tlv;

/// `structVersion` (INTEGER).
pub const OID_STRUCT_VERSION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.1");
/// `productName` (IA5String, e.g. `Milan-B0`).
pub const OID_PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
/// `blSPL` (INTEGER).
pub const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
/// `teeSPL` (INTEGER).
pub const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
/// `snpSPL` (INTEGER).
pub const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
/// `ucodeSPL` (INTEGER).
pub const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
/// `fmcSPL` (INTEGER, Turin and later).
pub const OID_FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
/// `hwID` (the chip ID: 64 bytes, 8 on Turin; VCEK only).
pub const OID_HWID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");
/// `cspID` (IA5String naming the cloud provider; VLEK only).
pub const OID_CSP_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.5");

/// The longest `productName` / `cspID` accepted.
const MAX_NAME: usize = 256;

/// The AMD extensions of a VCEK or VLEK; each is `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VcekExtensions {
    /// `structVersion`: the version of this set of extensions.
    pub struct_version: Option<u64>,
    /// `productName`, e.g. `Milan-B0` or `Genoa`.
    pub product_name: Option<String>,
    /// `blSPL`: the bootloader SPL the key was derived for.
    pub bl_spl: Option<u64>,
    /// `teeSPL`: the PSP OS SPL.
    pub tee_spl: Option<u64>,
    /// `snpSPL`: the SNP firmware SPL.
    pub snp_spl: Option<u64>,
    /// `ucodeSPL`: the microcode SPL.
    pub ucode_spl: Option<u64>,
    /// `fmcSPL`: the FMC SPL (Turin and later).
    pub fmc_spl: Option<u64>,
    /// The chip ID the certificate was issued for (raw bytes, unwrapped).
    pub hwid: Option<Vec<u8>>,
    /// `cspID`: the cloud provider a VLEK was issued to.
    pub csp_id: Option<String>,
}

fn bad(name: &'static str, reason: impl Into<String>) -> SnpError {
    SnpError::Extension {
        name,
        reason: reason.into(),
    }
}

/// The value of the extension `oid`, or `None`; an extension present twice is an error.
fn extension<'c>(
    cert: &'c Cert,
    oid: &ObjectIdentifier,
    name: &'static str,
) -> Result<Option<&'c [u8]>, SnpError> {
    let Some(exts) = cert.x509().tbs_certificate().extensions() else {
        return Ok(None);
    };
    let mut found = exts.iter().filter(|e| e.extn_id == *oid);
    let first = found.next();
    if found.next().is_some() {
        return Err(bad(name, "present more than once"));
    }
    Ok(first.map(|e| e.extn_value.as_bytes()))
}

/// A DER INTEGER of any length (leading zero bytes allowed), non-negative and at
/// most 64 bits wide.
fn integer(der: &[u8], name: &'static str) -> Result<u64, SnpError> {
    let (t, rest) = tlv::read(der).ok_or_else(|| bad(name, "not DER"))?;
    if t.tag != 0x02 || !rest.is_empty() {
        return Err(bad(name, "not a single INTEGER"));
    }
    let first = *t
        .contents
        .first()
        .ok_or_else(|| bad(name, "empty INTEGER"))?;
    if first & 0x80 != 0 {
        return Err(bad(name, "negative INTEGER"));
    }
    let start = t
        .contents
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(t.contents.len());
    let digits = t.contents.get(start..).unwrap_or_default();
    if digits.len() > 8 {
        return Err(bad(name, "INTEGER wider than 64 bits"));
    }
    Ok(digits
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// A DER IA5String of printable ASCII.
fn ia5(der: &[u8], name: &'static str) -> Result<String, SnpError> {
    let (t, rest) = tlv::read(der).ok_or_else(|| bad(name, "not DER"))?;
    if t.tag != 0x16 || !rest.is_empty() {
        return Err(bad(name, "not a single IA5String"));
    }
    if t.contents.len() > MAX_NAME || !t.contents.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(bad(name, "not printable ASCII of at most 256 bytes"));
    }
    Ok(t.contents.iter().map(|&b| char::from(b)).collect())
}

/// The hwID: the raw chip ID (64 bytes, or 8 on Turin), either as the extension's
/// whole value or wrapped in a DER OCTET STRING.
fn hwid(value: &[u8]) -> Result<Vec<u8>, SnpError> {
    let ok_len = |n: usize| n == 64 || n == 8;
    if ok_len(value.len()) {
        return Ok(value.to_vec());
    }
    match tlv::read(value) {
        Some((t, rest)) if t.tag == 0x04 && rest.is_empty() && ok_len(t.contents.len()) => {
            Ok(t.contents.to_vec())
        }
        _ => Err(bad(
            "hwID",
            format!(
                "{} bytes, neither a 64 or 8 byte chip ID nor one in an OCTET STRING",
                value.len()
            ),
        )),
    }
}

/// Reads the AMD extensions of a VCEK or VLEK. Absent extensions are `None`; a
/// present one that is malformed is an error.
pub fn parse_vcek_extensions(cert: &Cert) -> Result<VcekExtensions, SnpError> {
    let int = |oid: &ObjectIdentifier, name: &'static str| -> Result<Option<u64>, SnpError> {
        extension(cert, oid, name)?
            .map(|v| integer(v, name))
            .transpose()
    };
    let string = |oid: &ObjectIdentifier, name: &'static str| -> Result<Option<String>, SnpError> {
        extension(cert, oid, name)?
            .map(|v| ia5(v, name))
            .transpose()
    };
    Ok(VcekExtensions {
        struct_version: int(&OID_STRUCT_VERSION, "structVersion")?,
        product_name: string(&OID_PRODUCT_NAME, "productName")?,
        bl_spl: int(&OID_BL_SPL, "blSPL")?,
        tee_spl: int(&OID_TEE_SPL, "teeSPL")?,
        snp_spl: int(&OID_SNP_SPL, "snpSPL")?,
        ucode_spl: int(&OID_UCODE_SPL, "ucodeSPL")?,
        fmc_spl: int(&OID_FMC_SPL, "fmcSPL")?,
        hwid: extension(cert, &OID_HWID, "hwID")?.map(hwid).transpose()?,
        csp_id: string(&OID_CSP_ID, "cspID")?,
    })
}

/// Checks that a VCEK was issued for the chip in the report: its hwID equals
/// `CHIP_ID` (all 64 bytes, or on Turin the first 8).
pub fn check_hwid(
    ext: &VcekExtensions,
    chip_id: &[u8; 64],
    product: Option<AmdProduct>,
) -> Result<(), SnpError> {
    let hwid = ext
        .hwid
        .as_deref()
        .ok_or(SnpError::MissingExtension("hwID"))?;
    let expected: &[u8] = match (hwid.len(), product) {
        (64, _) => chip_id,
        (8, Some(AmdProduct::Turin)) => chip_id.get(..8).unwrap_or_default(),
        (n, p) => {
            return Err(SnpError::HwidMismatch(format!(
                "{n}-byte hwID does not fit product {}",
                p.map_or("unknown", AmdProduct::name)
            )));
        }
    };
    if hwid == expected {
        Ok(())
    } else {
        Err(SnpError::HwidMismatch(format!(
            "hwID {} != CHIP_ID {}",
            hex::encode(hwid),
            hex::encode(expected)
        )))
    }
}

/// Checks that the certificate's SPL extensions equal the report's `REPORTED_TCB`,
/// decoded for the product (with the FMC on Turin).
pub fn check_tcb(ext: &VcekExtensions, reported: &TcbVersion) -> Result<(), SnpError> {
    let mut wanted = vec![
        ("blSPL", ext.bl_spl, reported.bootloader),
        ("teeSPL", ext.tee_spl, reported.tee),
        ("snpSPL", ext.snp_spl, reported.snp),
        ("ucodeSPL", ext.ucode_spl, reported.microcode),
    ];
    if let Some(fmc) = reported.fmc {
        wanted.insert(0, ("fmcSPL", ext.fmc_spl, fmc));
    }
    let mut diffs = Vec::new();
    for (name, cert_value, report_value) in wanted {
        match cert_value {
            None => return Err(SnpError::MissingExtension(name)),
            Some(v) if v != u64::from(report_value) => {
                diffs.push(format!("{name} {v} != {report_value}"))
            }
            Some(_) => {}
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(SnpError::TcbMismatch(diffs.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_any_length() {
        assert_eq!(integer(&[0x02, 0x01, 0x73], "x"), Ok(115));
        assert_eq!(integer(&[0x02, 0x01, 0x00], "x"), Ok(0));
        // The AWS VLEK's ucodeSPL.
        assert_eq!(integer(&[0x02, 0x02, 0x00, 0xd9], "x"), Ok(217));
        assert_eq!(integer(&[0x02, 0x04, 0, 0, 0, 0x08], "x"), Ok(8));
        assert_eq!(integer(&[0x02, 0x02, 0x01, 0x00], "x"), Ok(256));
        assert!(integer(&[0x02, 0x01, 0x80], "x").is_err(), "negative");
        assert!(integer(&[0x02, 0x00], "x").is_err(), "empty");
        assert!(integer(&[0x04, 0x01, 0x01], "x").is_err(), "wrong tag");
        assert!(integer(&[0x02, 0x01, 0x01, 0x00], "x").is_err(), "trailing");
        assert!(integer(&[0x02, 0x02, 0x01], "x").is_err(), "truncated");
        let mut wide = vec![0x02, 0x09, 0x01];
        wide.extend([0u8; 8]);
        assert!(integer(&wide, "x").is_err(), "65 bits");
    }

    #[test]
    fn names_and_hwids() {
        assert_eq!(ia5(b"\x16\x08Milan-B0", "n"), Ok("Milan-B0".into()));
        assert!(ia5(b"\x0c\x05Milan", "n").is_err(), "UTF8String");
        assert!(ia5(b"\x16\x02\x00\x01", "n").is_err(), "control bytes");
        let chip = [7u8; 64];
        assert_eq!(hwid(&chip), Ok(chip.to_vec()));
        assert_eq!(hwid(&chip[..8]), Ok(chip[..8].to_vec()));
        let mut wrapped = vec![0x04, 0x40];
        wrapped.extend(chip);
        assert_eq!(hwid(&wrapped), Ok(chip.to_vec()));
        assert_eq!(
            hwid(&[0x04, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]),
            Ok(vec![1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert!(hwid(&[0x04, 0x02, 1, 2]).is_err());
        assert!(hwid(&[1; 32]).is_err());
        assert!(hwid(&[]).is_err());
    }

    #[test]
    fn hwid_matches_all_64_bytes_or_turins_first_8() {
        let mut chip = [0u8; 64];
        chip[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let full = VcekExtensions {
            hwid: Some(chip.to_vec()),
            ..Default::default()
        };
        check_hwid(&full, &chip, Some(AmdProduct::Milan)).unwrap();
        let mut other = chip;
        other[63] = 1;
        assert!(check_hwid(&full, &other, Some(AmdProduct::Milan)).is_err());

        let short = VcekExtensions {
            hwid: Some(chip[..8].to_vec()),
            ..Default::default()
        };
        check_hwid(&short, &chip, Some(AmdProduct::Turin)).unwrap();
        assert!(check_hwid(&short, &chip, Some(AmdProduct::Genoa)).is_err());
        assert!(check_hwid(&short, &chip, None).is_err());
        other = chip;
        other[0] = 9;
        assert!(check_hwid(&short, &other, Some(AmdProduct::Turin)).is_err());
        assert_eq!(
            check_hwid(&VcekExtensions::default(), &chip, Some(AmdProduct::Milan)),
            Err(SnpError::MissingExtension("hwID"))
        );
    }

    #[test]
    fn tcb_comparison_uses_the_product_layout() {
        let ext = VcekExtensions {
            bl_spl: Some(1),
            tee_spl: Some(0),
            snp_spl: Some(2),
            ucode_spl: Some(71),
            fmc_spl: Some(0),
            ..Default::default()
        };
        let raw = u64::from_le_bytes([0x00, 0x01, 0x00, 0x02, 0, 0, 0, 0x47]);
        check_tcb(&ext, &TcbVersion::decode(raw, AmdProduct::Turin)).unwrap();
        let err = check_tcb(&ext, &TcbVersion::decode(raw, AmdProduct::Milan)).unwrap_err();
        assert!(err.to_string().contains("blSPL 1 != 0"), "{err}");

        let no_fmc = VcekExtensions {
            fmc_spl: None,
            ..ext.clone()
        };
        assert_eq!(
            check_tcb(&no_fmc, &TcbVersion::decode(raw, AmdProduct::Turin)),
            Err(SnpError::MissingExtension("fmcSPL"))
        );
        let wide = VcekExtensions {
            ucode_spl: Some(71 + 256),
            ..ext
        };
        assert!(check_tcb(&wide, &TcbVersion::decode(raw, AmdProduct::Turin)).is_err());
    }
}
