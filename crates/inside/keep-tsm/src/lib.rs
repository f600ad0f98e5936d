//! `keep-tsm`: attestation evidence from a real TEE through Linux's configfs-tsm
//! (`/sys/kernel/config/tsm/report`, Linux 6.7+), packaged as the evidence bundle
//! `keep-verifier` reads.
//!
//! **UNTESTED ON HARDWARE.** No SEV-SNP or TDX machine was available: this crate is
//! tested only against a simulated configfs (see the tests), which follows the
//! kernel's documented ABI (`Documentation/ABI/testing/configfs-tsm-report`). It is
//! not linked into the exec or any other binary, so no default path uses it; see
//! `docs/attestation.md`, "Evidence from a real TEE for `keep deploy`", for how the
//! exec would use it and how its output reaches `keep deploy`.
//!
//! **Trusts:** the kernel of the confidential VM it runs in (the TEE's guest). It
//! parses what that kernel returns with bounded sizes, since the auxiliary blob (SNP
//! certificates) is supplied by the *host* and relayed by the guest kernel.
//!
//! The procedure ([`get_report`]): create a report entry (a directory), read its
//! `generation`, write the 64-byte `inblob` (the report_data) and, on SEV-SNP, the
//! `privlevel` (VMPL), read `provider`, `outblob` and `auxblob`, read `generation`
//! again and require exactly one increment per write (another writer to the same
//! entry would make the report answer someone else's inblob), remove the entry.
//!
//! - `provider` `sev_guest`: `outblob` is the raw 1184-byte ATTESTATION_REPORT
//!   (report_data at 0x50), `auxblob` (when the host configured certificates) the
//!   GHCB extended-report certificate table: 24-byte entries `{guid[16], offset u32
//!   LE, length u32 LE}` ending with an all-zero entry, offsets from the table's
//!   start ([`snp_certificates`]).
//! - `provider` `tdx_guest`: `outblob` is a DCAP quote (v4/v5) that the kernel got
//!   from the host's quote generation service; the collateral comes from a PCCS,
//!   outside the Keep.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

/// Where Linux exposes report entries.
pub const TSM_REPORT_ROOT: &str = "/sys/kernel/config/tsm/report";
/// The largest blob read from an entry (a TDX quote is ~5 KiB, an SNP certificate
/// table ~4-8 KiB; the kernel caps outblob at 32 KiB).
pub const MAX_BLOB: u64 = 64 * 1024;
/// Size of an SEV-SNP attestation report (versions 2 to 5).
pub const SNP_REPORT_LEN: usize = 1184;
/// Offset of REPORT_DATA in an SEV-SNP report.
pub const SNP_REPORT_DATA_OFFSET: usize = 0x50;
/// The most certificates taken from an SNP certificate table.
const MAX_CERTS: usize = 8;

#[derive(Debug, Error)]
pub enum TsmError {
    #[error("configfs-tsm is not available at {0} (not a confidential VM, or Linux < 6.7)")]
    Unavailable(String),
    #[error("configfs-tsm {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("configfs-tsm {0} is larger than {MAX_BLOB} bytes")]
    TooLarge(String),
    #[error(
        "configfs-tsm: another writer changed the report entry (generation {before} -> {after}, expected {expected}); the report may answer another inblob"
    )]
    Raced {
        before: u64,
        after: u64,
        expected: u64,
    },
    #[error("configfs-tsm: unsupported provider {0:?} (expected sev_guest or tdx_guest)")]
    Provider(String),
    #[error("malformed evidence: {0}")]
    Malformed(String),
    #[error(
        "the SNP certificate table holds no VCEK or VLEK (the host configured none; fetch it from AMD's KDS outside the Keep)"
    )]
    NoVcek,
}

/// The file operations used on configfs (a trait, so tests can simulate the kernel).
pub trait ConfigFs {
    fn create_dir(&self, path: &Path) -> std::io::Result<()>;
    fn remove_dir(&self, path: &Path) -> std::io::Result<()>;
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()>;
    /// Reads at most `max` bytes (and one more, to tell that there was more).
    fn read(&self, path: &Path, max: u64) -> std::io::Result<Vec<u8>>;
    fn exists(&self, path: &Path) -> bool;
}

/// The real filesystem.
pub struct RealFs;

impl ConfigFs for RealFs {
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir(path)
    }
    fn remove_dir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        std::fs::write(path, data)
    }
    fn read(&self, path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        std::fs::File::open(path)?
            .take(max + 1)
            .read_to_end(&mut out)?;
        Ok(out)
    }
    fn exists(&self, path: &Path) -> bool {
        path.is_dir()
    }
}

/// The TEE that produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    SevSnp,
    Tdx,
}

impl Provider {
    /// The name `keep-verifier` bundles use.
    pub fn tee(self) -> &'static str {
        match self {
            Provider::SevSnp => "sev-snp",
            Provider::Tdx => "tdx",
        }
    }
}

/// One report as configfs-tsm returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsmReport {
    pub provider: Provider,
    pub outblob: Vec<u8>,
    /// SEV-SNP: the certificate table, when the host configured one.
    pub auxblob: Option<Vec<u8>>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TsmError {
    let what = what.into();
    move |source| TsmError::Io { what, source }
}

fn read_blob(fs: &dyn ConfigFs, dir: &Path, name: &str) -> Result<Vec<u8>, TsmError> {
    let data = fs.read(&dir.join(name), MAX_BLOB).map_err(io(name))?;
    if data.len() as u64 > MAX_BLOB {
        return Err(TsmError::TooLarge(name.into()));
    }
    Ok(data)
}

fn read_u64(fs: &dyn ConfigFs, dir: &Path, name: &str) -> Result<u64, TsmError> {
    let text = read_blob(fs, dir, name)?;
    std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| TsmError::Malformed(format!("{name} is not a number")))
}

/// Requests one report binding `report_data` from configfs-tsm under `root`
/// (normally [`TSM_REPORT_ROOT`]); `privlevel` is the SEV-SNP VMPL to ask for (None:
/// the kernel's default, and always None on TDX). The entry is named `name` (unique
/// per caller: e.g. `keep-<pid>-<counter>`) and removed afterwards.
pub fn get_report(
    fs: &dyn ConfigFs,
    root: &Path,
    name: &str,
    report_data: &[u8; 64],
    privlevel: Option<u32>,
) -> Result<TsmReport, TsmError> {
    if !fs.exists(root) {
        return Err(TsmError::Unavailable(root.display().to_string()));
    }
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(TsmError::Malformed(format!("entry name {name:?}")));
    }
    let dir: PathBuf = root.join(name);
    fs.create_dir(&dir)
        .map_err(io(format!("create {}", dir.display())))?;
    let result = report_in(fs, &dir, report_data, privlevel);
    let removed = fs.remove_dir(&dir);
    let report = result?;
    removed.map_err(io(format!("remove {}", dir.display())))?;
    Ok(report)
}

fn report_in(
    fs: &dyn ConfigFs,
    dir: &Path,
    report_data: &[u8; 64],
    privlevel: Option<u32>,
) -> Result<TsmReport, TsmError> {
    let provider = read_blob(fs, dir, "provider")?;
    let provider = match String::from_utf8_lossy(&provider).trim() {
        "sev_guest" => Provider::SevSnp,
        "tdx_guest" => Provider::Tdx,
        other => return Err(TsmError::Provider(other.chars().take(64).collect())),
    };
    let before = read_u64(fs, dir, "generation")?;
    let mut writes = 0;
    if let (Provider::SevSnp, Some(level)) = (provider, privlevel) {
        if level > 3 {
            return Err(TsmError::Malformed(format!("privlevel {level} (VMPL 0-3)")));
        }
        fs.write(&dir.join("privlevel"), level.to_string().as_bytes())
            .map_err(io("privlevel"))?;
        writes += 1;
    }
    fs.write(&dir.join("inblob"), report_data)
        .map_err(io("inblob"))?;
    writes += 1;
    let outblob = read_blob(fs, dir, "outblob")?;
    let auxblob = match provider {
        Provider::SevSnp => match fs.read(&dir.join("auxblob"), MAX_BLOB) {
            Ok(a) if a.len() as u64 > MAX_BLOB => return Err(TsmError::TooLarge("auxblob".into())),
            Ok(a) if a.is_empty() => None,
            Ok(a) => Some(a),
            // No certificates configured by the host: the kernel answers ENOENT/ENXIO.
            Err(_) => None,
        },
        Provider::Tdx => None,
    };
    let after = read_u64(fs, dir, "generation")?;
    let expected = before + writes;
    if after != expected {
        return Err(TsmError::Raced {
            before,
            after,
            expected,
        });
    }
    check_binding(provider, &outblob, report_data)?;
    Ok(TsmReport {
        provider,
        outblob,
        auxblob,
    })
}

/// Checks that an SNP report carries the report_data asked for (a cheap guard
/// against a confused kernel; the verifier checks it again, signed).
fn check_binding(
    provider: Provider,
    outblob: &[u8],
    report_data: &[u8; 64],
) -> Result<(), TsmError> {
    match provider {
        Provider::SevSnp => {
            if outblob.len() != SNP_REPORT_LEN {
                return Err(TsmError::Malformed(format!(
                    "SNP report of {} bytes (expected {SNP_REPORT_LEN})",
                    outblob.len()
                )));
            }
            let got = &outblob[SNP_REPORT_DATA_OFFSET..SNP_REPORT_DATA_OFFSET + 64];
            if got != report_data {
                return Err(TsmError::Malformed(
                    "the SNP report does not carry the report_data written".into(),
                ));
            }
            Ok(())
        }
        // A DCAP quote's layout is checked by the verifier (v4 and v5 differ).
        Provider::Tdx => {
            if outblob.len() < 48 {
                return Err(TsmError::Malformed(
                    "TDX quote shorter than its header".into(),
                ));
            }
            Ok(())
        }
    }
}

/// Certificates from an SEV-SNP certificate table (the auxblob), DER.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnpCertificates {
    pub vcek: Option<Vec<u8>>,
    pub vlek: Option<Vec<u8>>,
    pub ask: Option<Vec<u8>>,
    pub ark: Option<Vec<u8>>,
}

/// GUIDs of the GHCB certificate table, as written (RFC 4122 string order).
const VCEK: [u8; 16] = guid(
    0x63da758d,
    0xe664,
    0x4564,
    [0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd],
);
const VLEK: [u8; 16] = guid(
    0xa8074bc2,
    0xa25a,
    0x483e,
    [0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1],
);
const ASK: [u8; 16] = guid(
    0x4ab7b379,
    0xbbac,
    0x4fe4,
    [0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82],
);
const ARK: [u8; 16] = guid(
    0xc0b406a4,
    0xa803,
    0x4952,
    [0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae],
);

const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_be_bytes();
    let b = b.to_be_bytes();
    let c = c.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// The same GUID with its first three fields little-endian (the "mixed-endian"
/// binary form some firmware and tools write).
fn mixed_endian(g: &[u8; 16]) -> [u8; 16] {
    let mut m = *g;
    m[0..4].reverse();
    m[4..6].reverse();
    m[6..8].reverse();
    m
}

/// Parses the certificate table. Entries are bounds-checked against the blob;
/// unknown GUIDs (e.g. a CRL) are skipped; a repeated kind is an error.
pub fn snp_certificates(table: &[u8]) -> Result<SnpCertificates, TsmError> {
    let mut out = SnpCertificates::default();
    let mut at = 0usize;
    let mut seen = 0usize;
    loop {
        let entry = table.get(at..at + 24).ok_or_else(|| {
            TsmError::Malformed("certificate table without its closing entry".into())
        })?;
        let mut g = [0u8; 16];
        g.copy_from_slice(&entry[..16]);
        if g == [0u8; 16] {
            return Ok(out);
        }
        let word =
            |i: usize| u32::from_le_bytes([entry[i], entry[i + 1], entry[i + 2], entry[i + 3]]);
        let (offset, length) = (word(16) as usize, word(20) as usize);
        let cert = offset
            .checked_add(length)
            .and_then(|end| table.get(offset..end))
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                TsmError::Malformed(format!(
                    "certificate table entry {seen}: {length} bytes at {offset} outside the table"
                ))
            })?;
        let slot = [
            (&VCEK, &mut out.vcek),
            (&VLEK, &mut out.vlek),
            (&ASK, &mut out.ask),
            (&ARK, &mut out.ark),
        ]
        .into_iter()
        .find(|(known, _)| **known == g || mixed_endian(known) == g)
        .map(|(_, slot)| slot);
        if let Some(slot) = slot {
            if slot.is_some() {
                return Err(TsmError::Malformed(format!(
                    "certificate table entry {seen}: a second certificate of one kind"
                )));
            }
            *slot = Some(cert.to_vec());
        }
        seen += 1;
        if seen > MAX_CERTS * 2 {
            return Err(TsmError::Malformed(
                "certificate table has too many entries".into(),
            ));
        }
        at += 24;
    }
}

/// keep-verifier's bundle, version 1 (see `keep_verifier::bundle`).
#[derive(Serialize)]
struct Bundle<'a> {
    version: u32,
    tee: &'a str,
    #[serde(with = "serde_bytes")]
    evidence: &'a [u8],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    certs: Vec<serde_bytes::ByteBuf>,
}

/// The evidence bundle (CBOR) for a report: SNP with its VCEK or VLEK first, then
/// the ASK and ARK when the table has them; TDX with the quote alone (the collateral
/// is added outside the Keep).
pub fn bundle(report: &TsmReport) -> Result<Vec<u8>, TsmError> {
    let mut certs = Vec::new();
    if report.provider == Provider::SevSnp {
        let table = report.auxblob.as_deref().ok_or(TsmError::NoVcek)?;
        let c = snp_certificates(table)?;
        let key = c.vcek.or(c.vlek).ok_or(TsmError::NoVcek)?;
        certs.push(serde_bytes::ByteBuf::from(key));
        for extra in [c.ask, c.ark].into_iter().flatten() {
            certs.push(serde_bytes::ByteBuf::from(extra));
        }
    }
    let b = Bundle {
        version: 1,
        tee: report.provider.tee(),
        evidence: &report.outblob,
        certs,
    };
    let mut out = Vec::new();
    ciborium::into_writer(&b, &mut out).map_err(|e| TsmError::Malformed(e.to_string()))?;
    Ok(out)
}

/// The 64-byte report_data for Keep's 48-byte binding (SHA-384 of nonce, key and
/// measurement): the digest, then zeros (what `keep-verifier`'s report_data rule
/// expects of a shorter value).
pub fn report_data_64(binding: &[u8; 48]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..48].copy_from_slice(binding);
    out
}

#[cfg(test)]
mod tests;
