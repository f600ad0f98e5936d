//! The launch protocol, the host's half: what a run asks for, the conversation
//! with the exec on the launch channel, and the ways a launch fails.
//!
//! The same on every backend: the exec greets (`Hello`), the host sends the
//! `Launch` spec and the `Workload`, the exec says `Started` once compiled and
//! ends with its `Exit` report. On KVM the VMM relays these bytes unchanged.

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keep_wire::{
    ExitReport, FrameKind, LaunchSpec, PROTOCOL_VERSION, Started, WireError, read_frame,
    write_frame, write_json,
};
use thiserror::Error;

use crate::host_dirs::HostDirError;

/// Limits the host enforces from outside the Keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostLimits {
    /// Kill the Keep after this much wall-clock time.
    pub wall: Option<Duration>,
    /// Kill the Keep once its stdout and stderr together exceed this many bytes.
    pub output_bytes: Option<u64>,
    /// The workload's memory (None: the default); the Keep's whole budget is this
    /// plus the runtime's share (see [`crate::MemoryBudget`]).
    pub memory_bytes: Option<u64>,
    /// CPU time: the Keep stops itself there (the exec, or the VMM on KVM); the
    /// host kills it a little later if it does not.
    pub cpu: Option<Duration>,
}

/// One run: what to launch and what it may use.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub spec: LaunchSpec,
    pub workload: Vec<u8>,
    pub limits: HostLimits,
}

/// Why a Keep could not be launched.
#[derive(Debug, Error)]
pub enum LaunchError {
    #[error("cannot prepare the exec: {0}")]
    ExecImage(#[source] io::Error),
    #[error(transparent)]
    HostDir(#[from] HostDirError),
    #[error("cannot start the Keep's process: {0}")]
    Spawn(#[source] io::Error),
    #[error("cannot set up the launch channel: {0}")]
    Channel(#[source] io::Error),
    #[error("the Keep did not greet: {0}")]
    Greeting(#[source] WireError),
    #[error("the exec spoke launch protocol {0}, this host speaks {PROTOCOL_VERSION}")]
    Protocol(u32),
    #[error("the kvm backend needs /dev/kvm, which cannot be opened here")]
    NoKvm,
    /// What was asked cannot be given here (a directory, a socket, a size).
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Vmm(#[from] VmmError),
    /// The jail could not be built (with `jail = "required"`, or set up wrong).
    #[error("cannot jail the Keep: {0}")]
    Jail(String),
    #[error("cannot measure the KVM Keep: {0}")]
    Measure(#[from] keep_vmm::Error),
}

/// Why the VMM process of a KVM Keep did not launch it.
#[derive(Debug, Error)]
pub enum VmmError {
    #[error("cannot send the VMM its plan: {0}")]
    Plan(#[source] io::Error),
    #[error("the VMM process ended before it launched the Keep")]
    NoAnswer,
    #[error("cannot start the KVM Keep: {0}")]
    Launch(String),
}

/// The conversation broke off.
pub(crate) enum ConverseError {
    /// The exec speaks another launch protocol version.
    Protocol(u32),
    Wire(WireError),
}

#[derive(serde::Deserialize)]
struct Hello {
    protocol: u32,
}

/// Reads the exec's greeting and checks its protocol version.
pub(crate) fn greeting(channel: &mut UnixStream) -> Result<(), ConverseError> {
    let hello: Hello = read_frame(channel, keep_wire::MAX_CONTROL_FRAME)
        .and_then(|f| f.expect_json(FrameKind::Hello))
        .map_err(ConverseError::Wire)?;
    if hello.protocol != PROTOCOL_VERSION {
        return Err(ConverseError::Protocol(hello.protocol));
    }
    Ok(())
}

/// What the host learnt from the exec before its report (kept when there is none).
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) warnings: Vec<String>,
    /// The exec said it had compiled the workload and was starting it (shared
    /// with the memory watch, which says where memory ran out).
    pub(crate) started: Arc<AtomicBool>,
}

impl Seen {
    pub(crate) fn has_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }
}

/// The host's half of the launch protocol, from the greeting to the report.
pub(crate) fn converse(
    channel: &mut UnixStream,
    spec: &LaunchSpec,
    workload: &[u8],
    seen: &mut Seen,
) -> Result<ExitReport, ConverseError> {
    greeting(channel)?;
    write_json(channel, FrameKind::Launch, spec).map_err(ConverseError::Wire)?;
    write_frame(channel, FrameKind::Workload, workload).map_err(ConverseError::Wire)?;
    loop {
        let frame =
            read_frame(channel, keep_wire::MAX_CONTROL_FRAME).map_err(ConverseError::Wire)?;
        match frame.kind {
            FrameKind::Started => {
                let started: Started = frame
                    .expect_json(FrameKind::Started)
                    .map_err(ConverseError::Wire)?;
                seen.started.store(true, Ordering::Release);
                // Bounded: at most a few short lines are kept from the exec.
                seen.warnings.extend(
                    started
                        .warnings
                        .into_iter()
                        .take(8)
                        .map(|w| w.chars().take(300).collect()),
                );
            }
            _ => {
                return frame
                    .expect_json(FrameKind::Exit)
                    .map_err(ConverseError::Wire);
            }
        }
    }
}
