//! The one seam every backend plugs into: [`Backend::start`] turns a
//! [`KeepPlan`] into a [`RunningKeep`], an OS process of its own (the exec, or
//! the VMM of a KVM Keep) with the launch channel on its fd 3, which the host
//! kills, watches and reaps the same way whatever runs inside. [`run`] is start,
//! converse and wait for every backend; an attested Keep
//! ([`crate::AttestedKeep`]) wraps a `RunningKeep` whose launch is sealed.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use command_fds::{CommandFdExt, FdMapping};
use keep_wire::{CHANNEL_FD, LaunchSpec, Limit, Outcome, StdioTarget};

use crate::enforce::{Killer, Observed, UsageWatch, WatchLimits, Watchdog, relay};
use crate::jail::JailMode;
use crate::launch::{ConverseError, HostLimits, LaunchError, RunRequest, Seen, converse};
use crate::memory::{MemoryBudget, Phase};
use crate::platform::BackendKind;
pub(crate) use crate::program::Program;
use crate::result::{HostStats, RunResult};
use crate::spawn::Exec;

/// A kind of Keep that can be started here.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;

    /// Starts a Keep for `plan`: its process runs and the launch channel is open
    /// (the exec's greeting not yet read). The backend may adjust `plan.launch`'s
    /// spec for itself (where directories are served from, say) before it is sent.
    fn start(&self, plan: &mut KeepPlan) -> Result<RunningKeep, LaunchError>;
}

/// What to start.
pub struct KeepPlan {
    pub limits: HostLimits,
    pub stdio: KeepStdio,
    /// The launch the host will send itself (`keep run`), or None for an attested
    /// launch, whose spec and workload arrive sealed.
    pub launch: Option<Launch>,
}

/// The spec and workload of a launch the host sends in clear.
pub struct Launch {
    pub spec: LaunchSpec,
    pub workload: Vec<u8>,
}

/// Where the Keep's stdio goes.
pub enum KeepStdio {
    /// To these files (relayed and counted when an output cap is set); stdin is
    /// the host's own when `stdin` is set, else empty.
    Files {
        stdin: bool,
        stdout: std::fs::File,
        stderr: std::fs::File,
    },
    /// Nowhere: the Keep's output is sealed on the launch channel.
    Sealed,
}

impl KeepPlan {
    /// A run the host drives in clear, with output to these files.
    pub fn run(request: RunRequest, stdout: std::fs::File, stderr: std::fs::File) -> Self {
        let mut limits = request.limits;
        // The CPU limit the Keep enforces itself, which the host backs up.
        limits.cpu = limits.cpu.or(request
            .spec
            .limits
            .cpu_ms
            .map(std::time::Duration::from_millis));
        Self {
            limits,
            stdio: KeepStdio::Files {
                stdin: request.spec.stdio[0] == StdioTarget::Inherit,
                stdout,
                stderr,
            },
            launch: Some(Launch {
                spec: request.spec,
                workload: request.workload,
            }),
        }
    }

    /// An empty Keep for an attested launch.
    pub fn sealed(limits: HostLimits) -> Self {
        Self {
            limits,
            stdio: KeepStdio::Sealed,
            launch: None,
        }
    }

    /// The Keep's memory budget: the workload's limit (the spec's when there is a
    /// spec, else the host's), and the module when it is known.
    pub fn budget(&self) -> MemoryBudget {
        let limit = self
            .launch
            .as_ref()
            .and_then(|l| l.spec.limits.memory_bytes)
            .or(self.limits.memory_bytes);
        MemoryBudget::new(
            limit,
            self.launch.as_ref().map_or(0, |l| l.workload.len() as u64),
        )
    }
}

/// How a backend wants its process watched.
pub(crate) struct Watch {
    /// RLIMIT_DATA of the process.
    pub(crate) data_limit: u64,
    /// Whether the host watches its private memory against the budget (the
    /// process backend; a VM's memory is fixed at its size instead).
    pub(crate) memory: bool,
}

/// What a backend keeps beside its Keep's process and reads once it ended.
pub(crate) trait Companion: Send + Sync {
    /// The runtime measurement the host reports (hex).
    fn measurement(&self) -> String;
    /// What it knows of the end (the budget renders a memory limit).
    fn ended(&mut self, budget: &MemoryBudget) -> CompanionEnd;
}

/// A companion's word on how the Keep ended.
#[derive(Debug, Default)]
pub(crate) struct CompanionEnd {
    pub(crate) limit: Option<(Limit, String)>,
    pub(crate) memory_ran_out: bool,
    pub(crate) failure: Option<String>,
    pub(crate) stats: Option<HostStats>,
}

/// A Keep whose process runs: the launch channel, kill and wait.
pub struct RunningKeep {
    kind: BackendKind,
    exec: Exec,
    killer: Arc<Killer>,
    watchdog: Option<Watchdog>,
    watch: Option<UsageWatch>,
    relays: Vec<JoinHandle<()>>,
    /// Bytes of output relayed (by the host's relays, or counted by the caller
    /// for sealed output), and the cap.
    output: Arc<AtomicU64>,
    output_cap: Option<u64>,
    relayed: bool,
    channel: UnixStream,
    /// Set by the conversation once the exec said it started the workload.
    pub(crate) started: Arc<AtomicBool>,
    budget: Arc<Mutex<MemoryBudget>>,
    /// What the backend keeps beside the process (KVM: the VMM's control line).
    pub(crate) companion: Option<Box<dyn Companion>>,
    jail_layers: Vec<String>,
    jail_warning: Option<String>,
    begun: Instant,
    /// Removed once the Keep is reaped (fields drop after `Drop::drop`).
    _cgroup: Option<crate::jail::PidsCgroup>,
    /// The program's own process (the exec or the VMM; in a jail, the outer
    /// stage's child), which the figures are read from.
    watched: rustix::process::Pid,
    observed: Arc<Observed>,
    end: Option<KeepEnd>,
}

/// A Keep's use as the host measures it (`keep ps --json`, `/metrics`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct KeepFigures {
    /// CPU time of its program so far (the exec, or the VMM with the guest).
    pub cpu_ms: Option<u64>,
    /// The most private resident memory the host saw its program use (sampled
    /// every 10 ms; a KVM Keep's guest memory as the host backed it).
    pub peak_memory_bytes: u64,
    /// Output relayed (sealed records for an attested Keep).
    pub output_bytes: u64,
    /// Descriptors its program holds now (None once ended, or where this host
    /// may not look).
    pub open_files: Option<u64>,
    /// KVM: the guest's host calls, known once the VMM reported at the end.
    pub host_calls: Option<u64>,
    pub running: bool,
}

/// How a Keep's process ended, as the host saw it.
#[derive(Debug, Clone)]
pub struct KeepEnd {
    pub status: Option<ExitStatus>,
    /// The first limit the host stopped it for, or the VMM's CPU limit.
    pub limit: Option<(Limit, String)>,
    /// The backend's word on why the exec sent no report (KVM: the VMM's).
    pub failure: Option<String>,
    /// The backend's figures, where it has better ones than the kernel's for
    /// the process (KVM: the guest's memory and the vCPU's time).
    pub stats: Option<HostStats>,
    /// The limit was guest memory that ran out (the phase is rendered by
    /// whoever knows it).
    pub memory_ran_out: bool,
    /// The host's figures for this Keep (not only `keep run`'s child).
    pub cpu_time: Option<std::time::Duration>,
    pub peak_private_bytes: u64,
    pub output_bytes: u64,
}

impl RunningKeep {
    /// Spawns the Keep's process for `program`: jailed as `jail` says (see
    /// `crate::jail`), the launch channel on fd 3 (and the program's own
    /// descriptors), stdio as the plan says, then the killer, the watches and the
    /// relays.
    pub(crate) fn spawn(
        kind: BackendKind,
        program: &Program,
        jail: JailMode,
        plan: &mut KeepPlan,
        watch: &Watch,
    ) -> Result<Self, LaunchError> {
        let (channel, keep_end) = UnixStream::pair().map_err(LaunchError::Channel)?;
        let mut fds = program.fds()?;
        fds.push(FdMapping {
            parent_fd: OwnedFd::from(keep_end),
            child_fd: CHANNEL_FD,
        });
        let (mut cmd, status, cgroup) = if jail == JailMode::Off {
            let mut cmd = Command::new(&program.path);
            if let Some(args) = program.args.get(1..) {
                cmd.args(args);
            }
            cmd.env_clear()
                .envs(program.env.iter().map(|(k, v)| (k, v)));
            (cmd, None, None)
        } else {
            let p = crate::jail::command(program, &mut fds)?;
            (p.command, Some(p.status), p.cgroup)
        };
        cmd.fd_mappings(fds)
            .map_err(|e| LaunchError::Channel(std::io::Error::other(e.to_string())))?;
        let cap = plan.limits.output_bytes;
        let stdio = std::mem::replace(&mut plan.stdio, KeepStdio::Sealed);
        let sinks = match stdio {
            KeepStdio::Files {
                stdin,
                stdout,
                stderr,
            } => {
                cmd.stdin(if stdin {
                    Stdio::inherit()
                } else {
                    Stdio::null()
                });
                if cap.is_some() {
                    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
                    Some((stdout, stderr))
                } else {
                    cmd.stdout(stdout).stderr(stderr);
                    None
                }
            }
            KeepStdio::Sealed => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                None
            }
        };
        let mut exec = crate::spawn::spawn(cmd).map_err(LaunchError::Spawn)?;
        let killer = Arc::new(Killer::new(&exec));
        crate::enforce::limit_data(exec.handle.pid(), watch.data_limit);
        // In a jail the program is the outer stage's child: the one to watch.
        let (jail_layers, watched) = match status {
            None => (Vec::new(), exec.handle.pid()),
            Some(status) => {
                match crate::jail::built(status, &exec, cgroup.is_some(), program.seccomp) {
                    Ok(built) => built,
                    Err(why) => {
                        killer.stop();
                        let _ = exec.reap();
                        return Err(LaunchError::Jail(why));
                    }
                }
            }
        };
        // A jail's outer stage may have started the program before the limit
        // above reached it: the program gets it directly too.
        if watched != exec.handle.pid() {
            crate::enforce::limit_data(watched, watch.data_limit);
        }
        let started = Arc::new(AtomicBool::new(false));
        let budget = Arc::new(Mutex::new(plan.budget()));
        let phase = plan.launch.is_some().then(|| started.clone());
        let usage = UsageWatch::start(
            WatchLimits {
                memory: watch.memory.then(|| (budget.clone(), phase)),
                cpu: plan.limits.cpu,
            },
            killer.clone(),
            watched,
        );
        let observed = usage.observed();
        let output = Arc::new(AtomicU64::new(0));
        let mut relays = Vec::new();
        let relayed = sinks.is_some();
        if let Some((out, err)) = sinks {
            for (source, sink) in [
                (exec.child.stdout.take().map(OwnedFd::from), out),
                (exec.child.stderr.take().map(OwnedFd::from), err),
            ] {
                if let Some(source) = source {
                    relays.push(relay(source, sink, &output, &killer, cap));
                }
            }
        }
        let watchdog = plan.limits.wall.map(|w| Watchdog::start(w, killer.clone()));
        Ok(Self {
            kind,
            exec,
            killer,
            watchdog,
            watch: Some(usage),
            relays,
            output,
            output_cap: cap,
            relayed,
            channel,
            started,
            budget,
            companion: None,
            jail_layers,
            jail_warning: None,
            _cgroup: cgroup,
            watched,
            observed,
            begun: Instant::now(),
            end: None,
        })
    }

    /// Starts a Keep with `start` in the jail `mode` asks for; under
    /// [`JailMode::On`], where this host cannot build the jail, again without it
    /// (the plan as it was: a jailed start rewrites where directories are seen),
    /// saying so in [`Self::jail_warning`] (and for the host's later Keeps).
    pub(crate) fn start_jailed(
        mode: JailMode,
        plan: &mut KeepPlan,
        start: impl Fn(JailMode, &mut KeepPlan) -> Result<RunningKeep, LaunchError>,
    ) -> Result<RunningKeep, LaunchError> {
        let mode = match (mode, crate::jail::unavailable()) {
            (JailMode::On, Some(_)) => JailMode::Off,
            (mode, _) => mode,
        };
        if mode != JailMode::On {
            return start(mode, plan);
        }
        let spec = plan.launch.as_ref().map(|l| l.spec.clone());
        let stdio = match &plan.stdio {
            KeepStdio::Files {
                stdin,
                stdout,
                stderr,
            } => match (stdout.try_clone(), stderr.try_clone()) {
                (Ok(stdout), Ok(stderr)) => Some(KeepStdio::Files {
                    stdin: *stdin,
                    stdout,
                    stderr,
                }),
                _ => None,
            },
            KeepStdio::Sealed => Some(KeepStdio::Sealed),
        };
        match start(mode, plan) {
            Err(LaunchError::Jail(why)) => {
                crate::jail::mark_unavailable(&why);
                if let (Some(spec), Some(launch)) = (spec, plan.launch.as_mut()) {
                    launch.spec = spec;
                }
                if let Some(stdio) = stdio {
                    plan.stdio = stdio;
                }
                let mut keep = start(JailMode::Off, plan)?;
                keep.jail_warning = Some(format!("the Keep runs without its jail: {why}"));
                Ok(keep)
            }
            other => other,
        }
    }

    /// What the host sees of the Keep's use, now (or at its end): from the
    /// kernel, never from the Keep.
    pub fn figures(&self) -> KeepFigures {
        let pid = self.watched.as_raw_pid();
        let live = self.end.is_none();
        let cpu = match &self.end {
            Some(end) => end.cpu_time,
            None => crate::enforce::cpu_time(&format!("/proc/{pid}/stat")),
        };
        let open_files = live
            .then(|| std::fs::read_dir(format!("/proc/{pid}/fd")).ok())
            .flatten()
            .map(|d| d.count() as u64);
        KeepFigures {
            cpu_ms: cpu.map(|d| d.as_millis() as u64),
            peak_memory_bytes: self.observed.peak_private_bytes.load(Ordering::Relaxed),
            output_bytes: self.output_bytes(),
            open_files,
            host_calls: self
                .end
                .as_ref()
                .and_then(|e| e.stats.as_ref())
                .and_then(|s| s.host_calls),
            running: live,
        }
    }

    /// The jail's layers this Keep has (none: not jailed).
    pub fn jail_layers(&self) -> &[String] {
        &self.jail_layers
    }

    /// Why the Keep runs without the jail it was to have, if it does.
    pub fn jail_warning(&self) -> Option<&str> {
        self.jail_warning.as_deref()
    }

    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// What the Keep's process is, for the one line when it ends without a report.
    fn what(&self) -> &'static str {
        match self.kind {
            BackendKind::Process => "the exec",
            _ => "the Keep's VMM",
        }
    }

    /// The host's end of the launch channel.
    pub fn channel(&self) -> std::io::Result<UnixStream> {
        self.channel.try_clone()
    }

    /// The Keep's process: the exec, or the VMM of a KVM Keep.
    pub fn pid(&self) -> u32 {
        self.exec.child.id()
    }

    /// The runtime measurement the host reports (hex): the exec's SHA-384 on the
    /// process backend, the launch digest on KVM. Only the host's word.
    pub fn measurement(&self) -> String {
        match &self.companion {
            Some(c) => c.measurement(),
            None => crate::EXEC_SHA384.to_string(),
        }
    }

    /// The workload is `bytes` long (an attested launch learns it when the sealed
    /// payload arrives): the runtime's memory share grows with it.
    pub fn expect_workload(&self, bytes: u64) {
        let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        *budget = MemoryBudget::new(Some(budget.workload), bytes);
    }

    /// Counts output the caller relayed (sealed records); past the cap the Keep
    /// is killed and this returns false.
    pub fn count_output(&self, bytes: u64) -> bool {
        let total = self.output.fetch_add(bytes, Ordering::Relaxed) + bytes;
        match self.output_cap {
            Some(cap) if total > cap => {
                self.killer.kill(
                    Limit::Output,
                    format!("relayed more than {cap} bytes of sealed output"),
                );
                false
            }
            _ => true,
        }
    }

    pub fn output_bytes(&self) -> u64 {
        self.output.load(Ordering::Relaxed)
    }

    /// Kills the Keep for no limit (idempotent; nothing once it has ended).
    pub fn kill(&self) {
        self.killer.stop();
    }

    /// The limit the host stopped the Keep for, if it did (the VMM's CPU limit and
    /// a KVM Keep out of memory are known once it was waited for).
    pub fn limit_hit(&self) -> Option<(Limit, String)> {
        match &self.end {
            Some(end) => end.limit.clone(),
            None => self.killer.reason(),
        }
    }

    /// Whether the Keep's process has ended (it is not reaped).
    pub fn has_ended(&self) -> bool {
        self.end.is_some() || self.exec.handle.has_ended()
    }

    /// Gives the Keep's process up to `grace` to end by itself, then kills it.
    pub fn end_within(&self, grace: std::time::Duration) {
        let deadline = Instant::now() + grace;
        while !self.has_ended() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.kill();
    }

    /// Waits for the Keep's process to end and reaps it (once).
    pub fn wait(&mut self) -> &KeepEnd {
        if self.end.is_none() {
            let end = self.reap();
            self.end = Some(end);
        }
        self.end.as_ref().expect("just set")
    }

    fn reap(&mut self) -> KeepEnd {
        self.exec.handle.wait_until_ended();
        // Ended, not yet reaped: its /proc entry still holds its CPU time.
        let cpu_time = crate::enforce::cpu_time(&format!(
            "/proc/{}/stat",
            self.exec.handle.pid().as_raw_pid()
        ));
        let observed = self
            .watch
            .take()
            .map(UsageWatch::stop)
            .unwrap_or_else(|| Arc::new(Observed::default()));
        let status = self.exec.reap().ok();
        if let Some(w) = self.watchdog.take() {
            w.stop();
        }
        for r in self.relays.drain(..) {
            let _ = r.join();
        }
        let budget = *self.budget.lock().unwrap_or_else(|e| e.into_inner());
        let said = self
            .companion
            .as_mut()
            .map(|c| c.ended(&budget))
            .unwrap_or_default();
        let limit = self.killer.reason().or(said.limit);
        let memory_ran_out = limit.is_some() && said.memory_ran_out;
        KeepEnd {
            status,
            limit,
            failure: said.failure,
            stats: said.stats,
            memory_ran_out,
            cpu_time,
            peak_private_bytes: observed.peak_private_bytes.load(Ordering::Relaxed),
            output_bytes: self.output_bytes(),
        }
    }
}

impl Drop for RunningKeep {
    fn drop(&mut self) {
        if self.end.is_none() {
            self.kill();
            let _ = self.channel.shutdown(std::net::Shutdown::Both);
            self.wait();
        }
    }
}

/// How long a Keep whose exec broke off the conversation has to end by itself.
pub(crate) const BROKEN_OFF_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs one workload to its end on `backend`: start, converse, wait. Its stdout
/// and stderr go to the given files, relayed and counted by the host when an
/// output cap is set, handed to the Keep directly otherwise.
pub fn run(
    backend: &dyn Backend,
    request: RunRequest,
    stdout: std::fs::File,
    stderr: std::fs::File,
) -> Result<RunResult, LaunchError> {
    let mut plan = KeepPlan::run(request, stdout, stderr);
    let mut keep = backend.start(&mut plan)?;
    let Some(launch) = plan.launch else {
        return Err(LaunchError::Unsupported("a run needs a launch".into()));
    };
    let mut seen = Seen {
        started: keep.started.clone(),
        ..Seen::default()
    };
    let jail_warning = keep.jail_warning.clone();
    let mut channel = keep.channel().map_err(LaunchError::Channel)?;
    let report = converse(&mut channel, &launch.spec, &launch.workload, &mut seen);
    if report.is_err() {
        // The exec broke off. Its process is given a moment to end on its own (a
        // VMM writes its report after the channel closed); whatever still runs
        // then (a silent exec, a stuck VM) is ended.
        keep.end_within(BROKEN_OFF_GRACE);
    }
    drop(channel);
    let _ = keep.channel.shutdown(std::net::Shutdown::Both);
    let budget = *keep.budget.lock().unwrap_or_else(|e| e.into_inner());
    let end = keep.wait().clone();
    let phase = Phase::of(seen.has_started());
    let limit = match end.limit.clone() {
        // Guest memory ran out: now the phase is known.
        Some((Limit::Memory, _)) if end.memory_ran_out => {
            Some((Limit::Memory, budget.ran_out(phase)))
        }
        l => l,
    };
    let status = end
        .status
        .map_or_else(|| "status unknown".to_string(), |s| s.to_string());
    let outcome = match (limit, &report) {
        (Some((limit, detail)), _) => Outcome::LimitExceeded { limit, detail },
        (None, Ok(r)) => r.outcome.clone(),
        (None, Err(ConverseError::Protocol(v))) => return Err(LaunchError::Protocol(*v)),
        (None, Err(ConverseError::Wire(e))) => Outcome::Failed {
            message: match &end.failure {
                Some(why) => format!("{why}: {e}"),
                None => format!("{} ended without a report ({status}): {e}", keep.what()),
            },
        },
    };
    let host = match end.stats {
        Some(stats) => stats,
        // `keep run` has this one child: the kernel's figures for it.
        None => crate::enforce::children_usage(),
    };
    let host = HostStats {
        output_bytes: keep.relayed.then_some(end.output_bytes),
        wall_time: keep.begun.elapsed(),
        ..host
    };
    Ok(RunResult {
        outcome,
        report: report.ok(),
        host,
        warnings: jail_warning.into_iter().chain(seen.warnings).collect(),
    })
}
