//! The payload's file descriptors. Four streams the host serves through the call
//! block: stdin (host fd 0), stdout
//! (1), stderr (2) and the launch channel (3, a stream socket whose other end is in
//! the VMM, so the exec speaks the same keep-wire protocol as on the process
//! backend). Descriptors are slots naming one of them; `dup`/`fcntl(F_DUPFD*)`
//! make more slots, `close` frees one. Paths that open: `/dev/urandom` and
//! `/dev/random` (served inside, from RDRAND), and files beneath preopened
//! directories, which the VMM opens and names by handle (`File::Host`, see `file`).

use crate::global::Global;

/// One of the Keep's streams; the value is the host's fd number for it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum File {
    Stdin,
    Stdout,
    Stderr,
    Channel,
    /// /dev/urandom or /dev/random: RDRAND inside the Keep, never the host.
    Random,
    /// A file or directory beneath a preopened directory, opened by the VMM: its
    /// handle number there (FILE host calls).
    Host(u32),
    /// A TCP socket served by the VMM: its handle number there (SOCKET host
    /// calls, see `socket`).
    Socket(u32),
    /// An epoll instance (inside the Keep, see `epoll`): its index.
    Epoll(u32),
    /// An eventfd (inside the Keep): its index.
    Event(u32),
}

impl File {
    pub fn host_fd(self) -> u32 {
        match self {
            File::Stdin => 0,
            File::Stdout => 1,
            File::Stderr => 2,
            File::Channel => 3,
            File::Random => 4,
            File::Host(h) | File::Socket(h) => h,
            File::Epoll(_) | File::Event(_) => u32::MAX,
        }
    }
    pub fn readable(self) -> bool {
        matches!(
            self,
            File::Stdin
                | File::Channel
                | File::Random
                | File::Host(_)
                | File::Socket(_)
                | File::Event(_)
        )
    }
    pub fn writable(self) -> bool {
        matches!(
            self,
            File::Stdout
                | File::Stderr
                | File::Channel
                | File::Host(_)
                | File::Socket(_)
                | File::Event(_)
        )
    }
    /// `st_mode` for fstat: the channel is a socket, stdio character devices.
    pub fn mode(self) -> u32 {
        const S_IFSOCK: u32 = 0o140000;
        const S_IFCHR: u32 = 0o020000;
        match self {
            File::Channel | File::Socket(_) => S_IFSOCK | 0o777,
            // Anonymous inodes, as Linux reports them.
            File::Epoll(_) | File::Event(_) => 0o600,
            _ => S_IFCHR | 0o620,
        }
    }
    /// Access mode for F_GETFL.
    pub fn access(self) -> i64 {
        const O_RDONLY: i64 = 0;
        const O_WRONLY: i64 = 1;
        const O_RDWR: i64 = 2;
        match self {
            File::Stdin | File::Random => O_RDONLY,
            File::Stdout | File::Stderr => O_WRONLY,
            File::Channel | File::Host(_) | File::Socket(_) | File::Epoll(_) | File::Event(_) => {
                O_RDWR
            }
        }
    }
}

/// As Linux's default soft RLIMIT_NOFILE: the exec holds one descriptor per file the
/// workload has open.
pub const MAX_FDS: usize = 1024;

#[derive(Clone, Copy)]
struct Slot {
    file: File,
    cloexec: bool,
}

static FDS: Global<[Option<Slot>; MAX_FDS]> = Global::new({
    let mut t = [None; MAX_FDS];
    t[0] = Some(Slot {
        file: File::Stdin,
        cloexec: false,
    });
    t[1] = Some(Slot {
        file: File::Stdout,
        cloexec: false,
    });
    t[2] = Some(Slot {
        file: File::Stderr,
        cloexec: false,
    });
    t[3] = Some(Slot {
        file: File::Channel,
        cloexec: false,
    });
    t
});

const EBADF: i64 = 9;
const EINVAL: i64 = 22;
const EMFILE: i64 = 24;

fn slot(fd: u64) -> Result<Slot, i64> {
    let i = usize::try_from(fd).map_err(|_| -EBADF)?;
    FDS.with(|t| t.get(i).copied().flatten()).ok_or(-EBADF)
}

/// The stream behind `fd`.
pub fn get(fd: u64) -> Result<File, i64> {
    slot(fd).map(|s| s.file)
}

pub fn close(fd: u64) -> i64 {
    let closed = match usize::try_from(fd) {
        Ok(i) if i < MAX_FDS => FDS.with(|t| t[i].take()),
        _ => None,
    };
    match closed {
        Some(Slot { file, .. }) => {
            crate::epoll::forget(fd as i32);
            release(file);
            0
        }
        None => -EBADF,
    }
}

/// Closes host handle `h` (a file or a socket) in the VMM unless another
/// descriptor still names it.
fn release(file: File) {
    if !matches!(
        file,
        File::Host(_) | File::Socket(_) | File::Epoll(_) | File::Event(_)
    ) {
        return;
    }
    let used = FDS.with(|t| t.iter().flatten().any(|s| s.file == file));
    if !used {
        let _ = match file {
            File::Host(h) => crate::file::close(h),
            File::Socket(h) => crate::socket::close(h),
            other => {
                crate::epoll::release(other);
                0
            }
        };
    }
}

/// Opens a new descriptor on `file` (the lowest free one).
pub fn open(file: File, cloexec: bool) -> i64 {
    FDS.with(|t| {
        for (i, s) in t.iter_mut().enumerate() {
            if s.is_none() {
                *s = Some(Slot { file, cloexec });
                return i as i64;
            }
        }
        -EMFILE
    })
}

/// A new descriptor for the same stream, the lowest free one at or above `min`.
pub fn dup(fd: u64, min: u64, cloexec: bool) -> i64 {
    let file = match get(fd) {
        Ok(f) => f,
        Err(e) => return e,
    };
    if min >= MAX_FDS as u64 {
        return -EINVAL;
    }
    FDS.with(|t| {
        for (i, s) in t.iter_mut().enumerate().skip(min as usize) {
            if s.is_none() {
                *s = Some(Slot { file, cloexec });
                return i as i64;
            }
        }
        -EMFILE
    })
}

/// dup2/dup3: `new` names the same stream as `old` (closing what it named).
pub fn dup_to(old: u64, new: u64, cloexec: bool) -> i64 {
    let file = match get(old) {
        Ok(f) => f,
        Err(e) => return e,
    };
    match usize::try_from(new) {
        Ok(i) if i < MAX_FDS => {
            let old = FDS.with(|t| t[i].replace(Slot { file, cloexec }));
            if let Some(Slot { file, .. }) = old {
                crate::epoll::forget(i as i32);
                release(file);
            }
            i as i64
        }
        _ => -EBADF,
    }
}

pub fn fcntl(fd: u64, cmd: u64, arg: u64) -> i64 {
    const F_DUPFD: u64 = 0;
    const F_GETFD: u64 = 1;
    const F_SETFD: u64 = 2;
    const F_GETFL: u64 = 3;
    const F_SETFL: u64 = 4;
    const F_DUPFD_CLOEXEC: u64 = 1030;
    const FD_CLOEXEC: u64 = 1;
    let s = match slot(fd) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match cmd {
        F_DUPFD => dup(fd, arg, false),
        F_DUPFD_CLOEXEC => dup(fd, arg, true),
        F_GETFD => i64::from(s.cloexec),
        F_SETFD => {
            let i = fd as usize; // slot() checked fd < MAX_FDS
            FDS.with(|t| {
                if let Some(x) = t.get_mut(i).and_then(|x| x.as_mut()) {
                    x.cloexec = arg & FD_CLOEXEC != 0;
                }
            });
            0
        }
        F_GETFL => match s.file {
            File::Host(h) => crate::file::getfl(h),
            f => f.access(),
        },
        // O_NONBLOCK and the like: accepted, nothing changes (every stream blocks
        // in the host until it can proceed).
        F_SETFL => 0,
        _ => -EINVAL,
    }
}
