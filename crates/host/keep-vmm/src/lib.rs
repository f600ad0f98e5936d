//! keep-vmm: the VMM of the KVM Keep (host domain).
//!
//! Trusts: the host kernel's KVM. Does not trust: the guest. Everything the shim
//! asks for through the call block is bounds-checked against the block (offsets and
//! lengths, never guest pointers), and the guest can only make the VMM serve stdio,
//! time, its own exit, and files beneath the directories the host preopened for it
//! ([`FileServer`]: every path resolved with `openat2(RESOLVE_BENEATH)`). The tenant, in turn, does not trust this crate: on plain
//! KVM the host sees and can change all guest memory and registers (see
//! `docs/architecture.md`, "The KVM Keep").
//!
//! What it does: creates a VM with fixed memory and one vCPU, enters 64-bit mode
//! directly (page tables, segments, control registers; no firmware), loads the
//! embedded shim, the payload and the boot parameters at fixed guest-physical
//! addresses, computes the SHA-384 launch digest over them, runs the vCPU loop,
//! serves host calls through a replaceable [`HostCallServer`], and enforces the
//! wall-clock and CPU-time limits from a watchdog thread.

#[path = "../../../inside/keep-shim/src/abi.rs"]
#[allow(dead_code)] // shared with the shim; not every item is used on this side
mod abi;
mod error;
mod fs;
mod hostcall;
mod keep;
mod loader;
mod measure;
mod memory;
mod net;
mod vcpu;
mod watchdog;

pub use error::Error;
pub use fs::{FileServer, PreopenError};
pub use hostcall::{
    ChannelStream, DATA_CAPACITY as CALL_DATA_CAPACITY, HostCall, HostCallServer, RawReply,
    RelayServer, StdioServer,
};
pub use keep::{Exit, Keep, KeepConfig, Stats};
pub use measure::{launch_digest, sha384};
pub use net::{SocketError, SocketServer, SocketSpec};
pub use watchdog::KillHandle;

/// Guest path under which the exec in a KVM Keep opens preopened directory `i`
/// (`/.keep/dir/<i>`); the VMM's [`FileServer`] serves it.
pub fn preopen_guest_source(i: usize) -> String {
    format!("{}{i}", abi::fs::PREOPEN_PREFIX)
}

/// The embedded shim image (ELF).
pub const SHIM: &[u8] = include_bytes!(env!("KEEP_SHIM_PATH"));

/// Whether /dev/kvm can be opened here.
pub fn kvm_available() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}
