//! epoll and eventfd inside the Keep, for tokio's I/O driver (mio), which
//! wasmtime-wasi's preview 2 sockets run on.
//!
//! An eventfd is a counter here (mio's waker writes and reads it; one thread, so
//! nothing else ever could). An epoll instance is a list of watches (descriptor,
//! events, data). `epoll_wait` asks the host about the watched sockets in one POLL
//! call (which waits in slices, see `abi::sock`) and judges eventfds itself.
//!
//! Edge-triggered watches (mio registers everything with EPOLLET) are emulated
//! with an "armed" set per watch: an event is reported only while its bit is
//! armed, and reporting it disarms it. A bit is re-armed by the next attempt to
//! do that kind of I/O on the socket (a recv, send, accept or connect, whatever
//! its result: tokio clears its readiness on EAGAIN and also after a short read,
//! and in both cases tries again only after a new event) and by EPOLL_CTL_ADD/MOD.
//! So an event comes at least once after every attempt that could have consumed
//! the readiness, and never twice in a row without one; a socket that stays
//! writable does not wake every `epoll_wait`. Level-triggered watches are always
//! armed. Disarmed watches are not even sent to the host.

use crate::fd::{self, File};
use crate::global::Global;
use crate::hostcall;
use crate::mm;

const EAGAIN: i64 = 11;
const EFAULT: i64 = 14;
const EEXIST: i64 = 17;
const EINVAL: i64 = 22;
const EMFILE: i64 = 24;
const ENOENT: i64 = 2;
const EPERM: i64 = 1;

pub const EPOLLIN: u32 = 0x1;
pub const EPOLLPRI: u32 = 0x2;
pub const EPOLLOUT: u32 = 0x4;
pub const EPOLLERR: u32 = 0x8;
pub const EPOLLHUP: u32 = 0x10;
pub const EPOLLRDHUP: u32 = 0x2000;
const EPOLLONESHOT: u32 = 1 << 30;
const EPOLLET: u32 = 1 << 31;
/// Events a watch can report.
const EVENTS: u32 = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP;

const MAX_EPOLLS: usize = 8;
const MAX_WATCHES: usize = 256;
const MAX_EVENTFDS: usize = 16;
/// Most events one epoll_wait returns.
const MAX_EVENTS: u64 = 1024;

#[derive(Clone, Copy)]
struct Watch {
    fd: i32,
    file: File,
    events: u32,
    data: u64,
    armed: u32,
}

struct Epoll {
    used: bool,
    watches: [Option<Watch>; MAX_WATCHES],
}

const NO_EPOLL: Epoll = Epoll {
    used: false,
    watches: [None; MAX_WATCHES],
};

static EPOLLS: Global<[Epoll; MAX_EPOLLS]> = Global::new([NO_EPOLL; MAX_EPOLLS]);

#[derive(Clone, Copy)]
struct EventFd {
    used: bool,
    count: u64,
    semaphore: bool,
}

static EVENTFDS: Global<[EventFd; MAX_EVENTFDS]> = Global::new(
    [EventFd {
        used: false,
        count: 0,
        semaphore: false,
    }; MAX_EVENTFDS],
);

fn epoll_create(flags: u64) -> i64 {
    const EPOLL_CLOEXEC: u64 = 0o2000000;
    if flags & !EPOLL_CLOEXEC != 0 {
        return -EINVAL;
    }
    let Some(i) = EPOLLS.with(|t| {
        let i = t.iter().position(|e| !e.used)?;
        t[i].used = true;
        t[i].watches = [None; MAX_WATCHES];
        Some(i)
    }) else {
        return -EMFILE;
    };
    let fd = fd::open(File::Epoll(i as u32), flags & EPOLL_CLOEXEC != 0);
    if fd < 0 {
        EPOLLS.with(|t| t[i].used = false);
    }
    fd
}

fn eventfd(initval: u64, flags: u64) -> i64 {
    const EFD_SEMAPHORE: u64 = 1;
    const EFD_NONBLOCK: u64 = 0o4000;
    const EFD_CLOEXEC: u64 = 0o2000000;
    if flags & !(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC) != 0 {
        return -EINVAL;
    }
    let Some(i) = EVENTFDS.with(|t| {
        let i = t.iter().position(|e| !e.used)?;
        t[i] = EventFd {
            used: true,
            count: initval & 0xffff_ffff,
            semaphore: flags & EFD_SEMAPHORE != 0,
        };
        Some(i)
    }) else {
        return -EMFILE;
    };
    let fd = fd::open(File::Event(i as u32), flags & EFD_CLOEXEC != 0);
    if fd < 0 {
        EVENTFDS.with(|t| t[i].used = false);
    }
    fd
}

/// Frees an epoll instance or eventfd once no descriptor names it (from `fd`).
pub fn release(file: File) {
    match file {
        File::Epoll(i) => EPOLLS.with(|t| {
            if let Some(e) = t.get_mut(i as usize) {
                e.used = false;
            }
        }),
        File::Event(i) => EVENTFDS.with(|t| {
            if let Some(e) = t.get_mut(i as usize) {
                e.used = false;
            }
        }),
        _ => {}
    }
}

/// Descriptor `fd` was closed: no epoll watches it any more.
pub fn forget(fd: i32) {
    EPOLLS.with(|t| {
        for e in t.iter_mut().filter(|e| e.used) {
            for w in e.watches.iter_mut() {
                if w.is_some_and(|w| w.fd == fd) {
                    *w = None;
                }
            }
        }
    });
}

/// An attempt to do I/O (`events`: EPOLLIN for receiving or accepting, EPOLLOUT
/// for sending or connecting) on `file`: re-arms those edges (see the module
/// comment).
pub fn attempted(file: File, events: u32) {
    let events = events
        | if events & EPOLLIN != 0 {
            EPOLLRDHUP | EPOLLHUP | EPOLLERR
        } else {
            EPOLLERR | EPOLLHUP
        };
    EPOLLS.with(|t| {
        for e in t.iter_mut().filter(|e| e.used) {
            for w in e.watches.iter_mut().flatten() {
                if w.file == file && w.events & EPOLLONESHOT == 0 {
                    w.armed |= events;
                }
            }
        }
    });
}

fn read_event(ptr: u64) -> Result<(u32, u64), i64> {
    if !mm::user_range_ok(ptr, 12, false) {
        return Err(-EFAULT);
    }
    // SAFETY: 12 bytes (struct epoll_event, packed on x86-64) checked mapped.
    Ok(unsafe {
        (
            core::ptr::read_unaligned(ptr as *const u32),
            core::ptr::read_unaligned((ptr + 4) as *const u64),
        )
    })
}

fn epoll_ctl(epfd: u64, op: u64, fdn: u64, event: u64) -> i64 {
    const ADD: u64 = 1;
    const DEL: u64 = 2;
    const MOD: u64 = 3;
    let ep = match fd::get(epfd) {
        Ok(File::Epoll(i)) => i as usize,
        Ok(_) => return -EINVAL,
        Err(e) => return e,
    };
    let file = match fd::get(fdn) {
        Ok(f) => f,
        Err(e) => return e,
    };
    // Only what can become ready while the Keep waits: sockets and eventfds.
    if !matches!(file, File::Socket(_) | File::Event(_)) {
        return -EPERM;
    }
    let fdn = fdn as i32; // fd::get checked it is a small descriptor number
    let new = if op == DEL {
        None
    } else {
        match read_event(event) {
            Ok((events, data)) => Some(Watch {
                fd: fdn,
                file,
                events,
                data,
                armed: EVENTS,
            }),
            Err(e) => return e,
        }
    };
    EPOLLS.with(|t| {
        let watches = &mut t[ep].watches;
        let at = watches.iter().position(|w| w.is_some_and(|w| w.fd == fdn));
        match (op, at) {
            (ADD, Some(_)) => -EEXIST,
            (ADD, None) => match watches.iter().position(Option::is_none) {
                Some(i) => {
                    watches[i] = new;
                    0
                }
                None => -EMFILE,
            },
            (MOD | DEL, None) => -ENOENT,
            (MOD | DEL, Some(i)) => {
                watches[i] = new;
                0
            }
            _ => -EINVAL,
        }
    })
}

/// What an eventfd is ready for.
fn event_ready(i: u32) -> u32 {
    EVENTFDS.with(|t| match t.get(i as usize) {
        Some(e) if e.used => {
            (if e.count > 0 { EPOLLIN } else { 0 })
                | if e.count < u64::MAX - 1 { EPOLLOUT } else { 0 }
        }
        _ => EPOLLERR,
    })
}

fn epoll_wait(epfd: u64, events: u64, max: u64, timeout_ms: Option<u64>) -> i64 {
    let ep = match fd::get(epfd) {
        Ok(File::Epoll(i)) => i as usize,
        Ok(_) => return -EINVAL,
        Err(e) => return e,
    };
    let max = max as i32;
    if max <= 0 || max as u64 > MAX_EVENTS {
        return -EINVAL;
    }
    let max = max as u64;
    if !mm::user_range_ok(events, 12 * max, true) {
        return -EFAULT;
    }
    hostcall::flush();
    let mut left = timeout_ms;
    loop {
        // The watches to ask about: armed ones only.
        let mut wanted = [(0u32, 0u16); MAX_WATCHES];
        let mut n_host = 0;
        let mut local = false;
        EPOLLS.with(|t| {
            for w in t[ep].watches.iter().flatten() {
                let want = want(w);
                if want == 0 {
                    continue;
                }
                match w.file {
                    File::Socket(h) => {
                        wanted[n_host] = (h, (want & (EVENTS & !EPOLLERR & !EPOLLHUP)) as u16);
                        n_host += 1;
                    }
                    File::Event(i) => local |= event_ready(i) & want != 0,
                    _ => {}
                }
            }
        });
        let wait = if local { 0 } else { left.unwrap_or(u64::MAX) };
        let (revents, waited) = if n_host > 0 {
            match crate::socket::poll_handles(&wanted[..n_host], wait) {
                Ok(r) => r,
                Err(e) => return e,
            }
        } else if wait == 0 {
            ([0u16; crate::socket::MAX_POLL_HANDLES], 0)
        } else if wait == u64::MAX {
            hostcall::abort(
                "deadlock: epoll_wait without a timeout and nothing that could become ready",
            )
        } else {
            hostcall::sleep(wait.saturating_mul(1_000_000));
            ([0u16; crate::socket::MAX_POLL_HANDLES], wait)
        };
        // Report, disarming edge-triggered events.
        let mut count = 0u64;
        EPOLLS.with(|t| {
            let mut k = 0;
            for w in t[ep].watches.iter_mut().flatten() {
                let want = want(w);
                if want == 0 {
                    continue;
                }
                let ready = match w.file {
                    File::Socket(_) => {
                        let r = u32::from(revents[k]);
                        k += 1;
                        r
                    }
                    File::Event(i) => event_ready(i),
                    _ => 0,
                };
                let report = ready & want;
                if report == 0 || count == max {
                    continue;
                }
                let at = events + 12 * count;
                // SAFETY: 12 * max bytes at `events` were checked writable.
                unsafe {
                    core::ptr::write_unaligned(at as *mut u32, report);
                    core::ptr::write_unaligned((at + 4) as *mut u64, w.data);
                }
                count += 1;
                if w.events & EPOLLONESHOT != 0 {
                    w.armed = 0;
                } else if w.events & EPOLLET != 0 {
                    w.armed &= !report;
                }
            }
        });
        if count > 0 || wait == 0 {
            return count as i64;
        }
        if let Some(l) = left {
            let rest = l.saturating_sub(waited.max(1));
            if rest == 0 {
                return 0;
            }
            left = Some(rest);
        }
    }
}

/// The events a watch would report now (its interest, plus ERR and HUP, as far as
/// armed).
fn want(w: &Watch) -> u32 {
    let interest = (w.events & EVENTS) | EPOLLERR | EPOLLHUP;
    if w.events & (EPOLLET | EPOLLONESHOT) != 0 {
        interest & w.armed
    } else {
        interest
    }
}

fn eventfd_read(i: u32, buf: u64, len: u64) -> i64 {
    if len < 8 {
        return -EINVAL;
    }
    if !mm::user_range_ok(buf, 8, true) {
        return -EFAULT;
    }
    let v = EVENTFDS.with(|t| {
        let e = t.get_mut(i as usize)?;
        if e.count == 0 {
            return None;
        }
        let v = if e.semaphore { 1 } else { e.count };
        e.count -= v;
        Some(v)
    });
    match v {
        // Nothing else could ever write it: a blocking read would never end.
        None => -EAGAIN,
        Some(v) => {
            // SAFETY: 8 bytes checked writable.
            unsafe { core::ptr::write_unaligned(buf as *mut u64, v) };
            8
        }
    }
}

fn eventfd_write(i: u32, buf: u64, len: u64) -> i64 {
    if len < 8 {
        return -EINVAL;
    }
    if !mm::user_range_ok(buf, 8, false) {
        return -EFAULT;
    }
    // SAFETY: 8 bytes checked mapped.
    let v = unsafe { core::ptr::read_unaligned(buf as *const u64) };
    if v == u64::MAX {
        return -EINVAL;
    }
    let ok = EVENTFDS.with(|t| match t.get_mut(i as usize) {
        Some(e) if e.count.checked_add(v).is_some_and(|c| c < u64::MAX) => {
            e.count += v;
            true
        }
        _ => false,
    });
    if !ok {
        return -EAGAIN;
    }
    if v > 0 {
        attempted(File::Event(i), EPOLLIN);
    }
    8
}

fn event(fd: u64) -> Option<u32> {
    match fd::get(fd) {
        Ok(File::Event(i)) => Some(i),
        _ => None,
    }
}

/// The syscalls on epoll instances and eventfds; None: not one of them.
pub fn dispatch(nr: u64, a: [u64; 6]) -> Option<i64> {
    Some(match nr {
        213 => {
            if a[0] as i32 <= 0 {
                -EINVAL
            } else {
                epoll_create(0)
            }
        }
        291 => epoll_create(a[0]),
        233 => epoll_ctl(a[0], a[1], a[2], a[3]),
        // epoll_wait, epoll_pwait (the signal mask is ignored: no signal is
        // ever delivered asynchronously).
        232 | 281 => epoll_wait(a[0], a[1], a[2], u64::try_from(a[3] as i32).ok()),
        441 => match crate::syscall::timespec_ms(a[3]) {
            Ok(t) => epoll_wait(a[0], a[1], a[2], t),
            Err(e) => e,
        },
        284 => eventfd(a[0], 0),
        290 => eventfd(a[0], a[1]),
        0 => eventfd_read(event(a[0])?, a[1], a[2]),
        1 => eventfd_write(event(a[0])?, a[1], a[2]),
        _ => {
            if let Ok(File::Epoll(_)) = fd::get(a[0])
                && matches!(nr, 0 | 1 | 17 | 18 | 19 | 20)
            {
                return Some(-EINVAL);
            }
            return None;
        }
    })
}
