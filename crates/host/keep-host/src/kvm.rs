//! The KVM backend: the same exec, inside a KVM Keep (`keep-vmm` + `keep-shim`).
//!
//! Every KVM Keep has a VMM process of its own ([`VMM_CHILD_ARG`]: this binary
//! re-run, serving `keep_vmm::child`), so no guest-facing parser runs in `keep
//! run` or `keep host serve`. The host treats that process as it treats a process
//! Keep's exec (`backend`): the launch channel on its fd 3, which the VMM relays
//! to the exec's fd 3 in the guest, stdio on fds 0-2 (relayed and counted when
//! there is an output cap), the same killer and wall-clock watchdog. Guest memory
//! is fixed at launch; the VMM stops the guest at its CPU limit (the vCPU
//! thread's time), and the host's CPU watch is the backstop.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keep_vmm::child::{ControlReader, Launched, PlanDir, VmmEnd, VmmPlan, VmmReport};
use keep_vmm::{Keep, KeepConfig};
use keep_wire::{LaunchSpec, Limit};

use crate::backend::{
    Backend, Companion, CompanionEnd, KeepPlan, KeepStdio, Program, RunningKeep, Watch,
};
use crate::exec_image::ExecImage;
use crate::jail::JailMode;
use crate::launch::{LaunchError, VmmError};
use crate::memory::{MemoryBudget, Phase};
use crate::platform::BackendKind;
use crate::result::HostStats;

/// Guest memory for the exec itself before compiling (see [`crate::memory`]).
pub const KVM_RUNTIME_MEMORY: u64 = crate::memory::RUNTIME_BASE_MEMORY;
/// Largest guest memory the VMM takes.
pub const KVM_MAX_MEMORY: u64 = 3 << 30;

/// The environment the exec boots with in a KVM Keep (measured with the boot
/// parameters): it tells the exec to configure wasmtime for one thread and no signals.
pub const KVM_EXEC_ENV: &str = "KEEP_BACKEND=kvm";

/// Runs Keeps as KVM virtual machines, each served by a VMM process of its own.
#[derive(Debug, Clone)]
pub struct KvmBackend {
    /// The binary re-run as the VMM process: this one, by the kernel's link to it
    /// (the very file running, even if replaced on disk since).
    program: PathBuf,
    jail: JailMode,
}

impl KvmBackend {
    /// Fails with [`LaunchError::NoKvm`] when /dev/kvm cannot be opened.
    pub fn new() -> Result<Self, LaunchError> {
        if !keep_vmm::kvm_available() {
            return Err(LaunchError::NoKvm);
        }
        Ok(Self {
            program: PathBuf::from("/proc/self/exe"),
            jail: JailMode::default(),
        })
    }

    /// Guest memory for a workload memory limit (None: the default) and no module
    /// known yet: limit + the runtime's base, whole 2 MiB (what `keep measure` and
    /// an attested Keep, launched before its workload arrives, use).
    pub fn guest_memory(workload_memory: Option<u64>) -> Result<u64, LaunchError> {
        Self::guest_memory_for(&MemoryBudget::new(workload_memory, 0))
    }

    /// Guest memory for a budget: both its shares, whole 2 MiB.
    pub fn guest_memory_for(budget: &MemoryBudget) -> Result<u64, LaunchError> {
        let want = budget.total().next_multiple_of(2 << 20);
        if want > KVM_MAX_MEMORY {
            return Err(LaunchError::Unsupported(format!(
                "the Keep needs {} MiB of guest memory ({} MiB for the workload, {} MiB for the runtime with a {:.1} MB module); a KVM Keep has at most {} MiB",
                want >> 20,
                budget.workload >> 20,
                budget.runtime >> 20,
                budget.module_bytes as f64 / 1e6,
                KVM_MAX_MEMORY >> 20
            )));
        }
        Ok(want)
    }

    /// The boot configuration of a Keep with this much guest memory.
    pub fn config(mem_size: u64) -> KeepConfig {
        KeepConfig {
            mem_size,
            args: vec!["keep-exec".into()],
            env: vec![KVM_EXEC_ENV.into()],
            wall_limit: None,
            cpu_limit: None,
        }
    }

    /// The SHA-384 launch digest of shim + exec + boot parameters for a workload
    /// memory limit, computed offline (no KVM needed).
    pub fn measure(workload_memory: Option<u64>) -> Result<([u8; 48], u64), LaunchError> {
        Self::measure_budget(&MemoryBudget::new(workload_memory, 0))
    }

    /// The same for a memory budget (a limit and the module's size, as `run` sizes
    /// the Keep).
    pub fn measure_budget(budget: &MemoryBudget) -> Result<([u8; 48], u64), LaunchError> {
        let mem = Self::guest_memory_for(budget)?;
        let digest =
            Keep::measure_with_payload_hash(&Self::config(mem), ExecImage::bytes(), exec_hash())?;
        Ok((digest, mem))
    }

    /// SHA-384 of the embedded shim (the first measured layer), hex.
    pub fn shim_sha384() -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha384::digest(keep_vmm::SHIM))
    }
}

impl Backend for KvmBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Kvm
    }

    /// Starts the Keep's VMM process (see [`VMM_CHILD_ARG`]) with a plan for the
    /// VM: guest memory from the budget, the directories and sockets it serves.
    fn start(&self, plan: &mut KeepPlan) -> Result<RunningKeep, LaunchError> {
        RunningKeep::start_jailed(self.jail, plan, |jail, plan| self.start_in(jail, plan))
    }
}

impl KvmBackend {
    /// Jails Keeps as `mode` says (default [`JailMode::On`]).
    pub fn with_jail(mut self, mode: JailMode) -> Self {
        self.jail = mode;
        self
    }

    fn start_in(&self, jail: JailMode, plan: &mut KeepPlan) -> Result<RunningKeep, LaunchError> {
        let budget = plan.budget();
        let mem = Self::guest_memory_for(&budget)?;
        // The boot parameters `measure` computes the digest over, from one place.
        let boot = Self::config(mem);
        let mut vmm = VmmPlan {
            mem_size: boot.mem_size,
            args: boot.args,
            env: boot.env,
            cpu_limit_ms: plan
                .limits
                .cpu
                .map(|d| d.as_millis().try_into().unwrap_or(u64::MAX)),
            dirs: Vec::new(),
            sockets: Vec::new(),
            dynamic_sockets: false,
            stdin: matches!(plan.stdio, KeepStdio::Files { stdin: true, .. }),
            echo_log: std::env::var_os("KEEP_VMM_LOG").is_some(),
        };
        let mut holder = None;
        if let Some(launch) = plan.launch.as_mut() {
            holder = adapt(&mut launch.spec, &launch.workload, budget, &mut vmm)?;
        }
        let mut binds =
            crate::jail::Bind::devices(&["/dev/null", "/dev/urandom", "/dev/random", "/dev/kvm"]);
        // The VMM is this binary, linked dynamically: its loader and libraries,
        // read-only.
        binds.extend(crate::jail::Bind::system_libraries());
        if jail != JailMode::Off {
            // In the jail the VMM sees the directories it serves beneath /dirs.
            for (i, d) in vmm.dirs.iter_mut().enumerate() {
                let target = crate::jail::dir_target(i);
                binds.push(crate::jail::Bind::dir(&d.source, &target, d.writable));
                d.source = target;
            }
        }
        let (control, child_control) = UnixStream::pair().map_err(LaunchError::Channel)?;
        let mut env = Vec::new();
        if vmm.echo_log {
            env.push(("KEEP_VMM_LOG".to_string(), "1".to_string()));
        }
        let program = Program {
            path: self.program.clone(),
            args: vec!["keep".into(), VMM_CHILD_ARG.into()],
            env,
            extra_fds: vec![(keep_vmm::child::CONTROL_FD, OwnedFd::from(child_control))],
            binds,
            isolate_network: vmm.sockets.is_empty(),
            tcp_ports: vmm.sockets.iter().map(|s| s.addr.port()).collect(),
            seccomp: true,
        };
        let mut keep = RunningKeep::spawn(
            BackendKind::Kvm,
            &program,
            jail,
            plan,
            &Watch {
                data_limit: mem.saturating_add(VMM_MEMORY_SLACK),
                memory: false,
            },
        )?;
        // The VMM's end is the child's alone now (the spawn made its copy).
        drop(program);
        let plan_bytes =
            serde_json::to_vec(&vmm).map_err(|e| VmmError::Plan(io::Error::other(e)))?;
        (&control)
            .write_all(&plan_bytes)
            .and_then(|()| control.shutdown(std::net::Shutdown::Write))
            .map_err(VmmError::Plan)?;
        let mut reader = ControlReader::new(control);
        let digest = match reader.read_line::<Launched>() {
            Some(Launched::Launched { digest }) => {
                let mut d = [0u8; 48];
                hex::decode_to_slice(&digest, &mut d)
                    .map_err(|_| VmmError::Launch("the VMM sent no launch digest".into()))?;
                d
            }
            Some(Launched::Refused { message }) => return Err(LaunchError::Unsupported(message)),
            Some(Launched::Failed { message }) => return Err(VmmError::Launch(message).into()),
            None => return Err(VmmError::NoAnswer.into()),
        };
        keep.companion = Some(Box::new(VmmLink {
            control: reader,
            digest,
            mem,
            _holder: holder,
        }));
        Ok(keep)
    }
}

/// The Keep's VMM process, as the host holds it beside the process.
pub(crate) struct VmmLink {
    control: ControlReader,
    digest: [u8; 48],
    mem: u64,
    _holder: Option<EmptyDir>,
}

impl Companion for VmmLink {
    fn measurement(&self) -> String {
        hex::encode(self.digest)
    }

    /// Reads the VMM's last line (the process has ended), if it wrote one.
    fn ended(&mut self, budget: &MemoryBudget) -> CompanionEnd {
        let Some(report) = self.control.read_line::<VmmReport>() else {
            return CompanionEnd {
                stats: Some(self.stats(None)),
                ..CompanionEnd::default()
            };
        };
        let limit = limit_of(&report, budget, Phase::Unknown);
        CompanionEnd {
            memory_ran_out: matches!(limit, Some((Limit::Memory, _))),
            limit,
            failure: Some(match &report.end {
                VmmEnd::Stopped { message } => format!("the KVM Keep stopped: {message}"),
                VmmEnd::Exited { code } => format!("the exec ended without a report (exit {code})"),
                VmmEnd::CpuLimit { ms } => format!("the KVM Keep stopped at {ms} ms of CPU time"),
            }),
            stats: Some(self.stats(Some(&report))),
        }
    }
}

impl VmmLink {
    /// What `keep run --stats` shows for a KVM Keep: the memory it used by the
    /// host's count of the guest memory it backed (the VM's size apart), the
    /// vCPU's CPU time, exits and host calls.
    fn stats(&self, report: Option<&VmmReport>) -> HostStats {
        let stats = report.and_then(|r| r.stats.as_ref());
        HostStats {
            peak_rss_bytes: stats
                .and_then(|s| s.host_resident_bytes)
                .unwrap_or_default(),
            vm_memory_bytes: Some(self.mem),
            cpu_time: report
                .map(|r| Duration::from_nanos(r.vcpu_cpu_ns))
                .unwrap_or_default(),
            vm_exits: stats.map(|s| s.exits),
            host_calls: stats.map(|s| s.host_calls),
            guest_used_bytes: stats.map(|s| s.guest_peak_bytes),
            launch_digest: Some(self.digest),
            ..HostStats::default()
        }
    }
}

/// RLIMIT_DATA of a VMM process above its guest memory.
const VMM_MEMORY_SLACK: u64 = 1 << 30;

/// Adapts a clear launch to a KVM Keep, and the VMM's plan to it.
///
/// Sockets: a preview 1 module gets the declared sockets preopened (the VMM binds
/// and connects them before the Keep starts and serves them by handle; the exec
/// opens socket i by the name /.keep/sock/<i>). A preview 2 component makes its
/// own (wasi:sockets), and the VMM lets it bind, listen and connect only to the
/// declared addresses. Every byte crosses the host in clear.
fn adapt(
    spec: &mut LaunchSpec,
    workload: &[u8],
    budget: MemoryBudget,
    vmm: &mut VmmPlan,
) -> Result<Option<EmptyDir>, LaunchError> {
    let component = is_component(workload);
    vmm.sockets = socket_specs(spec)?;
    vmm.dynamic_sockets = component;
    // One thread in the Keep; no host directories to cache compiled code in.
    spec.parallel_compilation = false;
    spec.compile_cache_dir = None;
    // CPU time is enforced by the VMM on the vCPU thread (the exec's epoch
    // ticker would need a second thread).
    if let Some(ms) = spec.limits.cpu_ms.take() {
        vmm.cpu_limit_ms = Some(vmm.cpu_limit_ms.map_or(ms, |h| h.min(ms)));
    }
    // Preopened directories: the VMM opens them itself and serves the files
    // beneath them; the exec opens preopen i by the name /.keep/dir/<i>.
    for (i, d) in spec.dirs.iter_mut().enumerate() {
        vmm.dirs.push(PlanDir {
            source: std::mem::replace(&mut d.source, keep_vmm::preopen_guest_source(i)),
            writable: d.writable,
            guest_path: d.guest_path.clone(),
        });
    }
    // With sockets, the exec's hidden placeholder directory (see p1_run) is an
    // empty read-only one the host makes, served after the declared ones.
    let holder = if spec.sockets.is_empty() || component {
        None
    } else {
        let d = EmptyDir::new().map_err(|e| {
            LaunchError::Unsupported(format!("cannot make the socket placeholder directory: {e}"))
        })?;
        vmm.dirs.push(PlanDir {
            source: d.0.to_string_lossy().into_owned(),
            writable: false,
            guest_path: String::new(),
        });
        Some(d)
    };
    // The workload's share, the default when none is given: the exec's limiter
    // holds it there, and the rest of guest memory is the runtime's.
    spec.limits.memory_bytes = Some(budget.workload);
    Ok(holder)
}

/// A limit the VMM's report shows: its CPU limit, or guest memory used up (the
/// shim refused frames and the exec failed).
fn limit_of(report: &VmmReport, budget: &MemoryBudget, phase: Phase) -> Option<(Limit, String)> {
    match &report.end {
        VmmEnd::CpuLimit { ms } => Some((
            Limit::Cpu,
            format!("used more than {ms} ms of CPU time (exec start-up and compilation included)"),
        )),
        VmmEnd::Exited { code }
            if *code != 0
                && report
                    .stats
                    .as_ref()
                    .is_some_and(|s| s.memory_refused_frames > 0) =>
        {
            Some((Limit::Memory, budget.ran_out(phase)))
        }
        _ => None,
    }
}

/// The hidden first argument that makes the `keep` binary (or any binary linking
/// keep-host that calls [`vmm_child_main`] first) the VMM process of one KVM Keep.
pub const VMM_CHILD_ARG: &str = "__keep-vmm";

/// The VMM process's `main`: serves one KVM Keep of the embedded exec on the
/// descriptors the host passed, and returns its exit status. Called by a binary
/// whose first argument is [`VMM_CHILD_ARG`], before it does anything else.
pub fn vmm_child_main() -> i32 {
    keep_vmm::child::serve(ExecImage::bytes(), exec_hash())
}

/// The exec's SHA-384, computed by the build script from the embedded bytes (so a
/// launch does not hash 29 MB again).
fn exec_hash() -> [u8; 48] {
    let mut h = [0u8; 48];
    if hex::decode_to_slice(crate::EXEC_SHA384, &mut h).is_err() {
        // Cannot happen (the build script writes 96 hex digits); hash it then.
        use sha2::Digest;
        h = sha2::Sha384::digest(ExecImage::bytes()).into();
    }
    h
}

/// An empty directory in the host's temporary directory, removed on drop.
struct EmptyDir(std::path::PathBuf);

impl EmptyDir {
    fn new() -> io::Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            ".keep-sockets-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path)?;
        Ok(Self(path))
    }
}

impl Drop for EmptyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// As the exec reads a socket's host: an IP address, or `localhost`.
fn parse_ip(host: &str) -> Option<std::net::IpAddr> {
    if host == "localhost" {
        return Some(std::net::IpAddr::from([127, 0, 0, 1]));
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Whether the workload is a component (`\0asm` with the component layer version)
/// rather than a core module.
fn is_component(workload: &[u8]) -> bool {
    workload.get(..8) == Some(&[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00][..])
}

/// The declared sockets as the VMM binds and connects them.
fn socket_specs(spec: &LaunchSpec) -> Result<Vec<keep_vmm::SocketSpec>, LaunchError> {
    spec.sockets
        .iter()
        .map(|s| {
            let ip = parse_ip(&s.host).ok_or_else(|| {
                LaunchError::Unsupported(format!(
                    "socket {}: {} is not an IP address (no name lookups)",
                    s.name, s.host
                ))
            })?;
            Ok(keep_vmm::SocketSpec {
                name: s.name.clone(),
                listen: s.kind == keep_wire::SocketKind::Listen,
                addr: std::net::SocketAddr::new(ip, s.port),
            })
        })
        .collect()
}
