//! The VMM as a process of its own: one per KVM Keep.
//!
//! Every guest-facing parser of this crate (the call block, files, sockets) runs
//! here, in a child the host started for this one Keep (the `keep` binary re-run
//! behind a hidden argument, see keep-host's `kvm` module), never in `keep run` or
//! `keep host serve`. From the host's side the child looks like a process Keep's
//! exec: its fds 0-2 are the Keep's stdio, fd 3 is the launch channel (relayed
//! byte for byte to the exec's fd 3 in the guest), and the host signals, limits
//! and reaps it the same way. One more descriptor, fd 4 ([`CONTROL_FD`]), carries
//! the host's [`VmmPlan`] in and, as one JSON line each, [`Launched`] and the
//! final [`VmmReport`] out.
//!
//! **Trusts:** the plan, from the host that started it. **Does not trust:** the
//! guest. The host in turn reads this process's lines as untrusted (bounded,
//! parsed defensively): a guest that took the VMM over could lie in them, and the
//! host's own limits (kill, watchdog, relay counts) do not depend on them.

use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Error, FileServer, Keep, KeepConfig, RelayServer, SocketServer, SocketSpec};

/// The child's control descriptor (the launch channel is fd 3).
pub const CONTROL_FD: i32 = 4;
/// Largest plan the child reads, and largest line the host reads back.
pub const MAX_CONTROL_BYTES: u64 = 1 << 20;

/// What the host asks of the VMM process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmmPlan {
    pub mem_size: u64,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// CPU time of the vCPU thread (guest time included), milliseconds.
    pub cpu_limit_ms: Option<u64>,
    /// Preopened directories, in order: the host path, writable, and the guest
    /// path it is declared as (for the one line when it cannot be opened).
    pub dirs: Vec<PlanDir>,
    pub sockets: Vec<SocketSpec>,
    /// Sockets the workload makes itself (a preview 2 component), limited to the
    /// declared addresses; else the declared sockets are opened before the start.
    pub dynamic_sockets: bool,
    /// Serve fd 0 to the guest (else stdin reads as empty).
    pub stdin: bool,
    /// Print the shim's log lines on stderr (`KEEP_VMM_LOG`).
    pub echo_log: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDir {
    pub source: String,
    pub writable: bool,
    pub guest_path: String,
}

/// The first line: the Keep is launched (or could not be).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Launched {
    /// The VM is built; its SHA-384 launch digest, hex.
    Launched { digest: String },
    /// The plan asks for what cannot be given (a directory or socket that cannot
    /// be opened): the host's user's mistake, said in one line.
    Refused { message: String },
    /// KVM or the VMM failed.
    Failed { message: String },
}

/// How the guest ended, as the VMM saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmmEnd {
    Exited { code: i32 },
    CpuLimit { ms: u64 },
    Stopped { message: String },
}

/// The last line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmmReport {
    pub end: VmmEnd,
    pub stats: Option<crate::Stats>,
    /// CPU time of the vCPU thread, nanoseconds.
    pub vcpu_cpu_ns: u64,
}

/// Runs the child's side: reads the plan from fd 4, launches `payload` in a
/// Keep, serves it and reports. Returns the process's exit status (0 when a
/// report was written). Call it first thing in `main`, before any other thread.
pub fn serve(payload: &'static [u8], payload_sha384: [u8; 48]) -> i32 {
    // Adopted only when both are open sockets (closing an fd that was never
    // open would break IO safety), which /proc tells without touching them.
    let is_socket = |fd: i32| {
        std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
    };
    if !is_socket(3) || !is_socket(CONTROL_FD) {
        eprintln!("keep: the VMM process is started by keep itself, not by hand");
        return 2;
    }
    // SAFETY: fds 3 and 4 are open sockets (checked above) that the host mapped at
    // spawn for this process; nothing else in it owns them (this runs first in
    // `main`, once).
    let (channel, control) = unsafe { (OwnedFd::from_raw_fd(3), OwnedFd::from_raw_fd(CONTROL_FD)) };
    let control = UnixStream::from(control);
    let channel = UnixStream::from(channel);
    if let Err(e) = harden() {
        let _ = say(&control, &Launched::Failed { message: e });
        return 1;
    }
    let plan = match read_plan(&control) {
        Ok(p) => p,
        Err(message) => {
            let _ = say(&control, &Launched::Failed { message });
            return 1;
        }
    };
    match launch(plan, payload, payload_sha384, channel, &control) {
        Ok(report) => match say(&control, &report) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(launched) => {
            let _ = say(&control, &launched);
            1
        }
    }
}

/// As the exec does at start: no core dumps and not dumpable (guest memory holds
/// the tenant's secrets once provisioned), dies with the host.
fn harden() -> Result<(), String> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, Signal};
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| format!("cannot make the VMM non-dumpable: {e}"))?;
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    rustix::process::setrlimit(Resource::Core, none)
        .map_err(|e| format!("cannot set RLIMIT_CORE to 0: {e}"))?;
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| format!("cannot set the parent-death signal: {e}"))?;
    if let Some(expected) = std::env::var("KEEP_HOST_PID")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    {
        let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_pid());
        if parent != expected {
            return Err(format!(
                "the host (pid {expected}) is gone before the VMM started"
            ));
        }
    }
    Ok(())
}

fn read_plan(control: &UnixStream) -> Result<VmmPlan, String> {
    let mut bytes = Vec::new();
    control
        .take(MAX_CONTROL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the plan: {e}"))?;
    if bytes.len() as u64 > MAX_CONTROL_BYTES {
        return Err(format!("the plan is over {MAX_CONTROL_BYTES} bytes"));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("the plan does not parse: {e}"))
}

fn say(control: &UnixStream, line: &impl Serialize) -> io::Result<()> {
    let mut text = serde_json::to_vec(line).map_err(io::Error::other)?;
    text.push(b'\n');
    let mut control = control;
    control.write_all(&text)
}

fn launch(
    plan: VmmPlan,
    payload: &'static [u8],
    payload_sha384: [u8; 48],
    channel: UnixStream,
    control: &UnixStream,
) -> Result<VmmReport, Launched> {
    let refused = |message: String| Launched::Refused { message };
    let sockets = if plan.dynamic_sockets {
        SocketServer::dynamic(&plan.sockets)
    } else {
        SocketServer::open(&plan.sockets).map_err(|e| refused(e.to_string()))?
    };
    let dirs: Vec<(String, bool)> = plan
        .dirs
        .iter()
        .map(|d| (d.source.clone(), d.writable))
        .collect();
    let files = FileServer::open(&dirs).map_err(|e| {
        let guest = plan
            .dirs
            .iter()
            .find(|d| d.source == e.path)
            .map(|d| d.guest_path.clone())
            .unwrap_or_default();
        refused(format!(
            "cannot open directory {} for {guest}: {}",
            e.path, e.source
        ))
    })?;
    let config = KeepConfig {
        mem_size: plan.mem_size,
        args: plan.args,
        env: plan.env,
        // The host's watchdog ends the Keep at its wall-clock limit (it kills
        // this process).
        wall_limit: None,
        cpu_limit: plan.cpu_limit_ms.map(Duration::from_millis),
    };
    let keep = Keep::launch_static(config, payload, payload_sha384).map_err(|e| match e {
        Error::Config(m) => refused(m),
        e => Launched::Failed {
            message: e.to_string(),
        },
    })?;
    // The jail asks for the allow-list (KEEP_SECCOMP): from here on the VMM
    // makes only the calls serving the guest needs.
    if std::env::var_os("KEEP_SECCOMP").is_some() {
        crate::seccomp::install().map_err(|e| Launched::Failed {
            message: format!("cannot install the seccomp allow-list: {e}"),
        })?;
    }
    let _ = say(
        control,
        &Launched::Launched {
            digest: hex::encode(keep.digest()),
        },
    );
    let stdin: Option<Box<dyn Read + Send>> = plan
        .stdin
        .then(|| Box::new(io::stdin()) as Box<dyn Read + Send>);
    let (out, out_writer) = Queued::start(io::stdout().as_fd().try_clone_to_owned().ok());
    let (err, err_writer) = Queued::start(io::stderr().as_fd().try_clone_to_owned().ok());
    let mut server = RelayServer::new(stdin, Box::new(out), Box::new(err), Some(Box::new(channel)));
    server.echo_log = plan.echo_log;
    server.files = Some(files);
    server.sockets = Some(sockets);
    let result = keep.run(&mut server);
    let vcpu_cpu_ns = thread_cpu_time().as_nanos().try_into().unwrap_or(u64::MAX);
    // Closes the launch channel (the host's conversation ends) and the queues:
    // everything the Keep wrote is out before the report.
    drop(server);
    for w in [out_writer, err_writer] {
        let _ = w.join();
    }
    let (end, stats) = match result {
        Ok(exit) => (VmmEnd::Exited { code: exit.code }, Some(exit.stats)),
        Err(Error::CpuLimit(d)) => (
            VmmEnd::CpuLimit {
                ms: d.as_millis().try_into().unwrap_or(u64::MAX),
            },
            None,
        ),
        Err(e) => (
            VmmEnd::Stopped {
                message: e.to_string(),
            },
            None,
        ),
    };
    Ok(VmmReport {
        end,
        stats,
        vcpu_cpu_ns,
    })
}

/// Reads the child's lines on the host's side: the first ([`Launched`]) and the
/// last ([`VmmReport`]), each bounded.
pub struct ControlReader(io::BufReader<io::Take<UnixStream>>);

impl ControlReader {
    pub fn new(control: UnixStream) -> Self {
        Self(io::BufReader::new(control.take(2 * MAX_CONTROL_BYTES)))
    }

    /// The next line, parsed; None at the end or on anything malformed.
    pub fn read_line<T: for<'de> Deserialize<'de>>(&mut self) -> Option<T> {
        let mut line = Vec::new();
        (&mut self.0)
            .take(MAX_CONTROL_BYTES)
            .read_until(b'\n', &mut line)
            .ok()?;
        serde_json::from_slice(&line).ok()
    }
}

/// One output stream: the vCPU thread queues each block, a writer thread writes
/// it to the host's descriptor, so the guest fills its next call block while the
/// last one is written.
struct Queued(Option<mpsc::SyncSender<Vec<u8>>>);

/// Blocks in flight per stream before the vCPU waits for the writer.
const WRITE_QUEUE: usize = 8;

impl Queued {
    fn start(sink: Option<OwnedFd>) -> (Self, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(WRITE_QUEUE);
        let writer = std::thread::spawn(move || {
            let mut sink = sink.map(std::fs::File::from);
            let _ = sink
                .as_ref()
                .map(|s| rustix::pipe::fcntl_setpipe_size(s, 1 << 20));
            for block in rx {
                // After the reader went away (`| head`) output is dropped, as on
                // the process backend, so a closed pipe does not stop the workload.
                if let Some(s) = sink.as_mut()
                    && s.write_all(&block).is_err()
                {
                    sink = None;
                }
            }
        });
        (Self(Some(tx)), writer)
    }
}

impl Write for Queued {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(tx) = &self.0 {
            let _ = tx.send(buf.to_vec());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// CPU time of the calling thread (the vCPU thread: guest time included).
fn thread_cpu_time() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
