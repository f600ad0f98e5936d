//! Errors of a Keep launch or run.

/// Why a Keep did not run to a normal exit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("/dev/kvm is not available: {0}")]
    NoKvm(std::io::Error),
    #[error("KVM: {what}: {source}")]
    Kvm {
        what: &'static str,
        source: kvm_ioctls::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("invalid shim image: {0}")]
    Shim(&'static str),
    #[error("guest memory: {0}")]
    Memory(String),
    #[error(
        "the Keep faulted: vector {vector} ({name}), error code {error_code:#x}, rip {rip:#x}, cr2 {cr2:#x}"
    )]
    Fault {
        vector: u64,
        name: &'static str,
        error_code: u64,
        rip: u64,
        cr2: u64,
    },
    #[error("the shim stopped the Keep: {0}")]
    ShimAbort(String),
    #[error("the guest broke the host-call protocol: {0}")]
    Protocol(String),
    #[error("wall-clock limit of {0:?} reached; the Keep was killed")]
    Timeout(std::time::Duration),
    #[error("CPU-time limit of {0:?} reached; the Keep was killed")]
    CpuLimit(std::time::Duration),
    #[error("the Keep was killed by the host")]
    Killed,
    #[error("the Keep stopped unexpectedly: {0}")]
    Unexpected(String),
}

impl Error {
    pub(crate) fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
        move |source| Error::Kvm { what, source }
    }
}

/// Name of an x86 exception vector.
pub(crate) fn vector_name(v: u64) -> &'static str {
    match v {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD error",
        _ => "unknown",
    }
}
