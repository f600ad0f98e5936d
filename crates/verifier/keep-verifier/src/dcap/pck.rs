//! The Intel SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1): the
//! platform's TCB (16 component SVNs, PCESVN, CPUSVN), its PPID, PCE ID and FMSPC,
//! the SGX type and, for multi-package platforms, the platform instance and
//! configuration.
//!
//! The extension is a SEQUENCE of (OID, value) pairs; the TCB value is itself such
//! a SEQUENCE. Each element is read with the crate's DER walker and checked for its
//! tag and size; duplicates and missing required entries are errors, unknown OIDs
//! are ignored (Intel may add entries).

use serde::Serialize;

use super::error::DcapError;
use crate::pki::Cert;
use crate::policy::HexBytes;
use crate::tlv::{self, Tlv};

/// The OID of the SGX extension.
pub const SGX_EXTENSION_OID: &str = "1.2.840.113741.1.13.1";
/// Content bytes of that OID; entries inside are this prefix plus one or two arcs.
const SGX_OID_PREFIX: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01];

const TAG_BOOLEAN: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_ENUMERATED: u8 = 0x0a;
const TAG_SEQUENCE: u8 = 0x30;

/// The platform configuration of a multi-package (Platform CA) PCK certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PckConfiguration {
    /// Whether the platform can be extended with packages after registration.
    pub dynamic_platform: Option<bool>,
    /// Whether platform root keys are cached by Intel.
    pub cached_keys: Option<bool>,
    /// Whether simultaneous multithreading is enabled.
    pub smt_enabled: Option<bool>,
}

/// What the SGX extension of a PCK certificate says about the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PckExtensions {
    /// Platform Provisioning ID.
    pub ppid: [u8; 16],
    /// The 16 SGX TCB component SVNs (compared with a TCB level's `sgxtcbcomponents`).
    pub tcb_components: [u8; 16],
    /// PCE SVN.
    pub pce_svn: u16,
    /// CPUSVN as one 16-byte value.
    pub cpu_svn: [u8; 16],
    /// PCE ID.
    pub pce_id: [u8; 2],
    /// Family-Model-Stepping-Platform-CustomSKU: selects the TCB info.
    pub fmspc: [u8; 6],
    /// 0 Standard, 1 Scalable, 2 Scalable with integrity.
    pub sgx_type: u8,
    /// Platform instance ID (multi-package platforms only).
    pub platform_instance_id: Option<[u8; 16]>,
    /// Platform configuration (multi-package platforms only).
    pub configuration: Option<PckConfiguration>,
}

impl PckExtensions {
    /// FMSPC as hex, for claims.
    pub fn fmspc_hex(&self) -> HexBytes {
        HexBytes(self.fmspc.to_vec())
    }
}

fn err(msg: impl Into<String>) -> DcapError {
    DcapError::PckExtension(msg.into())
}

/// Reads the SGX extension of `cert`.
pub fn parse_pck_extensions(cert: &Cert) -> Result<PckExtensions, DcapError> {
    let value = cert
        .extension(SGX_EXTENSION_OID)
        .ok_or_else(|| err("missing (or present more than once)"))?;
    parse_sgx_extension(value)
}

/// Parses the DER of the extension value (the SEQUENCE of entries).
pub(crate) fn parse_sgx_extension(der: &[u8]) -> Result<PckExtensions, DcapError> {
    let (outer, rest) = tlv::read(der).ok_or_else(|| err("not DER"))?;
    if outer.tag != TAG_SEQUENCE || !rest.is_empty() {
        return Err(err("not a single SEQUENCE"));
    }
    let mut ppid = None;
    let mut tcb = None;
    let mut pce_id = None;
    let mut fmspc = None;
    let mut sgx_type = None;
    let mut platform_instance_id = None;
    let mut configuration = None;
    for (arc, value) in entries(outer.contents, 1)? {
        match arc {
            1 => set_once(&mut ppid, octets::<16>(value, "PPID")?, "PPID")?,
            2 => set_once(&mut tcb, parse_tcb(value)?, "TCB")?,
            3 => set_once(&mut pce_id, octets::<2>(value, "PCE ID")?, "PCE ID")?,
            4 => set_once(&mut fmspc, octets::<6>(value, "FMSPC")?, "FMSPC")?,
            5 => set_once(&mut sgx_type, sgx_type_of(value)?, "SGX type")?,
            6 => set_once(
                &mut platform_instance_id,
                octets::<16>(value, "platform instance ID")?,
                "platform instance ID",
            )?,
            7 => set_once(
                &mut configuration,
                parse_configuration(value)?,
                "configuration",
            )?,
            _ => {}
        }
    }
    let (tcb_components, pce_svn, cpu_svn) = tcb.ok_or_else(|| err("no TCB entry"))?;
    Ok(PckExtensions {
        ppid: ppid.ok_or_else(|| err("no PPID entry"))?,
        tcb_components,
        pce_svn,
        cpu_svn,
        pce_id: pce_id.ok_or_else(|| err("no PCE ID entry"))?,
        fmspc: fmspc.ok_or_else(|| err("no FMSPC entry"))?,
        sgx_type: sgx_type.ok_or_else(|| err("no SGX type entry"))?,
        platform_instance_id,
        configuration,
    })
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), DcapError> {
    if slot.is_some() {
        return Err(err(format!("{what} appears twice")));
    }
    *slot = Some(value);
    Ok(())
}

/// Reads a SEQUENCE of `SEQUENCE { OID, value }` whose OIDs are the SGX prefix
/// followed by `depth` arcs below it (`depth` 1: `.N`, depth 2: `.parent.N`); returns
/// the last arc and the value of each.
fn entries(mut seq: &[u8], depth: usize) -> Result<Vec<(u8, Tlv<'_>)>, DcapError> {
    let mut out = Vec::new();
    while !seq.is_empty() {
        let (entry, rest) = tlv::read(seq).ok_or_else(|| err("entry is not DER"))?;
        seq = rest;
        if entry.tag != TAG_SEQUENCE {
            return Err(err("entry is not a SEQUENCE"));
        }
        let (oid, after) = tlv::read(entry.contents).ok_or_else(|| err("entry OID is not DER"))?;
        let (value, end) = tlv::read(after).ok_or_else(|| err("entry value is not DER"))?;
        if oid.tag != TAG_OID || !end.is_empty() {
            return Err(err("entry is not (OID, value)"));
        }
        let Some(arcs) = oid.contents.strip_prefix(&SGX_OID_PREFIX[..]) else {
            continue;
        };
        // Arcs below the prefix are all < 128 for known entries: one byte each.
        if arcs.len() == depth
            && arcs.iter().all(|&a| a < 0x80)
            && let Some(&last) = arcs.last()
        {
            out.push((last, value));
        }
        if out.len() > 64 {
            return Err(err("too many entries"));
        }
    }
    Ok(out)
}

fn octets<const N: usize>(v: Tlv<'_>, what: &str) -> Result<[u8; N], DcapError> {
    if v.tag != TAG_OCTET_STRING {
        return Err(err(format!("{what} is not an OCTET STRING")));
    }
    <[u8; N]>::try_from(v.contents).map_err(|_| {
        err(format!(
            "{what} is {} bytes, expected {N}",
            v.contents.len()
        ))
    })
}

/// A non-negative INTEGER (or ENUMERATED) that fits `max`.
fn small_uint(v: Tlv<'_>, tag: u8, max: u32, what: &str) -> Result<u32, DcapError> {
    if v.tag != tag {
        return Err(err(format!("{what} has tag {:#04x}", v.tag)));
    }
    let c = v.contents;
    let (&first, _) = c
        .split_first()
        .ok_or_else(|| err(format!("{what} is empty")))?;
    if first & 0x80 != 0 {
        return Err(err(format!("{what} is negative")));
    }
    if c.len() > 5 {
        return Err(err(format!("{what} is too large")));
    }
    let value = c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    u32::try_from(value)
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| err(format!("{what} = {value} is over {max}")))
}

fn parse_tcb(v: Tlv<'_>) -> Result<([u8; 16], u16, [u8; 16]), DcapError> {
    if v.tag != TAG_SEQUENCE {
        return Err(err("TCB is not a SEQUENCE"));
    }
    let mut comps: [Option<u8>; 16] = [None; 16];
    let mut pce_svn = None;
    let mut cpu_svn = None;
    for (arc, value) in entries(v.contents, 2)? {
        match arc {
            1..=16 => {
                let svn = small_uint(value, TAG_INTEGER, 255, "TCB component SVN")?;
                let slot = comps
                    .get_mut(usize::from(arc - 1))
                    .ok_or_else(|| err("TCB component index"))?;
                let svn = u8::try_from(svn).map_err(|_| err("TCB component SVN over 255"))?;
                set_once(slot, svn, "TCB component")?;
            }
            17 => {
                let svn = small_uint(value, TAG_INTEGER, 0xffff, "PCESVN")?;
                let svn = u16::try_from(svn).map_err(|_| err("PCESVN over 65535"))?;
                set_once(&mut pce_svn, svn, "PCESVN")?;
            }
            18 => set_once(&mut cpu_svn, octets::<16>(value, "CPUSVN")?, "CPUSVN")?,
            _ => {}
        }
    }
    let mut components = [0u8; 16];
    for (out, c) in components.iter_mut().zip(comps) {
        *out = c.ok_or_else(|| err("a TCB component SVN is missing"))?;
    }
    Ok((
        components,
        pce_svn.ok_or_else(|| err("no PCESVN"))?,
        cpu_svn.ok_or_else(|| err("no CPUSVN"))?,
    ))
}

fn sgx_type_of(v: Tlv<'_>) -> Result<u8, DcapError> {
    let t = small_uint(v, TAG_ENUMERATED, 2, "SGX type")?;
    u8::try_from(t).map_err(|_| err("SGX type"))
}

fn parse_configuration(v: Tlv<'_>) -> Result<PckConfiguration, DcapError> {
    if v.tag != TAG_SEQUENCE {
        return Err(err("configuration is not a SEQUENCE"));
    }
    let mut c = PckConfiguration::default();
    for (arc, value) in entries(v.contents, 2)? {
        let slot = match arc {
            1 => &mut c.dynamic_platform,
            2 => &mut c.cached_keys,
            3 => &mut c.smt_enabled,
            _ => continue,
        };
        let b = match (value.tag, value.contents) {
            (TAG_BOOLEAN, [0x00]) => false,
            (TAG_BOOLEAN, [0xff]) => true,
            _ => return Err(err("configuration flag is not a DER BOOLEAN")),
        };
        set_once(slot, b, "configuration flag")?;
    }
    Ok(c)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = contents.len();
        if n < 0x80 {
            out.push(n as u8);
        } else if n < 0x100 {
            out.extend([0x81, n as u8]);
        } else {
            out.extend([0x82, (n >> 8) as u8, n as u8]);
        }
        out.extend(contents);
        out
    }

    fn entry(arcs: &[u8], value: Vec<u8>) -> Vec<u8> {
        let mut oid = SGX_OID_PREFIX.to_vec();
        oid.extend(arcs);
        let mut c = tlv(TAG_OID, &oid);
        c.extend(value);
        tlv(TAG_SEQUENCE, &c)
    }

    /// A well-formed extension value with the given component SVNs and PCESVN.
    pub(crate) fn sample(components: [u8; 16], pce_svn: u16) -> Vec<u8> {
        let mut tcb = Vec::new();
        for (i, svn) in components.iter().enumerate() {
            let int = if *svn >= 0x80 {
                tlv(TAG_INTEGER, &[0, *svn])
            } else {
                tlv(TAG_INTEGER, &[*svn])
            };
            tcb.extend(entry(&[2, i as u8 + 1], int));
        }
        let pce = pce_svn.to_be_bytes();
        tcb.extend(entry(&[2, 17], tlv(TAG_INTEGER, &[0, pce[0], pce[1]])));
        tcb.extend(entry(&[2, 18], tlv(TAG_OCTET_STRING, &components)));
        let mut all = Vec::new();
        all.extend(entry(&[1], tlv(TAG_OCTET_STRING, &[0xab; 16])));
        all.extend(entry(&[2], tlv(TAG_SEQUENCE, &tcb)));
        all.extend(entry(&[3], tlv(TAG_OCTET_STRING, &[0, 0])));
        all.extend(entry(
            &[4],
            tlv(TAG_OCTET_STRING, &[0xb0, 0xc0, 0x6f, 0, 0, 0]),
        ));
        all.extend(entry(&[5], tlv(TAG_ENUMERATED, &[1])));
        let mut conf = entry(&[7, 1], tlv(TAG_BOOLEAN, &[0xff]));
        conf.extend(entry(&[7, 3], tlv(TAG_BOOLEAN, &[0])));
        all.extend(entry(&[7], tlv(TAG_SEQUENCE, &conf)));
        tlv(TAG_SEQUENCE, &all)
    }

    #[test]
    fn parses_a_complete_extension() {
        let comps = [2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 255];
        let e = parse_sgx_extension(&sample(comps, 13)).unwrap();
        assert_eq!(e.tcb_components, comps);
        assert_eq!(e.cpu_svn, comps);
        assert_eq!(e.pce_svn, 13);
        assert_eq!(e.ppid, [0xab; 16]);
        assert_eq!(e.fmspc, [0xb0, 0xc0, 0x6f, 0, 0, 0]);
        assert_eq!(e.pce_id, [0, 0]);
        assert_eq!(e.sgx_type, 1);
        assert_eq!(e.platform_instance_id, None);
        let c = e.configuration.unwrap();
        assert_eq!(
            (c.dynamic_platform, c.cached_keys, c.smt_enabled),
            (Some(true), None, Some(false))
        );
    }

    #[test]
    fn refuses_every_truncation_and_garbage() {
        let good = sample([1; 16], 11);
        for n in 0..good.len() {
            assert!(parse_sgx_extension(&good[..n]).is_err(), "prefix {n}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert!(parse_sgx_extension(&extra).is_err());
        assert!(parse_sgx_extension(&[0x30, 0x00]).is_err());
        assert!(parse_sgx_extension(&[0xff; 40]).is_err());
    }

    #[test]
    fn random_mutations_never_panic() {
        let good = sample([7; 16], 13);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..5000 {
            let mut m = good.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() % m.len() as u64) as usize;
                m[at] = next() as u8;
            }
            let _ = parse_sgx_extension(&m);
        }
    }

    #[test]
    fn refuses_duplicates_and_out_of_range_values() {
        // A second FMSPC entry.
        let mut body = tlv::read(&sample([1; 16], 11)).unwrap().0.contents.to_vec();
        body.extend(entry(&[4], tlv(TAG_OCTET_STRING, &[0; 6])));
        assert!(parse_sgx_extension(&tlv(TAG_SEQUENCE, &body)).is_err());
        // A component SVN of 256.
        let big = entry(&[2, 1], tlv(TAG_INTEGER, &[1, 0]));
        let tcb = tlv(TAG_SEQUENCE, &big);
        assert!(parse_tcb(tlv::read(&tcb).unwrap().0).is_err());
        // A negative integer.
        let neg = tlv(TAG_INTEGER, &[0x80]);
        assert!(small_uint(tlv::read(&neg).unwrap().0, TAG_INTEGER, 255, "x").is_err());
    }
}
