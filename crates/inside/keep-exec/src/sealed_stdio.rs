//! The workload's sealed stdio inside a KVM Keep.
//!
//! On the process backend an attested launch captures output through pipes drained
//! by pump threads and feeds stdin from a watcher thread. A KVM Keep has one thread
//! (and no pipes), so there the WASI streams do it in place: each write is sealed
//! into records and sent on the launch channel before it returns, and a read of
//! stdin reads the next `Input` frame from the channel and opens it. The tenant sees
//! the same records either way.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use keep_seal::{Input, InputReader, RecordKind};
use keep_wire::{FrameKind, read_frame};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

use crate::attested::{CHUNK, Sender, send};
use crate::channel::Channel;

/// The streams installed for the WASI context (taken once).
pub struct SealedStdio {
    pub stdout: SealedOutput,
    pub stderr: SealedOutput,
    pub stdin: SealedInput,
}

static STREAMS: Mutex<Option<SealedStdio>> = Mutex::new(None);

/// Installs sealed stdio for the next WASI context.
pub fn install(writer: &Arc<Mutex<Sender>>, channel: Channel, input: InputReader) {
    let streams = SealedStdio {
        stdout: SealedOutput {
            writer: writer.clone(),
            kind: RecordKind::Stdout,
        },
        stderr: SealedOutput {
            writer: writer.clone(),
            kind: RecordKind::Stderr,
        },
        stdin: SealedInput(Arc::new(Mutex::new(InputState {
            channel,
            input,
            writer: writer.clone(),
            pending: Vec::new(),
            pos: 0,
            ended: false,
        }))),
    };
    if let Ok(mut s) = STREAMS.lock() {
        *s = Some(streams);
    }
}

/// The installed streams, if this is an attested launch in a KVM Keep.
pub fn take() -> Option<SealedStdio> {
    STREAMS.lock().ok().and_then(|mut s| s.take())
}

/// stdout or stderr: every write is sealed and sent before it returns.
#[derive(Clone)]
pub struct SealedOutput {
    writer: Arc<Mutex<Sender>>,
    kind: RecordKind,
}

impl SealedOutput {
    fn put(&self, buf: &[u8]) -> io::Result<()> {
        for chunk in buf.chunks(CHUNK) {
            if !send(&self.writer, self.kind, chunk) {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the launch channel is closed",
                ));
            }
        }
        Ok(())
    }
}

impl IsTerminal for SealedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SealedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for SealedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for SealedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.put(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(wasmtime::format_err!(e)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}

impl AsyncWrite for SealedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.put(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// stdin: the tenant's input records, read from the channel and opened in order
/// when the workload reads (the host blocks the Keep until a frame arrives).
#[derive(Clone)]
pub struct SealedInput(Arc<Mutex<InputState>>);

struct InputState {
    channel: Channel,
    input: InputReader,
    writer: Arc<Mutex<Sender>>,
    pending: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl InputState {
    /// Up to `max` bytes of input; empty at the end of input.
    fn read(&mut self, max: usize) -> Vec<u8> {
        loop {
            if self.pos < self.pending.len() {
                let end = self.pending.len().min(self.pos.saturating_add(max.max(1)));
                let out = self.pending[self.pos..end].to_vec();
                self.pos = end;
                return out;
            }
            if self.ended {
                return Vec::new();
            }
            // Anything but input from the host, or the host going away, ends the
            // Keep (as the process backend's watcher does).
            let frame = match read_frame(&mut self.channel, keep_wire::MAX_CONTROL_FRAME) {
                Ok(f) if f.kind == FrameKind::Input => f,
                _ => crate::host_gone(),
            };
            match self.input.open(&frame.payload) {
                Ok(Input::Data(d)) => {
                    self.pending = d;
                    self.pos = 0;
                }
                Ok(Input::End) => self.ended = true,
                Err(e) => {
                    let message = format!("the Keep refused the tenant's input: {e}");
                    let json = serde_json::json!({ "message": message }).to_string();
                    send(&self.writer, RecordKind::Refused, json.as_bytes());
                    crate::host_gone();
                }
            }
        }
    }
}

impl SealedInput {
    fn read(&self, max: usize) -> Vec<u8> {
        match self.0.lock() {
            Ok(mut s) => s.read(max),
            Err(_) => Vec::new(),
        }
    }
}

impl IsTerminal for SealedInput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for SealedInput {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for SealedInput {
    async fn ready(&mut self) {}
}

impl InputStream for SealedInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        let data = SealedInput::read(self, size.min(CHUNK));
        if data.is_empty() {
            return Err(StreamError::Closed);
        }
        Ok(Bytes::from(data))
    }
}

impl AsyncRead for SealedInput {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let data = SealedInput::read(&self, buf.remaining());
        buf.put_slice(&data[..data.len().min(buf.remaining())]);
        Poll::Ready(Ok(()))
    }
}
