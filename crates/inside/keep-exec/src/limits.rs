//! Limits enforced inside the exec: memory (a resource limiter) and CPU time
//! (watched during compilation, epoch interruption while running). The host
//! enforces its own, coarser limits from outside.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keep_wire::Limit;
use wasmtime::{Engine, ResourceLimiter};

/// The error that stops a workload at a limit; found again by downcasting.
#[derive(Debug)]
pub struct LimitHit {
    pub limit: Limit,
    pub detail: String,
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} limit: {}", self.limit.name(), self.detail)
    }
}

impl std::error::Error for LimitHit {}

/// Tracks linear memories and tables of one store against a cap.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    cap: Option<u64>,
    current: u64,
    peak: u64,
}

/// Bytes counted per table element.
const TABLE_ELEMENT_BYTES: u64 = 8;

impl MemoryLimiter {
    pub fn new(cap: Option<u64>) -> Self {
        Self {
            cap,
            current: 0,
            peak: 0,
        }
    }

    /// Peak bytes of memories and tables so far.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    fn grow(&mut self, current: u64, desired: u64, what: &str) -> wasmtime::Result<bool> {
        let total = self.current.saturating_sub(current).saturating_add(desired);
        if let Some(cap) = self.cap
            && total > cap
        {
            return Err(wasmtime::Error::new(LimitHit {
                limit: Limit::Memory,
                detail: format!(
                    "{what} growth to {} would bring the workload to {} of {} allowed",
                    human_bytes(desired),
                    human_bytes(total),
                    human_bytes(cap)
                ),
            }));
        }
        self.current = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current as u64, desired as u64, "linear memory")
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(
            (current as u64).saturating_mul(TABLE_ELEMENT_BYTES),
            (desired as u64).saturating_mul(TABLE_ELEMENT_BYTES),
            "table",
        )
    }
}

/// Formats a byte count for messages.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Process CPU time so far.
pub fn cpu_time() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Ticks the engine's epoch while a CPU budget is in force.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

/// How often the epoch advances, i.e. how late a CPU budget can be noticed.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

impl EpochTicker {
    pub fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.clone();
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        });
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A CPU budget and the process CPU time it counts from (the start of
/// compilation: compiling counts against the budget as running does).
#[derive(Debug, Clone, Copy)]
pub struct CpuBudget {
    pub limit: Duration,
    pub since: Duration,
}

impl CpuBudget {
    /// A budget counted from now.
    pub fn starting_now(limit: Duration) -> Self {
        Self {
            limit,
            since: cpu_time(),
        }
    }

    /// The limit hit, if the process used more than the budget since `since`;
    /// `during` says where (e.g. " while compiling").
    pub fn check(&self, during: &str) -> Option<LimitHit> {
        let used = cpu_time().saturating_sub(self.since);
        (used > self.limit).then(|| LimitHit {
            limit: Limit::Cpu,
            detail: format!(
                "used {} ms of CPU time{during}, budget {} ms",
                used.as_millis(),
                self.limit.as_millis()
            ),
        })
    }
}

/// Installs the CPU budget on a store: at each epoch tick the callback compares the
/// process CPU time used since the budget's start with its limit.
pub fn install_cpu_budget<T: 'static>(store: &mut wasmtime::Store<T>, budget: CpuBudget) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| match budget.check(" (compilation included)") {
        Some(hit) => Err(wasmtime::Error::new(hit)),
        None => Ok(wasmtime::UpdateDeadline::Continue(1)),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cap_counts_all_growth() {
        let mut l = MemoryLimiter::new(Some(3 * 65536));
        assert!(l.memory_growing(0, 65536, None).unwrap());
        assert!(l.memory_growing(65536, 2 * 65536, None).unwrap());
        let err = l.memory_growing(2 * 65536, 4 * 65536, None).unwrap_err();
        let hit = err.downcast_ref::<LimitHit>().unwrap();
        assert_eq!(hit.limit, Limit::Memory);
        assert_eq!(l.peak(), 2 * 65536);
        // A table counts too.
        assert!(l.table_growing(0, 8192, None).unwrap());
        assert!(l.table_growing(8192, 8193, None).is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(64 * 1024 * 1024), "64.0 MiB");
    }
}
