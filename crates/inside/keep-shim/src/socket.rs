//! TCP sockets, served by the host (SOCKET host calls, see `abi::sock`). Preview 1:
//! the VMM binds and connects the sockets the launch spec declares; the exec
//! opens declared socket `i` by the path `/.keep/sock/<i>` (`File::Socket`).
//! Preview 2 (`wasi:sockets`): the exec makes its own with socket, bind, listen
//! and connect, which the VMM allows only for the declared addresses. The shim copies bytes and addresses
//! through the call block (never a pointer) and checks every reply: a handle out
//! of range, a count larger than asked, data or an address outside the block or
//! longer than a sockaddr_in6, or an absurd errno stops the Keep. The host sees
//! every byte sent or received.
//!
//! `dispatch` takes the syscalls that name a socket descriptor (and poll/ppoll
//! when one of the descriptors is a socket); everything else goes on.

use crate::abi::sock as op;
use crate::fd::{self, File};
use crate::hostcall::{self, DATA_CAPACITY, checked_count, refuse};
use crate::mm;

const EBADF: i64 = 9;
const EFAULT: i64 = 14;
const ENOENT: i64 = 2;
const EINVAL: i64 = 22;
const EAGAIN: i64 = 11;
const ENOTTY: i64 = 25;
const EOPNOTSUPP: i64 = 95;
const REQ: usize = 64;
const MSG_PEEK: u64 = 2;
const MSG_NOSIGNAL: u64 = 0x4000;
const MSG_DONTWAIT: u64 = 0x40;
const SOCK_CLOEXEC: u64 = 0o2000000;
const SOCK_NONBLOCK: u64 = 0o4000;

/// Sends one SOCKET request (words, then `len` bytes of data already placed after
/// them), again while the host says "still blocking".
fn call(operation: u64, words: [u64; 8], len: usize) -> crate::abi::CallHeader {
    loop {
        for (i, w) in words.iter().enumerate() {
            // SAFETY: the 64 bytes of words lie at the start of the data area.
            unsafe { core::ptr::write_unaligned(hostcall::data().add(8 * i) as *mut u64, *w) };
        }
        let r = hostcall::socket(operation, REQ + len);
        if r.ret == -EAGAIN && r.val[2] == op::RETRY {
            continue;
        }
        return r;
    }
}

fn status(ret: i64) -> i64 {
    match checked_count(ret, 0, "host reply refused: socket status out of range") {
        Ok(_) => 0,
        Err(e) => e,
    }
}

/// Bytes at val[0] of length `n` (checked inside the data area).
fn data_at(r: &crate::abi::CallHeader, n: usize) -> usize {
    let off = usize::try_from(r.val[0]).unwrap_or(usize::MAX);
    match off.checked_add(n) {
        Some(end) if end <= DATA_CAPACITY => off,
        _ => refuse("host reply refused: socket data outside the call block"),
    }
}

/// open("/.keep/sock/<i>"): a new descriptor on declared socket `i` (the exec
/// opens its sockets by these names on kvm). None: not such a path.
fn open_path(path: u64, flags: u64) -> Option<i64> {
    const PREFIX: &[u8] = op::PATH_PREFIX.as_bytes();
    const O_CLOEXEC: u64 = 0o2000000;
    let mut buf = [0u8; 32];
    let mut n = 0;
    while n < buf.len() {
        if !mm::user_range_ok(path + n as u64, 1, false) {
            return None;
        }
        // SAFETY: one byte checked mapped.
        let c = unsafe { core::ptr::read((path + n as u64) as *const u8) };
        if c == 0 {
            break;
        }
        buf[n] = c;
        n += 1;
        if n <= PREFIX.len() && buf[n - 1] != PREFIX[n - 1] {
            return None;
        }
    }
    if n <= PREFIX.len() || n == buf.len() {
        return None;
    }
    let mut i: u64 = 0;
    for &c in &buf[PREFIX.len()..n] {
        if !c.is_ascii_digit() || i >= op::MAX_DECLARED {
            return Some(-ENOENT);
        }
        i = i * 10 + u64::from(c - b'0');
    }
    if i >= op::MAX_DECLARED {
        return Some(-ENOENT);
    }
    let h = i as u32;
    // The socket exists if the host knows its flags.
    if let Err(e) = nonblocking(h) {
        return Some(if e == -EBADF { -ENOENT } else { e });
    }
    Some(fd::open(File::Socket(h), flags & O_CLOEXEC != 0))
}

fn sock(fd: u64) -> Option<u32> {
    match fd::get(fd) {
        Ok(File::Socket(h)) => Some(h),
        _ => None,
    }
}

pub fn close(h: u32) -> i64 {
    hostcall::flush();
    status(call(op::CLOSE, [u64::from(h), 0, 0, 0, 0, 0, 0, 0], 0).ret)
}

fn nonblocking(h: u32) -> Result<bool, i64> {
    hostcall::flush();
    let r = call(op::GET_NONBLOCK, [u64::from(h), 0, 0, 0, 0, 0, 0, 0], 0);
    checked_count(r.ret, 1, "host reply refused: socket flags out of range").map(|v| v == 1)
}

fn set_nonblocking(h: u32, on: bool) -> i64 {
    hostcall::flush();
    status(
        call(
            op::SET_NONBLOCK,
            [u64::from(h), u64::from(on), 0, 0, 0, 0, 0, 0],
            0,
        )
        .ret,
    )
}

/// A reply's sockaddr (val[0], length val[1]) copied to the guest's (addr, *len).
fn put_addr(r: &crate::abi::CallHeader, addr: u64, lenp: u64) -> Result<(), i64> {
    let n = match usize::try_from(r.val[1]) {
        Ok(n) if n as u64 <= op::MAX_ADDR => n,
        _ => refuse("host reply refused: socket address too long"),
    };
    let off = data_at(r, n);
    if addr == 0 || lenp == 0 {
        return Ok(());
    }
    if !mm::user_range_ok(lenp, 4, true) {
        return Err(-EFAULT);
    }
    // SAFETY: 4 bytes checked writable.
    let room = unsafe { core::ptr::read_unaligned(lenp as *const u32) } as usize;
    let k = room.min(n);
    if !mm::user_range_ok(addr, k as u64, true) {
        return Err(-EFAULT);
    }
    // SAFETY: off + n is inside the data area; k <= n bytes at addr checked writable.
    unsafe {
        core::ptr::copy_nonoverlapping(hostcall::data().add(off), addr as *mut u8, k);
        core::ptr::write_unaligned(lenp as *mut u32, n as u32);
    }
    Ok(())
}

fn recv(h: u32, buf: u64, len: u64, flags: u64) -> i64 {
    if flags & !(MSG_PEEK | MSG_NOSIGNAL | MSG_DONTWAIT) != 0 {
        return -EOPNOTSUPP;
    }
    if flags & MSG_DONTWAIT != 0 {
        return -EOPNOTSUPP;
    }
    if !mm::user_range_ok(buf, len, true) {
        return -EFAULT;
    }
    match recv_raw(h, len as usize, flags & MSG_PEEK) {
        Ok((off, n)) => {
            // SAFETY: off + n is inside the data area (checked); n <= len bytes of
            // the user buffer were checked writable.
            unsafe { core::ptr::copy_nonoverlapping(hostcall::data().add(off), buf as *mut u8, n) };
            n as i64
        }
        Err(e) => e,
    }
}

/// One RECV of at most `max` bytes (capped at the data area): where they are in the
/// data area and how many.
fn recv_raw(h: u32, max: usize, flags: u64) -> Result<(usize, usize), i64> {
    hostcall::flush();
    crate::epoll::attempted(File::Socket(h), crate::epoll::EPOLLIN);
    let max = max.min(DATA_CAPACITY - REQ);
    let r = call(
        op::RECV,
        [u64::from(h), max as u64, flags, 0, 0, 0, 0, 0],
        0,
    );
    let n = checked_count(
        r.ret,
        max,
        "host reply refused: socket read count out of range",
    )?;
    Ok((data_at(&r, n), n))
}

fn send(h: u32, buf: u64, len: u64, flags: u64) -> i64 {
    if flags & !(MSG_NOSIGNAL) != 0 {
        return -EOPNOTSUPP;
    }
    if !mm::user_range_ok(buf, len, false) {
        return -EFAULT;
    }
    // Staged output first: it sits at the start of the data area.
    hostcall::flush();
    let n = (len as usize).min(DATA_CAPACITY - REQ);
    // SAFETY: the user range was checked; REQ + n <= DATA_CAPACITY.
    unsafe { core::ptr::copy_nonoverlapping(buf as *const u8, hostcall::data().add(REQ), n) };
    send_placed(h, n)
}

/// One SEND of the `n` bytes already placed at REQ in the data area (after a
/// `hostcall::flush`).
fn send_placed(h: u32, n: usize) -> i64 {
    crate::epoll::attempted(File::Socket(h), crate::epoll::EPOLLOUT);
    let r = call(
        op::SEND,
        [u64::from(h), REQ as u64, n as u64, 0, 0, 0, 0, 0],
        n,
    );
    match checked_count(
        r.ret,
        n,
        "host reply refused: socket write count out of range",
    ) {
        Ok(w) => w as i64,
        Err(e) => e,
    }
}

/// readv/writev: as many buffers as fit in one host call (the data area), in order;
/// a short count, as sockets may give.
fn vectored(h: u32, iov: u64, cnt: u64, writing: bool) -> i64 {
    if cnt > 1024 {
        return -EINVAL;
    }
    if !mm::user_range_ok(iov, cnt * 16, false) {
        return -EFAULT;
    }
    let entry = |i: u64| {
        // SAFETY: the iovec array was checked mapped.
        unsafe {
            (
                core::ptr::read_unaligned((iov + 16 * i) as *const u64),
                core::ptr::read_unaligned((iov + 16 * i + 8) as *const u64),
            )
        }
    };
    let cap = DATA_CAPACITY - REQ;
    // Staged output first: it sits at the start of the data area.
    hostcall::flush();
    // The buffers that fit, each checked (readable to send, writable to receive).
    let mut total = 0usize;
    for i in 0..cnt {
        let (base, len) = entry(i);
        let take = (len as usize).min(cap - total);
        if take == 0 {
            if total == cap {
                break;
            }
            continue;
        }
        if !mm::user_range_ok(base, take as u64, !writing) {
            return -EFAULT;
        }
        if writing {
            // SAFETY: `take` bytes at base checked mapped; REQ + total + take <= the
            // data area.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    base as *const u8,
                    hostcall::data().add(REQ + total),
                    take,
                )
            };
        }
        total += take;
    }
    if total == 0 {
        return 0;
    }
    if writing {
        return send_placed(h, total);
    }
    let (off, n) = match recv_raw(h, total, 0) {
        Ok(x) => x,
        Err(e) => return e,
    };
    // Scatter the n bytes over the buffers, in order.
    let mut done = 0usize;
    let mut i = 0;
    while done < n && i < cnt {
        let (base, len) = entry(i);
        let take = (len as usize).min(n - done);
        // SAFETY: these bytes of the buffer were checked writable above (n <=
        // total); off + n is inside the data area.
        unsafe {
            core::ptr::copy_nonoverlapping(hostcall::data().add(off + done), base as *mut u8, take)
        };
        done += take;
        i += 1;
    }
    n as i64
}

fn accept(h: u32, addr: u64, lenp: u64, flags: u64) -> i64 {
    if flags & !(SOCK_CLOEXEC | SOCK_NONBLOCK) != 0 {
        return -EINVAL;
    }
    hostcall::flush();
    crate::epoll::attempted(File::Socket(h), crate::epoll::EPOLLIN);
    let r = call(op::ACCEPT, [u64::from(h), 0, 0, 0, 0, 0, 0, 0], 0);
    if r.ret < 0 {
        return checked_count(r.ret, 0, "host reply refused: socket handle out of range")
            .map_or_else(|e| e, |_| 0);
    }
    if r.ret as u64 >= op::MAX_HANDLES {
        refuse("host reply refused: socket handle out of range");
    }
    let new = r.ret as u32;
    let placed = put_addr(&r, addr, lenp);
    let fd = fd::open(File::Socket(new), flags & SOCK_CLOEXEC != 0);
    if fd < 0 {
        let _ = close(new);
        return fd;
    }
    if flags & SOCK_NONBLOCK != 0 {
        let _ = set_nonblocking(new, true);
    }
    match placed {
        Ok(()) => fd,
        Err(e) => e,
    }
}

fn name(h: u32, peer: bool, addr: u64, lenp: u64) -> i64 {
    hostcall::flush();
    let r = call(
        op::NAME,
        [u64::from(h), u64::from(peer), 0, 0, 0, 0, 0, 0],
        0,
    );
    let s = status(r.ret);
    if s < 0 {
        return s;
    }
    if addr == 0 || lenp == 0 {
        return -EFAULT;
    }
    match put_addr(&r, addr, lenp) {
        Ok(()) => 0,
        Err(e) => e,
    }
}

/// getsockopt: integer options, read from the host's socket (SO_ERROR included,
/// which the host clears as Linux does).
fn getsockopt(h: u32, level: u64, name: u64, val: u64, lenp: u64) -> i64 {
    if !mm::user_range_ok(lenp, 4, true) {
        return -EFAULT;
    }
    // SAFETY: 4 bytes checked writable.
    let room = unsafe { core::ptr::read_unaligned(lenp as *const u32) };
    if room < 4 || !mm::user_range_ok(val, 4, true) {
        return -EINVAL;
    }
    hostcall::flush();
    let r = call(op::GETOPT, [u64::from(h), level, name, 0, 0, 0, 0, 0], 0);
    let v = match checked_count(
        r.ret,
        i32::MAX as usize,
        "host reply refused: socket option out of range",
    ) {
        Ok(v) => v as u32,
        Err(e) => return e,
    };
    // SAFETY: 4 bytes at val and lenp checked writable.
    unsafe {
        core::ptr::write_unaligned(val as *mut u32, v);
        core::ptr::write_unaligned(lenp as *mut u32, 4);
    }
    0
}

/// setsockopt: integer options, set on the host's socket (the VMM allows a fixed
/// list).
fn setsockopt(h: u32, level: u64, name: u64, val: u64, len: u64) -> i64 {
    if len < 4 {
        return -EINVAL;
    }
    if !mm::user_range_ok(val, 4, false) {
        return -EFAULT;
    }
    // SAFETY: 4 bytes checked mapped.
    let v = unsafe { core::ptr::read_unaligned(val as *const u32) };
    hostcall::flush();
    status(
        call(
            op::SETOPT,
            [u64::from(h), level, name, u64::from(v), 0, 0, 0, 0],
            0,
        )
        .ret,
    )
}

/// socket(2): a TCP socket of the host's (preview 2; the VMM refuses when it
/// serves preopened sockets only).
fn socket(domain: u64, kind: u64, protocol: u64) -> i64 {
    const AF_INET: u64 = 2;
    const AF_INET6: u64 = 10;
    const SOCK_STREAM: u64 = 1;
    const EAFNOSUPPORT: i64 = 97;
    const EPROTONOSUPPORT: i64 = 93;
    if domain != AF_INET && domain != AF_INET6 {
        return -EAFNOSUPPORT;
    }
    if kind & !(SOCK_CLOEXEC | SOCK_NONBLOCK) != SOCK_STREAM || (protocol != 0 && protocol != 6) {
        return -EPROTONOSUPPORT;
    }
    hostcall::flush();
    let r = call(op::OPEN, [domain, 0, 0, 0, 0, 0, 0, 0], 0);
    let h = match checked_count(
        r.ret,
        op::MAX_HANDLES as usize - 1,
        "host reply refused: socket handle out of range",
    ) {
        Ok(h) => h as u32,
        Err(e) => return e,
    };
    let fd = fd::open(File::Socket(h), kind & SOCK_CLOEXEC != 0);
    if fd < 0 {
        let _ = close(h);
        return fd;
    }
    if kind & SOCK_NONBLOCK != 0 {
        let _ = set_nonblocking(h, true);
    }
    fd
}

/// bind/connect: the sockaddr goes to the host, which checks it against what the
/// spec declares.
fn with_addr(operation: u64, h: u32, addr: u64, len: u64) -> i64 {
    if len < 2 || len > op::MAX_ADDR {
        return -EINVAL;
    }
    if !mm::user_range_ok(addr, len, false) {
        return -EFAULT;
    }
    hostcall::flush();
    if operation == op::CONNECT {
        crate::epoll::attempted(File::Socket(h), crate::epoll::EPOLLOUT);
    }
    // SAFETY: len <= MAX_ADDR bytes checked mapped; REQ + len fits the data area.
    unsafe {
        core::ptr::copy_nonoverlapping(addr as *const u8, hostcall::data().add(REQ), len as usize)
    };
    status(
        call(
            operation,
            [u64::from(h), REQ as u64, len, 0, 0, 0, 0, 0],
            len as usize,
        )
        .ret,
    )
}

fn ioctl(h: u32, req: u64, arg: u64) -> i64 {
    const FIONBIO: u64 = 0x5421;
    const FIONREAD: u64 = 0x541B;
    if req == FIONREAD {
        if !mm::user_range_ok(arg, 4, true) {
            return -EFAULT;
        }
        hostcall::flush();
        let r = call(op::FIONREAD, [u64::from(h), 0, 0, 0, 0, 0, 0, 0], 0);
        return match checked_count(
            r.ret,
            i32::MAX as usize,
            "host reply refused: socket byte count out of range",
        ) {
            Ok(n) => {
                // SAFETY: 4 bytes checked writable.
                unsafe { core::ptr::write_unaligned(arg as *mut i32, n as i32) };
                0
            }
            Err(e) => e,
        };
    }
    if req != FIONBIO {
        return -ENOTTY;
    }
    if !mm::user_range_ok(arg, 4, false) {
        return -EFAULT;
    }
    // SAFETY: 4 bytes checked mapped.
    let on = unsafe { core::ptr::read_unaligned(arg as *const u32) } != 0;
    set_nonblocking(h, on)
}

fn fcntl(h: u32, cmd: u64, arg: u64) -> Option<i64> {
    const F_GETFL: u64 = 3;
    const F_SETFL: u64 = 4;
    const O_RDWR: i64 = 2;
    const O_NONBLOCK: u64 = 0o4000;
    Some(match cmd {
        F_GETFL => match nonblocking(h) {
            Ok(nb) => O_RDWR | if nb { O_NONBLOCK as i64 } else { 0 },
            Err(e) => e,
        },
        F_SETFL => set_nonblocking(h, arg & O_NONBLOCK != 0),
        _ => return None,
    })
}

/// poll/ppoll with at least one socket among the descriptors: the other streams
/// are judged here (as `syscall`'s poll does), the sockets in the host, which
/// waits for them (in slices, see `abi::sock`) unless something is ready already.
fn poll(fds: u64, nfds: u64, timeout_ms: Option<u64>) -> i64 {
    const POLLIN: u16 = 0x1;
    const POLLOUT: u16 = 0x4;
    const POLLERR: u16 = 0x8;
    const POLLHUP: u16 = 0x10;
    const POLLNVAL: u16 = 0x20;
    if nfds > op::MAX_POLL || nfds as usize * 8 > DATA_CAPACITY - REQ {
        return -EINVAL;
    }
    if !mm::user_range_ok(fds, nfds * 8, true) || !fds.is_multiple_of(4) {
        return -EFAULT;
    }
    hostcall::flush();
    // struct pollfd is { int fd; short events; short revents; }; the array was
    // checked mapped and writable.
    let entry = |i: u64| {
        let at = fds + 8 * i;
        // SAFETY: inside the checked array, 4-byte aligned.
        let (fdn, events) = unsafe {
            (
                core::ptr::read(at as *const i32),
                core::ptr::read((at + 4) as *const u16),
            )
        };
        let file = if fdn < 0 {
            None
        } else {
            Some(fd::get(fdn as u64))
        };
        (at, file, events)
    };
    let mut left = timeout_ms;
    loop {
        // Local verdicts first; sockets listed for the host.
        let mut local_ready = 0i64;
        let mut host = [(0u32, 0u16); MAX_POLL_HANDLES];
        let mut host_n = 0usize;
        for i in 0..nfds {
            let (at, file, events) = entry(i);
            let revents = match file {
                None => 0,
                Some(Ok(File::Socket(h))) => {
                    host[host_n] = (h, events);
                    host_n += 1;
                    0
                }
                Some(Ok(f)) => {
                    let can = if f.readable() { POLLIN } else { 0 }
                        | if f.writable() { POLLOUT } else { 0 };
                    events & can
                }
                Some(Err(_)) => POLLNVAL,
            };
            // SAFETY: inside the checked array.
            unsafe { core::ptr::write((at + 6) as *mut u16, revents) };
            if revents != 0 {
                local_ready += 1;
            }
        }
        let wait = if local_ready > 0 {
            0
        } else {
            left.map_or(u64::MAX, |l| l)
        };
        let (revents, waited) = match poll_handles(&host[..host_n], wait) {
            Ok(r) => r,
            Err(e) => return e,
        };
        let mut k = 0usize;
        let mut counted = 0i64;
        for i in 0..nfds {
            let (at, file, events) = entry(i);
            if !matches!(file, Some(Ok(File::Socket(_)))) || k >= host_n {
                continue;
            }
            let rev = revents[k] & (events | POLLERR | POLLHUP | POLLNVAL);
            k += 1;
            // SAFETY: inside the checked array.
            unsafe { core::ptr::write((at + 6) as *mut u16, rev) };
            if rev != 0 {
                counted += 1;
            }
        }
        let total = local_ready + counted;
        if total > 0 || wait == 0 {
            return total;
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

/// Most sockets one POLL asks about (poll's `nfds` limit).
pub const MAX_POLL_HANDLES: usize = op::MAX_POLL as usize;

/// One POLL of host sockets (handle, events), waiting up to `wait_ms` (u64::MAX:
/// no limit; the host waits one slice at most). Returns each entry's revents and
/// the milliseconds the host waited.
pub fn poll_handles(
    entries: &[(u32, u16)],
    wait_ms: u64,
) -> Result<([u16; MAX_POLL_HANDLES], u64), i64> {
    let n = entries.len();
    if n > MAX_POLL_HANDLES || REQ + 8 * n > DATA_CAPACITY {
        return Err(-EINVAL);
    }
    for (i, &(h, events)) in entries.iter().enumerate() {
        let rec = REQ + 8 * i;
        // SAFETY: REQ + 8 * n <= DATA_CAPACITY (checked above).
        unsafe {
            core::ptr::write_unaligned(hostcall::data().add(rec) as *mut u32, h);
            core::ptr::write_unaligned(
                hostcall::data().add(rec + 4) as *mut u32,
                u32::from(events),
            );
        }
    }
    let r = call(op::POLL, [0, n as u64, wait_ms, 0, 0, 0, 0, 0], 8 * n);
    checked_count(r.ret, n, "host reply refused: poll count out of range")?;
    let off = data_at(&r, 2 * n);
    let mut out = [0u16; MAX_POLL_HANDLES];
    for (k, slot) in out.iter_mut().enumerate().take(n) {
        // SAFETY: off + 2 * n is inside the data area (checked).
        *slot =
            unsafe { core::ptr::read_unaligned(hostcall::data().add(off + 2 * k) as *const u16) };
    }
    Ok((out, r.val[1].min(op::SLICE_MS)))
}

fn names_a_socket(fds: u64, nfds: u64) -> bool {
    if nfds > op::MAX_POLL || !mm::user_range_ok(fds, nfds * 8, false) || !fds.is_multiple_of(4) {
        return false;
    }
    (0..nfds).any(|i| {
        // SAFETY: the array was checked mapped.
        let fdn = unsafe { core::ptr::read((fds + 8 * i) as *const i32) };
        fdn >= 0 && matches!(fd::get(fdn as u64), Ok(File::Socket(_)))
    })
}

pub fn dispatch(nr: u64, a: [u64; 6]) -> Option<i64> {
    const AT_FDCWD: i32 = -100;
    Some(match nr {
        2 => open_path(a[0], a[1])?,
        257 if a[0] as u32 as i32 == AT_FDCWD => open_path(a[1], a[2])?,
        0 => recv(sock(a[0])?, a[1], a[2], 0),
        45 => recv(sock(a[0])?, a[1], a[2], a[3]),
        1 => send(sock(a[0])?, a[1], a[2], 0),
        44 => send(sock(a[0])?, a[1], a[2], a[3]),
        19 => vectored(sock(a[0])?, a[1], a[2], false),
        20 => vectored(sock(a[0])?, a[1], a[2], true),
        43 => accept(sock(a[0])?, a[1], a[2], 0),
        288 => accept(sock(a[0])?, a[1], a[2], a[3]),
        48 => {
            let h = sock(a[0])?;
            hostcall::flush();
            status(call(op::SHUTDOWN, [u64::from(h), a[1], 0, 0, 0, 0, 0, 0], 0).ret)
        }
        51 => name(sock(a[0])?, false, a[1], a[2]),
        52 => name(sock(a[0])?, true, a[1], a[2]),
        54 => setsockopt(sock(a[0])?, a[1], a[2], a[3], a[4]),
        55 => getsockopt(sock(a[0])?, a[1], a[2], a[3], a[4]),
        41 => socket(a[0], a[1], a[2]),
        49 => with_addr(op::BIND, sock(a[0])?, a[1], a[2]),
        42 => with_addr(op::CONNECT, sock(a[0])?, a[1], a[2]),
        50 => {
            let h = sock(a[0])?;
            hostcall::flush();
            let backlog = (a[1] as i32).clamp(0, 4096) as u64;
            status(call(op::LISTEN, [u64::from(h), backlog, 0, 0, 0, 0, 0, 0], 0).ret)
        }
        16 => ioctl(sock(a[0])?, a[1], a[2]),
        72 => fcntl(sock(a[0])?, a[1], a[2])?,
        // Positional I/O, seeking and the like on a socket.
        17 | 18 | 295 | 296 => {
            sock(a[0])?;
            -29 // ESPIPE
        }
        8 => {
            sock(a[0])?;
            -29
        }
        7 if names_a_socket(a[0], a[1]) => poll(a[0], a[1], u64::try_from(a[2] as i32).ok()),
        271 if names_a_socket(a[0], a[1]) => match crate::syscall::timespec_ms(a[2]) {
            Ok(t) => poll(a[0], a[1], t),
            Err(e) => e,
        },
        _ => return None,
    })
}
