//! What the host enforces from outside a Keep, the same on every backend: one
//! [`Killer`] per Keep (SIGKILL through its process's pidfd, remembering the first
//! limit that asked), the wall-clock [`Watchdog`], the [`UsageWatch`] over memory
//! and CPU time read from the kernel, and the output [`relay`] that counts every
//! byte against the cap.
//!
//! The Keep's process is the exec (process backend) or the VMM (KVM): either way
//! it is untrusted, and none of this asks it anything.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use keep_wire::Limit;

use crate::memory::{MemoryBudget, Phase};
use crate::result::HostStats;
use crate::spawn::{Exec, ExecHandle};

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

    /// Kills the Keep for no limit (a terminate, a broken conversation).
    pub(crate) fn stop(&self) {
        self.exec.kill();
    }

    pub(crate) fn reason(&self) -> Option<(Limit, String)> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Sets RLIMIT_DATA (soft and hard) of `pid`, a Keep's process the host has not
/// reaped (its pid is still its own).
pub(crate) fn limit_data(pid: rustix::process::Pid, bytes: u64) {
    let limit = rustix::process::Rlimit {
        current: Some(bytes),
        maximum: Some(bytes),
    };
    let _ = rustix::process::prlimit(Some(pid), rustix::process::Resource::Data, limit);
}

/// Copies one output stream of the Keep to a sink, counting bytes against the cap.
/// Uses `splice(2)` (no copy through user space) when the sink allows it, and
/// plain reads and writes otherwise (e.g. a terminal).
pub(crate) fn relay(
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

/// Watches the Keep's process from the kernel's figures every 10 ms:
/// - memory (process backend): kills the Keep when its private resident pages
///   (the workload's memories, the runtime's heap and the compiler's) pass its
///   budget. Polled, so a burst can overshoot by what it allocates in one period;
///   RLIMIT_DATA is the backstop the exec would feel.
/// - CPU time (both): a backstop [`CPU_SLACK`] past the limit the Keep enforces
///   itself (the exec's own count, or the VMM's), so a Keep that ignores its limit
///   is stopped anyway.
///
/// It also keeps the peak it saw, for the host's per-Keep figures.
pub(crate) struct UsageWatch {
    done: mpsc::Sender<()>,
    thread: thread::JoinHandle<()>,
    seen: Arc<Observed>,
}

/// The memory budget a watch holds a Keep to (it may grow: see
/// `RunningKeep::expect_workload`), and whether the exec said it started (None:
/// the host cannot know, the launch being sealed).
pub(crate) type WatchedMemory = (Arc<Mutex<MemoryBudget>>, Option<Arc<AtomicBool>>);

/// What the watch may stop a Keep for.
pub(crate) struct WatchLimits {
    /// None: memory not watched (a VM of fixed size).
    pub(crate) memory: Option<WatchedMemory>,
    pub(crate) cpu: Option<Duration>,
}

/// How much CPU time past its limit a Keep gets before the host kills it.
pub(crate) const CPU_SLACK: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(crate) struct Observed {
    pub(crate) peak_private_bytes: AtomicU64,
}

/// How often the Keep's process is read (/proc/PID/statm and stat: ~20 us).
const POLL: Duration = Duration::from_millis(10);

impl UsageWatch {
    /// Watches `pid` (the Keep's program: the process the killer kills, or its
    /// child in a jail).
    pub(crate) fn start(
        limits: WatchLimits,
        killer: Arc<Killer>,
        pid: rustix::process::Pid,
    ) -> Self {
        let (done, rx) = mpsc::channel::<()>();
        let pid = pid.as_raw_nonzero();
        let (statm, stat) = (format!("/proc/{pid}/statm"), format!("/proc/{pid}/stat"));
        let seen = Arc::new(Observed::default());
        let observed = seen.clone();
        let thread = thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(POLL) {
                let Some(used) = private_resident_bytes(&statm) else {
                    return;
                };
                observed
                    .peak_private_bytes
                    .fetch_max(used, Ordering::Relaxed);
                if let Some((budget, started)) = &limits.memory {
                    let budget = *budget.lock().unwrap_or_else(|e| e.into_inner());
                    if used > budget.total() {
                        let phase = started
                            .as_ref()
                            .map_or(Phase::Unknown, |s| Phase::of(s.load(Ordering::Acquire)));
                        killer.kill(Limit::Memory, budget.ran_out(phase));
                        return;
                    }
                }
                if let Some(cpu) = limits.cpu
                    && cpu_time(&stat).is_some_and(|t| t > cpu + CPU_SLACK)
                {
                    killer.kill(
                        Limit::Cpu,
                        format!(
                            "used more than {} ms of CPU time (the host's count: the Keep did not stop itself)",
                            cpu.as_millis()
                        ),
                    );
                    return;
                }
            }
        });
        Self { done, thread, seen }
    }

    /// What it has seen so far (shared with the watch thread).
    pub(crate) fn observed(&self) -> Arc<Observed> {
        self.seen.clone()
    }

    /// Stops watching; returns what it saw.
    pub(crate) fn stop(self) -> Arc<Observed> {
        let _ = self.done.send(());
        let _ = self.thread.join();
        self.seen
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

/// User + system CPU time of a process and of the children it waited for, from
/// /proc/PID/stat (readable until it is reaped, so also for an ended Keep; a
/// jail's outer stage has waited for the program).
pub(crate) fn cpu_time(stat: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_nanos(
        utime
            .saturating_add(stime)
            .saturating_mul(1_000_000_000 / ticks),
    ))
}

/// Resource use of the (single) reaped child, from the kernel.
pub(crate) fn children_usage() -> HostStats {
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
