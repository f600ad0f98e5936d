//! What a Keep's memory limit covers, the same on every backend.
//!
//! A Keep gets two shares of memory:
//! - **the workload's**: its linear memories and tables, `--memory` (or the
//!   manifest's `memory`), [`DEFAULT_WORKLOAD_MEMORY`] when none is given. The
//!   exec's limiter stops the workload exactly there.
//! - **the runtime's**: the exec, wasmtime, and compiling the workload, which the
//!   Keep does itself (JIT happens inside). Compiling needs memory in proportion
//!   to the module: [`RUNTIME_BASE_MEMORY`] plus [`COMPILE_BYTES_PER_BYTE`] times
//!   the module's size (measured: wasmtime 48 compiling YoWASP's 68.9 MB Yosys
//!   peaks at 1.77 GB on two threads, 1.98 GB in a KVM Keep).
//!
//! The Keep as a whole may use both shares, so a program that fits its `--memory`
//! compiles and runs the same with or without a compile cache. On the process
//! backend the host watches the exec's memory (and sets RLIMIT_DATA well above it
//! as a backstop); a KVM Keep's guest memory is the sum, and the shim ends the
//! Keep at its first refused frame. Either way, running out is the memory limit
//! (status 151) with one line saying where and what to raise.

/// Workload memory when no limit is given, on every backend.
pub const DEFAULT_WORKLOAD_MEMORY: u64 = 768 << 20;
/// The runtime's memory before compiling: the exec's image, wasmtime, WASI.
pub const RUNTIME_BASE_MEMORY: u64 = 256 << 20;
/// Bytes of compiler memory allowed per byte of module (or component).
pub const COMPILE_BYTES_PER_BYTE: u64 = 30;

/// The memory one Keep may use, in its two shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// The workload's linear memories and tables.
    pub workload: u64,
    /// The exec and compiling the workload.
    pub runtime: u64,
    /// Size of the module the runtime share was computed for.
    pub module_bytes: u64,
}

/// Where in the Keep's life memory ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Compiling,
    Running,
    /// The host cannot tell (an attested launch: the exec's frames are sealed).
    Unknown,
}

impl Phase {
    /// Running once the exec said it started the workload, compiling before.
    pub fn of(started: bool) -> Self {
        if started {
            Phase::Running
        } else {
            Phase::Compiling
        }
    }
}

impl MemoryBudget {
    /// The budget for a limit (None: the default) and a module of `module_bytes`.
    pub fn new(limit: Option<u64>, module_bytes: u64) -> Self {
        Self {
            workload: limit.unwrap_or(DEFAULT_WORKLOAD_MEMORY),
            runtime: RUNTIME_BASE_MEMORY
                .saturating_add(module_bytes.saturating_mul(COMPILE_BYTES_PER_BYTE)),
            module_bytes,
        }
    }

    /// Both shares together: what the Keep as a whole may use.
    pub fn total(&self) -> u64 {
        self.workload.saturating_add(self.runtime)
    }

    /// The one line for a Keep that ran out of memory `during` a phase.
    pub fn ran_out(&self, during: Phase) -> String {
        let doing = match during {
            Phase::Compiling => " while compiling",
            Phase::Running => " while running",
            Phase::Unknown => "",
        };
        format!(
            "the Keep ran out of memory{doing}: {} MiB in all ({} MiB for the workload, {} MiB for the runtime: {} MiB + {COMPILE_BYTES_PER_BYTE}x the {:.1} MB module); raise --memory",
            mib(self.total()),
            mib(self.workload),
            mib(self.runtime),
            mib(RUNTIME_BASE_MEMORY),
            self.module_bytes as f64 / 1e6,
        )
    }
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_applies_and_the_runtime_grows_with_the_module() {
        let b = MemoryBudget::new(None, 0);
        assert_eq!(b.workload, DEFAULT_WORKLOAD_MEMORY);
        assert_eq!(b.runtime, RUNTIME_BASE_MEMORY);
        let big = MemoryBudget::new(Some(256 << 20), 68_860_682);
        assert_eq!(big.workload, 256 << 20);
        assert_eq!(big.runtime, RUNTIME_BASE_MEMORY + 30 * 68_860_682);
        assert_eq!(big.total(), big.workload + big.runtime);
        assert_eq!(
            MemoryBudget::new(Some(u64::MAX), u64::MAX).total(),
            u64::MAX
        );
    }

    #[test]
    fn the_line_says_where_and_what_to_raise() {
        let line = MemoryBudget::new(Some(64 << 20), 10_000_000).ran_out(Phase::Compiling);
        assert!(line.contains("while compiling"), "{line}");
        assert!(line.contains("raise --memory"), "{line}");
        assert!(line.contains("64 MiB for the workload"), "{line}");
        assert!(line.contains("543 MiB for the runtime"), "{line}");
        assert!(!line.contains('\n'));
        let line = MemoryBudget::new(None, 0).ran_out(Phase::Running);
        assert!(line.contains("while running"), "{line}");
    }
}
