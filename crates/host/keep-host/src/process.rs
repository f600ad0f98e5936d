//! The process backend: the exec runs as a child process of the host.
//!
//! It isolates nothing from the host, but it runs the very same exec binary and
//! speaks the same launch channel as the KVM Keep, and the host enforces its limits
//! from outside: wall-clock time (kill), output (it relays and counts every byte),
//! memory (RLIMIT_DATA as a backstop to the exec's own cap). The exec runs from a
//! sealed in-memory copy (`exec_image`), is spawned, signalled and reaped as
//! `spawn` says, and inherits only fds 0-3 (it closes any other at start).

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use keep_wire::{
    CHANNEL_FD, ExitReport, FrameKind, LaunchSpec, Limit, Outcome, PROTOCOL_VERSION, Started,
    StdioTarget, WireError, read_frame, write_frame, write_json,
};
use thiserror::Error;

use crate::exec_image::ExecImage;
use crate::host_dirs::HostDirError;
use crate::memory::{MemoryBudget, Phase};
use crate::result::{HostStats, RunResult};
use crate::spawn::{Exec, ExecHandle};

/// Limits the host enforces from outside the Keep.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostLimits {
    /// Kill the Keep after this much wall-clock time.
    pub wall: Option<Duration>,
    /// Kill the Keep once its stdout and stderr together exceed this many bytes.
    pub output_bytes: Option<u64>,
    /// Backstop for the exec's own memory cap (RLIMIT_DATA = cap + runtime slack).
    pub memory_bytes: Option<u64>,
}

/// RLIMIT_DATA above the Keep's memory budget (see [`MemoryBudget`]): a backstop
/// the host's memory watch stops the Keep well before (RLIMIT_DATA also counts
/// writable memory never touched).
pub(crate) const RUNTIME_MEMORY_SLACK: u64 = 1 << 30;

/// One run: what to launch and what it may use.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub spec: LaunchSpec,
    pub workload: Vec<u8>,
    pub limits: HostLimits,
}

/// Why a Keep could not be launched or lost.
#[derive(Debug, Error)]
pub enum LaunchError {
    #[error("cannot prepare the exec: {0}")]
    ExecImage(io::Error),
    #[error("{0}")]
    HostDir(#[from] HostDirError),
    #[error("cannot start the exec: {0}")]
    Spawn(io::Error),
    #[error("cannot set up the launch channel: {0}")]
    Channel(String),
    #[error("the exec spoke launch protocol {0}, this host speaks {PROTOCOL_VERSION}")]
    Protocol(u32),
    #[error("the kvm backend needs /dev/kvm, which cannot be opened here")]
    NoKvm,
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot start the KVM Keep: {0}")]
    Vmm(String),
}

/// Launches Keeps as child processes.
#[derive(Debug, Clone)]
pub struct ProcessBackend {
    pub(crate) exec: ExecImage,
}

impl ProcessBackend {
    /// For a long-lived host (the agent): checks its directory `dir` (`data_dir`:
    /// created 0700 if missing, refused if another user can write it, see
    /// `host_dirs`), then as [`Self::embedded`].
    pub fn new(dir: &std::path::Path) -> Result<Self, LaunchError> {
        crate::host_dirs::ensure_private_dir(dir)?;
        Self::embedded()
    }

    /// Runs the embedded exec from a sealed memfd (nothing on disk; ~20 ms to
    /// prepare, once), and removes secrets directories that execs of a killed host
    /// left behind.
    pub fn embedded() -> Result<Self, LaunchError> {
        let exec = ExecImage::sealed().map_err(LaunchError::ExecImage)?;
        crate::secrets::remove_stale();
        Ok(Self { exec })
    }

    /// For one run (`keep run`): the exec from a checked file in the private cache
    /// directory `dir` (see [`ExecImage::cached`]).
    pub fn cached(dir: &std::path::Path) -> Result<Self, LaunchError> {
        crate::host_dirs::ensure_private_dir(dir)?;
        let exec = ExecImage::cached(dir).map_err(LaunchError::ExecImage)?;
        Ok(Self { exec })
    }

    /// Runs one workload to its end. Its stdout and stderr go to the given files:
    /// relayed and counted by the host when an output cap is set, handed to the
    /// Keep directly otherwise (nothing to enforce, and no extra copy).
    pub fn run(
        &self,
        request: RunRequest,
        stdout: std::fs::File,
        stderr: std::fs::File,
    ) -> Result<RunResult, LaunchError> {
        let started = Instant::now();
        let mut request = request;
        // The workload's share of memory, the default when none is given: the
        // exec's limiter holds it there.
        let budget = MemoryBudget::new(
            request.spec.limits.memory_bytes,
            request.workload.len() as u64,
        );
        request.spec.limits.memory_bytes = Some(budget.workload);
        let (mut channel, exec_end) =
            UnixStream::pair().map_err(|e| LaunchError::Channel(e.to_string()))?;
        let counted = request.limits.output_bytes.is_some();
        let (stdout, stderr, out_sinks) = if counted {
            (Stdio::piped(), Stdio::piped(), Some((stdout, stderr)))
        } else {
            (Stdio::from(stdout), Stdio::from(stderr), None)
        };
        let mut exec = self.spawn(&request.spec, exec_end, stdout, stderr)?;
        let killer = Arc::new(Killer::new(&exec));
        killer.limit_data(budget.total().saturating_add(RUNTIME_MEMORY_SLACK));
        let mut seen = Seen::default();
        let memory_watch = MemoryWatch::start(budget, killer.clone(), seen.started.clone());

        let output = Arc::new(AtomicU64::new(0));
        let cap = request.limits.output_bytes;
        let relays = match out_sinks {
            Some((out, err)) => [
                exec.child
                    .stdout
                    .take()
                    .map(|s| relay(s.into(), out, &output, &killer, cap)),
                exec.child
                    .stderr
                    .take()
                    .map(|s| relay(s.into(), err, &output, &killer, cap)),
            ],
            None => [None, None],
        };
        let watchdog = request
            .limits
            .wall
            .map(|wall| Watchdog::start(wall, killer.clone()));

        let report = converse(&mut channel, &request, &mut seen);
        // Stopped before the reap: the watch reads the exec by its pid.
        memory_watch.stop();
        let status = exec.reap().map_err(LaunchError::Spawn)?;
        if let Some(w) = watchdog {
            w.stop();
        }
        for r in relays.into_iter().flatten() {
            let _ = r.join();
        }
        let host = HostStats {
            wall_time: started.elapsed(),
            output_bytes: counted.then(|| output.load(Ordering::Relaxed)),
            ..children_usage()
        };

        let outcome = match (killer.reason(), &report) {
            (Some((limit, detail)), _) => Outcome::LimitExceeded { limit, detail },
            (None, Ok(r)) => r.outcome.clone(),
            (None, Err(ConverseError::Protocol(v))) => return Err(LaunchError::Protocol(*v)),
            (None, Err(ConverseError::Wire(e))) => Outcome::Failed {
                message: format!("the exec ended without a report ({status}): {e}"),
            },
        };
        Ok(RunResult {
            outcome,
            report: report.ok(),
            host,
            warnings: seen.warnings,
        })
    }

    fn spawn(
        &self,
        spec: &LaunchSpec,
        exec_end: UnixStream,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<Exec, LaunchError> {
        let mut cmd = Command::new(&self.exec.path);
        cmd.env_clear()
            .stdin(match spec.stdio[0] {
                StdioTarget::Inherit => Stdio::inherit(),
                StdioTarget::Null => Stdio::null(),
            })
            .stdout(stdout)
            .stderr(stderr);
        cmd.fd_mappings(vec![FdMapping {
            parent_fd: OwnedFd::from(exec_end),
            child_fd: CHANNEL_FD,
        }])
        .map_err(|e| LaunchError::Channel(e.to_string()))?;
        crate::spawn::spawn(cmd).map_err(LaunchError::Spawn)
    }
}

pub(crate) enum ConverseError {
    /// The exec speaks another launch protocol version.
    Protocol(u32),
    Wire(WireError),
}

#[derive(serde::Deserialize)]
struct Hello {
    protocol: u32,
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

/// The host's half of the launch protocol.
pub(crate) fn converse(
    channel: &mut UnixStream,
    request: &RunRequest,
    seen: &mut Seen,
) -> Result<ExitReport, ConverseError> {
    let hello: Hello = read_frame(channel, keep_wire::MAX_CONTROL_FRAME)
        .and_then(|f| f.expect_json(FrameKind::Hello))
        .map_err(ConverseError::Wire)?;
    if hello.protocol != PROTOCOL_VERSION {
        return Err(ConverseError::Protocol(hello.protocol));
    }
    write_json(channel, FrameKind::Launch, &request.spec).map_err(ConverseError::Wire)?;
    write_frame(channel, FrameKind::Workload, &request.workload).map_err(ConverseError::Wire)?;
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

/// Kills the Keep at most once, remembering the first limit that asked for it.
pub(crate) struct Killer {
    exec: Arc<ExecHandle>,
    reason: Mutex<Option<(Limit, String)>>,
}

impl Killer {
    pub(crate) fn new(exec: &Exec) -> Self {
        Self {
            exec: exec.handle.clone(),
            reason: Mutex::new(None),
        }
    }

    pub(crate) fn kill(&self, limit: Limit, detail: String) {
        let mut reason = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if reason.is_none() {
            *reason = Some((limit, detail));
            self.exec.kill();
        }
    }

    pub(crate) fn reason(&self) -> Option<(Limit, String)> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets RLIMIT_DATA; called right after the spawn, while the exec is unreaped.
    pub(crate) fn limit_data(&self, bytes: u64) {
        let limit = rustix::process::Rlimit {
            current: Some(bytes),
            maximum: Some(bytes),
        };
        let _ = rustix::process::prlimit(
            Some(self.exec.pid()),
            rustix::process::Resource::Data,
            limit,
        );
    }
}

/// Copies one output stream of the Keep to a sink, counting bytes against the cap.
/// Uses `splice(2)` (no copy through user space) when the sink allows it, and
/// plain reads and writes otherwise (e.g. a terminal).
fn relay(
    source: OwnedFd,
    sink: std::fs::File,
    total: &Arc<AtomicU64>,
    killer: &Arc<Killer>,
    cap: Option<u64>,
) -> thread::JoinHandle<()> {
    let total = total.clone();
    let killer = killer.clone();
    let _ = rustix::pipe::fcntl_setpipe_size(&source, RELAY_CHUNK);
    thread::spawn(move || {
        let mut relay = Relay {
            source: std::fs::File::from(source),
            sink,
            sink_ok: true,
            splice: true,
        };
        loop {
            let allowed = cap.map(|cap| cap.saturating_sub(total.load(Ordering::Relaxed)));
            let moved = match relay.step(allowed) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let now = total.fetch_add(moved as u64, Ordering::Relaxed) + moved as u64;
            if let Some(cap) = cap
                && now > cap
            {
                killer.kill(
                    Limit::Output,
                    format!("wrote more than {cap} bytes to stdout and stderr"),
                );
                break;
            }
        }
        let _ = relay.sink.flush();
    })
}

/// Bytes moved per step, and the pipe size asked for.
const RELAY_CHUNK: usize = 1 << 20;

struct Relay {
    source: std::fs::File,
    sink: std::fs::File,
    /// False once the reader went away (e.g. `| head`): keep draining so the Keep
    /// never blocks on a full pipe.
    sink_ok: bool,
    splice: bool,
}

impl Relay {
    /// Moves what the Keep wrote; returns how many bytes it read (0 at end of
    /// stream). Passes on at most `allowed` bytes (None: no cap); reading more than
    /// that is how the cap is found exceeded.
    fn step(&mut self, allowed: Option<u64>) -> io::Result<usize> {
        let room = allowed.is_none_or(|a| a >= RELAY_CHUNK as u64);
        if self.splice && self.sink_ok && room {
            match rustix::pipe::splice(
                &self.source,
                None,
                &self.sink,
                None,
                RELAY_CHUNK,
                rustix::pipe::SpliceFlags::MOVE,
            ) {
                Ok(n) => return Ok(n),
                Err(rustix::io::Errno::INTR) => return self.step(allowed),
                Err(rustix::io::Errno::PIPE) => self.sink_ok = false,
                // The sink does not take splice (a terminal, say): copy instead.
                Err(_) => self.splice = false,
            }
        }
        let mut buf = vec![0u8; 1 << 18];
        let n = loop {
            match self.source.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        let pass = allowed.map_or(n, |a| n.min(usize::try_from(a).unwrap_or(usize::MAX)));
        if self.sink_ok && pass > 0 && self.sink.write_all(&buf[..pass]).is_err() {
            self.sink_ok = false;
        }
        Ok(n)
    }
}

/// Kills the Keep when the exec's memory (its private resident pages: the
/// workload's memories, the runtime's heap and the compiler's) passes its budget.
/// Polled, so an allocation burst can overshoot by what it allocates in one
/// period; RLIMIT_DATA, further up, is the backstop the exec would feel.
pub(crate) struct MemoryWatch {
    done: mpsc::Sender<()>,
    thread: thread::JoinHandle<()>,
}

/// How often the exec's memory is read (a read of /proc/PID/statm: ~10 us).
const MEMORY_POLL: Duration = Duration::from_millis(10);

impl MemoryWatch {
    pub(crate) fn start(
        budget: MemoryBudget,
        killer: Arc<Killer>,
        started: Arc<AtomicBool>,
    ) -> Self {
        let (done, rx) = mpsc::channel::<()>();
        let statm = format!("/proc/{}/statm", killer.exec.pid().as_raw_nonzero());
        let thread = thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(MEMORY_POLL) {
                let Some(used) = private_resident_bytes(&statm) else {
                    return;
                };
                if used > budget.total() {
                    let phase = Phase::of(started.load(Ordering::Acquire));
                    killer.kill(Limit::Memory, budget.ran_out(phase));
                    return;
                }
            }
        });
        Self { done, thread }
    }

    pub(crate) fn stop(self) {
        let _ = self.done.send(());
        let _ = self.thread.join();
    }
}

/// Resident pages not backed by a file (statm's resident minus shared), in bytes.
fn private_resident_bytes(statm: &str) -> Option<u64> {
    let text = std::fs::read_to_string(statm).ok()?;
    let mut fields = text.split_ascii_whitespace().skip(1);
    let resident: u64 = fields.next()?.parse().ok()?;
    let shared: u64 = fields.next()?.parse().ok()?;
    Some(
        resident
            .saturating_sub(shared)
            .saturating_mul(rustix::param::page_size() as u64),
    )
}

/// Kills the Keep when its wall-clock time is up.
pub(crate) struct Watchdog {
    done: mpsc::Sender<()>,
    thread: thread::JoinHandle<()>,
}

impl Watchdog {
    pub(crate) fn start(wall: Duration, killer: Arc<Killer>) -> Self {
        let (done, rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(wall) {
                killer.kill(
                    Limit::WallClock,
                    format!("still running after {:.3} s", wall.as_secs_f64()),
                );
            }
        });
        Self { done, thread }
    }

    pub(crate) fn stop(self) {
        let _ = self.done.send(());
        let _ = self.thread.join();
    }
}

/// Resource use of the (single) reaped child, from the kernel.
fn children_usage() -> HostStats {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::new(
                    t.tv_sec().max(0) as u64,
                    (t.tv_usec().clamp(0, 999_999) as u32) * 1000,
                )
            };
            HostStats {
                peak_rss_bytes: (u.max_rss().max(0) as u64).saturating_mul(1024),
                cpu_time: tv(u.user_time()) + tv(u.system_time()),
                ..HostStats::default()
            }
        }
        Err(_) => HostStats::default(),
    }
}
