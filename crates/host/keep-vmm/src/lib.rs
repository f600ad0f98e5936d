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
pub mod child;
mod error;
mod fs;
mod hostcall;
mod keep;
mod loader;
mod log;
mod measure;
mod memory;
mod net;
mod seccomp;
mod vcpu;
mod watchdog;

pub use error::Error;
pub use fs::{FileServer, PreopenError};
pub use hostcall::{
    ChannelStream, DATA_CAPACITY as CALL_DATA_CAPACITY, HostCall, HostCallServer, RawReply,
    RelayServer, StdioServer,
};
pub use keep::{Exit, Keep, KeepConfig, Stats};
pub use log::MAX_LOG_BYTES;
pub use measure::{launch_digest, sha384};
pub use net::{SocketError, SocketServer, SocketSpec};
pub use watchdog::KillHandle;

/// Entry points for the fuzz targets (`fuzz/fuzz_targets/vmm_requests.rs`): the
/// VMM's parsers of what the guest writes into the call block. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::cell::RefCell;

    thread_local! {
        static BLOCK: RefCell<Vec<u8>> =
            RefCell::new(vec![0; crate::abi::CALL_BLOCK_SIZE as usize]);
    }

    /// Parses `bytes` as the start of a call block (the rest zero): whether it is a
    /// request the VMM would serve, and the pending-output record.
    pub fn parse_call_block(bytes: &[u8]) -> (bool, bool) {
        BLOCK.with(|b| {
            let mut block = b.borrow_mut();
            block.fill(0);
            let n = bytes.len().min(block.len());
            block[..n].copy_from_slice(&bytes[..n]);
            (
                crate::hostcall::parse(&block).is_ok(),
                crate::hostcall::pending_output(&block).is_some(),
            )
        })
    }

    /// The sockaddr a guest placed at (off, len) in a SOCKET request's data.
    pub fn guest_sockaddr(data: &[u8], off: u64, len: u64) -> Option<std::net::SocketAddr> {
        crate::net::guest_sockaddr(data, off, len)
    }
}

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
