//! The host side of the call block. The VMM parses the request header from the
//! block, checks every offset and length against the data area (the guest never
//! passes pointers), and hands a typed [`HostCall`] to a [`HostCallServer`]. The
//! server's [`RawReply`] is written back as is: the server is host code, and
//! tests replace it with a hostile one to check that the shim refuses bad replies.

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;
use crate::abi::{CALL_BLOCK_SIZE, CALL_DATA_OFFSET, call};
use crate::fs::FileServer;
use crate::log::LogCap;
use crate::net::SocketServer;

/// Bytes of the data area.
pub const DATA_CAPACITY: usize = (CALL_BLOCK_SIZE - CALL_DATA_OFFSET) as usize;

/// A request the guest made, already checked against the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCall {
    /// Write `data[offset..offset + len]` to fd 1 or 2 (other fds are passed on; the
    /// server decides).
    Write { fd: u32, offset: usize, len: usize },
    /// Read up to `max` bytes into the data area; reply `val[0]` = where they are.
    Read { fd: u32, max: usize },
    /// Clock `id` (a Linux clockid): reply `val[0]` seconds, `val[1]` nanoseconds.
    Clock { id: u32 },
    /// A file-system operation (`abi::fs`) with its 8 request words, read from the
    /// start of the data area; paths and data they name are in `data`, unchecked
    /// (the [`FileServer`](crate::FileServer) checks each range).
    File { op: u64, words: [u64; 8] },
    /// A socket operation (`abi::sock`), framed as `File`; served by a
    /// [`SocketServer`](crate::SocketServer).
    Socket { op: u64, words: [u64; 8] },
}

/// What goes back into the block: `ret` and `val`, unchecked by the VMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawReply {
    pub ret: i64,
    pub val: [u64; 3],
}

/// Serves host calls. The default is [`StdioServer`].
pub trait HostCallServer {
    fn serve(&mut self, call: &HostCall, data: &mut [u8]) -> RawReply;
    /// A log line from the shim (e.g. an unsupported syscall).
    fn log(&mut self, _line: &str) {}
}

/// A parsed request.
pub(crate) enum Request {
    Call(HostCall),
    Log(String),
    /// Exit code, peak guest bytes, frames refused when memory was used up.
    Exit(i32, u64, u64),
    Fault {
        vector: u64,
        error_code: u64,
        rip: u64,
        cr2: u64,
    },
    Abort(String),
    /// Sleep this many nanoseconds (served by the VMM's run loop, which checks the
    /// limits while it sleeps).
    Sleep(u64),
}

fn arg(block: &[u8], i: usize) -> u64 {
    let o = 8 + 8 * i;
    u64::from_le_bytes(block[o..o + 8].try_into().unwrap_or([0; 8]))
}

fn data_range(offset: u64, len: u64) -> Result<(usize, usize), Error> {
    let (o, l) = (usize::try_from(offset), usize::try_from(len));
    match (o, l) {
        (Ok(o), Ok(l)) if o.checked_add(l).is_some_and(|end| end <= DATA_CAPACITY) => Ok((o, l)),
        _ => Err(Error::Protocol(format!(
            "data range {offset:#x}+{len:#x} outside the call block"
        ))),
    }
}

fn text(block: &[u8], offset: u64, len: u64) -> Result<String, Error> {
    let (o, l) = data_range(offset, len)?;
    let start = CALL_DATA_OFFSET as usize + o;
    Ok(String::from_utf8_lossy(&block[start..start + l]).into_owned())
}

/// Parses the request in `block` (the whole call block).
pub(crate) fn parse(block: &[u8]) -> Result<Request, Error> {
    if block.len() != CALL_BLOCK_SIZE as usize {
        return Err(Error::Protocol("call block has the wrong size".into()));
    }
    let nr = u32::from_le_bytes(block[0..4].try_into().unwrap_or([0; 4]));
    let a = |i| arg(block, i);
    let fd = |v: u64| u32::try_from(v).map_err(|_| Error::Protocol(format!("fd {v} out of range")));
    Ok(match nr {
        call::WRITE => {
            let (offset, len) = data_range(a(1), a(2))?;
            Request::Call(HostCall::Write {
                fd: fd(a(0))?,
                offset,
                len,
            })
        }
        call::READ => {
            let (_, max) = data_range(a(1), a(2))?;
            Request::Call(HostCall::Read { fd: fd(a(0))?, max })
        }
        call::CLOCK => Request::Call(HostCall::Clock { id: fd(a(0))? }),
        call::FILE | call::SOCKET => {
            let (_, len) = data_range(0, a(1))?;
            if len < 64 {
                return Err(Error::Protocol(
                    "file request shorter than its words".into(),
                ));
            }
            let start = CALL_DATA_OFFSET as usize;
            let mut words = [0u64; 8];
            for (i, w) in words.iter_mut().enumerate() {
                let o = start + 8 * i;
                *w = u64::from_le_bytes(block[o..o + 8].try_into().unwrap_or([0; 8]));
            }
            if nr == call::SOCKET {
                Request::Call(HostCall::Socket { op: a(0), words })
            } else {
                Request::Call(HostCall::File { op: a(0), words })
            }
        }
        call::LOG => Request::Log(text(block, a(0), a(1))?),
        call::EXIT => Request::Exit(a(0) as u32 as i32, a(1), a(2)),
        call::FAULT => Request::Fault {
            vector: a(0),
            error_code: a(1),
            rip: a(2),
            cr2: a(3),
        },
        call::ABORT => Request::Abort(text(block, a(0), a(1))?),
        call::SLEEP => Request::Sleep(a(0)),
        other => return Err(Error::Protocol(format!("unknown host call {other}"))),
    })
}

/// Output the shim staged and had not sent when the Keep stopped (see
/// `abi::PENDING_OFFSET`): a WRITE to serve, if the record is sane.
pub(crate) fn pending_output(block: &[u8]) -> Option<HostCall> {
    let o = crate::abi::PENDING_OFFSET as usize;
    let fd = u32::from_le_bytes(block.get(o..o + 4)?.try_into().ok()?);
    let len = u32::from_le_bytes(block.get(o + 4..o + 8)?.try_into().ok()?) as usize;
    ((fd == 1 || fd == 2) && len > 0 && len <= DATA_CAPACITY).then_some(HostCall::Write {
        fd,
        offset: 0,
        len,
    })
}

/// Writes a reply into the block's header.
pub(crate) fn write_reply(block: &mut [u8], reply: RawReply) {
    block[40..48].copy_from_slice(&reply.ret.to_le_bytes());
    for (i, v) in reply.val.iter().enumerate() {
        block[48 + 8 * i..56 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
}

/// Serves stdio and time honestly: writes go to this process's stdout/stderr or are
/// captured, reads come from a given reader, time from the host's clocks.
pub struct StdioServer {
    capture: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    stdin: Box<dyn Read + Send>,
    /// Log lines from the shim, at most [`MAX_LOG_BYTES`](crate::MAX_LOG_BYTES)
    /// (then one line saying how much was dropped).
    pub log: Vec<String>,
    log_cap: LogCap,
    start: std::time::Instant,
    /// Preopened directories (none: FILE calls get ENOSYS).
    pub files: Option<FileServer>,
    /// Preopened sockets (none: SOCKET calls get ENOSYS).
    pub sockets: Option<SocketServer>,
}

impl StdioServer {
    /// Writes to this process's stdout and stderr, reads from its stdin.
    pub fn inherit() -> Self {
        Self::new(false, Box::new(std::io::stdin()))
    }

    /// Captures stdout and stderr; stdin is `input`.
    pub fn capture(input: Vec<u8>) -> Self {
        Self::new(true, Box::new(std::io::Cursor::new(input)))
    }

    fn new(capture: bool, stdin: Box<dyn Read + Send>) -> Self {
        Self {
            capture,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdin,
            log: Vec::new(),
            log_cap: LogCap::default(),
            start: std::time::Instant::now(),
            files: None,
            sockets: None,
        }
    }
}

const EBADF: i64 = 9;
const EIO: i64 = 5;
const EINVAL: i64 = 22;

impl HostCallServer for StdioServer {
    fn serve(&mut self, call: &HostCall, data: &mut [u8]) -> RawReply {
        match *call {
            HostCall::Write { fd, offset, len } => {
                let bytes = &data[offset..offset + len];
                let ret = match (fd, self.capture) {
                    (1, true) => {
                        self.stdout.extend_from_slice(bytes);
                        Ok(())
                    }
                    (2, true) => {
                        self.stderr.extend_from_slice(bytes);
                        Ok(())
                    }
                    (1, false) => std::io::stdout()
                        .lock()
                        .write_all(bytes)
                        .and_then(|()| std::io::stdout().flush()),
                    (2, false) => std::io::stderr().lock().write_all(bytes),
                    _ => {
                        return RawReply {
                            ret: -EBADF,
                            val: [0; 3],
                        };
                    }
                };
                RawReply {
                    ret: if ret.is_ok() { len as i64 } else { -EIO },
                    val: [0; 3],
                }
            }
            HostCall::Read { fd, max } => {
                if fd != 0 {
                    return RawReply {
                        ret: -EBADF,
                        val: [0; 3],
                    };
                }
                match self.stdin.read(&mut data[..max]) {
                    Ok(n) => RawReply {
                        ret: n as i64,
                        val: [0; 3],
                    },
                    Err(_) => RawReply {
                        ret: -EIO,
                        val: [0; 3],
                    },
                }
            }
            HostCall::Clock { id } => clock_reply(id, self.start),
            HostCall::File { op, ref words } => file_reply(self.files.as_mut(), op, words, data),
            HostCall::Socket { op, ref words } => {
                socket_reply(self.sockets.as_mut(), op, words, data)
            }
        }
    }

    fn log(&mut self, line: &str) {
        self.log_cap.push(&mut self.log, line, !self.capture);
    }
}

const ENOSYS: i64 = 38;

fn file_reply(
    files: Option<&mut FileServer>,
    op: u64,
    words: &[u64; 8],
    data: &mut [u8],
) -> RawReply {
    match files {
        Some(f) => f.serve(op, words, data),
        None => RawReply {
            ret: -ENOSYS,
            val: [0; 3],
        },
    }
}

/// A SOCKET call: served when the Keep has preopened sockets, else ENOSYS.
fn socket_reply(
    sockets: Option<&mut crate::SocketServer>,
    op: u64,
    words: &[u64; 8],
    data: &mut [u8],
) -> RawReply {
    match sockets {
        Some(s) => s.serve(op, words, data),
        None => RawReply {
            ret: -ENOSYS,
            val: [0; 3],
        },
    }
}

/// The host's clocks for CLOCK: realtime-like ids from the system clock, the
/// others from `start` (the Keep's own monotonic time).
fn clock_reply(id: u32, start: std::time::Instant) -> RawReply {
    let t = match id {
        0 | 5 | 8 | 11 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
        1 | 4 | 6 | 7 | 2 | 3 => start.elapsed(),
        _ => {
            return RawReply {
                ret: -EINVAL,
                val: [0; 3],
            };
        }
    };
    RawReply {
        ret: 0,
        val: [t.as_secs(), u64::from(t.subsec_nanos()), 0],
    }
}

/// A stream the launch channel is relayed to (a `UnixStream`, say).
pub trait ChannelStream: Read + Write + Send {}
impl<T: Read + Write + Send> ChannelStream for T {}

/// Relays the Keep's streams to the host's: stdin (fd 0) from a reader, stdout and
/// stderr (fds 1, 2) to writers, and the launch channel (fd 3) to a stream, byte
/// for byte, so the host speaks the same keep-wire protocol to the exec in a Keep
/// as to an exec in a process. Time from the host's clocks.
pub struct RelayServer {
    stdin: Option<Box<dyn Read + Send>>,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
    channel: Option<Box<dyn ChannelStream>>,
    start: std::time::Instant,
    /// Log lines from the shim (kept, not printed, unless `echo_log`), at most
    /// [`MAX_LOG_BYTES`](crate::MAX_LOG_BYTES) (then one line saying how much was
    /// dropped).
    pub log: Vec<String>,
    log_cap: LogCap,
    pub echo_log: bool,
    /// Preopened directories (none: FILE calls get ENOSYS).
    pub files: Option<FileServer>,
    /// Preopened sockets (none: SOCKET calls get ENOSYS).
    pub sockets: Option<SocketServer>,
}

const EPIPE: i64 = 32;

impl RelayServer {
    /// stdin: None reads as empty.
    pub fn new(
        stdin: Option<Box<dyn Read + Send>>,
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
        channel: Option<Box<dyn ChannelStream>>,
    ) -> Self {
        Self {
            stdin,
            stdout,
            stderr,
            channel,
            start: std::time::Instant::now(),
            sockets: None,
            log: Vec::new(),
            log_cap: LogCap::default(),
            echo_log: false,
            files: None,
        }
    }
}

fn count(r: std::io::Result<usize>) -> RawReply {
    RawReply {
        ret: match r {
            Ok(n) => n as i64,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => -EPIPE,
            Err(_) => -EIO,
        },
        val: [0; 3],
    }
}

impl HostCallServer for RelayServer {
    fn serve(&mut self, call: &HostCall, data: &mut [u8]) -> RawReply {
        let bad = RawReply {
            ret: -EBADF,
            val: [0; 3],
        };
        match *call {
            HostCall::Write { fd, offset, len } => {
                let bytes = &data[offset..offset + len];
                let sink: &mut dyn Write = match fd {
                    1 => &mut self.stdout,
                    2 => &mut self.stderr,
                    3 => match self.channel.as_mut() {
                        Some(c) => c,
                        None => return bad,
                    },
                    _ => return bad,
                };
                let r = sink.write_all(bytes).and_then(
                    |()| {
                        if fd == 3 { sink.flush() } else { Ok(()) }
                    },
                );
                count(r.map(|()| len))
            }
            HostCall::Read { fd, max } => {
                let buf = &mut data[..max];
                let r = match fd {
                    0 => match self.stdin.as_mut() {
                        Some(s) => s.read(buf),
                        None => Ok(0),
                    },
                    3 => match self.channel.as_mut() {
                        Some(c) => c.read(buf),
                        None => return bad,
                    },
                    _ => return bad,
                };
                count(r)
            }
            HostCall::Clock { id } => clock_reply(id, self.start),
            HostCall::File { op, ref words } => file_reply(self.files.as_mut(), op, words, data),
            HostCall::Socket { op, ref words } => {
                socket_reply(self.sockets.as_mut(), op, words, data)
            }
        }
    }

    fn log(&mut self, line: &str) {
        self.log_cap.push(&mut self.log, line, self.echo_log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_with(nr: u32, args: [u64; 4]) -> Vec<u8> {
        let mut b = vec![0u8; CALL_BLOCK_SIZE as usize];
        b[0..4].copy_from_slice(&nr.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            b[8 + 8 * i..16 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        b
    }

    #[test]
    fn guest_ranges_outside_the_block_are_protocol_errors() {
        for args in [
            [1, 0, DATA_CAPACITY as u64 + 1, 0],
            [1, u64::MAX, 2, 0],
            [1, 10, u64::MAX, 0],
        ] {
            assert!(matches!(
                parse(&block_with(call::WRITE, args)),
                Err(Error::Protocol(_))
            ));
        }
        assert!(matches!(
            parse(&block_with(call::READ, [0, 0, 1 << 20, 0])),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            parse(&block_with(call::LOG, [DATA_CAPACITY as u64, 1, 0, 0])),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            parse(&block_with(99, [0; 4])),
            Err(Error::Protocol(_))
        ));
        // FILE: the request must hold its 8 words and fit in the data area.
        for len in [0, 63, DATA_CAPACITY as u64 + 1, u64::MAX] {
            assert!(matches!(
                parse(&block_with(call::FILE, [2, len, 0, 0])),
                Err(Error::Protocol(_))
            ));
        }
        assert!(matches!(
            parse(&block_with(call::FILE, [2, 64, 0, 0])),
            Ok(Request::Call(HostCall::File { op: 2, .. }))
        ));
        assert!(matches!(
            parse(&block_with(call::WRITE, [1 << 33, 0, 1, 0])),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn requests_parse() {
        assert!(matches!(
            parse(&block_with(call::WRITE, [1, 0, 5, 0])),
            Ok(Request::Call(HostCall::Write {
                fd: 1,
                offset: 0,
                len: 5
            }))
        ));
        assert!(matches!(
            parse(&block_with(call::EXIT, [3, 4096, 2, 0])),
            Ok(Request::Exit(3, 4096, 2))
        ));
    }
}
