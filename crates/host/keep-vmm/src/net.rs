//! Preopened TCP sockets, served to the guest by handle (SOCKET host calls, see
//! `abi::sock`). The VMM binds and connects the sockets the launch spec declares,
//! before the Keep starts; the guest can accept on a listener, read, write, shut
//! down, poll and close, nothing else (no new sockets, no addresses of its own).
//! Every host socket is non-blocking at the OS level: a call on a socket the
//! guest left blocking waits here at most `sock::SLICE_MS` and then asks the shim
//! to call again, so the watchdog's limits and kills still end the Keep.
//! The host sees every byte: TCP payloads are in clear on this side.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use crate::abi::sock as op;
use crate::hostcall::RawReply;

/// One socket the launch spec declares.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Sock {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Sock::Listener(l) => l.as_fd(),
            Sock::Stream(s) => s.as_fd(),
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
}

const EBADF: i64 = 9;
const EAGAIN: i64 = 11;
const EINVAL: i64 = 22;
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
        })
    }

    /// The local address of declared socket `i` (a listener bound to port 0 learns
    /// its port here).
    pub fn local_addr(&self, i: usize) -> Option<SocketAddr> {
        match &self.handles.get(i)?.as_ref()?.sock {
            Sock::Listener(l) => l.local_addr().ok(),
            Sock::Stream(s) => s.local_addr().ok(),
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
                    Some(Sock::Listener(_)) => reply(-ENOTCONN),
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
        let free = self
            .handles
            .iter()
            .skip(self.declared)
            .position(Option::is_none)
            .map(|i| i + self.declared);
        let h = match free {
            Some(i) => {
                self.handles[i] = Some(entry);
                i
            }
            None if (self.handles.len() as u64) < op::MAX_HANDLES => {
                self.handles.push(Some(entry));
                self.handles.len() - 1
            }
            None => return reply(-EMFILE),
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
                            & (PollFlags::IN | PollFlags::OUT | PollFlags::PRI);
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

const fn op_request_data() -> usize {
    crate::abi::fs::REQUEST_DATA as usize
}
