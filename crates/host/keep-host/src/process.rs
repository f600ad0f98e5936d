//! The process backend: the exec runs as a child process of the host.
//!
//! It isolates nothing from the host, but it runs the very same exec binary and
//! speaks the same launch channel as the KVM Keep, and the host enforces its limits
//! from outside (`enforce`): wall-clock time (kill), output (it relays and counts
//! every byte), memory (the host watches the exec's private memory against the
//! Keep's budget, RLIMIT_DATA as a backstop). The exec runs from a sealed
//! in-memory copy (`exec_image`), is spawned, signalled and reaped as `spawn`
//! says, and inherits only fds 0-3 (it closes any other at start).

use crate::backend::{Backend, KeepPlan, Program, RunningKeep, Watch};
use crate::exec_image::ExecImage;
use crate::jail::JailMode;
use crate::launch::LaunchError;
use crate::platform::BackendKind;

/// RLIMIT_DATA above the Keep's memory budget (see [`crate::MemoryBudget`]): a
/// backstop the host's memory watch stops the Keep well before (RLIMIT_DATA also
/// counts writable memory never touched).
pub(crate) const RUNTIME_MEMORY_SLACK: u64 = 1 << 30;

/// Launches Keeps as child processes.
#[derive(Debug, Clone)]
pub struct ProcessBackend {
    pub(crate) exec: ExecImage,
    jail: JailMode,
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
        Ok(Self {
            exec,
            jail: JailMode::default(),
        })
    }

    /// For one run (`keep run`): the exec from a checked file in the private cache
    /// directory `dir` (see [`ExecImage::cached`]).
    pub fn cached(dir: &std::path::Path) -> Result<Self, LaunchError> {
        crate::host_dirs::ensure_private_dir(dir)?;
        let exec = ExecImage::cached(dir).map_err(LaunchError::ExecImage)?;
        Ok(Self {
            exec,
            jail: JailMode::default(),
        })
    }
}

impl Backend for ProcessBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Process
    }

    fn start(&self, plan: &mut KeepPlan) -> Result<RunningKeep, LaunchError> {
        RunningKeep::start_jailed(self.jail, plan, |jail, plan| self.start_in(jail, plan))
    }
}

impl ProcessBackend {
    /// Jails Keeps as `mode` says (default [`JailMode::On`]).
    pub fn with_jail(mut self, mode: JailMode) -> Self {
        self.jail = mode;
        self
    }

    fn start_in(&self, jail: JailMode, plan: &mut KeepPlan) -> Result<RunningKeep, LaunchError> {
        let budget = plan.budget();
        let mut binds = crate::jail::Bind::devices(&["/dev/null", "/dev/urandom", "/dev/random"]);
        let mut isolate_network = true;
        let mut tcp_ports = Vec::new();
        if let Some(launch) = plan.launch.as_mut() {
            // The workload's share, the default when none is given: the exec's
            // limiter holds it there.
            launch.spec.limits.memory_bytes = Some(budget.workload);
            isolate_network = launch.spec.sockets.is_empty();
            tcp_ports = launch.spec.sockets.iter().map(|s| s.port).collect();
            if jail != JailMode::Off {
                // In the jail the exec sees its directories beneath /dirs and the
                // compile cache at /cache, and nothing else of the host's files.
                for (i, d) in launch.spec.dirs.iter_mut().enumerate() {
                    let target = crate::jail::dir_target(i);
                    binds.push(crate::jail::Bind::dir(&d.source, &target, d.writable));
                    d.source = target;
                }
                if let Some(cache) = launch.spec.compile_cache_dir.as_mut() {
                    binds.push(crate::jail::Bind::dir(cache, "/cache", true));
                    *cache = "/cache".into();
                }
            }
        }
        let program = Program {
            path: self.exec.path.clone(),
            args: vec!["keep-exec".into()],
            env: Vec::new(),
            extra_fds: Vec::new(),
            binds,
            isolate_network,
            tcp_ports,
            seccomp: true,
        };
        RunningKeep::spawn(
            BackendKind::Process,
            &program,
            jail,
            plan,
            &Watch {
                data_limit: budget.total().saturating_add(RUNTIME_MEMORY_SLACK),
                memory: true,
            },
        )
    }
}
