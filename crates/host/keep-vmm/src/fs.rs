//! Preopened directories for a KVM Keep, served by the host. The VMM opens each
//! directory itself (`O_PATH | O_DIRECTORY`) and hands the guest only handle
//! numbers into its own table; every path the guest names is resolved beneath the
//! handle it is relative to with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//! (for calls that name an entry rather than open it, the parent is opened that
//! way and the last component, never `..`, is used relative to it without following
//! it; UTIMES, which may follow it, opens the entry itself that way and sets the
//! times on that descriptor). Read-only
//! preopens (and everything opened through them) refuse every change with EROFS.
//! The host sees every byte read or written: nothing here is encrypted.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::abi::fs as op;
use crate::hostcall::{DATA_CAPACITY, RawReply};

/// Out-of-band data replies are written here in the data area (past the request).
const OUT: usize = op::REQUEST_DATA as usize;

struct Handle {
    fd: OwnedFd,
    writable: bool,
}

/// The preopened directories of one Keep and the files opened beneath them.
pub struct FileServer {
    preopens: Vec<(OwnedFd, bool)>,
    handles: Vec<Option<Handle>>,
}

/// Why a preopened directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open directory {path}: {source}")]
pub struct PreopenError {
    pub path: String,
    pub source: std::io::Error,
}

fn reply(ret: i64) -> RawReply {
    RawReply { ret, val: [0; 3] }
}

fn err(e: Errno) -> RawReply {
    reply(-i64::from(e.raw_os_error()))
}

impl FileServer {
    /// Opens each `(host path, writable)` as a directory, in order (preopen 0, 1, ...).
    pub fn open(dirs: &[(impl AsRef<Path>, bool)]) -> Result<Self, PreopenError> {
        let mut preopens = Vec::new();
        for (path, writable) in dirs {
            let fd = rustix::fs::open(
                path.as_ref(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| PreopenError {
                path: path.as_ref().display().to_string(),
                source: e.into(),
            })?;
            preopens.push((fd, *writable));
        }
        Ok(Self {
            preopens,
            handles: Vec::new(),
        })
    }

    fn handle(&self, h: u64) -> Result<&Handle, Errno> {
        usize::try_from(h)
            .ok()
            .and_then(|i| self.handles.get(i))
            .and_then(|x| x.as_ref())
            .ok_or(Errno::BADF)
    }

    fn insert(&mut self, fd: OwnedFd, writable: bool) -> Result<i64, Errno> {
        let slot = match self.handles.iter().position(|h| h.is_none()) {
            Some(i) => i,
            None if (self.handles.len() as u64) < op::MAX_HANDLES => {
                self.handles.push(None);
                self.handles.len() - 1
            }
            None => return Err(Errno::MFILE),
        };
        self.handles[slot] = Some(Handle { fd, writable });
        Ok(slot as i64)
    }

    /// Serves one FILE request: `w` are the request words, `data` the data area.
    pub fn serve(&mut self, operation: u64, w: &[u64; 8], data: &mut [u8]) -> RawReply {
        match self.serve_inner(operation, w, data) {
            Ok(r) => r,
            Err(e) => err(e),
        }
    }

    fn serve_inner(
        &mut self,
        operation: u64,
        w: &[u64; 8],
        data: &mut [u8],
    ) -> Result<RawReply, Errno> {
        match operation {
            op::PREOPEN => {
                let (fd, writable) = usize::try_from(w[0])
                    .ok()
                    .and_then(|i| self.preopens.get(i))
                    .ok_or(Errno::NOENT)?;
                // O_PATH as the VMM holds it, or the directory opened for reading
                // (getdents) when the guest did not ask for O_PATH.
                let fd = if OFlags::from_bits_retain(w[1] as u32).contains(OFlags::PATH) {
                    fd.try_clone().map_err(|_| Errno::MFILE)?
                } else {
                    rustix::fs::openat(
                        fd,
                        c".",
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?
                };
                let writable = *writable;
                Ok(reply(self.insert(fd, writable)?))
            }
            op::OPENAT => {
                let path = path_at(data, w[1], w[2])?;
                let h = self.handle(w[0])?;
                let flags = OFlags::from_bits_retain(w[3] as u32);
                let writes = flags
                    .intersects(OFlags::WRONLY | OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC)
                    || flags.contains(OFlags::TMPFILE);
                if writes && !h.writable {
                    return Err(Errno::ROFS);
                }
                let resolve = ResolveFlags::BENEATH
                    | ResolveFlags::NO_MAGICLINKS
                    | (ResolveFlags::from_bits_truncate(w[5])
                        & (ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV));
                // openat ignores the mode unless it creates; openat2 refuses one.
                let creates = flags.contains(OFlags::CREATE) || flags.contains(OFlags::TMPFILE);
                let mode = if creates {
                    Mode::from_bits_truncate(w[4] as u32)
                } else {
                    Mode::empty()
                };
                // As openat does: O_PATH keeps only the flags that go with it.
                let flags = if flags.contains(OFlags::PATH) {
                    flags & (OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW)
                } else {
                    flags | OFlags::NOCTTY
                };
                let fd = rustix::fs::openat2(
                    &h.fd,
                    path.as_c_str(),
                    flags | OFlags::CLOEXEC,
                    mode,
                    resolve,
                )?;
                let writable = h.writable;
                Ok(reply(self.insert(fd, writable)?))
            }
            op::CLOSE => {
                let i = usize::try_from(w[0]).map_err(|_| Errno::BADF)?;
                match self.handles.get_mut(i).and_then(|h| h.take()) {
                    Some(_) => Ok(reply(0)),
                    None => Err(Errno::BADF),
                }
            }
            op::READ => {
                let h = self.handle(w[0])?;
                let max = usize::try_from(w[1])
                    .unwrap_or(usize::MAX)
                    .min(DATA_CAPACITY - OUT);
                let buf = &mut data[OUT..OUT + max];
                let n = if w[2] == u64::MAX {
                    rustix::io::read(&h.fd, buf)?
                } else {
                    rustix::io::pread(&h.fd, buf, w[2])?
                };
                Ok(RawReply {
                    ret: n as i64,
                    val: [OUT as u64, n as u64, 0],
                })
            }
            op::WRITE => {
                let h = self.handle(w[0])?;
                if !h.writable {
                    return Err(Errno::ROFS);
                }
                let (o, l) = range(w[1], w[2])?;
                let bytes = &data[o..o + l];
                let n = if w[3] == u64::MAX {
                    rustix::io::write(&h.fd, bytes)?
                } else {
                    rustix::io::pwrite(&h.fd, bytes, w[3])?
                };
                Ok(reply(n as i64))
            }
            op::SEEK => {
                let h = self.handle(w[0])?;
                let pos = match w[2] {
                    0 => rustix::fs::SeekFrom::Start(w[1]),
                    1 => rustix::fs::SeekFrom::Current(w[1] as i64),
                    2 => rustix::fs::SeekFrom::End(w[1] as i64),
                    _ => return Err(Errno::INVAL),
                };
                let p = rustix::fs::seek(&h.fd, pos)?;
                Ok(reply(i64::try_from(p).map_err(|_| Errno::OVERFLOW)?))
            }
            op::STAT => {
                let h = self.handle(w[0])?;
                let flags = AtFlags::from_bits_truncate(w[3] as u32);
                let st = if w[2] == 0 {
                    rustix::fs::fstat(&h.fd)?
                } else if flags.contains(AtFlags::SYMLINK_NOFOLLOW) {
                    let (parent, last) = parent_of(h.fd.as_fd(), data, w[1], w[2])?;
                    rustix::fs::statat(
                        parent.as_ref().map_or(h.fd.as_fd(), |p| p.as_fd()),
                        last.as_c_str(),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )?
                } else {
                    let path = path_at(data, w[1], w[2])?;
                    let f = rustix::fs::openat2(
                        &h.fd,
                        path.as_c_str(),
                        OFlags::PATH | OFlags::CLOEXEC,
                        Mode::empty(),
                        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
                    )?;
                    rustix::fs::fstat(&f)?
                };
                let out = &mut data[OUT..OUT + 144];
                encode_stat(&st, out);
                Ok(RawReply {
                    ret: 0,
                    val: [OUT as u64, 144, 0],
                })
            }
            op::GETDENTS => {
                let h = self.handle(w[0])?;
                let max = usize::try_from(w[1])
                    .unwrap_or(usize::MAX)
                    .min(DATA_CAPACITY - OUT);
                let n = getdents(h.fd.as_fd(), &mut data[OUT..OUT + max])?;
                Ok(RawReply {
                    ret: n as i64,
                    val: [OUT as u64, n as u64, 0],
                })
            }
            op::MKDIR => {
                let h = self.writable_handle(w[0])?;
                let (parent, last) = parent_of(h.fd.as_fd(), data, w[1], w[2])?;
                let dir = parent.as_ref().map_or(h.fd.as_fd(), |p| p.as_fd());
                rustix::fs::mkdirat(dir, last.as_c_str(), Mode::from_bits_truncate(w[3] as u32))?;
                Ok(reply(0))
            }
            op::UNLINK => {
                let h = self.writable_handle(w[0])?;
                let (parent, last) = parent_of(h.fd.as_fd(), data, w[1], w[2])?;
                let dir = parent.as_ref().map_or(h.fd.as_fd(), |p| p.as_fd());
                let flags = AtFlags::from_bits_truncate(w[3] as u32) & AtFlags::REMOVEDIR;
                rustix::fs::unlinkat(dir, last.as_c_str(), flags)?;
                Ok(reply(0))
            }
            op::RENAME => {
                let a = self.writable_handle(w[0])?;
                let b = self.writable_handle(w[3])?;
                let (pa, la) = parent_of(a.fd.as_fd(), data, w[1], w[2])?;
                let (pb, lb) = parent_of(b.fd.as_fd(), data, w[4], w[5])?;
                let flags = rustix::fs::RenameFlags::from_bits_truncate(w[6] as u32)
                    & (rustix::fs::RenameFlags::NOREPLACE | rustix::fs::RenameFlags::EXCHANGE);
                rustix::fs::renameat_with(
                    pa.as_ref().map_or(a.fd.as_fd(), |p| p.as_fd()),
                    la.as_c_str(),
                    pb.as_ref().map_or(b.fd.as_fd(), |p| p.as_fd()),
                    lb.as_c_str(),
                    flags,
                )?;
                Ok(reply(0))
            }
            op::READLINK => {
                let h = self.handle(w[0])?;
                let (parent, last) = parent_of(h.fd.as_fd(), data, w[1], w[2])?;
                let dir = parent.as_ref().map_or(h.fd.as_fd(), |p| p.as_fd());
                let target = rustix::fs::readlinkat(dir, last.as_c_str(), Vec::new())?;
                let bytes = target.as_bytes();
                let n = bytes
                    .len()
                    .min(usize::try_from(w[3]).unwrap_or(usize::MAX))
                    .min(DATA_CAPACITY - OUT);
                data[OUT..OUT + n].copy_from_slice(&bytes[..n]);
                Ok(RawReply {
                    ret: n as i64,
                    val: [OUT as u64, n as u64, 0],
                })
            }
            op::SYMLINK => {
                let target = path_at(data, w[0], w[1])?;
                let h = self.writable_handle(w[2])?;
                let (parent, last) = parent_of(h.fd.as_fd(), data, w[3], w[4])?;
                let dir = parent.as_ref().map_or(h.fd.as_fd(), |p| p.as_fd());
                rustix::fs::symlinkat(target.as_c_str(), dir, last.as_c_str())?;
                Ok(reply(0))
            }
            op::LINK => {
                let a = self.writable_handle(w[0])?;
                let b = self.writable_handle(w[3])?;
                let (pa, la) = parent_of(a.fd.as_fd(), data, w[1], w[2])?;
                let (pb, lb) = parent_of(b.fd.as_fd(), data, w[4], w[5])?;
                rustix::fs::linkat(
                    pa.as_ref().map_or(a.fd.as_fd(), |p| p.as_fd()),
                    la.as_c_str(),
                    pb.as_ref().map_or(b.fd.as_fd(), |p| p.as_fd()),
                    lb.as_c_str(),
                    AtFlags::empty(),
                )?;
                Ok(reply(0))
            }
            op::TRUNCATE => {
                let h = self.writable_handle(w[0])?;
                rustix::fs::ftruncate(&h.fd, w[1])?;
                Ok(reply(0))
            }
            op::SYNC => {
                let h = self.handle(w[0])?;
                if w[1] == 1 {
                    rustix::fs::fdatasync(&h.fd)?;
                } else {
                    rustix::fs::fsync(&h.fd)?;
                }
                Ok(reply(0))
            }
            op::UTIMES => {
                let h = self.writable_handle(w[0])?;
                let ts = |s: u64, ns: u64| Timespec {
                    tv_sec: s as i64,
                    tv_nsec: ns as _,
                };
                let times = Timestamps {
                    last_access: ts(w[4], w[5]),
                    last_modification: ts(w[6], w[7]),
                };
                // The times are set on a file opened beneath the handle, never by
                // path: a last-component symlink is followed only beneath it (or not
                // at all with AT_SYMLINK_NOFOLLOW, which then names the link itself).
                // utimensat(fd, "", AT_EMPTY_PATH) works on O_PATH descriptors,
                // which futimens refuses.
                let opened = match w[2] {
                    0 => None,
                    _ => {
                        let path = path_at(data, w[1], w[2])?;
                        let nofollow = AtFlags::from_bits_truncate(w[3] as u32)
                            .contains(AtFlags::SYMLINK_NOFOLLOW);
                        let flags = match nofollow {
                            true => OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            false => OFlags::PATH | OFlags::CLOEXEC,
                        };
                        Some(rustix::fs::openat2(
                            &h.fd,
                            path.as_c_str(),
                            flags,
                            Mode::empty(),
                            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
                        )?)
                    }
                };
                let fd = opened.as_ref().map_or(h.fd.as_fd(), |f| f.as_fd());
                rustix::fs::utimensat(fd, c"", &times, AtFlags::EMPTY_PATH)?;
                Ok(reply(0))
            }
            op::GETFL => {
                let h = self.handle(w[0])?;
                let fl = rustix::fs::fcntl_getfl(&h.fd)?;
                Ok(reply(i64::from(fl.bits())))
            }
            _ => Err(Errno::NOSYS),
        }
    }

    fn writable_handle(&self, h: u64) -> Result<&Handle, Errno> {
        let h = self.handle(h)?;
        if h.writable { Ok(h) } else { Err(Errno::ROFS) }
    }
}

fn range(offset: u64, len: u64) -> Result<(usize, usize), Errno> {
    let (o, l) = (usize::try_from(offset), usize::try_from(len));
    match (o, l) {
        (Ok(o), Ok(l)) if o.checked_add(l).is_some_and(|e| e <= DATA_CAPACITY) => Ok((o, l)),
        _ => Err(Errno::FAULT),
    }
}

/// A path the guest named in the data area (no NUL inside; at most 4096 bytes).
fn path_at(data: &[u8], offset: u64, len: u64) -> Result<CString, Errno> {
    let (o, l) = range(offset, len)?;
    if l > 4096 {
        return Err(Errno::NAMETOOLONG);
    }
    CString::new(&data[o..o + l]).map_err(|_| Errno::INVAL)
}

/// For calls on an entry: its parent opened beneath `dir` (None: `dir` itself) and
/// the last component, which is never `..` (that would leave the parent).
fn parent_of(
    dir: BorrowedFd<'_>,
    data: &[u8],
    offset: u64,
    len: u64,
) -> Result<(Option<OwnedFd>, CString), Errno> {
    let path = path_at(data, offset, len)?;
    let bytes = path.as_bytes();
    let trimmed = {
        let mut end = bytes.len();
        while end > 1 && bytes[end - 1] == b'/' {
            end -= 1;
        }
        &bytes[..end]
    };
    let (parent, last) = match trimmed.iter().rposition(|&c| c == b'/') {
        Some(i) => (Some(&trimmed[..i.max(1)]), &trimmed[i + 1..]),
        None => (None, trimmed),
    };
    if last.is_empty() || last == b".." {
        return Err(if last.is_empty() {
            Errno::NOENT
        } else {
            Errno::XDEV
        });
    }
    let last = CString::new(last).map_err(|_| Errno::INVAL)?;
    let parent = match parent {
        None => None,
        Some(p) => {
            let p = CString::new(p).map_err(|_| Errno::INVAL)?;
            Some(rustix::fs::openat2(
                dir,
                p.as_c_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
            )?)
        }
    };
    Ok((parent, last))
}

/// struct stat (x86_64, 144 bytes).
#[allow(clippy::unnecessary_cast)] // the field types differ between rustix backends
fn encode_stat(st: &rustix::fs::Stat, out: &mut [u8]) {
    out.fill(0);
    let mut put =
        |at: usize, v: u64, n: usize| out[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
    put(0, st.st_dev as u64, 8);
    put(8, st.st_ino as u64, 8);
    put(16, st.st_nlink as u64, 8);
    put(24, u64::from(st.st_mode as u32), 4);
    put(28, u64::from(st.st_uid as u32), 4);
    put(32, u64::from(st.st_gid as u32), 4);
    put(40, st.st_rdev as u64, 8);
    put(48, st.st_size as u64, 8);
    put(56, st.st_blksize as u64, 8);
    put(64, st.st_blocks as u64, 8);
    put(72, st.st_atime as u64, 8);
    put(80, st.st_atime_nsec as u64, 8);
    put(88, st.st_mtime as u64, 8);
    put(96, st.st_mtime_nsec as u64, 8);
    put(104, st.st_ctime as u64, 8);
    put(112, st.st_ctime_nsec as u64, 8);
}

/// getdents64 into `out` (linux_dirent64 records, as the kernel writes them).
fn getdents(fd: BorrowedFd<'_>, out: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most out.len() bytes into `out`, which we own
    // mutably for the duration of the call; fd is a valid open descriptor.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            out.as_mut_ptr(),
            out.len(),
        )
    };
    if n < 0 {
        return Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(5),
        ));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Places `words` and `paths` into a data area as the shim would.
    fn call(s: &mut FileServer, operation: u64, words: [u64; 8]) -> (i64, Vec<u8>) {
        let mut data = vec![0u8; DATA_CAPACITY];
        call_with(s, operation, words, &[], &mut data)
    }

    fn call_with(
        s: &mut FileServer,
        operation: u64,
        mut words: [u64; 8],
        paths: &[(usize, &str)],
        data: &mut [u8],
    ) -> (i64, Vec<u8>) {
        let mut at = OUT;
        for (word, p) in paths {
            data[at..at + p.len()].copy_from_slice(p.as_bytes());
            words[*word] = at as u64;
            words[*word + 1] = p.len() as u64;
            at += p.len();
        }
        let r = s.serve(operation, &words, data);
        let (o, l) = (r.val[0] as usize, r.val[1] as usize);
        (r.ret, data.get(o..o + l).unwrap_or_default().to_vec())
    }

    fn open(s: &mut FileServer, dir: i64, path: &str, flags: OFlags) -> i64 {
        let mut data = vec![0u8; DATA_CAPACITY];
        let w = [dir as u64, 0, 0, u64::from(flags.bits()), 0o644, 0, 0, 0];
        call_with(s, op::OPENAT, w, &[(1, path)], &mut data).0
    }

    fn setup(writable: bool) -> (tempfile::TempDir, FileServer, i64) {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(t.path().join("secret"), "outside").expect("write");
        std::fs::write(root.join("a.txt"), "alpha").expect("write");
        std::os::unix::fs::symlink("../secret", root.join("rel")).expect("symlink");
        std::os::unix::fs::symlink(t.path().join("secret"), root.join("abs")).expect("symlink");
        let mut s = FileServer::open(&[(root, writable)]).expect("open");
        let (h, _) = call(
            &mut s,
            op::PREOPEN,
            [0, u64::from(OFlags::PATH.bits()), 0, 0, 0, 0, 0, 0],
        );
        assert!(h >= 0);
        (t, s, h)
    }

    const EXDEV: i64 = -18;
    const EROFS: i64 = -30;

    #[test]
    fn paths_stay_beneath_the_preopen() {
        let (t, mut s, root) = setup(true);
        let f = open(&mut s, root, "a.txt", OFlags::RDONLY);
        assert!(f >= 0);
        let (n, bytes) = call(&mut s, op::READ, [f as u64, 100, u64::MAX, 0, 0, 0, 0, 0]);
        assert_eq!((n, bytes.as_slice()), (5, &b"alpha"[..]));
        for escape in ["../secret", "sub/../../secret", "rel", "abs", "/etc/passwd"] {
            assert_eq!(
                open(&mut s, root, escape, OFlags::RDONLY),
                EXDEV,
                "{escape}"
            );
        }
        let sub = open(&mut s, root, "sub", OFlags::PATH | OFlags::DIRECTORY);
        assert!(sub >= 0);
        assert_eq!(open(&mut s, sub, "../a.txt", OFlags::RDONLY), EXDEV);
        // Calls on an entry: the last component is never "..".
        let mut data = vec![0u8; DATA_CAPACITY];
        let unlink = |s: &mut FileServer, data: &mut [u8], p: &str| {
            call_with(
                s,
                op::UNLINK,
                [root as u64, 0, 0, 0x200, 0, 0, 0, 0],
                &[(1, p)],
                data,
            )
            .0
        };
        assert_eq!(unlink(&mut s, &mut data, ".."), EXDEV);
        assert_eq!(unlink(&mut s, &mut data, "sub/../.."), EXDEV);
        assert_eq!(unlink(&mut s, &mut data, "rel/.."), EXDEV);
        assert_eq!(unlink(&mut s, &mut data, "rel/x"), EXDEV); // rel points out
        assert!(t.path().join("secret").exists() && t.path().join("root").exists());
        // A symlink created inside may point anywhere; following it is still refused.
        let w = [0, 0, root as u64, 0, 0, 0, 0, 0];
        let (r, _) = call_with(
            &mut s,
            op::SYMLINK,
            w,
            &[(0, "/etc"), (3, "etc")],
            &mut data,
        );
        assert_eq!(r, 0);
        assert_eq!(open(&mut s, root, "etc/passwd", OFlags::RDONLY), EXDEV);
        // Handles that were never handed out, or closed, are EBADF.
        assert_eq!(
            call(&mut s, op::CLOSE, [f as u64, 0, 0, 0, 0, 0, 0, 0]).0,
            0
        );
        assert_eq!(
            call(&mut s, op::READ, [f as u64, 1, 0, 0, 0, 0, 0, 0]).0,
            -9
        );
        assert_eq!(call(&mut s, op::READ, [4095, 1, 0, 0, 0, 0, 0, 0]).0, -9);
        // Paths outside the data area are EFAULT, not a panic.
        let w = [root as u64, u64::MAX - 1, 4, 0, 0, 0, 0, 0];
        assert_eq!(call(&mut s, op::OPENAT, w).0, -14);
    }

    fn mtime(p: &std::path::Path) -> i64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(p).expect("stat").mtime()
    }

    /// UTIMES on `path` beneath `dir` with `flags`, setting both times to `secs`.
    fn utimes(s: &mut FileServer, dir: i64, path: &str, flags: u64, secs: u64) -> i64 {
        let mut data = vec![0u8; DATA_CAPACITY];
        let w = [dir as u64, 0, 0, flags, secs, 0, secs, 0];
        let paths: &[(usize, &str)] = if path.is_empty() { &[] } else { &[(1, path)] };
        call_with(s, op::UTIMES, w, paths, &mut data).0
    }

    #[test]
    fn utimes_never_follows_a_symlink_out() {
        let (t, mut s, root) = setup(true);
        let secret = t.path().join("secret");
        let before = mtime(&secret);
        // A link the guest makes itself, to a host file outside the preopen.
        let mut data = vec![0u8; DATA_CAPACITY];
        let target = secret.to_str().expect("utf-8");
        let w = [0, 0, root as u64, 0, 0, 0, 0, 0];
        let (r, _) = call_with(
            &mut s,
            op::SYMLINK,
            w,
            &[(0, target), (3, "mine")],
            &mut data,
        );
        assert_eq!(r, 0);
        // Flags 0 follows the last component: only beneath the preopen.
        for link in ["abs", "rel", "mine", "sub/../mine", "../secret"] {
            assert_eq!(utimes(&mut s, root, link, 0, 1000), EXDEV, "{link}");
        }
        assert_eq!(mtime(&secret), before, "the outside file's times changed");
        // AT_SYMLINK_NOFOLLOW: the link itself.
        let nofollow = u64::from(AtFlags::SYMLINK_NOFOLLOW.bits());
        assert_eq!(utimes(&mut s, root, "mine", nofollow, 2000), 0);
        assert_eq!(mtime(&t.path().join("root/mine")), 2000);
        assert_eq!(mtime(&secret), before);
        // A file beneath it, by path and by handle (an O_PATH one too).
        assert_eq!(utimes(&mut s, root, "a.txt", 0, 3000), 0);
        assert_eq!(mtime(&t.path().join("root/a.txt")), 3000);
        let f = open(&mut s, root, "a.txt", OFlags::PATH);
        assert!(f >= 0);
        assert_eq!(utimes(&mut s, f, "", 0, 4000), 0);
        assert_eq!(mtime(&t.path().join("root/a.txt")), 4000);
        // Read-only preopens refuse it.
        let (_t, mut ro, ro_root) = setup(false);
        assert_eq!(utimes(&mut ro, ro_root, "a.txt", 0, 5000), EROFS);
    }

    #[test]
    fn read_only_preopens_refuse_changes() {
        let (t, mut s, root) = setup(false);
        assert!(open(&mut s, root, "a.txt", OFlags::RDONLY) >= 0);
        for flags in [OFlags::WRONLY, OFlags::RDWR, OFlags::CREATE, OFlags::TRUNC] {
            assert_eq!(open(&mut s, root, "a.txt", flags), EROFS);
        }
        let mut data = vec![0u8; DATA_CAPACITY];
        let w = [root as u64, 0, 0, 0o755, 0, 0, 0, 0];
        assert_eq!(
            call_with(&mut s, op::MKDIR, w, &[(1, "d")], &mut data).0,
            EROFS
        );
        let w = [root as u64, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            call_with(&mut s, op::UNLINK, w, &[(1, "a.txt")], &mut data).0,
            EROFS
        );
        assert!(t.path().join("root/a.txt").exists());
        assert!(!t.path().join("root/d").exists());
    }
}
