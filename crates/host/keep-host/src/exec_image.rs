//! The exec binary, embedded at build time, and where it is put to run.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// SHA-384 of the embedded exec: the measurement of the exec layer.
pub const EXEC_SHA384: &str = env!("KEEP_EXEC_SHA384");

/// Page-aligned so the KVM backend can hand the embedded bytes to the Keep as a
/// read-only memory slot instead of copying them (see `keep_vmm::Keep::launch_static`).
#[repr(C, align(4096))]
struct PageAligned<B: ?Sized>(B);

static EXEC_ALIGNED: &PageAligned<[u8]> = &PageAligned(*include_bytes!(env!("KEEP_EXEC_PATH")));
static EXEC_BYTES: &[u8] = &EXEC_ALIGNED.0;

/// The exec as a file on the host's disk, ready to execute.
#[derive(Debug, Clone)]
pub struct ExecImage {
    pub path: PathBuf,
}

impl ExecImage {
    /// The embedded exec's bytes.
    pub fn bytes() -> &'static [u8] {
        EXEC_BYTES
    }

    /// Writes the embedded exec once to a content-addressed file under `cache_dir`
    /// (`exec-<sha384>`), so later runs start it without copying 20 MB again.
    /// A file of the wrong size there is replaced.
    pub fn materialize(cache_dir: &Path) -> std::io::Result<Self> {
        let path = cache_dir.join(format!("keep-exec-{}", &EXEC_SHA384[..32]));
        if let Ok(meta) = fs::metadata(&path)
            && meta.len() == EXEC_BYTES.len() as u64
            && meta.permissions().mode() & 0o111 != 0
        {
            return Ok(Self { path });
        }
        fs::create_dir_all(cache_dir)?;
        let (tmp_path, mut file) = tempfile_in(cache_dir)?;
        file.write_all(EXEC_BYTES)?;
        file.sync_all()?;
        // Closed before it becomes visible: executing a file that some process still
        // has open for writing fails with ETXTBSY.
        drop(file);
        fs::set_permissions(&tmp_path, fs::Permissions::from_mode(0o555))?;
        fs::rename(&tmp_path, &path)?;
        Ok(Self { path })
    }

    /// Where `keep` keeps the exec: `$KEEP_CACHE_DIR`, else `$XDG_CACHE_HOME/keep`,
    /// else `~/.cache/keep`, else the system temporary directory.
    pub fn default_cache_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("KEEP_CACHE_DIR") {
            return PathBuf::from(dir);
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return PathBuf::from(dir).join("keep");
        }
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(".cache").join("keep");
        }
        std::env::temp_dir().join("keep")
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    for attempt in 0..100u32 {
        let path = dir.join(format!(".keep-exec-{}-{attempt}.tmp", std::process::id()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "cannot create a temporary file for the exec",
    ))
}
