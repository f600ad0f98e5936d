//! Frame encoding: `kind: u32 LE`, `len: u32 LE`, `len` bytes.

use std::io::{self, Read, Write};

use thiserror::Error;

use crate::{MAX_CONTROL_FRAME, MAX_SEALED_FRAME, MAX_WORKLOAD_FRAME};

/// The kinds of frame on the launch channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum FrameKind {
    /// exec -> host: protocol version and exec identity.
    Hello = 1,
    /// host -> exec: the launch specification.
    Launch = 2,
    /// host -> exec: the workload bytes.
    Workload = 3,
    /// exec -> host: the workload compiled and is starting.
    Started = 4,
    /// exec -> host: how the workload ended.
    Exit = 5,
    /// host -> exec: start an attested launch: the tenant's nonce and the host's
    /// limits ([`crate::Challenge`], JSON).
    Challenge = 6,
    /// exec -> host: evidence bound to the nonce and the Keep's public key
    /// ([`crate::Evidence`], JSON).
    Evidence = 7,
    /// host -> exec: the tenant's payload sealed to the Keep's key (opaque bytes).
    Sealed = 8,
    /// exec -> host: one record sealed for the tenant (opaque bytes): receipt,
    /// stdout/stderr chunk, exit report.
    Record = 9,
    /// agent -> tenant only (the agent's HTTP output stream, never the launch
    /// channel): nothing to relay yet, the Keep still runs. Empty payload.
    Keepalive = 10,
    /// tenant -> agent -> exec: one input record sealed by the tenant for the Keep
    /// (the workload's stdin; opaque bytes).
    Input = 11,
}

impl FrameKind {
    fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Hello,
            2 => Self::Launch,
            3 => Self::Workload,
            4 => Self::Started,
            5 => Self::Exit,
            6 => Self::Challenge,
            7 => Self::Evidence,
            8 => Self::Sealed,
            9 => Self::Record,
            10 => Self::Keepalive,
            11 => Self::Input,
            _ => return None,
        })
    }

    /// The largest payload accepted for this kind.
    pub fn max_len(self) -> u32 {
        match self {
            Self::Workload => MAX_WORKLOAD_FRAME,
            Self::Sealed => MAX_SEALED_FRAME,
            _ => MAX_CONTROL_FRAME,
        }
    }
}

/// One frame read from the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub payload: Vec<u8>,
}

/// Everything that can go wrong on the channel.
#[derive(Debug, Error)]
pub enum WireError {
    #[error("launch channel I/O: {0}")]
    Io(#[from] io::Error),
    #[error("launch channel closed by the peer")]
    Closed,
    #[error("launch channel: unknown frame kind {0}")]
    UnknownKind(u32),
    #[error("launch channel: {kind:?} frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { kind: FrameKind, len: u32, max: u32 },
    #[error("launch channel: expected a {expected:?} frame, got {got:?}")]
    Unexpected { expected: FrameKind, got: FrameKind },
    #[error("launch channel: malformed {kind:?} payload: {reason}")]
    Malformed { kind: FrameKind, reason: String },
}

/// Splits a byte stream that arrives in arbitrary pieces (an HTTP body) into whole
/// frames of one expected kind, trusting none of it: each header's kind and length
/// are checked before the frame's bytes are waited for, so at most one frame (within
/// its kind's limit) and the piece that completed it are ever buffered.
#[derive(Debug)]
pub struct FrameSplitter {
    kind: FrameKind,
    buf: Vec<u8>,
    /// Where the next frame starts in `buf` (bytes before it were handed out).
    start: usize,
}

impl FrameSplitter {
    pub fn new(kind: FrameKind) -> Self {
        FrameSplitter {
            kind,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Adds the next piece of the stream.
    pub fn push(&mut self, piece: &[u8]) {
        // Drop what was handed out before growing (linear in what is kept).
        self.buf.drain(..self.start);
        self.start = 0;
        self.buf.extend_from_slice(piece);
    }

    /// Whether nothing is buffered (the stream may end here).
    pub fn is_empty(&self) -> bool {
        self.start == self.buf.len()
    }

    /// The next whole frame, header included, or `None` until more arrives.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 8 {
            return Ok(None);
        }
        let word =
            |at: usize| u32::from_le_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
        let (raw_kind, len) = (word(0), word(4));
        let kind = FrameKind::from_u32(raw_kind).ok_or(WireError::UnknownKind(raw_kind))?;
        if kind != self.kind {
            return Err(WireError::Unexpected {
                expected: self.kind,
                got: kind,
            });
        }
        if len > kind.max_len() {
            return Err(WireError::TooLarge {
                kind,
                len,
                max: kind.max_len(),
            });
        }
        let total = 8 + len as usize;
        if rest.len() < total {
            return Ok(None);
        }
        let frame = rest[..total].to_vec();
        self.start += total;
        Ok(Some(frame))
    }
}

/// Writes one frame. Refuses payloads larger than the kind allows.
pub fn write_frame(w: &mut impl Write, kind: FrameKind, payload: &[u8]) -> Result<(), WireError> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    if len > kind.max_len() {
        return Err(WireError::TooLarge {
            kind,
            len,
            max: kind.max_len(),
        });
    }
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&(kind as u32).to_le_bytes());
    header[4..].copy_from_slice(&len.to_le_bytes());
    w.write_all(&header)?;
    w.write_all(payload)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame. `limit` further bounds the payload (e.g. the host's workload cap).
/// Returns `WireError::Closed` on a clean end of stream before a header.
pub fn read_frame(r: &mut impl Read, limit: u32) -> Result<Frame, WireError> {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Err(WireError::Closed),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let raw_kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let kind = FrameKind::from_u32(raw_kind).ok_or(WireError::UnknownKind(raw_kind))?;
    let max = kind.max_len().min(limit);
    if len > max {
        return Err(WireError::TooLarge { kind, len, max });
    }
    let mut payload = Vec::new();
    // `len` is bounded above, so this reservation is bounded too.
    payload
        .try_reserve_exact(len as usize)
        .map_err(|e| WireError::Malformed {
            kind,
            reason: format!("cannot allocate {len} bytes: {e}"),
        })?;
    r.take(u64::from(len)).read_to_end(&mut payload)?;
    if payload.len() != len as usize {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Frame { kind, payload })
}

impl Frame {
    /// Checks the kind, returning the payload.
    pub fn expect(self, expected: FrameKind) -> Result<Vec<u8>, WireError> {
        if self.kind == expected {
            Ok(self.payload)
        } else {
            Err(WireError::Unexpected {
                expected,
                got: self.kind,
            })
        }
    }

    /// Checks the kind and parses the JSON payload.
    pub fn expect_json<T: serde::de::DeserializeOwned>(
        self,
        expected: FrameKind,
    ) -> Result<T, WireError> {
        let payload = self.expect(expected)?;
        serde_json::from_slice(&payload).map_err(|e| WireError::Malformed {
            kind: expected,
            reason: e.to_string(),
        })
    }
}

/// Writes a JSON-encoded structured frame.
pub fn write_json<T: serde::Serialize>(
    w: &mut impl Write,
    kind: FrameKind,
    value: &T,
) -> Result<(), WireError> {
    let payload = serde_json::to_vec(value).map_err(|e| WireError::Malformed {
        kind,
        reason: e.to_string(),
    })?;
    write_frame(w, kind, &payload)
}

#[cfg(test)]
mod splitter_tests {
    use super::*;

    fn frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
        let mut w = Vec::new();
        write_frame(&mut w, kind, payload).unwrap();
        w
    }

    #[test]
    fn frames_split_across_and_within_pieces() {
        let mut stream = frame(FrameKind::Input, b"one");
        stream.extend(frame(FrameKind::Input, b""));
        stream.extend(frame(FrameKind::Input, &[7u8; 300]));
        // Every way of cutting the stream in pieces of one size gives the same frames.
        for size in [1, 2, 7, 8, 9, 64, stream.len()] {
            let mut s = FrameSplitter::new(FrameKind::Input);
            let mut out = Vec::new();
            for piece in stream.chunks(size) {
                s.push(piece);
                while let Some(f) = s.next_frame().unwrap() {
                    out.push(f);
                }
            }
            assert!(s.is_empty());
            assert_eq!(out.concat(), stream, "pieces of {size}");
            assert_eq!(out.len(), 3);
        }
    }

    #[test]
    fn wrong_kinds_and_oversized_lengths_are_refused_from_the_header() {
        let mut s = FrameSplitter::new(FrameKind::Input);
        s.push(&frame(FrameKind::Exit, b"{}"));
        assert!(matches!(s.next_frame(), Err(WireError::Unexpected { .. })));
        let mut s = FrameSplitter::new(FrameKind::Input);
        s.push(&[99, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(s.next_frame(), Err(WireError::UnknownKind(99))));
        // Refused before any of the announced 4 GiB arrives.
        let mut s = FrameSplitter::new(FrameKind::Input);
        s.push(&[11, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(s.next_frame(), Err(WireError::TooLarge { .. })));
        // A partial header, then a partial frame, are "not yet".
        let mut s = FrameSplitter::new(FrameKind::Input);
        s.push(&[11, 0, 0]);
        assert!(s.next_frame().unwrap().is_none() && !s.is_empty());
        s.push(&[0, 4, 0, 0, 0, 1]);
        assert!(s.next_frame().unwrap().is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, FrameKind::Workload, b"\0asm").unwrap();
        let f = read_frame(&mut &buf[..], u32::MAX).unwrap();
        assert_eq!(f.kind, FrameKind::Workload);
        assert_eq!(f.payload, b"\0asm");
    }

    #[test]
    fn oversize_header_is_refused_before_allocation() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&(FrameKind::Launch as u32).to_le_bytes());
        buf.extend_from_slice(&u32::MAX.to_le_bytes());
        match read_frame(&mut &buf[..], u32::MAX) {
            Err(WireError::TooLarge { len, .. }) => assert_eq!(len, u32::MAX),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn host_limit_applies_to_workload() {
        let mut buf = Vec::new();
        write_frame(&mut buf, FrameKind::Workload, &[0u8; 100]).unwrap();
        assert!(matches!(
            read_frame(&mut &buf[..], 99),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn unknown_kind_truncation_and_eof() {
        assert!(matches!(
            read_frame(&mut &[][..], 10),
            Err(WireError::Closed)
        ));
        let bad = [99u8, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            read_frame(&mut &bad[..], 10),
            Err(WireError::UnknownKind(99))
        ));
        let short = [3u8, 0, 0, 0, 5, 0, 0, 0, 1, 2];
        assert!(matches!(
            read_frame(&mut &short[..], 10),
            Err(WireError::Io(_))
        ));
        let half_header = [3u8, 0, 0];
        assert!(matches!(
            read_frame(&mut &half_header[..], 10),
            Err(WireError::Io(_))
        ));
    }

    #[test]
    fn wrong_kind_and_bad_json_are_errors() {
        let f = Frame {
            kind: FrameKind::Hello,
            payload: b"{".to_vec(),
        };
        assert!(matches!(
            f.clone().expect(FrameKind::Exit),
            Err(WireError::Unexpected { .. })
        ));
        assert!(matches!(
            f.expect_json::<serde_json::Value>(FrameKind::Hello),
            Err(WireError::Malformed { .. })
        ));
    }
}
