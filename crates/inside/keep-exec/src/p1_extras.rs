//! What the exec adds to wasmtime's WASI preview 1: preopened TCP sockets (Enarx
//! style), the open-files limit, and `proc_exit` with any code (wasmtime refuses
//! codes of 126 and more; Keep reports them).
//!
//! wasmtime's preview 1 layer has no sockets, so the exec adds them on top of it
//! without forking it:
//! - each declared socket gets a descriptor number in the preview 1 table by way of
//!   a hidden, empty, read-only preopened directory (so the numbers follow the
//!   directories: fd `3 + dirs + i`, i.e. fd 3.. for an Enarx.toml);
//! - the imports that can touch a socket (`fd_read`, `fd_write`, `fd_close`,
//!   `fd_fdstat_get`, `fd_fdstat_set_flags`, `fd_prestat_*`, `sock_*`) are shadowed:
//!   socket descriptors are served here, every other descriptor is passed to
//!   wasmtime's own implementation unchanged;
//! - an accepted connection reserves its number by opening the hidden directory
//!   again, so the preview 1 table never hands the same number out twice.
//!
//! Every pointer and length from the guest is bounds-checked against its memory.
//! `poll_oneoff` on sockets is served by [`crate::p1_poll`].

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

use keep_wire::{FdSpec, Limit, SocketKind};
use wasmtime::{AsContextMut, Caller, Linker};
use wasmtime::{Result, bail, format_err};
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1 as _;
use wasmtime_wasi::p1::{WasiP1Ctx, wasi_snapshot_preview1 as p1};
use wasmtime_wasi::runtime::in_tokio;
use wiggle::GuestMemory;

use std::os::fd::AsFd;

use crate::limits::LimitHit;
use crate::p1_poll;
use crate::wasi::parse_ip;

/// What the shadowing layer needs from the store's data.
pub trait P1Host: Send + 'static {
    fn wasi(&mut self) -> &mut WasiP1Ctx;
    fn sockets(&mut self) -> &mut Sockets;
}

enum Socket {
    Listener(TcpListener),
    Stream(TcpStream),
}

/// Socket descriptors and the open-files count of one workload.
pub struct Sockets {
    by_fd: HashMap<u32, Socket>,
    /// A descriptor of the hidden directory, used to reserve numbers.
    holder: Option<u32>,
    /// Descriptors opened by the workload (files and accepted connections).
    opened: HashSet<u32>,
    open_limit: Option<u32>,
}

// WASI preview 1 errno values used here.
const SUCCESS: i32 = 0;
const EAGAIN: i32 = 6;
const EBADF: i32 = 8;
const ECONNRESET: i32 = 15;
const EFAULT: i32 = 21;
const EINTR: i32 = 27;
const EINVAL: i32 = 28;
const EIO: i32 = 29;
const ENOTCONN: i32 = 53;
const ENOTDIR: i32 = 54;
const EPIPE: i32 = 64;

const FILETYPE_SOCKET_STREAM: u8 = 6;
/// Where the shim of a KVM Keep names declared socket `i` (`abi::sock::PATH_PREFIX`).
const KVM_SOCKET_PREFIX: &str = "/.keep/sock/";
const FDFLAGS_NONBLOCK: u16 = 1 << 2;
const OFLAGS_DIRECTORY: i32 = 1 << 1;
const RIGHTS_SOCKET: u64 = (1 << 1) | (1 << 3) | (1 << 6) | (1 << 27) | (1 << 28) | (1 << 29);

impl Sockets {
    /// Binds and connects the declared sockets; `first_fd` is where they start.
    pub fn open(specs: &[FdSpec], first_fd: u32, open_limit: Option<u32>) -> Result<Self> {
        let mut by_fd = HashMap::new();
        for (i, spec) in specs.iter().enumerate() {
            let ip = parse_ip(&spec.host).ok_or_else(|| {
                format_err!(
                    "socket {}: {} is not an IP address (the exec does no name lookups)",
                    spec.name,
                    spec.host
                )
            })?;
            let addr = SocketAddr::new(ip, spec.port);
            if crate::in_kvm_keep() {
                // In a KVM Keep the VMM bound or connected it already; the shim
                // hands it over under this name (SOCKET host calls).
                let file = std::fs::File::open(format!("{KVM_SOCKET_PREFIX}{i}")).map_err(|e| {
                    format_err!("socket {}: not preopened by the VMM: {e}", spec.name)
                })?;
                let fd = std::os::fd::OwnedFd::from(file);
                let socket = match spec.kind {
                    SocketKind::Listen => Socket::Listener(TcpListener::from(fd)),
                    SocketKind::Connect => Socket::Stream(TcpStream::from(fd)),
                };
                by_fd.insert(first_fd + i as u32, socket);
                continue;
            }
            let socket = match spec.kind {
                SocketKind::Listen => Socket::Listener(TcpListener::bind(addr).map_err(|e| {
                    format_err!("socket {}: cannot listen on {addr}: {e}", spec.name)
                })?),
                SocketKind::Connect => Socket::Stream(TcpStream::connect(addr).map_err(|e| {
                    format_err!("socket {}: cannot connect to {addr}: {e}", spec.name)
                })?),
            };
            by_fd.insert(first_fd + i as u32, socket);
        }
        let holder = if specs.is_empty() {
            None
        } else {
            Some(first_fd)
        };
        Ok(Self {
            by_fd,
            holder,
            opened: HashSet::new(),
            open_limit,
        })
    }

    fn is_socket(&self, fd: i32) -> bool {
        u32::try_from(fd).is_ok_and(|fd| self.by_fd.contains_key(&fd))
    }

    fn count_open(&mut self, fd: u32) -> Result<()> {
        self.opened.insert(fd);
        if let Some(limit) = self.open_limit
            && self.opened.len() > limit as usize
        {
            return Err(wasmtime::Error::new(LimitHit {
                limit: Limit::OpenFiles,
                detail: format!("opened more than {limit} files and sockets at once"),
            }));
        }
        Ok(())
    }
}

/// Adds the shadowing imports to a linker that already has wasmtime's preview 1.
/// The descriptor layer (sockets, open-files count) is only installed when
/// `descriptors` is true: a workload without sockets or an open-files limit calls
/// wasmtime's functions directly and pays nothing for it.
pub fn add_to_linker<T: P1Host>(linker: &mut Linker<T>, descriptors: bool) -> Result<()> {
    const M: &str = "wasi_snapshot_preview1";
    linker.allow_shadowing(true);

    linker.func_wrap(M, "proc_exit", |code: i32| -> Result<()> {
        Err(wasmtime::Error::new(wasmtime_wasi::I32Exit(code)))
    })?;
    if !descriptors {
        return Ok(());
    }

    linker.func_wrap(
        M,
        "fd_prestat_get",
        |mut c: Caller<'_, T>, fd: i32, buf: i32| {
            if c.data_mut().sockets().is_socket(fd) {
                return Ok(EBADF);
            }
            with_memory(&mut c, |wasi, mem| p1::fd_prestat_get(wasi, mem, fd, buf))
        },
    )?;
    linker.func_wrap(
        M,
        "fd_prestat_dir_name",
        |mut c: Caller<'_, T>, fd: i32, p: i32, len: i32| {
            if c.data_mut().sockets().is_socket(fd) {
                return Ok(EBADF);
            }
            with_memory(&mut c, |wasi, mem| {
                p1::fd_prestat_dir_name(wasi, mem, fd, p, len)
            })
        },
    )?;
    linker.func_wrap(
        M,
        "fd_read",
        |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, out: i32| {
            if c.data_mut().sockets().is_socket(fd) {
                return Ok(socket_io(
                    &mut c,
                    fd,
                    iovs,
                    n,
                    out,
                    Direction::Recv { peek: false },
                ));
            }
            with_memory(&mut c, |wasi, mem| {
                in_tokio(p1::fd_read(wasi, mem, fd, iovs, n, out))
            })
        },
    )?;
    linker.func_wrap(
        M,
        "fd_write",
        |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, out: i32| {
            if c.data_mut().sockets().is_socket(fd) {
                return Ok(socket_io(&mut c, fd, iovs, n, out, Direction::Send));
            }
            with_memory(&mut c, |wasi, mem| {
                in_tokio(p1::fd_write(wasi, mem, fd, iovs, n, out))
            })
        },
    )?;
    linker.func_wrap(
        M,
        "sock_recv",
        |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, flags: i32, out: i32, oflags: i32| {
            if !c.data_mut().sockets().is_socket(fd) {
                return with_memory(&mut c, |wasi, mem| {
                    p1::sock_recv(wasi, mem, fd, iovs, n, flags, out, oflags)
                });
            }
            if write_u16(&mut c, oflags, 0).is_err() {
                return Ok(EFAULT);
            }
            Ok(socket_io(
                &mut c,
                fd,
                iovs,
                n,
                out,
                Direction::Recv {
                    peek: flags & 1 != 0,
                },
            ))
        },
    )?;
    linker.func_wrap(
        M,
        "sock_send",
        |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, flags: i32, out: i32| {
            if !c.data_mut().sockets().is_socket(fd) {
                return with_memory(&mut c, |wasi, mem| {
                    p1::sock_send(wasi, mem, fd, iovs, n, flags, out)
                });
            }
            Ok(socket_io(&mut c, fd, iovs, n, out, Direction::Send))
        },
    )?;
    linker.func_wrap(
        M,
        "sock_shutdown",
        |mut c: Caller<'_, T>, fd: i32, how: i32| {
            if !c.data_mut().sockets().is_socket(fd) {
                return with_memory(&mut c, |wasi, mem| p1::sock_shutdown(wasi, mem, fd, how));
            }
            let how = match how & 3 {
                1 => Shutdown::Read,
                2 => Shutdown::Write,
                3 => Shutdown::Both,
                _ => return Ok(EINVAL),
            };
            match socket(&mut c, fd) {
                Some(Socket::Stream(s)) => {
                    Ok(s.shutdown(how).map_or_else(|e| errno(&e), |()| SUCCESS))
                }
                Some(Socket::Listener(_)) => Ok(ENOTCONN),
                None => Ok(EBADF),
            }
        },
    )?;
    linker.func_wrap(
        M,
        "sock_accept",
        |mut c: Caller<'_, T>, fd: i32, flags: i32, out: i32| -> Result<i32> {
            let accepted = match socket(&mut c, fd) {
                Some(Socket::Listener(l)) => l.accept(),
                Some(Socket::Stream(_)) => return Ok(EINVAL),
                None => {
                    return with_memory(&mut c, |wasi, mem| {
                        p1::sock_accept(wasi, mem, fd, flags, out)
                    });
                }
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => return Ok(errno(&e)),
            };
            if flags as u16 & FDFLAGS_NONBLOCK != 0 && stream.set_nonblocking(true).is_err() {
                return Ok(EIO);
            }
            let new_fd = reserve_fd(c.data_mut())?;
            c.data_mut().sockets().count_open(new_fd)?;
            c.data_mut()
                .sockets()
                .by_fd
                .insert(new_fd, Socket::Stream(stream));
            Ok(write_u32(&mut c, out, new_fd).map_or(EFAULT, |()| SUCCESS))
        },
    )?;
    linker.func_wrap(
        M,
        "fd_fdstat_get",
        |mut c: Caller<'_, T>, fd: i32, buf: i32| {
            let nonblocking = match socket(&mut c, fd) {
                Some(Socket::Stream(s)) => nonblocking(s),
                Some(Socket::Listener(l)) => nonblocking(l),
                None => {
                    return with_memory(&mut c, |wasi, mem| {
                        in_tokio(p1::fd_fdstat_get(wasi, mem, fd, buf))
                    });
                }
            };
            let mut stat = [0u8; 24];
            stat[0] = FILETYPE_SOCKET_STREAM;
            let flags = if nonblocking { FDFLAGS_NONBLOCK } else { 0 };
            stat[2..4].copy_from_slice(&flags.to_le_bytes());
            stat[8..16].copy_from_slice(&RIGHTS_SOCKET.to_le_bytes());
            stat[16..24].copy_from_slice(&RIGHTS_SOCKET.to_le_bytes());
            Ok(write_bytes(&mut c, buf, &stat).map_or(EFAULT, |()| SUCCESS))
        },
    )?;
    linker.func_wrap(
        M,
        "fd_fdstat_set_flags",
        |mut c: Caller<'_, T>, fd: i32, flags: i32| {
            let on = flags as u16 & FDFLAGS_NONBLOCK != 0;
            let result = match socket(&mut c, fd) {
                Some(Socket::Stream(s)) => s.set_nonblocking(on),
                Some(Socket::Listener(l)) => l.set_nonblocking(on),
                None => {
                    return with_memory(&mut c, |wasi, mem| {
                        p1::fd_fdstat_set_flags(wasi, mem, fd, flags)
                    });
                }
            };
            Ok(result.map_or_else(|e| errno(&e), |()| SUCCESS))
        },
    )?;
    linker.func_wrap(M, "fd_close", |mut c: Caller<'_, T>, fd: i32| {
        // A socket's descriptor is closed with it; its placeholder in wasmtime's
        // table is closed below, which frees the number.
        let fd_u32 = fd as u32;
        c.data_mut().sockets().by_fd.remove(&fd_u32);
        let result = with_memory(&mut c, |wasi, mem| in_tokio(p1::fd_close(wasi, mem, fd)))?;
        if result == SUCCESS {
            c.data_mut().sockets().opened.remove(&fd_u32);
        }
        Ok(result)
    })?;
    linker.func_wrap(
        M,
        "poll_oneoff",
        |mut c: Caller<'_, T>, subs: i32, events: i32, n: i32, nout: i32| -> Result<i32> {
            let Some(memory) = c.get_export("memory").and_then(|e| e.into_memory()) else {
                return Ok(EFAULT);
            };
            let (data, state) = memory.data_and_store_mut(&mut c);
            let parsed = p1_poll::parse(data, subs, n, std::time::SystemTime::now());
            let sockets = state.sockets();
            let names_a_socket = |p: &[p1_poll::Subscription]| {
                p.iter().any(|s| matches!(*s, p1_poll::Subscription::Fd { fd, .. } if sockets.by_fd.contains_key(&fd)))
            };
            let subs_parsed = match parsed {
                Ok(p) if names_a_socket(&p) => p,
                // No socket named (or input wasmtime judges itself): wasmtime's own.
                _ => {
                    return with_memory(&mut c, |wasi, mem| {
                        in_tokio(p1::poll_oneoff(wasi, mem, subs, events, n, nout))
                    });
                }
            };
            let ready = p1_poll::wait(&subs_parsed, |fd| {
                sockets.by_fd.get(&fd).map(|s| match s {
                    Socket::Listener(l) => (l.as_fd(), false),
                    Socket::Stream(st) => (st.as_fd(), true),
                })
            });
            let ready = match ready {
                Ok(r) => r,
                Err(errno) => return Ok(errno),
            };
            if !p1_poll::write_events(data, events, &ready) || put_u32(data, nout, ready.len() as u32).is_none() {
                return Ok(EFAULT);
            }
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        M,
        "path_open",
        |mut c: Caller<'_, T>,
         fd: i32,
         dirflags: i32,
         path: i32,
         len: i32,
         oflags: i32,
         base: i64,
         inh: i64,
         fdflags: i32,
         out: i32|
         -> Result<i32> {
            if c.data_mut().sockets().is_socket(fd) {
                return Ok(ENOTDIR);
            }
            let r = with_memory(&mut c, |wasi, mem| {
                in_tokio(p1::path_open(
                    wasi, mem, fd, dirflags, path, len, oflags, base, inh, fdflags, out,
                ))
            })?;
            if r == SUCCESS {
                let memory = c.get_export("memory").and_then(|e| e.into_memory());
                let mut new_fd = [0u8; 4];
                if let Some(m) = memory {
                    m.read(&c, out as u32 as usize, &mut new_fd)?;
                }
                c.data_mut()
                    .sockets()
                    .count_open(u32::from_le_bytes(new_fd))?;
            }
            Ok(r)
        },
    )?;
    Ok(())
}

fn nonblocking<F: std::os::fd::AsFd>(f: &F) -> bool {
    rustix::fs::fcntl_getfl(f).is_ok_and(|fl| fl.contains(rustix::fs::OFlags::NONBLOCK))
}

fn socket<'a, T: P1Host>(c: &'a mut Caller<'_, T>, fd: i32) -> Option<&'a mut Socket> {
    let fd = u32::try_from(fd).ok()?;
    c.data_mut().sockets().by_fd.get_mut(&fd)
}

/// Runs a wasmtime preview 1 function against the guest's own memory.
fn with_memory<T: P1Host>(
    c: &mut Caller<'_, T>,
    f: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>) -> Result<i32>,
) -> Result<i32> {
    let memory = c
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or_else(|| format_err!("the workload exports no memory"))?;
    // wasmtime's preview 1 bounds host-side copies with the store's hostcall fuel,
    // handed to it before each call exactly as its own linker glue does.
    let fuel = c.as_context_mut().hostcall_fuel();
    let (data, state) = memory.data_and_store_mut(c);
    let wasi = state.wasi();
    wasi.set_hostcall_fuel(fuel);
    let mut mem = GuestMemory::Unshared(data);
    f(wasi, &mut mem)
}

/// Takes a fresh number in the preview 1 table by opening the hidden directory.
fn reserve_fd<T: P1Host>(state: &mut T) -> Result<u32> {
    let holder = state
        .sockets()
        .holder
        .ok_or_else(|| format_err!("no socket holder directory"))?;
    // Scratch memory: the path "." at 0, the result at 8.
    let mut scratch = [0u8; 16];
    scratch[0] = b'.';
    let mut mem = GuestMemory::Unshared(&mut scratch);
    // FD_READ | FD_READDIR: the holder directory is read-only.
    let rights: i64 = (1 << 1) | (1 << 14);
    state.wasi().set_hostcall_fuel(SCRATCH_FUEL);
    let r = in_tokio(p1::path_open(
        state.wasi(),
        &mut mem,
        holder as i32,
        0,
        0,
        1,
        OFLAGS_DIRECTORY,
        rights,
        0,
        0,
        8,
    ))?;
    if r != SUCCESS {
        bail!("cannot reserve a descriptor for a connection (errno {r})");
    }
    Ok(u32::from_le_bytes([
        scratch[8],
        scratch[9],
        scratch[10],
        scratch[11],
    ]))
}

/// Fuel for calls on the exec's own scratch memory: a few bytes are copied.
const SCRATCH_FUEL: usize = 4096;

enum Direction {
    Recv { peek: bool },
    Send,
}

/// Reads or writes a socket through the guest's iovec array.
fn socket_io<T: P1Host>(
    c: &mut Caller<'_, T>,
    fd: i32,
    iovs: i32,
    n: i32,
    out: i32,
    dir: Direction,
) -> i32 {
    let Some(memory) = c.get_export("memory").and_then(|e| e.into_memory()) else {
        return EFAULT;
    };
    let (data, state) = memory.data_and_store_mut(&mut *c);
    let Some(sock) = u32::try_from(fd)
        .ok()
        .and_then(|fd| state.sockets().by_fd.get_mut(&fd))
    else {
        return EBADF;
    };
    let Socket::Stream(stream) = sock else {
        return ENOTCONN;
    };
    let Some(ranges) = iovec_ranges(data, iovs, n) else {
        return EFAULT;
    };
    let mut total: u32 = 0;
    for (start, len) in ranges {
        if len == 0 {
            continue;
        }
        let buf = &mut data[start..start + len];
        let result = match dir {
            Direction::Recv { peek: true } => stream.peek(buf),
            Direction::Recv { peek: false } => stream.read(buf),
            Direction::Send => stream.write(buf),
        };
        match result {
            Ok(k) => {
                total = total.saturating_add(k as u32);
                if k < len {
                    break;
                }
            }
            Err(e) if total > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return errno(&e),
        }
        if matches!(dir, Direction::Recv { peek: true }) {
            break;
        }
    }
    match put_u32(data, out, total) {
        Some(()) => SUCCESS,
        None => EFAULT,
    }
}

/// Checked (start, len) pairs of an iovec array in guest memory.
fn iovec_ranges(data: &[u8], iovs: i32, n: i32) -> Option<Vec<(usize, usize)>> {
    let base = usize::try_from(iovs as u32).ok()?;
    let n = usize::try_from(n as u32).ok()?;
    if n > 1024 {
        return None;
    }
    let table = data.get(base..base.checked_add(n.checked_mul(8)?)?)?;
    let mut ranges = Vec::with_capacity(n);
    for entry in table.chunks_exact(8) {
        let start = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]) as usize;
        let len = u32::from_le_bytes([entry[4], entry[5], entry[6], entry[7]]) as usize;
        data.get(start..start.checked_add(len)?)?;
        ranges.push((start, len));
    }
    Some(ranges)
}

fn put_u32(data: &mut [u8], at: i32, value: u32) -> Option<()> {
    let at = at as u32 as usize;
    data.get_mut(at..at.checked_add(4)?)?
        .copy_from_slice(&value.to_le_bytes());
    Some(())
}

fn write_bytes<T: P1Host>(c: &mut Caller<'_, T>, at: i32, bytes: &[u8]) -> Result<(), ()> {
    let memory = c
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .ok_or(())?;
    memory.write(c, at as u32 as usize, bytes).map_err(|_| ())
}

fn write_u32<T: P1Host>(c: &mut Caller<'_, T>, at: i32, v: u32) -> Result<(), ()> {
    write_bytes(c, at, &v.to_le_bytes())
}

fn write_u16<T: P1Host>(c: &mut Caller<'_, T>, at: i32, v: u16) -> Result<(), ()> {
    write_bytes(c, at, &v.to_le_bytes())
}

fn errno(e: &io::Error) -> i32 {
    match e.kind() {
        io::ErrorKind::WouldBlock => EAGAIN,
        io::ErrorKind::Interrupted => EINTR,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ECONNRESET,
        io::ErrorKind::BrokenPipe => EPIPE,
        io::ErrorKind::NotConnected => ENOTCONN,
        _ => EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iovec(start: u32, len: u32) -> [u8; 8] {
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&start.to_le_bytes());
        e[4..].copy_from_slice(&len.to_le_bytes());
        e
    }

    #[test]
    fn iovecs_inside_memory_are_accepted() {
        let mut mem = vec![0u8; 256];
        mem[0..8].copy_from_slice(&iovec(64, 16));
        mem[8..16].copy_from_slice(&iovec(200, 56));
        assert_eq!(iovec_ranges(&mem, 0, 2), Some(vec![(64, 16), (200, 56)]));
        assert_eq!(iovec_ranges(&mem, 0, 0), Some(vec![]));
    }

    #[test]
    fn iovecs_reaching_outside_memory_are_refused() {
        let mut mem = vec![0u8; 256];
        // A buffer one byte past the end.
        mem[0..8].copy_from_slice(&iovec(200, 57));
        assert_eq!(iovec_ranges(&mem, 0, 1), None);
        // A length that wraps.
        mem[0..8].copy_from_slice(&iovec(u32::MAX, 2));
        assert_eq!(iovec_ranges(&mem, 0, 1), None);
        // The array itself out of bounds, or absurdly long.
        assert_eq!(iovec_ranges(&mem, 250, 1), None);
        assert_eq!(iovec_ranges(&mem, -1, 1), None);
        assert_eq!(iovec_ranges(&mem, 0, 100_000), None);
        assert_eq!(iovec_ranges(&mem, 0, -1), None);
    }

    #[test]
    fn results_are_written_only_inside_memory() {
        let mut mem = vec![0u8; 16];
        assert_eq!(put_u32(&mut mem, 12, 7), Some(()));
        assert_eq!(u32::from_le_bytes([mem[12], mem[13], mem[14], mem[15]]), 7);
        assert_eq!(put_u32(&mut mem, 13, 7), None);
        assert_eq!(put_u32(&mut mem, -4, 7), None);
    }

    #[test]
    fn io_errors_map_to_wasi_errnos() {
        use std::io::ErrorKind::*;
        assert_eq!(errno(&io::Error::from(WouldBlock)), EAGAIN);
        assert_eq!(errno(&io::Error::from(BrokenPipe)), EPIPE);
        assert_eq!(errno(&io::Error::from(ConnectionReset)), ECONNRESET);
        assert_eq!(errno(&io::Error::from(NotConnected)), ENOTCONN);
        assert_eq!(errno(&io::Error::from(PermissionDenied)), EIO);
    }
}
