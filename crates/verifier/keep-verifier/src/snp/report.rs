//! The SEV-SNP `ATTESTATION_REPORT` (AMD SEV-SNP firmware ABI, versions 2 to 5):
//! a fixed 1184-byte little-endian structure. Parsing only reads fields; whether they
//! are acceptable (version, reserved bytes, signature) is judged by the checks in
//! [`super::verify`], so a report can be parsed and inspected even when it is wrong.

use serde::Serialize;

use super::SnpError;

/// Size of every report version.
pub const REPORT_SIZE: usize = 0x4A0;
/// The signature covers bytes `0..SIGNED_LEN`.
pub const SIGNED_LEN: usize = 0x2A0;
/// The lowest and highest report versions this verifier understands.
pub const VERSIONS: std::ops::RangeInclusive<u32> = 2..=5;
/// `SIGNATURE_ALGO` value for ECDSA P-384 with SHA-384.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// Each signature component is stored little-endian in 72 bytes; P-384 uses 48.
const SIG_COMPONENT: usize = 72;
const P384_LEN: usize = 48;

/// Which key signed the report (`SIGNING_KEY`, bits 2 to 4 of the flags at 0x48).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKey {
    /// The chip-unique Versioned Chip Endorsement Key (chains through the ASK).
    Vcek,
    /// A Versioned Loaded Endorsement Key provisioned by a cloud provider (chains
    /// through the ASVK).
    Vlek,
}

impl SigningKey {
    /// The lowercase name (`vcek`, `vlek`), also used in check names.
    pub fn name(self) -> &'static str {
        match self {
            SigningKey::Vcek => "vcek",
            SigningKey::Vlek => "vlek",
        }
    }

    /// The name of the intermediate that signs this kind of key (`ask`, `asvk`).
    pub fn intermediate_name(self) -> &'static str {
        match self {
            SigningKey::Vcek => "ask",
            SigningKey::Vlek => "asvk",
        }
    }
}

/// The guest policy (`POLICY`, 0x08) with its defined bits decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GuestPolicy {
    /// The raw 64-bit value.
    pub raw: u64,
    /// Minimum firmware ABI minor version required by the guest.
    pub abi_minor: u8,
    /// Minimum firmware ABI major version required by the guest.
    pub abi_major: u8,
    /// SMT is allowed on the host.
    pub smt: bool,
    /// A migration agent may be associated with the guest.
    pub migrate_ma: bool,
    /// Debugging is allowed (the hypervisor can read and write guest memory).
    pub debug: bool,
    /// The guest may only run on a single socket.
    pub single_socket: bool,
    /// CXL memory may be used.
    pub cxl_allowed: bool,
    /// AES-256-XTS memory encryption is required.
    pub mem_aes_256_xts: bool,
    /// Running average power limit (RAPL) must be disabled.
    pub rapl_dis: bool,
    /// Ciphertext hiding for DRAM is required.
    pub ciphertext_hiding: bool,
    /// Guest page swapping is disabled.
    pub page_swap_disable: bool,
}

impl GuestPolicy {
    /// Decodes the defined bits of `raw`.
    pub fn decode(raw: u64) -> Self {
        let bit = |n: u32| raw & (1u64 << n) != 0;
        GuestPolicy {
            raw,
            abi_minor: (raw & 0xff) as u8,
            abi_major: ((raw >> 8) & 0xff) as u8,
            smt: bit(16),
            migrate_ma: bit(18),
            debug: bit(19),
            single_socket: bit(20),
            cxl_allowed: bit(21),
            mem_aes_256_xts: bit(22),
            rapl_dis: bit(23),
            ciphertext_hiding: bit(24),
            page_swap_disable: bit(25),
        }
    }
}

/// Platform state (`PLATFORM_INFO`, 0x40) with its defined bits decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlatformInfo {
    /// The raw 64-bit value.
    pub raw: u64,
    /// SMT is enabled on the host.
    pub smt_enabled: bool,
    /// Transparent SME is enabled.
    pub tsme_enabled: bool,
    /// The platform uses error-correcting memory.
    pub ecc_enabled: bool,
    /// RAPL is disabled.
    pub rapl_disabled: bool,
    /// Ciphertext hiding for DRAM is enabled.
    pub ciphertext_hiding_enabled: bool,
    /// The memory alias check completed.
    pub alias_check_complete: bool,
    /// SEV-TIO is enabled.
    pub tio_enabled: bool,
}

impl PlatformInfo {
    /// Decodes the defined bits of `raw`.
    pub fn decode(raw: u64) -> Self {
        let bit = |n: u32| raw & (1u64 << n) != 0;
        PlatformInfo {
            raw,
            smt_enabled: bit(0),
            tsme_enabled: bit(1),
            ecc_enabled: bit(2),
            rapl_disabled: bit(3),
            ciphertext_hiding_enabled: bit(4),
            alias_check_complete: bit(5),
            tio_enabled: bit(7),
        }
    }
}

/// A firmware version (`CURRENT_*` at 0x1E8, `COMMITTED_*` at 0x1EC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FirmwareVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Build number.
    pub build: u8,
}

/// The CPU identification of report versions 3 and later (0x188..0x18B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cpuid {
    /// Combined family (base + extended), e.g. 0x19 or 0x1A.
    pub family: u8,
    /// Combined model (extended << 4 | base).
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

/// A parsed attestation report. Byte fields are copied out; the raw bytes are kept
/// for the signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `VERSION` (0x00).
    pub version: u32,
    /// `GUEST_SVN` (0x04).
    pub guest_svn: u32,
    /// `POLICY` (0x08).
    pub policy: GuestPolicy,
    /// `FAMILY_ID` (0x10).
    pub family_id: [u8; 16],
    /// `IMAGE_ID` (0x20).
    pub image_id: [u8; 16],
    /// `VMPL` (0x30).
    pub vmpl: u32,
    /// `SIGNATURE_ALGO` (0x34).
    pub signature_algo: u32,
    /// `CURRENT_TCB` (0x38), raw.
    pub current_tcb: u64,
    /// `PLATFORM_INFO` (0x40).
    pub platform_info: PlatformInfo,
    /// The flags word at 0x48 (`AUTHOR_KEY_EN`, `MASK_CHIP_KEY`, `SIGNING_KEY`).
    pub flags: u32,
    /// `REPORT_DATA` (0x50): chosen by the guest, e.g. a nonce or key hash.
    pub report_data: [u8; 64],
    /// `MEASUREMENT` (0x90): the launch digest.
    pub measurement: [u8; 48],
    /// `HOST_DATA` (0xC0): chosen by the host at launch.
    pub host_data: [u8; 32],
    /// `ID_KEY_DIGEST` (0xE0).
    pub id_key_digest: [u8; 48],
    /// `AUTHOR_KEY_DIGEST` (0x110).
    pub author_key_digest: [u8; 48],
    /// `REPORT_ID` (0x140).
    pub report_id: [u8; 32],
    /// `REPORT_ID_MA` (0x160).
    pub report_id_ma: [u8; 32],
    /// `REPORTED_TCB` (0x180), raw: the TCB the VCEK is derived from.
    pub reported_tcb: u64,
    /// `CPUID_FAM_ID`, `CPUID_MOD_ID`, `CPUID_STEP` (0x188), versions 3 and later.
    pub cpuid: Option<Cpuid>,
    /// `CHIP_ID` (0x1A0).
    pub chip_id: [u8; 64],
    /// `COMMITTED_TCB` (0x1E0), raw.
    pub committed_tcb: u64,
    /// `CURRENT_BUILD/MINOR/MAJOR` (0x1E8).
    pub current_firmware: FirmwareVersion,
    /// `COMMITTED_BUILD/MINOR/MAJOR` (0x1EC).
    pub committed_firmware: FirmwareVersion,
    /// `LAUNCH_TCB` (0x1F0), raw.
    pub launch_tcb: u64,
    /// `LAUNCH_MIT_VECTOR` (0x1F8), version 5 and later.
    pub launch_mit_vector: Option<u64>,
    /// `CURRENT_MIT_VECTOR` (0x200), version 5 and later.
    pub current_mit_vector: Option<u64>,
    bytes: Vec<u8>,
}

/// Copies `N` bytes at `off`.
fn array<const N: usize>(b: &[u8], off: usize) -> Result<[u8; N], SnpError> {
    b.get(off..off.saturating_add(N))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(SnpError::ReportLength(b.len()))
}

fn u8_at(b: &[u8], off: usize) -> Result<u8, SnpError> {
    b.get(off).copied().ok_or(SnpError::ReportLength(b.len()))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, SnpError> {
    array::<4>(b, off).map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], off: usize) -> Result<u64, SnpError> {
    array::<8>(b, off).map(u64::from_le_bytes)
}

fn firmware_at(b: &[u8], off: usize) -> Result<FirmwareVersion, SnpError> {
    Ok(FirmwareVersion {
        build: u8_at(b, off)?,
        minor: u8_at(b, off + 1)?,
        major: u8_at(b, off + 2)?,
    })
}

impl Report {
    /// Parses a report of exactly [`REPORT_SIZE`] bytes. Any version number is read;
    /// fields that only exist from some version on are `None` before it.
    pub fn parse(bytes: &[u8]) -> Result<Report, SnpError> {
        if bytes.len() != REPORT_SIZE {
            return Err(SnpError::ReportLength(bytes.len()));
        }
        let b = bytes;
        let version = u32_at(b, 0x00)?;
        let cpuid = if version >= 3 {
            Some(Cpuid {
                family: u8_at(b, 0x188)?,
                model: u8_at(b, 0x189)?,
                stepping: u8_at(b, 0x18A)?,
            })
        } else {
            None
        };
        let (launch_mit_vector, current_mit_vector) = if version >= 5 {
            (Some(u64_at(b, 0x1F8)?), Some(u64_at(b, 0x200)?))
        } else {
            (None, None)
        };
        Ok(Report {
            version,
            guest_svn: u32_at(b, 0x04)?,
            policy: GuestPolicy::decode(u64_at(b, 0x08)?),
            family_id: array(b, 0x10)?,
            image_id: array(b, 0x20)?,
            vmpl: u32_at(b, 0x30)?,
            signature_algo: u32_at(b, 0x34)?,
            current_tcb: u64_at(b, 0x38)?,
            platform_info: PlatformInfo::decode(u64_at(b, 0x40)?),
            flags: u32_at(b, 0x48)?,
            report_data: array(b, 0x50)?,
            measurement: array(b, 0x90)?,
            host_data: array(b, 0xC0)?,
            id_key_digest: array(b, 0xE0)?,
            author_key_digest: array(b, 0x110)?,
            report_id: array(b, 0x140)?,
            report_id_ma: array(b, 0x160)?,
            reported_tcb: u64_at(b, 0x180)?,
            cpuid,
            chip_id: array(b, 0x1A0)?,
            committed_tcb: u64_at(b, 0x1E0)?,
            current_firmware: firmware_at(b, 0x1E8)?,
            committed_firmware: firmware_at(b, 0x1EC)?,
            launch_tcb: u64_at(b, 0x1F0)?,
            launch_mit_vector,
            current_mit_vector,
            bytes: bytes.to_vec(),
        })
    }

    /// The report exactly as received.
    pub fn raw(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes the signature covers (`0..0x2A0`).
    pub fn signed_part(&self) -> &[u8] {
        self.bytes.get(..SIGNED_LEN).unwrap_or_default()
    }

    /// `AUTHOR_KEY_EN`: the ID block was signed by an author key too.
    pub fn author_key_en(&self) -> bool {
        self.flags & 1 != 0
    }

    /// `MASK_CHIP_KEY`: the firmware was told not to use the chip key.
    pub fn mask_chip_key(&self) -> bool {
        self.flags & 2 != 0
    }

    /// The raw `SIGNING_KEY` field: 0 VCEK, 1 VLEK, 7 none, others reserved.
    pub fn signing_key_raw(&self) -> u8 {
        ((self.flags >> 2) & 7) as u8
    }

    /// The key that signed the report, if the field names one.
    pub fn signing_key(&self) -> Option<SigningKey> {
        match self.signing_key_raw() {
            0 => Some(SigningKey::Vcek),
            1 => Some(SigningKey::Vlek),
            _ => None,
        }
    }

    /// The byte ranges this report's version defines as reserved (must be zero),
    /// including the unused high bytes of the signature's `r` and `s`.
    pub fn reserved_ranges(&self) -> Vec<std::ops::Range<usize>> {
        let cpuid_tail = if self.version >= 3 { 0x18B } else { 0x188 };
        let tail = if self.version >= 5 { 0x208 } else { 0x1F8 };
        let r_hi = SIGNED_LEN + P384_LEN..SIGNED_LEN + SIG_COMPONENT;
        let s_hi = SIGNED_LEN + SIG_COMPONENT + P384_LEN..SIGNED_LEN + 2 * SIG_COMPONENT;
        vec![
            0x4C..0x50,
            cpuid_tail..0x1A0,
            0x1EB..0x1EC,
            0x1EF..0x1F0,
            tail..SIGNED_LEN,
            r_hi,
            s_hi,
            SIGNED_LEN + 2 * SIG_COMPONENT..REPORT_SIZE,
        ]
    }

    /// Checks that every reserved byte range and the reserved flag bits (5 to 31 of
    /// the word at 0x48) are zero.
    pub fn check_reserved(&self) -> Result<(), SnpError> {
        let mut bad: Vec<String> = self
            .reserved_ranges()
            .into_iter()
            .filter(|range| {
                self.bytes
                    .get(range.clone())
                    .is_none_or(|s| s.iter().any(|&x| x != 0))
            })
            .map(|range| format!("{:#x}..{:#x}", range.start, range.end))
            .collect();
        if self.flags >> 5 != 0 {
            bad.insert(0, format!("flag bits 5-31 ({:#x})", self.flags));
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(SnpError::ReservedNotZero(bad.join(", ")))
        }
    }

    /// The signature as big-endian `r || s` (48 + 48 bytes), ready for ECDSA P-384.
    /// Fails when a component does not fit in 48 bytes.
    pub fn signature_p384(&self) -> Result<[u8; 2 * P384_LEN], SnpError> {
        let mut out = [0u8; 2 * P384_LEN];
        for (i, out_half) in out.chunks_exact_mut(P384_LEN).enumerate() {
            let start = SIGNED_LEN + i * SIG_COMPONENT;
            let le = self
                .bytes
                .get(start..start + SIG_COMPONENT)
                .ok_or(SnpError::ReportLength(self.bytes.len()))?;
            let (low, high) = le.split_at(P384_LEN);
            if high.iter().any(|&x| x != 0) {
                return Err(SnpError::SignatureComponentTooLarge);
            }
            for (o, v) in out_half.iter_mut().zip(low.iter().rev()) {
                *o = *v;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic v5 report with distinct values in every field.
    fn synthetic(version: u32) -> Vec<u8> {
        let mut b = vec![0u8; REPORT_SIZE];
        b[0..4].copy_from_slice(&version.to_le_bytes());
        b[4..8].copy_from_slice(&7u32.to_le_bytes());
        b[8..16].copy_from_slice(&0x000b_0203u64.to_le_bytes());
        b[0x10..0x20].fill(0x11);
        b[0x20..0x30].fill(0x22);
        b[0x30..0x34].copy_from_slice(&2u32.to_le_bytes());
        b[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
        b[0x38..0x40].copy_from_slice(&0x7300_0000_0000_0003u64.to_le_bytes());
        b[0x40..0x48].copy_from_slice(&0x81u64.to_le_bytes());
        b[0x48..0x4C].copy_from_slice(&((1u32 << 2) | 3).to_le_bytes());
        b[0x50..0x90].fill(0x33);
        b[0x90..0xC0].fill(0x44);
        b[0xC0..0xE0].fill(0x55);
        b[0xE0..0x110].fill(0x66);
        b[0x110..0x140].fill(0x77);
        b[0x140..0x160].fill(0x88);
        b[0x160..0x180].fill(0x99);
        b[0x180..0x188].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        b[0x188..0x18B].copy_from_slice(&[0x19, 0x11, 0x01]);
        b[0x1A0..0x1E0].fill(0xAA);
        b[0x1E0..0x1E8].copy_from_slice(&5u64.to_le_bytes());
        b[0x1E8..0x1EB].copy_from_slice(&[0x2b, 0x37, 0x01]);
        b[0x1EC..0x1EF].copy_from_slice(&[0x2a, 0x36, 0x01]);
        b[0x1F0..0x1F8].copy_from_slice(&6u64.to_le_bytes());
        b[0x1F8..0x200].copy_from_slice(&8u64.to_le_bytes());
        b[0x200..0x208].copy_from_slice(&9u64.to_le_bytes());
        // r = 1..=48 little-endian, s = 49..=96.
        for i in 0..48 {
            b[SIGNED_LEN + i] = i as u8 + 1;
            b[SIGNED_LEN + 72 + i] = i as u8 + 49;
        }
        b
    }

    #[test]
    fn parses_every_field_at_its_offset() {
        let r = Report::parse(&synthetic(5)).unwrap();
        assert_eq!(r.version, 5);
        assert_eq!(r.guest_svn, 7);
        assert_eq!(r.policy.raw, 0x000b_0203);
        assert_eq!((r.policy.abi_major, r.policy.abi_minor), (2, 3));
        assert!(r.policy.smt && r.policy.debug && !r.policy.migrate_ma);
        assert_eq!(r.family_id, [0x11; 16]);
        assert_eq!(r.image_id, [0x22; 16]);
        assert_eq!(r.vmpl, 2);
        assert_eq!(r.signature_algo, 1);
        assert_eq!(r.current_tcb, 0x7300_0000_0000_0003);
        assert!(r.platform_info.smt_enabled && r.platform_info.tio_enabled);
        assert!(!r.platform_info.tsme_enabled);
        assert!(r.author_key_en() && r.mask_chip_key());
        assert_eq!(r.signing_key(), Some(SigningKey::Vlek));
        assert_eq!(r.report_data, [0x33; 64]);
        assert_eq!(r.measurement, [0x44; 48]);
        assert_eq!(r.host_data, [0x55; 32]);
        assert_eq!(r.id_key_digest, [0x66; 48]);
        assert_eq!(r.author_key_digest, [0x77; 48]);
        assert_eq!(r.report_id, [0x88; 32]);
        assert_eq!(r.report_id_ma, [0x99; 32]);
        assert_eq!(r.reported_tcb, 0x0102_0304_0506_0708);
        assert_eq!(
            r.cpuid,
            Some(Cpuid {
                family: 0x19,
                model: 0x11,
                stepping: 1
            })
        );
        assert_eq!(r.chip_id, [0xAA; 64]);
        assert_eq!(r.committed_tcb, 5);
        assert_eq!(
            r.current_firmware,
            FirmwareVersion {
                major: 1,
                minor: 0x37,
                build: 0x2b
            }
        );
        assert_eq!(r.committed_firmware.build, 0x2a);
        assert_eq!(r.launch_tcb, 6);
        assert_eq!(r.launch_mit_vector, Some(8));
        assert_eq!(r.current_mit_vector, Some(9));
        assert_eq!(r.signed_part().len(), SIGNED_LEN);
        r.check_reserved().unwrap();
        let sig = r.signature_p384().unwrap();
        assert_eq!(sig[0], 48, "r is reversed to big-endian");
        assert_eq!(sig[47], 1);
        assert_eq!(sig[48], 96);
        assert_eq!(sig[95], 49);
    }

    #[test]
    fn version_decides_which_fields_exist_and_which_bytes_are_reserved() {
        let v2 = Report::parse(&synthetic(2)).unwrap();
        assert_eq!(v2.cpuid, None);
        assert_eq!(v2.launch_mit_vector, None);
        let err = v2.check_reserved().unwrap_err().to_string();
        assert!(err.contains("0x188..0x1a0"), "{err}");
        assert!(err.contains("0x1f8..0x2a0"), "{err}");

        let v3 = Report::parse(&synthetic(3)).unwrap();
        assert!(v3.cpuid.is_some());
        assert_eq!(v3.current_mit_vector, None);
        let err = v3.check_reserved().unwrap_err().to_string();
        assert!(!err.contains("0x18b"), "{err}");
        assert!(err.contains("0x1f8..0x2a0"), "{err}");
    }

    #[test]
    fn every_reserved_byte_and_flag_bit_is_checked() {
        let base = synthetic(5);
        let report = Report::parse(&base).unwrap();
        for range in report.reserved_ranges() {
            for i in range {
                let mut b = base.clone();
                b[i] = 1;
                assert!(
                    Report::parse(&b).unwrap().check_reserved().is_err(),
                    "byte {i:#x}"
                );
            }
        }
        let mut b = base.clone();
        b[0x48] |= 0x20;
        assert!(Report::parse(&b).unwrap().check_reserved().is_err());
    }

    #[test]
    fn signature_components_wider_than_48_bytes_are_refused() {
        let mut b = synthetic(5);
        b[SIGNED_LEN + 60] = 1;
        assert_eq!(
            Report::parse(&b).unwrap().signature_p384(),
            Err(SnpError::SignatureComponentTooLarge)
        );
    }

    #[test]
    fn signing_key_values() {
        let mut b = synthetic(5);
        for (raw, expected) in [
            (0u32, Some(SigningKey::Vcek)),
            (1, Some(SigningKey::Vlek)),
            (2, None),
            (7, None),
        ] {
            b[0x48..0x4C].copy_from_slice(&(raw << 2).to_le_bytes());
            let r = Report::parse(&b).unwrap();
            assert_eq!(r.signing_key(), expected);
            assert_eq!(u32::from(r.signing_key_raw()), raw);
        }
    }

    #[test]
    fn wrong_lengths_are_errors_not_panics() {
        for len in [0, 1, 0x2A0, REPORT_SIZE - 1, REPORT_SIZE + 1, 4096] {
            assert_eq!(
                Report::parse(&vec![0u8; len]),
                Err(SnpError::ReportLength(len))
            );
        }
    }
}
