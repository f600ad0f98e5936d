//! The host side of Keep: backends that create Keeps, the launcher that feeds the
//! exec over the launch channel, host-enforced limits and platform detection.
//!
//! **Trusts:** the host owner's configuration and limits, and the exec embedded in
//! it at build time (run from a sealed in-memory copy, never from a file on disk).
//! Its own directories (the agent's `data_dir`, `keep run`'s cache) only when no
//! other user can write them.
//! **Does not trust:** the exec and the workload inside the Keep. Everything the exec
//! sends back is parsed as untrusted, the host measures resource use itself (from
//! the kernel, not from the exec's report), and limits are enforced from outside:
//! a Keep that ignores them is killed.
//!
//! The host never interprets the workload: it hands the bytes to the exec as one
//! frame and relays output. With an attested launch ([`AttestedKeep`]) it sees only
//! the nonce, the Keep's public key, the evidence and ciphertext.

mod attested;
mod backend;
mod enforce;
mod exec_image;
mod host_dirs;
mod jail;
mod kvm;
mod launch;
mod memory;
mod platform;
mod process;
mod program;
mod result;
mod secrets;
mod spawn;

pub use attested::AttestedKeep;
pub use backend::{Backend, KeepEnd, KeepFigures, KeepPlan, KeepStdio, Launch, RunningKeep, run};
pub use exec_image::{EXEC_SHA384, ExecImage};
pub use host_dirs::{HostDirError, default_cache_dir, ensure_private_dir};
pub use jail::{
    JAIL_INNER_ARG, JAIL_OUTER_ARG, JAIL_PROBE_ARG, JailMode, LAYERS as JAIL_LAYERS,
    NOT_YET as JAIL_NOT_YET, ProbeCheck as JailProbeCheck, ProbeReport as JailProbeReport,
    inner_main as jail_inner_main, outer_main as jail_outer_main, probe as jail_probe,
    probe_main as jail_probe_main, run_probe as jail_probe_run,
};
pub use kvm::{KVM_EXEC_ENV, KVM_RUNTIME_MEMORY, KvmBackend, VMM_CHILD_ARG, vmm_child_main};
pub use launch::{HostLimits, LaunchError, RunRequest, VmmError};
pub use memory::{
    COMPILE_BYTES_PER_BYTE, DEFAULT_WORKLOAD_MEMORY, MemoryBudget, Phase, RUNTIME_BASE_MEMORY,
};
pub use platform::{BackendKind, BackendStatus, PlatformInfo, probe};
pub use process::ProcessBackend;
pub use result::{EXIT_KEEP_ERROR, EXIT_TRAP, RunResult, exit_code_for_limit};
