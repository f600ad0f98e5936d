//! An empty Keep for an attested launch (trust state 1): the exec is running and
//! waits for a challenge. The host relays frames it cannot read and keeps its own
//! limits: memory (RLIMIT_DATA backstop), wall-clock time (watchdog), output (the
//! caller counts the sealed records it relays, see [`AttestedKeep::count_output`]).
//!
//! Two backends: the exec as a child process ([`ProcessBackend::start_attested`]),
//! or inside a KVM Keep ([`KvmBackend::start_attested`]), where the VMM relays the
//! exec's fd 3 to the host's end of the channel, memory is fixed at launch and the
//! VMM's watchdog enforces wall-clock and CPU time. The frames are the same.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use keep_vmm::{Keep, RelayServer};
use keep_wire::{CHANNEL_FD, FrameKind, Limit, PROTOCOL_VERSION, read_frame};

use crate::exec_image::ExecImage;
use crate::kvm::KvmBackend;
use crate::process::{
    HostLimits, Killer, LaunchError, ProcessBackend, RUNTIME_MEMORY_SLACK, Watchdog,
};
use crate::spawn::Exec;

/// A running exec that has greeted the host and waits for a `Challenge`.
pub struct AttestedKeep {
    runner: Runner,
    channel: UnixStream,
    output: AtomicU64,
    output_cap: Option<u64>,
}

/// Where the exec runs.
enum Runner {
    Process {
        exec: Exec,
        killer: Arc<Killer>,
        watchdog: Option<Watchdog>,
    },
    Kvm(KvmRunner),
}

/// A KVM Keep: the vCPU thread runs it until it ends or is killed.
struct KvmRunner {
    kill: keep_vmm::KillHandle,
    /// The vCPU thread: the exec's exit code and the frames the shim refused for want
    /// of memory.
    vcpu: Option<std::thread::JoinHandle<Result<(i32, u64), keep_vmm::Error>>>,
    /// Guest memory, bytes.
    mem: u64,
    /// The first host limit that stopped the Keep (output here; wall-clock and CPU
    /// from the VMM's result when the vCPU thread is joined).
    reason: Mutex<Option<(Limit, String)>>,
    digest: [u8; 48],
}

#[derive(serde::Deserialize)]
struct Hello {
    protocol: u32,
}

impl ProcessBackend {
    /// Starts an empty Keep for an attested launch: the exec is spawned with no
    /// stdio (its output is sealed on the channel), greets, and waits.
    pub fn start_attested(&self, limits: HostLimits) -> Result<AttestedKeep, LaunchError> {
        let (mut channel, exec_end) =
            UnixStream::pair().map_err(|e| LaunchError::Channel(e.to_string()))?;
        let mut cmd = Command::new(&self.exec.path);
        cmd.env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.fd_mappings(vec![FdMapping {
            parent_fd: OwnedFd::from(exec_end),
            child_fd: CHANNEL_FD,
        }])
        .map_err(|e| LaunchError::Channel(e.to_string()))?;
        let exec = crate::spawn::spawn(cmd).map_err(LaunchError::Spawn)?;
        let killer = Arc::new(Killer::new(&exec));
        if let Some(cap) = limits.memory_bytes {
            killer.limit_data(cap.saturating_add(RUNTIME_MEMORY_SLACK));
        }
        let watchdog = limits.wall.map(|w| Watchdog::start(w, killer.clone()));
        let keep = AttestedKeep {
            runner: Runner::Process {
                exec,
                killer,
                watchdog,
            },
            channel: channel
                .try_clone()
                .map_err(|e| LaunchError::Channel(e.to_string()))?,
            output: AtomicU64::new(0),
            output_cap: limits.output_bytes,
        };
        keep.greeted(&mut channel)
    }
}

impl KvmBackend {
    /// Starts an empty KVM Keep for an attested launch: guest memory is fixed now
    /// from the memory limit (limit + the exec's runtime), the VMM enforces the
    /// wall-clock limit and `cpu` (the vCPU thread's CPU time, the exec's start-up
    /// included); the exec greets on the relayed channel and waits.
    pub fn start_attested(
        &self,
        limits: HostLimits,
        cpu: Option<Duration>,
    ) -> Result<AttestedKeep, LaunchError> {
        let mem = Self::guest_memory(limits.memory_bytes)?;
        let mut config = Self::config(mem);
        config.wall_limit = limits.wall;
        config.cpu_limit = cpu;
        let (mut channel, vmm_end) =
            UnixStream::pair().map_err(|e| LaunchError::Channel(e.to_string()))?;
        let (launched_tx, launched_rx) =
            mpsc::channel::<Result<(keep_vmm::KillHandle, [u8; 48]), String>>();
        let vcpu = std::thread::Builder::new()
            .name("keep-vcpu".into())
            .spawn(move || -> Result<(i32, u64), keep_vmm::Error> {
                let keep = match Keep::launch_static(config, ExecImage::bytes(), exec_hash()) {
                    Ok(k) => k,
                    Err(e) => {
                        let _ = launched_tx.send(Err(e.to_string()));
                        return Err(e);
                    }
                };
                let _ = launched_tx.send(Ok((keep.kill_handle(), keep.digest())));
                // The exec's own stdio carries nothing in an attested launch (its
                // output is sealed on the channel): dropped.
                let mut server = RelayServer::new(
                    None,
                    Box::new(std::io::sink()),
                    Box::new(std::io::sink()),
                    Some(Box::new(vmm_end)),
                );
                let result = keep.run(&mut server);
                // Closes the VMM's end of the channel: the relay sees the end.
                drop(server);
                result.map(|exit| (exit.code, exit.stats.memory_refused_frames))
            })
            .map_err(|e| LaunchError::Vmm(e.to_string()))?;
        let (kill, digest) = match launched_rx.recv() {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                let _ = vcpu.join();
                return Err(LaunchError::Vmm(e));
            }
            Err(_) => {
                let _ = vcpu.join();
                return Err(LaunchError::Vmm("the vCPU thread ended".into()));
            }
        };
        let keep = AttestedKeep {
            runner: Runner::Kvm(KvmRunner {
                kill,
                vcpu: Some(vcpu),
                mem,
                reason: Mutex::new(None),
                digest,
            }),
            channel: channel
                .try_clone()
                .map_err(|e| LaunchError::Channel(e.to_string()))?,
            output: AtomicU64::new(0),
            output_cap: limits.output_bytes,
        };
        keep.greeted(&mut channel)
    }
}

/// The exec's SHA-384, computed by the build script (as `KvmBackend::run` uses it).
fn exec_hash() -> [u8; 48] {
    let mut h = [0u8; 48];
    if hex::decode_to_slice(crate::EXEC_SHA384, &mut h).is_err() {
        use sha2::Digest;
        h = sha2::Sha384::digest(ExecImage::bytes()).into();
    }
    h
}

impl KvmRunner {
    fn record(&self, limit: Limit, detail: String) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some((limit, detail));
        }
    }

    fn reason(&self) -> Option<(Limit, String)> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Joins the vCPU thread (once) and records a limit the VMM enforced.
    fn join(&mut self) {
        let Some(vcpu) = self.vcpu.take() else {
            return;
        };
        match vcpu.join() {
            Ok(Err(keep_vmm::Error::Timeout(d))) => self.record(
                Limit::WallClock,
                format!("still running after {:.3} s", d.as_secs_f64()),
            ),
            Ok(Err(keep_vmm::Error::CpuLimit(d))) => self.record(
                Limit::Cpu,
                format!(
                    "used more than {} ms of CPU time (exec start-up and compilation included)",
                    d.as_millis()
                ),
            ),
            // An exec that failed after the shim refused it memory (an allocation
            // failure aborts it): the memory limit, wherever it was hit.
            Ok(Ok((code, refused))) if code != 0 && refused > 0 => self.record(
                Limit::Memory,
                crate::kvm::guest_memory_ran_out(self.mem, ""),
            ),
            _ => {}
        }
    }
}

impl AttestedKeep {
    /// Reads the exec's greeting; a Keep that does not greet is destroyed.
    fn greeted(mut self, channel: &mut UnixStream) -> Result<Self, LaunchError> {
        let hello: Hello = match read_frame(channel, keep_wire::MAX_CONTROL_FRAME)
            .and_then(|f| f.expect_json(FrameKind::Hello))
        {
            Ok(h) => h,
            Err(e) => {
                self.terminate("no greeting");
                return Err(LaunchError::Channel(e.to_string()));
            }
        };
        if hello.protocol != PROTOCOL_VERSION {
            self.terminate("protocol");
            return Err(LaunchError::Protocol(hello.protocol));
        }
        Ok(self)
    }

    /// The launch channel (frames to and from the exec).
    pub fn channel(&self) -> std::io::Result<UnixStream> {
        self.channel.try_clone()
    }

    /// The exec's process id (process backend), or None for a KVM Keep.
    pub fn pid(&self) -> Option<u32> {
        match &self.runner {
            Runner::Process { exec, .. } => Some(exec.child.id()),
            Runner::Kvm(_) => None,
        }
    }

    /// `process` or `kvm`.
    pub fn backend(&self) -> &'static str {
        match &self.runner {
            Runner::Process { .. } => "process",
            Runner::Kvm(_) => "kvm",
        }
    }

    /// The runtime measurement the host reports to the Keep's attester (hex): the
    /// exec's SHA-384 on the process backend, the KVM launch digest (shim + exec +
    /// boot parameters, as `keep measure` prints it) on kvm. Without SEV-SNP or TDX
    /// both are only the host's word.
    pub fn measurement(&self) -> String {
        match &self.runner {
            Runner::Process { .. } => crate::EXEC_SHA384.to_string(),
            Runner::Kvm(k) => hex::encode(k.digest),
        }
    }

    /// Counts relayed output bytes; past the owner's cap the Keep is killed and this
    /// returns false.
    pub fn count_output(&self, bytes: u64) -> bool {
        let total = self.output.fetch_add(bytes, Ordering::Relaxed) + bytes;
        match self.output_cap {
            Some(cap) if total > cap => {
                let detail = format!("relayed more than {cap} bytes of sealed output");
                match &self.runner {
                    Runner::Process { killer, .. } => killer.kill(Limit::Output, detail),
                    Runner::Kvm(k) => {
                        k.record(Limit::Output, detail);
                        k.kill.kill();
                    }
                }
                false
            }
            _ => true,
        }
    }

    /// Bytes of output relayed so far.
    pub fn output_bytes(&self) -> u64 {
        self.output.load(Ordering::Relaxed)
    }

    /// The host limit that stopped the Keep, if one did (on kvm, wall-clock and CPU
    /// are known once the Keep was reaped by [`Self::terminate`] or [`Self::wait`]).
    pub fn limit_hit(&self) -> Option<(Limit, String)> {
        match &self.runner {
            Runner::Process { killer, .. } => killer.reason(),
            Runner::Kvm(k) => k.reason(),
        }
    }

    /// Kills the exec (idempotent) and reaps it (its secrets directory, which a
    /// killed exec cannot remove, goes first).
    pub fn terminate(&mut self, why: &str) {
        let _ = why;
        match &mut self.runner {
            Runner::Process { exec, watchdog, .. } => {
                // Through the pidfd: a no-op once the exec has ended.
                exec.handle.kill();
                let _ = exec.reap();
                if let Some(w) = watchdog.take() {
                    w.stop();
                }
            }
            Runner::Kvm(k) => {
                if k.vcpu.as_ref().is_some_and(|t| !t.is_finished()) {
                    k.kill.kill();
                }
                // The vCPU thread may be blocked relaying a write of the exec's onto
                // the channel, which nobody reads any more (e.g. past the output
                // cap): closing our end fails that write, so the kill is seen.
                let _ = self.channel.shutdown(std::net::Shutdown::Both);
                k.join();
            }
        }
        let _ = self.channel.shutdown(std::net::Shutdown::Both);
    }

    /// Waits for the exec to end on its own; returns the limit that stopped it.
    pub fn wait(&mut self) -> Option<(Limit, String)> {
        match &mut self.runner {
            Runner::Process {
                exec,
                killer,
                watchdog,
            } => {
                let _ = exec.reap();
                if let Some(w) = watchdog.take() {
                    w.stop();
                }
                killer.reason()
            }
            Runner::Kvm(k) => {
                k.join();
                k.reason()
            }
        }
    }

    /// Whether the exec has ended.
    pub fn has_ended(&mut self) -> bool {
        match &mut self.runner {
            // Without reaping it: `terminate` or `wait` reap (after the clean-up).
            Runner::Process { exec, .. } => exec.handle.has_ended(),
            Runner::Kvm(k) => k.vcpu.as_ref().is_none_or(|t| t.is_finished()),
        }
    }
}

impl Drop for AttestedKeep {
    fn drop(&mut self) {
        self.terminate("dropped");
    }
}
