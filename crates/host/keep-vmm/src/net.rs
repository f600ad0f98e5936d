//! TCP sockets, served to the guest by handle (SOCKET host calls, see
//! `abi::sock`). Two modes:
//! - preopened (preview 1, [`SocketServer::open`]): the VMM binds and connects the
//!   sockets the launch spec declares, before the Keep starts; the guest can accept
//!   on a listener, read, write, shut down, poll and close, nothing else (no new
//!   sockets, no addresses of its own);
//! - dynamic (preview 2 `wasi:sockets`, [`SocketServer::dynamic`]): the guest opens
//!   its own sockets and binds, listens and connects them, but only to the
//!   addresses the spec declares (the host's own check, whatever the exec does):
//!   a declared listen address exactly, a declared connect address exactly, and for
//!   a connect the unspecified address of its family with port 0 (the implicit
//!   bind of an outgoing connection). Anything else is -EACCES.
//!
//! Every host socket is non-blocking at the OS level: a call on a socket the
//! guest left blocking waits here at most `sock::SLICE_MS` and then asks the shim
//! to call again, so the watchdog's limits and kills still end the Keep.
//! The host sees every byte: TCP payloads are in clear on this side.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use crate::abi::sock as op;
use crate::hostcall::RawReply;

/// One socket the launch spec declares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SocketSpec {
    pub name: String,
    /// Listen on `addr` (else connect to it).
    pub listen: bool,
    pub addr: SocketAddr,
}

/// A declared socket that could not be bound or connected.
#[derive(Debug, thiserror::Error)]
#[error("socket {name}: cannot {what} {addr}: {source}")]
pub struct SocketError {
    pub name: String,
    pub what: &'static str,
    pub addr: SocketAddr,
    #[source]
    pub source: io::Error,
}

enum Sock {
    Listener(TcpListener),
    Stream(TcpStream),
    /// Opened by the guest (dynamic mode), not yet listening or connecting.
    Fresh(OwnedFd),
}

impl Sock {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Sock::Listener(l) => l.as_fd(),
            Sock::Stream(s) => s.as_fd(),
            Sock::Fresh(f) => f.as_fd(),
        }
    }
}

struct Entry {
    sock: Sock,
    /// The guest asked for non-blocking calls.
    nonblocking: bool,
}

/// The Keep's sockets, by handle.
pub struct SocketServer {
    handles: Vec<Option<Entry>>,
    declared: usize,
    /// Dynamic mode: what the guest may bind and connect to.
    allowed: Option<Vec<SocketSpec>>,
}

const EBADF: i64 = 9;
const EAGAIN: i64 = 11;
const EINVAL: i64 = 22;
const EACCES: i64 = 13;
const EAFNOSUPPORT: i64 = 97;
const ENOPROTOOPT: i64 = 92;
const EINPROGRESS: i64 = 115;
const EALREADY: i64 = 114;
const ENOSYS: i64 = 38;
const EOPNOTSUPP: i64 = 95;
const ENOTCONN: i64 = 107;
const EMFILE: i64 = 24;
const MSG_PEEK: u64 = 2;
const OUT: usize = 0;

fn reply(ret: i64) -> RawReply {
    RawReply { ret, val: [0; 3] }
}

fn io_err(e: &io::Error) -> RawReply {
    reply(-i64::from(e.raw_os_error().unwrap_or(5)))
}

fn retry() -> RawReply {
    RawReply {
        ret: -EAGAIN,
        val: [0, 0, op::RETRY],
    }
}

/// A Linux sockaddr_in / sockaddr_in6 for `addr`.
fn sockaddr(addr: SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let mut b = vec![0u8; 16];
            b[0..2].copy_from_slice(&2u16.to_le_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.ip().octets());
            b
        }
        SocketAddr::V6(a) => {
            let mut b = vec![0u8; 28];
            b[0..2].copy_from_slice(&10u16.to_le_bytes());
            b[2..4].copy_from_slice(&a.port().to_be_bytes());
            b[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&a.ip().octets());
            b[24..28].copy_from_slice(&a.scope_id().to_le_bytes());
            b
        }
    }
}

/// Waits until `fd` is ready for `flags`, at most `ms`.
fn wait(fd: BorrowedFd<'_>, flags: PollFlags, ms: u64) {
    let mut fds = [PollFd::from_borrowed_fd(fd, flags)];
    let t = rustix::time::Timespec {
        tv_sec: (ms / 1000) as i64,
        tv_nsec: ((ms % 1000) * 1_000_000) as i64,
    };
    let _ = rustix::event::poll(&mut fds, Some(&t));
}

impl SocketServer {
    /// Binds and connects the declared sockets (in order: handle i is socket i).
    pub fn open(specs: &[SocketSpec]) -> Result<Self, SocketError> {
        if specs.len() as u64 > op::MAX_DECLARED {
            return Err(SocketError {
                name: specs[op::MAX_DECLARED as usize].name.clone(),
                what: "declare",
                addr: specs[op::MAX_DECLARED as usize].addr,
                source: io::Error::other(format!(
                    "a Keep has at most {} sockets",
                    op::MAX_DECLARED
                )),
            });
        }
        let mut handles = Vec::new();
        for s in specs {
            let err = |what, source| SocketError {
                name: s.name.clone(),
                what,
                addr: s.addr,
                source,
            };
            let sock = if s.listen {
                let l = TcpListener::bind(s.addr).map_err(|e| err("listen on", e))?;
                l.set_nonblocking(true).map_err(|e| err("listen on", e))?;
                Sock::Listener(l)
            } else {
                let c = TcpStream::connect(s.addr).map_err(|e| err("connect to", e))?;
                c.set_nonblocking(true).map_err(|e| err("connect to", e))?;
                Sock::Stream(c)
            };
            handles.push(Some(Entry {
                sock,
                nonblocking: false,
            }));
        }
        Ok(Self {
            declared: handles.len(),
            handles,
            allowed: None,
        })
    }

    /// A server with no preopened sockets, where the guest opens its own and may
    /// bind and connect them only to what `allowed` declares (see the module
    /// comment).
    pub fn dynamic(allowed: &[SocketSpec]) -> Self {
        Self {
            handles: Vec::new(),
            declared: 0,
            allowed: Some(allowed.to_vec()),
        }
    }

    fn may_bind(&self, addr: SocketAddr) -> bool {
        self.allowed.as_ref().is_some_and(|specs| {
            specs.iter().any(|s| {
                if s.listen {
                    s.addr == addr
                } else {
                    addr.port() == 0
                        && addr.ip().is_unspecified()
                        && addr.is_ipv4() == s.addr.is_ipv4()
                }
            })
        })
    }

    fn may_connect(&self, addr: SocketAddr) -> bool {
        self.allowed
            .as_ref()
            .is_some_and(|specs| specs.iter().any(|s| !s.listen && s.addr == addr))
    }

    /// A free handle for `entry` (never a declared socket's).
    fn insert(&mut self, entry: Entry) -> Option<usize> {
        let free = self
            .handles
            .iter()
            .skip(self.declared)
            .position(Option::is_none)
            .map(|i| i + self.declared);
        match free {
            Some(i) => {
                self.handles[i] = Some(entry);
                Some(i)
            }
            None if (self.handles.len() as u64) < op::MAX_HANDLES => {
                self.handles.push(Some(entry));
                Some(self.handles.len() - 1)
            }
            None => None,
        }
    }

    /// The local address of declared socket `i` (a listener bound to port 0 learns
    /// its port here).
    pub fn local_addr(&self, i: usize) -> Option<SocketAddr> {
        match &self.handles.get(i)?.as_ref()?.sock {
            Sock::Listener(l) => l.local_addr().ok(),
            Sock::Stream(s) => s.local_addr().ok(),
            Sock::Fresh(_) => None,
        }
    }

    fn entry(&mut self, h: u64) -> Option<&mut Entry> {
        self.handles.get_mut(usize::try_from(h).ok()?)?.as_mut()
    }

    /// Serves one SOCKET operation; `data` is the call block's data area.
    pub fn serve(&mut self, operation: u64, w: &[u64; 8], data: &mut [u8]) -> RawReply {
        match operation {
            op::COUNT => reply(self.declared as i64),
            op::ACCEPT => self.accept(w[0], data),
            op::RECV => self.recv(w[0], w[1], w[2], data),
            op::SEND => self.send(w[0], w[1], w[2], data),
            op::SHUTDOWN => {
                let how = match w[1] {
                    0 => Shutdown::Read,
                    1 => Shutdown::Write,
                    2 => Shutdown::Both,
                    _ => return reply(-EINVAL),
                };
                match self.entry(w[0]).map(|e| &e.sock) {
                    Some(Sock::Stream(s)) => {
                        s.shutdown(how).map_or_else(|e| io_err(&e), |()| reply(0))
                    }
                    Some(Sock::Listener(_) | Sock::Fresh(_)) => reply(-ENOTCONN),
                    None => reply(-EBADF),
                }
            }
            op::SET_NONBLOCK => match self.entry(w[0]) {
                Some(e) => {
                    e.nonblocking = w[1] != 0;
                    reply(0)
                }
                None => reply(-EBADF),
            },
            op::GET_NONBLOCK => match self.entry(w[0]) {
                Some(e) => reply(i64::from(e.nonblocking)),
                None => reply(-EBADF),
            },
            op::POLL => self.poll(w[1], w[2], data),
            op::CLOSE => match usize::try_from(w[0])
                .ok()
                .and_then(|h| self.handles.get_mut(h))
            {
                Some(slot @ Some(_)) => {
                    *slot = None;
                    reply(0)
                }
                _ => reply(-EBADF),
            },
            op::NAME => {
                let addr = match self.entry(w[0]).map(|e| &e.sock) {
                    Some(Sock::Listener(l)) if w[1] == 0 => l.local_addr(),
                    Some(Sock::Listener(_)) => return reply(-ENOTCONN),
                    Some(Sock::Stream(s)) if w[1] == 0 => s.local_addr(),
                    Some(Sock::Stream(s)) => s.peer_addr(),
                    Some(Sock::Fresh(f)) if w[1] == 0 => match rustix::net::getsockname(f) {
                        Ok(a) => SocketAddr::try_from(a)
                            .map_err(|_| io::Error::from_raw_os_error(EAFNOSUPPORT as i32)),
                        Err(e) => Err(e.into()),
                    },
                    Some(Sock::Fresh(_)) => return reply(-ENOTCONN),
                    None => return reply(-EBADF),
                };
                match addr {
                    Ok(a) => {
                        let b = sockaddr(a);
                        data[OUT..OUT + b.len()].copy_from_slice(&b);
                        RawReply {
                            ret: 0,
                            val: [OUT as u64, b.len() as u64, 0],
                        }
                    }
                    Err(e) => io_err(&e),
                }
            }
            op::OPEN => self.open_socket(w[0]),
            op::BIND | op::CONNECT => {
                let Some(addr) = guest_sockaddr(data, w[1], w[2]) else {
                    return reply(-EINVAL);
                };
                if operation == op::BIND {
                    self.bind(w[0], addr)
                } else {
                    self.connect(w[0], addr)
                }
            }
            op::LISTEN => self.listen(w[0], w[1]),
            op::GETOPT => match self.entry(w[0]) {
                Some(e) => get_option(e.sock.fd(), w[1], w[2]),
                None => reply(-EBADF),
            },
            op::SETOPT => match self.entry(w[0]) {
                Some(e) => set_option(e.sock.fd(), w[1], w[2], w[3] as u32 as i32),
                None => reply(-EBADF),
            },
            op::FIONREAD => match self.entry(w[0]).map(|e| &e.sock) {
                Some(s) => match rustix::io::ioctl_fionread(s.fd()) {
                    Ok(n) => reply(n.min(i32::MAX as u64) as i64),
                    Err(e) => reply(-i64::from(e.raw_os_error())),
                },
                None => reply(-EBADF),
            },
            _ => reply(-ENOSYS),
        }
    }

    fn accept(&mut self, h: u64, data: &mut [u8]) -> RawReply {
        let Some(e) = self.entry(h) else {
            return reply(-EBADF);
        };
        let nonblocking = e.nonblocking;
        let Sock::Listener(l) = &e.sock else {
            return reply(-EINVAL);
        };
        if !nonblocking {
            wait(l.as_fd(), PollFlags::IN, op::SLICE_MS);
        }
        let (stream, peer) = match l.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !nonblocking => return retry(),
            Err(e) => return io_err(&e),
        };
        if let Err(e) = stream.set_nonblocking(true) {
            return io_err(&e);
        }
        let entry = Entry {
            sock: Sock::Stream(stream),
            nonblocking: false,
        };
        // Accepted connections never take a declared socket's handle (the guest
        // opens those by number).
        let Some(h) = self.insert(entry) else {
            return reply(-EMFILE);
        };
        let b = sockaddr(peer);
        data[OUT..OUT + b.len()].copy_from_slice(&b);
        RawReply {
            ret: h as i64,
            val: [OUT as u64, b.len() as u64, 0],
        }
    }

    fn recv(&mut self, h: u64, max: u64, flags: u64, data: &mut [u8]) -> RawReply {
        let Some(e) = self.entry(h) else {
            return reply(-EBADF);
        };
        let nonblocking = e.nonblocking;
        let Sock::Stream(s) = &mut e.sock else {
            return reply(-ENOTCONN);
        };
        if flags & !MSG_PEEK != 0 {
            return reply(-EOPNOTSUPP);
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX).min(data.len());
        if !nonblocking {
            wait(s.as_fd(), PollFlags::IN, op::SLICE_MS);
        }
        let buf = &mut data[..max];
        let r = if flags & MSG_PEEK != 0 {
            s.peek(buf)
        } else {
            s.read(buf)
        };
        match r {
            Ok(n) => RawReply {
                ret: n as i64,
                val: [0; 3],
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !nonblocking => retry(),
            Err(e) => io_err(&e),
        }
    }

    fn send(&mut self, h: u64, off: u64, len: u64, data: &mut [u8]) -> RawReply {
        let range = usize::try_from(off)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(o, l)| Some(o..o.checked_add(l)?))
            .filter(|r| r.end <= data.len());
        let Some(range) = range else {
            return reply(-EINVAL);
        };
        let Some(e) = self.entry(h) else {
            return reply(-EBADF);
        };
        let nonblocking = e.nonblocking;
        let Sock::Stream(s) = &mut e.sock else {
            return reply(-ENOTCONN);
        };
        if !nonblocking {
            wait(s.as_fd(), PollFlags::OUT, op::SLICE_MS);
        }
        match s.write(&data[range]) {
            Ok(n) => reply(n as i64),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !nonblocking => retry(),
            Err(e) => io_err(&e),
        }
    }

    fn poll(&mut self, n: u64, timeout_ms: u64, data: &mut [u8]) -> RawReply {
        const REQ: usize = op_request_data();
        if n > op::MAX_POLL {
            return reply(-EINVAL);
        }
        let n = n as usize;
        let Some(table) = data.get(REQ..REQ + 8 * n) else {
            return reply(-EINVAL);
        };
        let mut entries = Vec::with_capacity(n);
        for e in table.chunks_exact(8) {
            let h = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
            let events = u16::from_le_bytes([e[4], e[5]]);
            entries.push((h, events));
        }
        let started = Instant::now();
        let ms = timeout_ms.min(op::SLICE_MS);
        let mut revents = vec![0u16; n];
        {
            let mut fds = Vec::new();
            let mut which = Vec::new();
            for (i, &(h, events)) in entries.iter().enumerate() {
                match self.handles.get(h as usize).and_then(Option::as_ref) {
                    Some(e) => {
                        let flags = PollFlags::from_bits_truncate(events as _)
                            & (PollFlags::IN | PollFlags::OUT | PollFlags::PRI | PollFlags::RDHUP);
                        fds.push(PollFd::from_borrowed_fd(e.sock.fd(), flags));
                        which.push(i);
                    }
                    None => revents[i] = 0x20, // POLLNVAL
                }
            }
            let any_nval = revents.iter().any(|&r| r != 0);
            let t = if any_nval { 0 } else { ms };
            let spec = rustix::time::Timespec {
                tv_sec: (t / 1000) as i64,
                tv_nsec: ((t % 1000) * 1_000_000) as i64,
            };
            if let Err(e) = rustix::event::poll(&mut fds, Some(&spec))
                && e != rustix::io::Errno::INTR
            {
                return reply(-i64::from(e.raw_os_error()));
            }
            for (pfd, &i) in fds.iter().zip(&which) {
                revents[i] = pfd.revents().bits();
            }
        }
        let ready = revents.iter().filter(|&&r| r != 0).count();
        for (i, r) in revents.iter().enumerate() {
            data[OUT + 2 * i..OUT + 2 * i + 2].copy_from_slice(&r.to_le_bytes());
        }
        let waited = started.elapsed().min(Duration::from_secs(3600)).as_millis() as u64;
        RawReply {
            ret: ready as i64,
            val: [OUT as u64, waited, 0],
        }
    }
}

impl SocketServer {
    fn open_socket(&mut self, family: u64) -> RawReply {
        if self.allowed.is_none() {
            return reply(-EACCES);
        }
        let family = match family {
            2 => rustix::net::AddressFamily::INET,
            10 => rustix::net::AddressFamily::INET6,
            _ => return reply(-EAFNOSUPPORT),
        };
        let fd = match rustix::net::socket_with(
            family,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC,
            None,
        ) {
            Ok(fd) => fd,
            Err(e) => return reply(-i64::from(e.raw_os_error())),
        };
        let entry = Entry {
            sock: Sock::Fresh(fd),
            nonblocking: false,
        };
        match self.insert(entry) {
            Some(h) => reply(h as i64),
            None => reply(-EMFILE),
        }
    }

    /// Replaces handle `h`'s socket by `f` of it (a fresh socket that started
    /// listening or connecting).
    fn morph(&mut self, h: u64, f: impl FnOnce(Sock) -> Sock) {
        if let Some(slot) = usize::try_from(h)
            .ok()
            .and_then(|i| self.handles.get_mut(i))
            && let Some(Entry { sock, nonblocking }) = slot.take()
        {
            *slot = Some(Entry {
                sock: f(sock),
                nonblocking,
            });
        }
    }

    fn bind(&mut self, h: u64, addr: SocketAddr) -> RawReply {
        if !self.may_bind(addr) {
            return reply(-EACCES);
        }
        match self.entry(h).map(|e| &e.sock) {
            Some(Sock::Fresh(f)) => match rustix::net::bind(f, &addr) {
                Ok(()) => reply(0),
                Err(e) => reply(-i64::from(e.raw_os_error())),
            },
            Some(_) => reply(-EINVAL),
            None => reply(-EBADF),
        }
    }

    fn listen(&mut self, h: u64, backlog: u64) -> RawReply {
        let Some(e) = self.entry(h) else {
            return reply(-EBADF);
        };
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        match &e.sock {
            // Listening again only changes the backlog.
            Sock::Listener(l) => match rustix::net::listen(l, backlog) {
                Ok(()) => reply(0),
                Err(err) => reply(-i64::from(err.raw_os_error())),
            },
            Sock::Fresh(f) => {
                // Only a socket bound to an allowed address may listen (an unbound
                // one would listen on an ephemeral port of every interface).
                let bound = rustix::net::getsockname(f)
                    .ok()
                    .and_then(|a| SocketAddr::try_from(a).ok())
                    .is_some_and(|a| a.port() != 0);
                if !bound {
                    return reply(-EACCES);
                }
                if let Err(err) = rustix::net::listen(f, backlog) {
                    return reply(-i64::from(err.raw_os_error()));
                }
                self.morph(h, |s| match s {
                    Sock::Fresh(f) => Sock::Listener(TcpListener::from(f)),
                    other => other,
                });
                reply(0)
            }
            Sock::Stream(_) => reply(-EINVAL),
        }
    }

    fn connect(&mut self, h: u64, addr: SocketAddr) -> RawReply {
        if !self.may_connect(addr) {
            return reply(-EACCES);
        }
        let Some(e) = self.entry(h) else {
            return reply(-EBADF);
        };
        let nonblocking = e.nonblocking;
        let first = match &e.sock {
            Sock::Fresh(f) => rustix::net::connect(f, &addr),
            Sock::Stream(s) => rustix::net::connect(s, &addr),
            Sock::Listener(_) => return reply(-EINVAL),
        };
        // From here on the socket is a stream (connecting or connected).
        if matches!(first, Ok(()) | Err(rustix::io::Errno::INPROGRESS)) {
            self.morph(h, |s| match s {
                Sock::Fresh(f) => Sock::Stream(TcpStream::from(f)),
                other => other,
            });
        }
        let errno = match first {
            Ok(()) => return reply(0),
            Err(rustix::io::Errno::ISCONN) if !nonblocking => return reply(0),
            Err(err) => i64::from(err.raw_os_error()),
        };
        if nonblocking || (errno != EINPROGRESS && errno != EALREADY) {
            return reply(-errno);
        }
        // A blocking connect: wait a slice for it to finish, then ask to be called
        // again (which reports EALREADY while in progress, EISCONN when done).
        let Some(e) = self.entry(h) else {
            return reply(-EBADF);
        };
        let fd = e.sock.fd();
        wait(fd, PollFlags::OUT, op::SLICE_MS);
        match rustix::net::sockopt::socket_error(fd) {
            Ok(Ok(())) => match rustix::net::getpeername(fd) {
                Ok(Some(_)) => reply(0),
                _ => retry(),
            },
            Ok(Err(err)) => reply(-i64::from(err.raw_os_error())),
            Err(err) => reply(-i64::from(err.raw_os_error())),
        }
    }
}

/// The sockaddr the guest placed at (off, len) in the data area.
pub(crate) fn guest_sockaddr(data: &[u8], off: u64, len: u64) -> Option<SocketAddr> {
    let off = usize::try_from(off).ok()?;
    let len = usize::try_from(len).ok()?;
    if len as u64 > op::MAX_ADDR {
        return None;
    }
    let b = data.get(off..off.checked_add(len)?)?;
    let family = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match family {
        2 if len >= 16 => {
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        10 if len >= 28 => {
            let flow = u32::from_be_bytes(b[4..8].try_into().ok()?);
            let ip: [u8; 16] = b[8..24].try_into().ok()?;
            let scope = u32::from_le_bytes(b[24..28].try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

const SOL_SOCKET: u64 = 1;
const IPPROTO_IP: u64 = 0;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_IPV6: u64 = 41;

fn errno_reply(e: rustix::io::Errno) -> RawReply {
    reply(-i64::from(e.raw_os_error()))
}

fn int_reply<T: TryInto<i64>>(r: rustix::io::Result<T>) -> RawReply {
    match r {
        Ok(v) => reply(
            v.try_into()
                .unwrap_or(i64::from(i32::MAX))
                .clamp(0, i64::from(i32::MAX)),
        ),
        Err(e) => errno_reply(e),
    }
}

/// The integer socket options a guest may read (others: -ENOPROTOOPT).
fn get_option(fd: BorrowedFd<'_>, level: u64, name: u64) -> RawReply {
    use rustix::net::sockopt as so;
    match (level, name) {
        (SOL_SOCKET, 2) => int_reply(so::socket_reuseaddr(fd).map(i64::from)),
        (SOL_SOCKET, 3) => reply(1), // SO_TYPE: SOCK_STREAM
        (SOL_SOCKET, 4) => match so::socket_error(fd) {
            Ok(Ok(())) => reply(0),
            Ok(Err(e)) => reply(i64::from(e.raw_os_error())),
            Err(e) => errno_reply(e),
        },
        (SOL_SOCKET, 7) => int_reply(so::socket_send_buffer_size(fd)),
        (SOL_SOCKET, 8) => int_reply(so::socket_recv_buffer_size(fd)),
        (SOL_SOCKET, 9) => int_reply(so::socket_keepalive(fd).map(i64::from)),
        (SOL_SOCKET, 30) => int_reply(so::socket_acceptconn(fd).map(i64::from)),
        (IPPROTO_TCP, 1) => int_reply(so::tcp_nodelay(fd).map(i64::from)),
        (IPPROTO_TCP, 4) => int_reply(so::tcp_keepidle(fd).map(|d| d.as_secs())),
        (IPPROTO_TCP, 5) => int_reply(so::tcp_keepintvl(fd).map(|d| d.as_secs())),
        (IPPROTO_TCP, 6) => int_reply(so::tcp_keepcnt(fd)),
        (IPPROTO_IP, 2) => int_reply(so::ip_ttl(fd)),
        (IPPROTO_IPV6, 16) => int_reply(so::ipv6_unicast_hops(fd)),
        (IPPROTO_IPV6, 26) => int_reply(so::ipv6_v6only(fd).map(i64::from)),
        _ => reply(-ENOPROTOOPT),
    }
}

/// The integer socket options a guest may set (others: -ENOPROTOOPT).
fn set_option(fd: BorrowedFd<'_>, level: u64, name: u64, v: i32) -> RawReply {
    use rustix::net::sockopt as so;
    let secs = || Duration::from_secs(v.max(0) as u64);
    let r = match (level, name) {
        (SOL_SOCKET, 2) => so::set_socket_reuseaddr(fd, v != 0),
        (SOL_SOCKET, 7) => so::set_socket_send_buffer_size(fd, v.max(0) as usize),
        (SOL_SOCKET, 8) => so::set_socket_recv_buffer_size(fd, v.max(0) as usize),
        (SOL_SOCKET, 9) => so::set_socket_keepalive(fd, v != 0),
        (IPPROTO_TCP, 1) => so::set_tcp_nodelay(fd, v != 0),
        (IPPROTO_TCP, 4) => so::set_tcp_keepidle(fd, secs()),
        (IPPROTO_TCP, 5) => so::set_tcp_keepintvl(fd, secs()),
        (IPPROTO_TCP, 6) => so::set_tcp_keepcnt(fd, v.max(0) as u32),
        (IPPROTO_IP, 2) => so::set_ip_ttl(fd, v.max(0) as u32),
        (IPPROTO_IPV6, 16) => so::set_ipv6_unicast_hops(fd, u8::try_from(v).ok()),
        (IPPROTO_IPV6, 26) => so::set_ipv6_v6only(fd, v != 0),
        _ => return reply(-ENOPROTOOPT),
    };
    match r {
        Ok(()) => reply(0),
        Err(e) => errno_reply(e),
    }
}

const fn op_request_data() -> usize {
    crate::abi::fs::REQUEST_DATA as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(listen: bool, addr: &str) -> SocketSpec {
        SocketSpec {
            name: "s".into(),
            listen,
            addr: addr.parse().unwrap(),
        }
    }

    #[test]
    fn dynamic_sockets_bind_and_connect_only_what_is_declared() {
        let s = SocketServer::dynamic(&[
            spec(true, "127.0.0.1:47003"),
            spec(false, "127.0.0.1:47001"),
            spec(false, "[::1]:47005"),
        ]);
        let a = |x: &str| x.parse::<SocketAddr>().unwrap();
        assert!(s.may_bind(a("127.0.0.1:47003")));
        assert!(!s.may_bind(a("127.0.0.1:47004")));
        assert!(!s.may_bind(a("0.0.0.0:47003")));
        // The implicit bind of an outgoing connection, per family.
        assert!(s.may_bind(a("0.0.0.0:0")));
        assert!(s.may_bind(a("[::]:0")));
        assert!(!s.may_bind(a("127.0.0.1:0")));
        assert!(s.may_connect(a("127.0.0.1:47001")));
        assert!(s.may_connect(a("[::1]:47005")));
        assert!(!s.may_connect(a("127.0.0.1:47003")));
        assert!(!s.may_connect(a("127.0.0.1:47002")));
        let none = SocketServer::dynamic(&[spec(true, "127.0.0.1:47003")]);
        assert!(!none.may_bind(a("0.0.0.0:0")), "no connect declared");
    }

    fn words(w: [u64; 3]) -> [u64; 8] {
        [w[0], w[1], w[2], 0, 0, 0, 0, 0]
    }

    #[test]
    fn preopened_servers_make_no_sockets_and_dynamic_ones_check_addresses() {
        let mut data = vec![0u8; 4096];
        let mut pre = SocketServer::open(&[]).unwrap();
        assert_eq!(
            pre.serve(op::OPEN, &words([2, 0, 0]), &mut data).ret,
            -EACCES
        );

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut s = SocketServer::dynamic(&[spec(false, &format!("127.0.0.1:{port}"))]);
        assert_eq!(
            s.serve(op::OPEN, &words([3, 0, 0]), &mut data).ret,
            -EAFNOSUPPORT
        );
        let h = s.serve(op::OPEN, &words([2, 0, 0]), &mut data).ret;
        assert!(h >= 0);
        let h = h as u64;
        // A listen before any allowed bind is refused (it would pick any port).
        assert_eq!(
            s.serve(op::LISTEN, &words([h, 8, 0]), &mut data).ret,
            -EACCES
        );
        let put = |data: &mut [u8], a: SocketAddr| {
            let b = sockaddr(a);
            data[64..64 + b.len()].copy_from_slice(&b);
            b.len() as u64
        };
        let other = SocketAddr::from(([127, 0, 0, 1], port.wrapping_add(1)));
        let n = put(&mut data, other);
        assert_eq!(
            s.serve(op::CONNECT, &words([h, 64, n]), &mut data).ret,
            -EACCES
        );
        assert_eq!(
            s.serve(op::BIND, &words([h, 64, n]), &mut data).ret,
            -EACCES
        );
        // The declared address: a non-blocking connect that completes.
        assert_eq!(
            s.serve(op::SET_NONBLOCK, &words([h, 1, 0]), &mut data).ret,
            0
        );
        let n = put(&mut data, SocketAddr::from(([127, 0, 0, 1], port)));
        let r = s.serve(op::CONNECT, &words([h, 64, n]), &mut data).ret;
        assert!(r == 0 || r == -EINPROGRESS, "{r}");
        let (_peer, _) = listener.accept().unwrap();
        // SO_ERROR through GETOPT, then an option the VMM does not allow.
        assert_eq!(s.serve(op::GETOPT, &words([h, 1, 4]), &mut data).ret, 0);
        assert_eq!(
            s.serve(op::SETOPT, &words([h, 1, 25]), &mut data).ret,
            -ENOPROTOOPT,
            "SO_BINDTODEVICE is not on the list"
        );
        // A sockaddr out of the data area or too long is EINVAL, not a panic.
        assert_eq!(
            s.serve(op::CONNECT, &words([h, 4090, 16]), &mut data).ret,
            -EINVAL
        );
        assert_eq!(
            s.serve(op::CONNECT, &words([h, 64, 29]), &mut data).ret,
            -EINVAL
        );
        assert_eq!(
            s.serve(op::CONNECT, &words([h, u64::MAX, 16]), &mut data)
                .ret,
            -EINVAL
        );
    }

    #[test]
    fn guest_sockaddrs_parse_defensively() {
        let v4 = sockaddr("10.1.2.3:8080".parse().unwrap());
        let v6 = sockaddr("[fe80::1%3]:443".parse().unwrap());
        let mut data = vec![0u8; 64];
        data[..16].copy_from_slice(&v4);
        assert_eq!(
            guest_sockaddr(&data, 0, 16),
            Some("10.1.2.3:8080".parse().unwrap())
        );
        data[16..44].copy_from_slice(&v6);
        assert_eq!(
            guest_sockaddr(&data, 16, 28),
            Some("[fe80::1%3]:443".parse().unwrap())
        );
        // Every truncation, a bad family, ranges outside the data.
        for n in 0..16 {
            assert_eq!(guest_sockaddr(&data, 0, n), None, "v4 cut to {n}");
        }
        for n in 0..28 {
            assert_eq!(guest_sockaddr(&data, 16, n), None, "v6 cut to {n}");
        }
        data[0] = 1;
        assert_eq!(guest_sockaddr(&data, 0, 16), None);
        assert_eq!(guest_sockaddr(&data, 60, 16), None);
        assert_eq!(guest_sockaddr(&data, u64::MAX, 16), None);
        assert_eq!(guest_sockaddr(&data, 0, u64::MAX), None);
    }
}
