//! Files beneath preopened directories, served by the host (FILE host calls, see
//! `abi::fs`). The VMM opens the directories and everything beneath them and
//! confines every path; the shim only names handles, copies paths and data into
//! the call block (never a pointer), and checks every reply before use: a handle
//! out of range, a count larger than asked, data outside the block or an absurd
//! errno stops the Keep. The host sees every byte read or written.
//!
//! `dispatch` takes the syscalls that name a host descriptor (or open a preopen by
//! its path `/.keep/dir/<i>`); everything else goes on to `syscall`.

use crate::abi::MAX_ERRNO;
use crate::abi::fs as op;
use crate::fd::{self, File};
use crate::hostcall::{self, DATA_CAPACITY, checked_count, refuse};
use crate::mm;

const EFAULT: i64 = 14;
const EINVAL: i64 = 22;
const ENOSYS: i64 = 38;
const ENAMETOOLONG: i64 = 36;
const EOPNOTSUPP: i64 = 95;
const AT_FDCWD: i32 = -100;
const AT_EMPTY_PATH: u64 = 0x1000;
const O_CLOEXEC: u64 = 0o2000000;
const CUR: u64 = u64::MAX;

/// A request being built in the data area: 8 words, then paths and bytes.
struct Req {
    words: [u64; 8],
    len: usize,
}

impl Req {
    fn new() -> Self {
        // Staged output lives in the data area: send it before reusing it.
        hostcall::flush();
        Req {
            words: [0; 8],
            len: op::REQUEST_DATA as usize,
        }
    }

    /// Copies the guest's NUL-terminated path at `ptr`; returns (offset, length).
    fn path(&mut self, ptr: u64) -> Result<(u64, u64), i64> {
        let start = self.len;
        let mut n = 0usize;
        loop {
            if n > 4096 {
                return Err(-ENAMETOOLONG);
            }
            if !mm::user_range_ok(ptr + n as u64, 1, false) {
                return Err(-EFAULT);
            }
            // SAFETY: one byte checked mapped.
            let c = unsafe { core::ptr::read((ptr + n as u64) as *const u8) };
            if c == 0 {
                break;
            }
            // SAFETY: start + n < REQUEST_DATA + 4097, far inside the data area.
            unsafe { core::ptr::write(hostcall::data().add(start + n), c) };
            n += 1;
        }
        self.len += n;
        Ok((start as u64, n as u64))
    }

    /// Copies `n` guest bytes at `ptr` (checked mapped, n fits); (offset, length).
    fn bytes(&mut self, ptr: u64, n: usize) -> (u64, u64) {
        let start = self.len;
        // SAFETY: the caller checked the user range; start + n <= DATA_CAPACITY.
        unsafe { core::ptr::copy_nonoverlapping(ptr as *const u8, hostcall::data().add(start), n) };
        self.len += n;
        (start as u64, n as u64)
    }

    fn send(self, operation: u64) -> crate::abi::CallHeader {
        for (i, w) in self.words.iter().enumerate() {
            // SAFETY: the 64 bytes of words lie at the start of the data area.
            unsafe { core::ptr::write_unaligned(hostcall::data().add(8 * i) as *mut u64, *w) };
        }
        hostcall::file(operation, self.len)
    }
}

/// A reply that is 0 or -errno.
fn status(ret: i64) -> i64 {
    match checked_count(ret, 0, "host reply refused: file status out of range") {
        Ok(_) => 0,
        Err(e) => e,
    }
}

/// A reply that is a new handle or -errno.
fn handle(ret: i64) -> Result<u32, i64> {
    if ret < 0 {
        checked_count(ret, 0, "host reply refused: file handle out of range")?;
    }
    if ret as u64 >= op::MAX_HANDLES {
        refuse("host reply refused: file handle out of range");
    }
    Ok(ret as u32)
}

/// A reply carrying at most `max` bytes at val[0]; returns (offset, count).
fn bytes_reply(r: &crate::abi::CallHeader, max: usize, what: &str) -> Result<(usize, usize), i64> {
    let n = checked_count(r.ret, max, what)?;
    let off = usize::try_from(r.val[0]).unwrap_or(usize::MAX);
    match off.checked_add(n) {
        Some(end) if end <= DATA_CAPACITY => Ok((off, n)),
        _ => refuse("host reply refused: file data outside the call block"),
    }
}

fn host(fd: u64) -> Option<u32> {
    match fd::get(fd) {
        Ok(File::Host(h)) => Some(h),
        _ => None,
    }
}

pub fn close(h: u32) -> i64 {
    let mut q = Req::new();
    q.words[0] = u64::from(h);
    status(q.send(op::CLOSE).ret)
}

pub fn getfl(h: u32) -> i64 {
    let mut q = Req::new();
    q.words[0] = u64::from(h);
    let r = q.send(op::GETFL).ret;
    if r > i64::from(u32::MAX) {
        refuse("host reply refused: file flags out of range");
    }
    match checked_count(
        r,
        u32::MAX as usize,
        "host reply refused: file flags out of range",
    ) {
        Ok(v) => v as i64,
        Err(e) => e,
    }
}

/// Syscalls on host descriptors; None: not ours (the caller serves it).
pub fn dispatch(nr: u64, a: [u64; 6]) -> Option<i64> {
    Some(match nr {
        // pread64, pwrite64, preadv, pwritev: a negative offset (a loff_t) is
        // EINVAL, as on Linux; it must not reach the VMM, where u64::MAX (CUR)
        // means "at the current position".
        17 | 18 | 295 | 296 if a[3] > i64::MAX as u64 => {
            host(a[0])?;
            -EINVAL
        }
        // preadv2, pwritev2: offset -1 is the cursor; RWF_APPEND writes at the end
        // (wasmtime-wasi appends this way) and, as on Linux, moves the cursor only
        // when the offset is -1; other flags are hints.
        327 | 328 => {
            let h = host(a[0])?;
            let writing = nr == 328;
            if writing && a[5] & RWF_APPEND != 0 {
                append(h, a[1], a[2], a[3] == CUR)
            } else if a[3] == CUR {
                vectored(h, a[1], a[2], CUR, writing)
            } else if a[3] > i64::MAX as u64 {
                -EINVAL
            } else {
                vectored(h, a[1], a[2], a[3], writing)
            }
        }
        0 => read(host(a[0])?, a[1], a[2], CUR),
        17 => read(host(a[0])?, a[1], a[2], a[3]),
        1 => write(host(a[0])?, a[1], a[2], CUR),
        18 => write(host(a[0])?, a[1], a[2], a[3]),
        19 => vectored(host(a[0])?, a[1], a[2], CUR, false),
        20 => vectored(host(a[0])?, a[1], a[2], CUR, true),
        295 => vectored(host(a[0])?, a[1], a[2], a[3], false),
        296 => vectored(host(a[0])?, a[1], a[2], a[3], true),
        8 => seek(host(a[0])?, a[1], a[2]),
        5 => stat(host(a[0])?, None, a[1], 0),
        262 => {
            let h = host(a[0])?;
            let empty = a[3] & AT_EMPTY_PATH != 0 && first_byte(a[1]) == Some(0);
            stat(h, (!empty).then_some(a[1]), a[2], a[3])
        }
        // statx: std falls back to fstat/newfstatat on ENOSYS.
        332 => -ENOSYS,
        257 if a[0] as u32 as i32 == AT_FDCWD => preopen(a[1], a[2])?,
        2 => preopen(a[0], a[1])?,
        257 => openat(host(a[0])?, a[1], a[2], a[3], 0),
        437 => match host(a[0]) {
            Some(h) => openat2(h, a[1], a[2], a[3]),
            None => -ENOSYS,
        },
        217 => getdents(host(a[0])?, a[1], a[2]),
        258 => path_op(op::MKDIR, host(a[0])?, a[1], a[2]),
        263 => path_op(op::UNLINK, host(a[0])?, a[1], a[2]),
        264 => two_paths(op::RENAME, host(a[0])?, a[1], host(a[2])?, a[3], 0),
        316 => two_paths(op::RENAME, host(a[0])?, a[1], host(a[2])?, a[3], a[4]),
        265 => two_paths(op::LINK, host(a[0])?, a[1], host(a[2])?, a[3], a[4]),
        266 => symlink(a[0], host(a[1])?, a[2]),
        267 => readlink(host(a[0])?, a[1], a[2], a[3]),
        280 => utimes(host(a[0])?, a[1], a[2], a[3]),
        77 => simple(op::TRUNCATE, host(a[0])?, a[1]),
        74 => simple(op::SYNC, host(a[0])?, 0),
        75 => simple(op::SYNC, host(a[0])?, 1),
        221 => host(a[0]).map(|_| 0)?, // fadvise64: advice only
        285 => host(a[0]).map(|_| -EOPNOTSUPP)?, // fallocate
        269 | 439 => {
            // faccessat(2): exists beneath the directory?
            let h = host(a[0])?;
            match stat_reply(h, Some(a[1]), 0) {
                Ok(_) => 0,
                Err(e) => e,
            }
        }
        _ => return None,
    })
}

fn first_byte(ptr: u64) -> Option<u8> {
    // SAFETY: one byte checked mapped first.
    mm::user_range_ok(ptr, 1, false).then(|| unsafe { core::ptr::read(ptr as *const u8) })
}

/// open/openat(AT_FDCWD, "/.keep/dir/<i>"): preopened directory i. Other paths: None.
fn preopen(path: u64, flags: u64) -> Option<i64> {
    let prefix = op::PREOPEN_PREFIX.as_bytes();
    let mut idx = 0u64;
    let mut digits = 0;
    for k in 0..prefix.len() + 5 {
        let c = first_byte(path + k as u64)?;
        if k < prefix.len() {
            if c != prefix[k] {
                return None;
            }
        } else if c == 0 {
            break;
        } else if c.is_ascii_digit() && digits < 4 {
            idx = idx * 10 + u64::from(c - b'0');
            digits += 1;
        } else {
            return None;
        }
    }
    if digits == 0 {
        return None;
    }
    let mut q = Req::new();
    q.words[0] = idx;
    q.words[1] = flags & 0xffff_ffff;
    Some(match handle(q.send(op::PREOPEN).ret) {
        Ok(h) => new_fd(h, flags),
        Err(e) => e,
    })
}

fn new_fd(h: u32, flags: u64) -> i64 {
    let fd = fd::open(File::Host(h), flags & O_CLOEXEC != 0);
    if fd < 0 {
        let _ = close(h);
    }
    fd
}

fn openat(h: u32, path: u64, flags: u64, mode: u64, resolve: u64) -> i64 {
    let mut q = Req::new();
    let (po, pl) = match q.path(path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    q.words = [
        u64::from(h),
        po,
        pl,
        flags & 0xffff_ffff,
        mode & 0o7777,
        resolve,
        0,
        0,
    ];
    match handle(q.send(op::OPENAT).ret) {
        Ok(nh) => new_fd(nh, flags),
        Err(e) => e,
    }
}

fn openat2(h: u32, path: u64, how: u64, size: u64) -> i64 {
    if size < 24 {
        return -EINVAL;
    }
    if !mm::user_range_ok(how, 24, false) {
        return -EFAULT;
    }
    // SAFETY: 24 bytes (struct open_how: flags, mode, resolve) checked mapped.
    let [flags, mode, resolve] = unsafe { core::ptr::read_unaligned(how as *const [u64; 3]) };
    openat(h, path, flags, mode, resolve)
}

fn read(h: u32, buf: u64, len: u64, pos: u64) -> i64 {
    if !mm::user_range_ok(buf, len, true) {
        return -EFAULT;
    }
    let max = (len as usize).min(DATA_CAPACITY - op::REQUEST_DATA as usize);
    let mut q = Req::new();
    q.words = [u64::from(h), max as u64, pos, 0, 0, 0, 0, 0];
    let r = q.send(op::READ);
    match bytes_reply(&r, max, "host reply refused: file read count out of range") {
        Ok((off, n)) => {
            // SAFETY: off + n is inside the data area (checked); n <= len bytes of
            // the user buffer were checked writable.
            unsafe { core::ptr::copy_nonoverlapping(hostcall::data().add(off), buf as *mut u8, n) };
            n as i64
        }
        Err(e) => e,
    }
}

fn write(h: u32, buf: u64, len: u64, pos: u64) -> i64 {
    if !mm::user_range_ok(buf, len, false) {
        return -EFAULT;
    }
    let n = (len as usize).min(DATA_CAPACITY - op::REQUEST_DATA as usize);
    let mut q = Req::new();
    let (o, l) = q.bytes(buf, n);
    q.words = [u64::from(h), o, l, pos, 0, 0, 0, 0];
    match checked_count(
        q.send(op::WRITE).ret,
        n,
        "host reply refused: file write count out of range",
    ) {
        Ok(w) => w as i64,
        Err(e) => e,
    }
}

fn vectored(h: u32, iov: u64, cnt: u64, pos: u64, writing: bool) -> i64 {
    if cnt > 1024 {
        return -EINVAL;
    }
    if !mm::user_range_ok(iov, cnt * 16, false) {
        return -EFAULT;
    }
    let mut total = 0u64;
    for i in 0..cnt {
        // SAFETY: the iovec array was checked mapped.
        let [base, len] = unsafe { core::ptr::read_unaligned((iov + 16 * i) as *const [u64; 2]) };
        if len == 0 {
            continue;
        }
        let p = if pos == CUR { CUR } else { pos + total };
        let r = if writing {
            write(h, base, len, p)
        } else {
            read(h, base, len, p)
        };
        if r < 0 {
            return if total == 0 { r } else { total as i64 };
        }
        total += r as u64;
        if (r as u64) < len {
            break;
        }
    }
    total as i64
}

/// pwritev2's RWF_APPEND.
const RWF_APPEND: u64 = 0x10;

/// Writes the iovecs at the end of the file; the cursor ends there if
/// `move_cursor`, else where it was.
fn append(h: u32, iov: u64, cnt: u64, move_cursor: bool) -> i64 {
    const SEEK_SET: u64 = 0;
    const SEEK_CUR: u64 = 1;
    const SEEK_END: u64 = 2;
    let saved = seek(h, 0, SEEK_CUR);
    if saved < 0 {
        return saved;
    }
    let end = seek(h, 0, SEEK_END);
    if end < 0 {
        return end;
    }
    let n = vectored(h, iov, cnt, CUR, true);
    if !move_cursor {
        let _ = seek(h, saved as u64, SEEK_SET);
    }
    n
}

fn seek(h: u32, off: u64, whence: u64) -> i64 {
    if whence > 2 {
        return -EINVAL;
    }
    let mut q = Req::new();
    q.words = [u64::from(h), off, whence, 0, 0, 0, 0, 0];
    let r = q.send(op::SEEK).ret;
    if r < 0 && r < -MAX_ERRNO {
        refuse("host reply refused: seek position out of range");
    }
    r
}

/// fstat / newfstatat: the host's struct stat (144 bytes) copied to `buf`.
fn stat(h: u32, path: Option<u64>, buf: u64, flags: u64) -> i64 {
    if !mm::user_range_ok(buf, 144, true) {
        return -EFAULT;
    }
    match stat_reply(h, path, flags) {
        Ok(off) => {
            // SAFETY: off + 144 is inside the data area; 144 user bytes checked writable.
            unsafe {
                core::ptr::copy_nonoverlapping(hostcall::data().add(off), buf as *mut u8, 144)
            };
            0
        }
        Err(e) => e,
    }
}

/// Asks the host for a struct stat; returns where it is in the data area.
fn stat_reply(h: u32, path: Option<u64>, flags: u64) -> Result<usize, i64> {
    let mut q = Req::new();
    let (po, pl) = match path.map(|p| q.path(p)) {
        Some(Ok(p)) => p,
        Some(Err(e)) => return Err(e),
        None => (0, 0),
    };
    q.words = [u64::from(h), po, pl, flags, 0, 0, 0, 0];
    let r = q.send(op::STAT);
    if r.ret < 0 {
        return Err(status(r.ret));
    }
    if r.ret != 0 || r.val[1] != 144 {
        refuse("host reply refused: stat reply malformed");
    }
    bytes_reply(
        &crate::abi::CallHeader { ret: 144, ..r },
        144,
        "host reply refused: stat data outside the call block",
    )
    .map(|(off, _)| off)
}

/// getdents64: the records as the host's kernel wrote them (the exec parses them).
fn getdents(h: u32, buf: u64, len: u64) -> i64 {
    if !mm::user_range_ok(buf, len, true) {
        return -EFAULT;
    }
    let max = (len as usize).min(DATA_CAPACITY - op::REQUEST_DATA as usize);
    let mut q = Req::new();
    q.words = [u64::from(h), max as u64, 0, 0, 0, 0, 0, 0];
    let r = q.send(op::GETDENTS);
    match bytes_reply(
        &r,
        max,
        "host reply refused: directory listing out of range",
    ) {
        Ok((off, n)) => {
            // SAFETY: checked inside the data area and the user buffer.
            unsafe { core::ptr::copy_nonoverlapping(hostcall::data().add(off), buf as *mut u8, n) };
            n as i64
        }
        Err(e) => e,
    }
}

/// mkdirat(dir, path, mode) / unlinkat(dir, path, flags): one path and a word.
fn path_op(operation: u64, h: u32, path: u64, arg: u64) -> i64 {
    let mut q = Req::new();
    let (po, pl) = match q.path(path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    q.words = [u64::from(h), po, pl, arg, 0, 0, 0, 0];
    status(q.send(operation).ret)
}

fn two_paths(operation: u64, a: u32, pa: u64, b: u32, pb: u64, flags: u64) -> i64 {
    let mut q = Req::new();
    let (ao, al) = match q.path(pa) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let (bo, bl) = match q.path(pb) {
        Ok(p) => p,
        Err(e) => return e,
    };
    q.words = [u64::from(a), ao, al, u64::from(b), bo, bl, flags, 0];
    status(q.send(operation).ret)
}

fn symlink(target: u64, h: u32, path: u64) -> i64 {
    let mut q = Req::new();
    let (to, tl) = match q.path(target) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let (po, pl) = match q.path(path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    q.words = [to, tl, u64::from(h), po, pl, 0, 0, 0];
    status(q.send(op::SYMLINK).ret)
}

fn readlink(h: u32, path: u64, buf: u64, size: u64) -> i64 {
    if !mm::user_range_ok(buf, size, true) {
        return -EFAULT;
    }
    let max = (size as usize).min(4096);
    let mut q = Req::new();
    let (po, pl) = match q.path(path) {
        Ok(p) => p,
        Err(e) => return e,
    };
    q.words = [u64::from(h), po, pl, max as u64, 0, 0, 0, 0];
    let r = q.send(op::READLINK);
    match bytes_reply(&r, max, "host reply refused: link target out of range") {
        Ok((off, n)) => {
            // SAFETY: checked inside the data area and the user buffer.
            unsafe { core::ptr::copy_nonoverlapping(hostcall::data().add(off), buf as *mut u8, n) };
            n as i64
        }
        Err(e) => e,
    }
}

/// utimensat(dir, path or NULL, times or NULL, flags).
fn utimes(h: u32, path: u64, times: u64, flags: u64) -> i64 {
    const UTIME_NOW: u64 = (1 << 30) - 1;
    let t = if times == 0 {
        [0, UTIME_NOW, 0, UTIME_NOW]
    } else {
        if !mm::user_range_ok(times, 32, false) {
            return -EFAULT;
        }
        // SAFETY: two struct timespec (32 bytes) checked mapped.
        unsafe { core::ptr::read_unaligned(times as *const [u64; 4]) }
    };
    let mut q = Req::new();
    let (po, pl) = if path == 0 || (flags & AT_EMPTY_PATH != 0 && first_byte(path) == Some(0)) {
        (0, 0)
    } else {
        match q.path(path) {
            Ok(p) => p,
            Err(e) => return e,
        }
    };
    q.words = [u64::from(h), po, pl, flags, t[0], t[1], t[2], t[3]];
    status(q.send(op::UTIMES).ret)
}

fn simple(operation: u64, h: u32, arg: u64) -> i64 {
    let mut q = Req::new();
    q.words = [u64::from(h), arg, 0, 0, 0, 0, 0, 0];
    status(q.send(operation).ret)
}
