//! The exec binary, embedded at build time, and how the process backend runs it.
//!
//! Either way the exec is executed through a descriptor the host holds
//! (`/proc/self/fd/N`), never by a path that could be swapped between a check and
//! the spawn:
//!
//! - **Sealed** (the agent, `keep host serve`): the embedded bytes are copied once
//!   per host process into an anonymous memory file, sealed against any change
//!   (`F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`). Nothing on disk is
//!   in the path from the embedded bytes to the running exec, so what runs is what
//!   `EXEC_SHA384` names. The copy costs ~20 ms on the development machine, once per
//!   agent.
//! - **Cached** (`keep run`, one process per run, where those 20 ms would be most of
//!   a cold start): a file `keep-exec-<sha384 prefix>` in keep's private cache
//!   directory (0700, refused if another user can write it, see `host_dirs`), used
//!   only if it is a regular file of this user's, not writable by group or others,
//!   and of the exact size; otherwise it is written afresh. Its content is not
//!   hashed (31 MB, tens of ms): only this user (or root) can have put it there, and
//!   this user can change the `keep` binary itself.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

/// SHA-384 of the embedded exec: the measurement of the exec layer.
pub const EXEC_SHA384: &str = env!("KEEP_EXEC_SHA384");

/// Page-aligned so the KVM backend can hand the embedded bytes to the Keep as a
/// read-only memory slot instead of copying them (see `keep_vmm::Keep::launch_static`).
#[repr(C, align(4096))]
struct PageAligned<B: ?Sized>(B);

static EXEC_ALIGNED: &PageAligned<[u8]> = &PageAligned(*include_bytes!(env!("KEEP_EXEC_PATH")));
static EXEC_BYTES: &[u8] = &EXEC_ALIGNED.0;

/// The lowest descriptor the sealed exec may sit on: the exec's launch channel (3)
/// and its stdio (0-2) are put in place in the child before it executes the file.
const FIRST_FD: i32 = keep_wire::CHANNEL_FD + 1;

/// The exec, open and ready to execute.
#[derive(Debug, Clone)]
pub struct ExecImage {
    /// `/proc/self/fd/N` of the sealed memfd or the checked cached file (valid in
    /// this process and in a child between fork and exec).
    pub path: PathBuf,
    /// Keeps the memfd open for as long as any copy of the image exists.
    _fd: Arc<OwnedFd>,
}

/// The one sealed copy of this process.
static SEALED: Mutex<Option<ExecImage>> = Mutex::new(None);

impl ExecImage {
    /// The embedded exec's bytes.
    pub fn bytes() -> &'static [u8] {
        EXEC_BYTES
    }

    /// The embedded exec in a sealed memfd (made on the first call, then shared).
    pub fn sealed() -> io::Result<Self> {
        let mut slot = SEALED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(image) = slot.as_ref() {
            return Ok(image.clone());
        }
        let fd = Arc::new(seal(EXEC_BYTES)?);
        let image = Self {
            path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            _fd: fd,
        };
        *slot = Some(image.clone());
        Ok(image)
    }

    /// The exec as a file in `cache_dir` (which the caller checked is private),
    /// opened and checked; written afresh when missing or not as it should be.
    pub fn cached(cache_dir: &Path) -> io::Result<Self> {
        let path = cache_dir.join(format!("keep-exec-{}", &EXEC_SHA384[..32]));
        let fd = match open_checked(&path) {
            Some(fd) => fd,
            None => {
                write_file(cache_dir, &path)?;
                open_checked(&path).ok_or_else(|| {
                    io::Error::other(format!("{} is not as written", path.display()))
                })?
            }
        };
        let fd = Arc::new(above_stdio(fd)?);
        Ok(Self {
            path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            _fd: fd,
        })
    }
}

/// Opens the cached exec if it is a regular file of this user's, executable, not
/// writable by group or others, and of the embedded exec's size.
fn open_checked(path: &Path) -> Option<OwnedFd> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    let mode = st.st_mode & 0o7777;
    let ok = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
        && st.st_uid == rustix::process::geteuid().as_raw()
        && mode & 0o022 == 0
        && mode & 0o100 != 0
        && u64::try_from(st.st_size).ok() == Some(EXEC_BYTES.len() as u64);
    ok.then_some(fd)
}

/// Writes the embedded exec to `path` (0555) through a temporary file and a rename.
fn write_file(dir: &Path, path: &Path) -> io::Result<()> {
    let (tmp_path, mut file) = tempfile_in(dir)?;
    let written = file
        .write_all(EXEC_BYTES)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            // Closed before it becomes visible: executing a file that some process
            // still has open for writing fails with ETXTBSY.
            drop(file);
            std::fs::set_permissions(&tmp_path, std::fs::Permissions::from_mode(0o555))
        })
        .and_then(|()| std::fs::rename(&tmp_path, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    written
}

fn tempfile_in(dir: &Path) -> io::Result<(PathBuf, File)> {
    for attempt in 0..100u32 {
        let path = dir.join(format!(".keep-exec-{}-{attempt}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "cannot create a temporary file for the exec",
    ))
}

/// The same file on a descriptor above the ones the child's set-up overwrites.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= FIRST_FD {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, FIRST_FD)?)
}

/// Copies `bytes` into a new memfd, seals it, and returns it reopened read-only (a
/// file that is open for writing cannot be executed: ETXTBSY) on a descriptor
/// above the ones the child's set-up overwrites.
fn seal(bytes: &[u8]) -> io::Result<OwnedFd> {
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) asks for an executable memfd where the default is not;
    // older kernels refuse the flag, and their memfds are executable.
    let memfd = match rustix::fs::memfd_create("keep-exec", flags | MemfdFlags::EXEC) {
        Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create("keep-exec", flags)?,
        r => r?,
    };
    let mut file = File::from(memfd);
    file.write_all(bytes)?;
    let seals = SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL;
    // F_SEAL_EXEC (Linux 6.3) also fixes the mode bits.
    match rustix::fs::fcntl_add_seals(&file, seals | SealFlags::EXEC) {
        Err(rustix::io::Errno::INVAL) => rustix::fs::fcntl_add_seals(&file, seals)?,
        r => r?,
    }
    let ro = rustix::fs::open(
        format!("/proc/self/fd/{}", file.as_raw_fd()),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    drop(file);
    above_stdio(ro)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_sealed_copy_holds_the_bytes_and_refuses_changes() {
        let bytes = b"\x7fELF not really, but bytes to seal".repeat(100);
        let fd = seal(&bytes).unwrap();
        assert!(fd.as_raw_fd() >= FIRST_FD);
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, bytes);
        // Neither this process nor another one of this user's can change it.
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert!(w.write_all(b"tampered").is_err());
        assert!(w.set_len(1).is_err());
        assert!(w.set_len(1 << 20).is_err());
        let seals = rustix::fs::fcntl_get_seals(&fd).unwrap();
        assert!(seals.contains(SealFlags::WRITE | SealFlags::SEAL));
        // One copy per process.
        let a = ExecImage::sealed().unwrap();
        let b = ExecImage::sealed().unwrap();
        assert_eq!(a.path, b.path);
    }
}
