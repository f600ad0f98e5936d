//! The KVM backend: the same exec, inside a KVM Keep (`keep-vmm` + `keep-shim`).
//!
//! The host speaks the identical launch protocol: its end of a socketpair goes to
//! [`converse`](crate::process), the other end to the VMM, which relays the bytes
//! the shim sends and receives on the exec's fd 3 through the call block. stdout
//! and stderr are relayed (and counted against the output cap), stdin is read
//! from the host's stdin when the spec inherits it. Memory is fixed at launch;
//! wall-clock and CPU time are enforced by the VMM's watchdog.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use keep_vmm::{Keep, KeepConfig, KillHandle, RelayServer};
use keep_wire::{LaunchSpec, Limit, Outcome, StdioTarget};

use crate::exec_image::ExecImage;
use crate::memory::{MemoryBudget, Phase};
use crate::process::{ConverseError, LaunchError, RunRequest, Seen, converse};
use crate::result::{HostStats, RunResult};

/// Guest memory for the exec itself before compiling (see [`crate::memory`]).
pub const KVM_RUNTIME_MEMORY: u64 = crate::memory::RUNTIME_BASE_MEMORY;
/// Largest guest memory the VMM takes.
pub const KVM_MAX_MEMORY: u64 = 3 << 30;

/// The environment the exec boots with in a KVM Keep (measured with the boot
/// parameters): it tells the exec to configure wasmtime for one thread and no signals.
pub const KVM_EXEC_ENV: &str = "KEEP_BACKEND=kvm";

/// Runs Keeps as KVM virtual machines.
#[derive(Debug, Clone, Default)]
pub struct KvmBackend;

impl KvmBackend {
    /// Fails with [`LaunchError::NoKvm`] when /dev/kvm cannot be opened.
    pub fn new() -> Result<Self, LaunchError> {
        if !keep_vmm::kvm_available() {
            return Err(LaunchError::NoKvm);
        }
        Ok(Self)
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
            Keep::measure_with_payload_hash(&Self::config(mem), ExecImage::bytes(), exec_hash())
                .map_err(|e| LaunchError::Vmm(e.to_string()))?;
        Ok((digest, mem))
    }

    /// SHA-384 of the embedded shim (the first measured layer), hex.
    pub fn shim_sha384() -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha384::digest(keep_vmm::SHIM))
    }

    /// Runs one workload to its end, like [`crate::ProcessBackend::run`].
    pub fn run(
        &self,
        request: RunRequest,
        stdout: std::fs::File,
        stderr: std::fs::File,
    ) -> Result<RunResult, LaunchError> {
        let started = Instant::now();
        let mut request = request;
        // Sockets: a preview 1 module gets the declared sockets preopened (the VMM
        // binds and connects them before the Keep starts and serves them by handle;
        // the exec opens socket i by the name /.keep/sock/<i>). A preview 2
        // component makes its own (wasi:sockets), and the VMM lets it bind, listen
        // and connect only to the declared addresses. Every byte crosses the host
        // in clear.
        let component = is_component(&request.workload);
        let specs = socket_specs(&request.spec)?;
        let sockets = if component {
            keep_vmm::SocketServer::dynamic(&specs)
        } else {
            keep_vmm::SocketServer::open(&specs)
                .map_err(|e| LaunchError::Unsupported(e.to_string()))?
        };
        let spec = &mut request.spec;
        // One thread in the Keep; no host directories to cache compiled code in.
        spec.parallel_compilation = false;
        spec.compile_cache_dir = None;
        // CPU time is enforced by the VMM on the vCPU thread (the exec's epoch
        // ticker would need a second thread).
        let cpu_ms = spec.limits.cpu_ms.take();
        // Preopened directories: the VMM opens them itself and serves the files
        // beneath them; the exec opens preopen i by the name /.keep/dir/<i>.
        let mut dirs = Vec::new();
        for (i, d) in spec.dirs.iter_mut().enumerate() {
            dirs.push((d.source.clone(), d.writable));
            d.source = keep_vmm::preopen_guest_source(i);
        }
        // With sockets, the exec's hidden placeholder directory (see p1_run) is an
        // empty read-only one the host makes, served after the declared ones.
        let _holder = if spec.sockets.is_empty() || component {
            None
        } else {
            let d = EmptyDir::new().map_err(|e| {
                LaunchError::Unsupported(format!(
                    "cannot make the socket placeholder directory: {e}"
                ))
            })?;
            dirs.push((d.0.to_string_lossy().into_owned(), false));
            Some(d)
        };
        let files = keep_vmm::FileServer::open(&dirs).map_err(|e| {
            let guest = spec
                .dirs
                .iter()
                .zip(&dirs)
                .find(|(_, (src, _))| *src == e.path)
                .map(|(d, _)| d.guest_path.clone())
                .unwrap_or_default();
            LaunchError::Unsupported(format!(
                "cannot open directory {} for {guest}: {}",
                e.path, e.source
            ))
        })?;
        let budget = MemoryBudget::new(spec.limits.memory_bytes, request.workload.len() as u64);
        let mem = Self::guest_memory_for(&budget)?;
        // The workload's share, the default when none is given: the exec's
        // limiter holds it there, and the rest of guest memory is the runtime's.
        spec.limits.memory_bytes = Some(budget.workload);
        let mut config = Self::config(mem);
        config.wall_limit = request.limits.wall;
        config.cpu_limit = cpu_ms.map(Duration::from_millis);

        let (mut channel, vmm_end) =
            UnixStream::pair().map_err(|e| LaunchError::Channel(e.to_string()))?;
        let reason: Arc<Mutex<Option<(Limit, String)>>> = Arc::default();
        let output = Arc::new(AtomicU64::new(0));
        let cap = request.limits.output_bytes;
        let (kill_tx, kill_rx) = mpsc::channel::<(KillHandle, [u8; 48])>();
        let stdin_inherit = spec.stdio[0] == StdioTarget::Inherit;
        let (reason2, output2) = (reason.clone(), output.clone());
        let vm = std::thread::Builder::new()
            .name("keep-vcpu".into())
            .spawn(
                move || -> Result<(i32, Duration, keep_vmm::Stats), keep_vmm::Error> {
                    let keep = Keep::launch_static(config, ExecImage::bytes(), exec_hash())?;
                    let kill = keep.kill_handle();
                    let kill_all = kill.clone();
                    let _ = kill_tx.send((kill.clone(), keep.digest()));
                    let counter = Counter {
                        total: output2,
                        cap,
                        kill,
                        reason: reason2,
                    };
                    let stdin: Option<Box<dyn io::Read + Send>> =
                        stdin_inherit.then(|| Box::new(io::stdin()) as Box<dyn io::Read + Send>);
                    let (out, out_writer) = Counted::start(stdout, counter.clone());
                    let (err, err_writer) = Counted::start(stderr, counter);
                    let mut server = RelayServer::new(
                        stdin,
                        Box::new(out),
                        Box::new(err),
                        Some(Box::new(vmm_end)),
                    );
                    server.echo_log = std::env::var_os("KEEP_VMM_LOG").is_some();
                    server.files = Some(files);
                    server.sockets = Some(sockets);
                    let result = keep.run(&mut server);
                    let cpu = thread_cpu_time();
                    // Dropping the server closes the VMM's end of the channel, so the
                    // host's conversation ends too, and the output queues: everything
                    // the Keep wrote is out before the host reports how it ended.
                    drop(server);
                    // After a kill or a limit, a writer blocked on a reader that
                    // stopped reading is left behind (it ends with the process)
                    // rather than holding up the report; otherwise all is written.
                    let stopping = kill_all.is_killed();
                    for w in [out_writer, err_writer] {
                        join_writer(w, stopping);
                    }
                    result.map(|exit| (exit.code, cpu, exit.stats))
                },
            )
            .map_err(|e| LaunchError::Vmm(e.to_string()))?;

        let mut seen = Seen::default();
        let report = converse(&mut channel, &request, &mut seen);
        let launched = kill_rx.try_recv().ok();
        if report.is_err()
            && let Some((kill, _)) = &launched
        {
            kill.kill();
        }
        drop(channel);
        let joined = vm
            .join()
            .map_err(|_| LaunchError::Vmm("the vCPU thread panicked".into()))?;
        let stats = joined.as_ref().ok().map(|(_, _, s)| s.clone());
        let host = HostStats {
            // What the Keep used, by the host's count of the guest memory it
            // backed (the VM's size is reported apart).
            peak_rss_bytes: stats
                .as_ref()
                .and_then(|s| s.host_resident_bytes)
                .unwrap_or_default(),
            vm_memory_bytes: Some(mem),
            cpu_time: joined.as_ref().map(|(_, cpu, _)| *cpu).unwrap_or_default(),
            wall_time: started.elapsed(),
            output_bytes: cap.map(|_| output.load(Ordering::Relaxed)),
            vm_exits: stats.as_ref().map(|s| s.exits),
            host_calls: stats.as_ref().map(|s| s.host_calls),
            guest_used_bytes: stats.as_ref().map(|s| s.guest_peak_bytes),
            launch_digest: launched.map(|(_, d)| d),
        };
        let recorded = reason.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let outcome = match (&joined, recorded, &report) {
            (_, Some((limit, detail)), _) => Outcome::LimitExceeded { limit, detail },
            (Err(keep_vmm::Error::Timeout(d)), _, _) => Outcome::LimitExceeded {
                limit: Limit::WallClock,
                detail: format!("still running after {:.3} s", d.as_secs_f64()),
            },
            (Err(keep_vmm::Error::CpuLimit(d)), _, _) => Outcome::LimitExceeded {
                limit: Limit::Cpu,
                detail: format!(
                    "used more than {} ms of CPU time (exec start-up and compilation included)",
                    d.as_millis()
                ),
            },
            (_, None, Ok(r)) => r.outcome.clone(),
            (_, None, Err(ConverseError::Protocol(v))) => return Err(LaunchError::Protocol(*v)),
            // The shim could not give the exec memory it asked for, and the exec
            // ended without a report (an allocation failure aborts it): the memory
            // limit, whichever allocation it was.
            (Ok((_, _, s)), None, Err(ConverseError::Wire(_))) if s.memory_refused_frames > 0 => {
                Outcome::LimitExceeded {
                    limit: Limit::Memory,
                    detail: budget.ran_out(Phase::of(seen.has_started())),
                }
            }
            (Err(e), None, Err(ConverseError::Wire(_))) => Outcome::Failed {
                message: format!("the KVM Keep stopped: {e}"),
            },
            (Ok((code, _, _)), None, Err(ConverseError::Wire(e))) => Outcome::Failed {
                message: format!("the exec ended without a report (exit {code}): {e}"),
            },
        };
        Ok(RunResult {
            outcome,
            report: report.ok(),
            host,
            warnings: seen.warnings,
        })
    }
}

/// How a Keep whose guest memory (`mem` bytes) ran out is reported; `during` says
/// where (e.g. " while compiling").
pub(crate) fn guest_memory_ran_out(mem: u64, during: &str) -> String {
    format!(
        "the Keep's {} MiB of guest memory ran out{during} (the workload's limit plus {} MiB for the runtime)",
        mem >> 20,
        KVM_RUNTIME_MEMORY >> 20
    )
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

/// Counts output against the cap; past it, records the limit and stops the Keep.
#[derive(Clone)]
struct Counter {
    total: Arc<AtomicU64>,
    cap: Option<u64>,
    kill: KillHandle,
    reason: Arc<Mutex<Option<(Limit, String)>>>,
}

/// One output stream of the Keep: counted on the vCPU thread, written to the sink
/// by a writer thread, so the guest fills its next call block while the host
/// writes the last one (and a slow reader does not stall every exit).
struct Counted {
    queue: Arc<Queue>,
    counter: Counter,
}

/// Blocks in flight per stream before the vCPU waits for the writer.
const WRITE_QUEUE: usize = 8;

/// The blocks between the vCPU thread and a writer thread. A full queue makes the
/// vCPU wait, but never past a kill or a limit: a reader that stopped reading (a
/// full pipe) cannot hold up the Keep's stop.
#[derive(Default)]
struct Queue {
    state: Mutex<(std::collections::VecDeque<Vec<u8>>, bool)>,
    changed: std::sync::Condvar,
}

impl Queue {
    /// Queues a block; false when the Keep is being stopped and the queue stays full.
    fn push(&self, block: Vec<u8>, kill: &KillHandle) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.0.len() >= WRITE_QUEUE {
            if kill.is_killed() {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, Duration::from_millis(5))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        st.0.push_back(block);
        self.changed.notify_all();
        true
    }

    /// The next block, or None once closed and drained.
    fn pop(&self) -> Option<Vec<u8>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(b) = st.0.pop_front() {
                self.changed.notify_all();
                return Some(b);
            }
            if st.1 {
                return None;
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.changed.notify_all();
    }
}

impl Counted {
    fn start(sink: std::fs::File, counter: Counter) -> (Self, std::thread::JoinHandle<()>) {
        let queue = Arc::new(Queue::default());
        // A bigger pipe (as the process backend's relay asks for) when the sink is one.
        let _ = rustix::pipe::fcntl_setpipe_size(&sink, 1 << 20);
        let q = queue.clone();
        let writer = std::thread::spawn(move || {
            let mut sink = sink;
            // After the reader went away (`| head`) output is dropped, as the
            // process backend does, so the workload is not stopped by a closed pipe.
            let mut sink_ok = true;
            while let Some(block) = q.pop() {
                if sink_ok && sink.write_all(&block).is_err() {
                    sink_ok = false;
                }
            }
        });
        (Self { queue, counter }, writer)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let c = &self.counter;
        let before = c.total.fetch_add(buf.len() as u64, Ordering::Relaxed);
        let mut pass = buf;
        if let Some(cap) = c.cap
            && before + buf.len() as u64 > cap
        {
            pass = &buf[..usize::try_from(cap.saturating_sub(before)).unwrap_or(0)];
            let mut reason = c.reason.lock().unwrap_or_else(|e| e.into_inner());
            if reason.is_none() {
                *reason = Some((
                    Limit::Output,
                    format!("wrote more than {cap} bytes to stdout and stderr"),
                ));
                c.kill.kill();
            }
        }
        if !pass.is_empty() {
            // Dropped only when the Keep is being stopped and nobody reads.
            let _ = self.queue.push(pass.to_vec(), &c.kill);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Joins an output writer; when the Keep is being stopped, waits at most 0.5 s for it
/// (a reader that stopped reading would block it forever) and then leaves it.
fn join_writer(writer: std::thread::JoinHandle<()>, stopping: bool) {
    if stopping {
        let deadline = Instant::now() + Duration::from_millis(500);
        while !writer.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !writer.is_finished() {
            return;
        }
    }
    let _ = writer.join();
}

/// CPU time of the calling thread (the vCPU thread: guest time included).
fn thread_cpu_time() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
