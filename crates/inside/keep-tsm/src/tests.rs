//! Against a simulated configfs-tsm that behaves as the kernel documents it: entries
//! are directories, every write bumps `generation`, `outblob` answers the current
//! `inblob`. The SNP case returns a real report and VCEK (keep-verifier's
//! milan-virtee vector), so the bundle built here is checked by the real verifier.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::*;

const ROOT: &str = "/sys/kernel/config/tsm/report";

fn vector(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../verifier/keep-verifier/tests/vectors/snp/milan-virtee")
        .join(name);
    std::fs::read(p).unwrap()
}

#[derive(Default)]
struct Entry {
    generation: u64,
    inblob: Option<Vec<u8>>,
    privlevel: Option<Vec<u8>>,
}

/// What the simulated kernel's outblob returns for an inblob.
type OutblobFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// The simulated kernel.
struct Fake {
    provider: &'static str,
    outblob: OutblobFn,
    auxblob: Option<Vec<u8>>,
    /// Another writer bumps the generation while we read outblob.
    racer: bool,
    entries: RefCell<HashMap<PathBuf, Entry>>,
    removed: RefCell<Vec<PathBuf>>,
}

impl Fake {
    fn new(provider: &'static str, outblob: impl Fn(&[u8]) -> Vec<u8> + 'static) -> Fake {
        Fake {
            provider,
            outblob: Box::new(outblob),
            auxblob: None,
            racer: false,
            entries: RefCell::new(HashMap::new()),
            removed: RefCell::new(Vec::new()),
        }
    }
}

fn not_found() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::NotFound)
}

impl ConfigFs for Fake {
    fn create_dir(&self, path: &Path) -> std::io::Result<()> {
        assert_eq!(path.parent(), Some(Path::new(ROOT)));
        let mut e = self.entries.borrow_mut();
        if e.contains_key(path) {
            return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
        }
        e.insert(path.to_path_buf(), Entry::default());
        Ok(())
    }
    fn remove_dir(&self, path: &Path) -> std::io::Result<()> {
        self.entries
            .borrow_mut()
            .remove(path)
            .ok_or_else(not_found)?;
        self.removed.borrow_mut().push(path.to_path_buf());
        Ok(())
    }
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        let dir = path.parent().ok_or_else(not_found)?;
        let mut entries = self.entries.borrow_mut();
        let e = entries.get_mut(dir).ok_or_else(not_found)?;
        match path.file_name().and_then(|n| n.to_str()) {
            Some("inblob") if data.len() <= 64 => e.inblob = Some(data.to_vec()),
            Some("privlevel") => e.privlevel = Some(data.to_vec()),
            _ => return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
        }
        e.generation += 1;
        Ok(())
    }
    fn read(&self, path: &Path, _max: u64) -> std::io::Result<Vec<u8>> {
        let dir = path.parent().ok_or_else(not_found)?;
        let mut entries = self.entries.borrow_mut();
        let e = entries.get_mut(dir).ok_or_else(not_found)?;
        match path.file_name().and_then(|n| n.to_str()) {
            Some("provider") => Ok(format!("{}\n", self.provider).into_bytes()),
            Some("generation") => Ok(format!("{}\n", e.generation).into_bytes()),
            Some("outblob") => {
                let inblob = e.inblob.clone().ok_or_else(not_found)?;
                if self.racer {
                    e.generation += 1;
                }
                Ok((self.outblob)(&inblob))
            }
            Some("auxblob") => self.auxblob.clone().ok_or_else(not_found),
            _ => Err(not_found()),
        }
    }
    fn exists(&self, path: &Path) -> bool {
        path == Path::new(ROOT)
    }
}

/// A GHCB certificate table holding `certs` (GUID, DER), in the given GUID order.
fn table(certs: &[([u8; 16], &[u8])]) -> Vec<u8> {
    let header = 24 * (certs.len() + 1);
    let mut out = Vec::new();
    let mut data = Vec::new();
    for (g, der) in certs {
        out.extend_from_slice(g);
        out.extend_from_slice(&((header + data.len()) as u32).to_le_bytes());
        out.extend_from_slice(&(der.len() as u32).to_le_bytes());
        data.extend_from_slice(der);
    }
    out.extend_from_slice(&[0u8; 24]);
    out.extend_from_slice(&data);
    out
}

#[test]
fn snp_report_becomes_a_bundle_the_verifier_accepts() {
    let report = vector("report.bin");
    let vcek = vector("vcek.der");
    let mut rd = [0u8; 64];
    rd.copy_from_slice(&report[SNP_REPORT_DATA_OFFSET..SNP_REPORT_DATA_OFFSET + 64]);
    let real = report.clone();
    // The simulated PSP signs only what it was asked for: the real report when the
    // inblob is its report_data.
    let mut fake = Fake::new("sev_guest", move |inblob| {
        let mut r = real.clone();
        r[SNP_REPORT_DATA_OFFSET..SNP_REPORT_DATA_OFFSET + 64].copy_from_slice(inblob);
        r
    });
    fake.auxblob = Some(table(&[
        (mixed_endian(&ASK), b"not the ASK"),
        (VCEK, &vcek),
    ]));
    let got = get_report(&fake, Path::new(ROOT), "keep-1", &rd, Some(0)).unwrap();
    assert_eq!(got.provider, Provider::SevSnp);
    assert_eq!(got.outblob, report);
    assert_eq!(
        fake.removed.borrow().as_slice(),
        [PathBuf::from(ROOT).join("keep-1")]
    );
    assert!(fake.entries.borrow().is_empty(), "the entry is removed");

    let cbor = bundle(&got).unwrap();
    let b = keep_verifier::bundle::Bundle::from_cbor(&cbor).unwrap();
    assert_eq!(b.tee, "sev-snp");
    assert_eq!(b.certs[0].as_slice(), vcek.as_slice(), "the VCEK first");
    // The ASK from the table is junk here: drop it and let the verifier use its own.
    let only_vcek = TsmReport {
        auxblob: Some(table(&[(VCEK, &vcek)])),
        ..got
    };
    let b = keep_verifier::bundle::Bundle::from_cbor(&bundle(&only_vcek).unwrap()).unwrap();
    let mut policy = keep_verifier::Policy::default();
    policy.require_report_data(&rd);
    let now = keep_verifier::UnixTime::parse("2025-01-01").unwrap();
    let v = keep_verifier::bundle::verify_bundle(&b, &policy, now, Default::default()).unwrap();
    assert_eq!(
        v.verdict,
        keep_verifier::Verdict::Accepted,
        "{:?}",
        v.evidence
    );
}

#[test]
fn the_report_must_answer_the_inblob_and_no_one_else_may_write() {
    let report = vector("report.bin");
    let rd = [7u8; 64];
    // A kernel that returns a report for another inblob.
    let stale = report.clone();
    let fake = Fake::new("sev_guest", move |_| stale.clone());
    let e = get_report(&fake, Path::new(ROOT), "k", &rd, None).unwrap_err();
    assert!(
        e.to_string().contains("does not carry the report_data"),
        "{e}"
    );
    assert!(fake.entries.borrow().is_empty(), "removed on failure too");
    // A racing writer.
    let mut fake = Fake::new("tdx_guest", |_| vec![4u8; 600]);
    fake.racer = true;
    let e = get_report(&fake, Path::new(ROOT), "k", &rd, None).unwrap_err();
    assert!(matches!(e, TsmError::Raced { .. }), "{e}");
    // TDX: the quote as the kernel gives it; no privlevel write.
    let fake = Fake::new("tdx_guest", |_| vec![4u8; 600]);
    let got = get_report(&fake, Path::new(ROOT), "k", &rd, Some(0)).unwrap();
    assert_eq!(got.provider, Provider::Tdx);
    let b = keep_verifier::bundle::Bundle::from_cbor(&bundle(&got).unwrap()).unwrap();
    assert_eq!(b.tee, "tdx");
    assert!(b.certs.is_empty());
    // Other providers, names and missing configfs.
    let fake = Fake::new("arm_cca_guest", |_| Vec::new());
    assert!(matches!(
        get_report(&fake, Path::new(ROOT), "k", &rd, None),
        Err(TsmError::Provider(_))
    ));
    assert!(get_report(&fake, Path::new(ROOT), "../x", &rd, None).is_err());
    assert!(matches!(
        get_report(&fake, Path::new("/nonexistent"), "k", &rd, None),
        Err(TsmError::Unavailable(_))
    ));
}

#[test]
fn certificate_tables_are_bounds_checked() {
    let t = table(&[(VLEK, b"vlek"), (ARK, b"ark"), ([9u8; 16], b"crl")]);
    let c = snp_certificates(&t).unwrap();
    assert_eq!(c.vlek.as_deref(), Some(&b"vlek"[..]));
    assert_eq!(c.ark.as_deref(), Some(&b"ark"[..]));
    assert_eq!(c.vcek, None);
    // Every truncation and every out-of-bounds entry is an error, never a panic.
    for n in 0..t.len() {
        let _ = snp_certificates(&t[..n]);
    }
    assert!(snp_certificates(&t[..24]).is_err(), "no closing entry");
    let mut bad = t.clone();
    bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(snp_certificates(&bad).is_err());
    let mut bad = t.clone();
    bad[20..24].copy_from_slice(&0u32.to_le_bytes());
    assert!(snp_certificates(&bad).is_err(), "an empty certificate");
    let twice = table(&[(VCEK, b"a"), (mixed_endian(&VCEK), b"b")]);
    assert!(snp_certificates(&twice).is_err(), "two VCEKs");
    // No VCEK or VLEK: no bundle.
    let report = TsmReport {
        provider: Provider::SevSnp,
        outblob: vec![0; SNP_REPORT_LEN],
        auxblob: Some(table(&[(ASK, b"ask")])),
    };
    assert!(matches!(bundle(&report), Err(TsmError::NoVcek)));
    assert_eq!(report_data_64(&[1u8; 48])[47..49], [1, 0]);
}
