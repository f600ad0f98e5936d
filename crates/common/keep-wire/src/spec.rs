//! Structured payloads of the launch channel.

use serde::{Deserialize, Serialize};

/// Everything the exec needs to run one workload, sent by the host launcher.
///
/// On the process backend the launcher builds it from the tenant's manifest and the
/// host owner's limits. It never carries the workload itself (that is its own frame)
/// and never a host path to the workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchSpec {
    /// `argv[0]` as the workload sees it.
    pub program_name: String,
    /// Arguments after `argv[0]`.
    pub args: Vec<String>,
    /// The complete environment of the workload: only what the tenant declared.
    pub env: Vec<(String, String)>,
    /// Standard streams, fds 0, 1 and 2.
    pub stdio: [StdioTarget; 3],
    /// Preopened directories, in order (fds 3.. on WASI preview 1).
    pub dirs: Vec<DirSpec>,
    /// Preopened sockets, in order, after the directories.
    pub sockets: Vec<FdSpec>,
    /// Limits enforced inside the exec.
    pub limits: Limits,
    /// Expected SHA-384 of the workload (lowercase hex); the exec refuses others.
    pub workload_sha384: Option<String>,
    /// Compile with several threads (off inside the KVM Keep).
    pub parallel_compilation: bool,
    /// Directory for compiled-code caching across runs (process backend only; a
    /// Keep whose memory the host cannot read never loads code from the host's disk).
    /// Entries are keyed by SHA-256 of the workload bytes, the engine configuration
    /// and the runtime version, so a hit is always the same workload compiled the
    /// same way.
    pub compile_cache_dir: Option<String>,
}

/// Where one standard stream goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdioTarget {
    /// The exec's own fd of the same number (relayed by the host).
    #[default]
    Inherit,
    /// Empty input / discarded output.
    Null,
}

/// A preopened directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirSpec {
    /// Where the exec opens it (process backend: a path on the host).
    pub source: String,
    /// The name the workload sees.
    pub guest_path: String,
    /// Whether the workload may create, write and delete in it.
    pub writable: bool,
}

/// A preopened socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FdSpec {
    /// Name published in `FD_NAMES`.
    pub name: String,
    pub kind: SocketKind,
    /// Address to bind (listen) or host name / address to connect to.
    pub host: String,
    pub port: u16,
}

/// Direction of a preopened socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SocketKind {
    Listen,
    Connect,
}

/// Limits the exec enforces; the host enforces its own outer limits as well.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Total bytes of linear memories and tables.
    pub memory_bytes: Option<u64>,
    /// CPU time of the workload, in milliseconds.
    pub cpu_ms: Option<u64>,
    /// Open files and sockets at once (beyond stdio and preopens).
    pub open_files: Option<u32>,
}

/// The limits a workload can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    Memory,
    Cpu,
    WallClock,
    Output,
    OpenFiles,
}

impl Limit {
    /// The name used in messages, flags and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Cpu => "cpu",
            Self::WallClock => "wall-clock",
            Self::Output => "output",
            Self::OpenFiles => "open-files",
        }
    }
}

/// How the workload ended, as the exec saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// `proc_exit(code)` or a return from `_start` / `run`.
    Exited { code: i32 },
    /// A WebAssembly trap.
    Trapped {
        reason: String,
        backtrace: Vec<String>,
    },
    /// A limit enforced inside the exec.
    LimitExceeded { limit: Limit, detail: String },
    /// The workload could not be loaded or linked, or the exec failed.
    Failed { message: String },
}

/// Sent once the workload compiled, just before it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// `module` (WASI preview 1) or `component` (WASI preview 2).
    pub kind: String,
    /// Things the tenant should know, e.g. a limit that does not apply to this kind.
    pub warnings: Vec<String>,
}

/// Resource use measured inside the exec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    /// Peak bytes of linear memories and tables.
    pub peak_memory_bytes: u64,
    /// Time to compile (or load) the workload, in microseconds.
    pub compile_us: u64,
}

/// The last frame from the exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitReport {
    pub outcome: Outcome,
    pub stats: RunStats,
}

/// host -> exec: start an attested launch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    /// The tenant's fresh nonce, 32 bytes as lowercase hex.
    pub nonce: String,
    /// The host owner's limits enforced inside the exec (the tenant may ask for less).
    pub limits: Limits,
    /// Compile with several threads.
    pub parallel_compilation: bool,
    /// The runtime measurement (SHA-384 of the exec image, hex) as the launcher
    /// measured it before starting the exec, the way a TEE's platform measures a
    /// guest at launch; without it the exec hashes its own image. On the process
    /// backend either is only a claim (the insecure attester proves nothing).
    #[serde(default)]
    pub measurement: Option<String>,
}

/// exec -> host: evidence for the tenant, relayed unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// Which attester made it: `insecure` on the process and KVM backends (no
    /// hardware root of trust).
    pub tee: String,
    /// The Keep's HPKE public key (X25519, hex).
    pub public_key: String,
    /// The attester's evidence; for `insecure`, a JSON document.
    pub evidence: String,
}
