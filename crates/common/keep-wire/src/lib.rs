//! The launch channel between the host and the exec inside a Keep.
//!
//! **Trust:** both ends parse what the other sends as untrusted. The exec does not
//! trust the host (it may be hostile), and the host does not trust the exec (it runs
//! tenant code). Every frame is bounded in size before any allocation, every
//! structured payload is parsed without panics, and unknown frame kinds are errors.
//!
//! **Wire format** (documented in `docs/architecture.md`, "The launch channel"):
//! a stream of frames, each `kind: u32 LE`, `len: u32 LE`, then `len` bytes. The
//! channel is a `SOCK_STREAM` socketpair on fd 3 of the exec on the process backend;
//! the KVM Keep carries the same byte stream over its host-call block.
//!
//! ```text
//! exec -> host   Hello        {"protocol":1,"exec":"keep-exec 0.1.0"}
//! host -> exec   Launch       LaunchSpec (JSON)
//! host -> exec   Workload     raw bytes of the .wasm module or component
//! exec -> host   Started      Started (JSON: workload kind, warnings), about to run it
//! exec -> host   Exit         ExitReport (JSON), then the exec exits
//! ```
//!
//! Attested launch (`keep deploy`), on the same channel; the host only relays:
//!
//! ```text
//! exec -> host   Hello
//! host -> exec   Challenge    {"nonce":"<hex 32>","limits":{..},"parallel_compilation":..}
//! exec -> host   Evidence     {"tee":"insecure","public_key":"<hex>","evidence":"<attester's>"}
//! host -> exec   Sealed       the tenant's HPKE-sealed payload (opaque to the host)
//! exec -> host   Started      as above
//! exec -> host   Record ...   sealed for the tenant: receipt, stdout, stderr, exit report
//! exec -> host   Exit         ExitReport (JSON, plain: the host learns how it ended)
//! ```

mod frame;
mod spec;

pub use frame::{Frame, FrameKind, FrameSplitter, WireError, read_frame, write_frame, write_json};
pub use spec::{
    Challenge, DirSpec, Evidence, ExitReport, FdSpec, LaunchSpec, Limit, Limits, Outcome, RunStats,
    SocketKind, Started, StdioTarget,
};

/// Version of the launch protocol spoken by both ends.
pub const PROTOCOL_VERSION: u32 = 1;

/// The fixed file descriptor on which the exec finds the launch channel.
pub const CHANNEL_FD: i32 = 3;

/// Largest structured (JSON) frame either side accepts.
pub const MAX_CONTROL_FRAME: u32 = 1 << 20;

/// Largest workload the exec accepts, whatever the host says.
pub const MAX_WORKLOAD_FRAME: u32 = 1 << 30;

/// Largest sealed payload the exec accepts (the workload plus manifest, secrets and
/// the HPKE overhead).
pub const MAX_SEALED_FRAME: u32 = MAX_WORKLOAD_FRAME + (2 << 20);
