//! An empty Keep for an attested launch (trust state 1): the exec is running and
//! waits for a challenge. The host relays frames it cannot read and keeps its own
//! limits, as for any [`RunningKeep`]: memory (the watch on the process backend,
//! the VM's size on KVM), wall-clock time (watchdog), CPU time (the Keep's own
//! limit, the host's watch as backstop), output (the caller counts the sealed
//! records it relays, see [`AttestedKeep::count_output`]).
//!
//! It is the same for every backend: [`AttestedKeep::start`] starts a Keep with a
//! sealed plan on any [`Backend`] and reads the exec's greeting.

use std::os::unix::net::UnixStream;

use keep_wire::Limit;

use crate::backend::{Backend, KeepPlan, RunningKeep};
use crate::launch::{ConverseError, HostLimits, LaunchError, greeting};

/// A running exec that has greeted the host and waits for a `Challenge`.
pub struct AttestedKeep {
    keep: RunningKeep,
    channel: UnixStream,
}

impl AttestedKeep {
    /// Starts an empty Keep on `backend` (no stdio: its output is sealed on the
    /// channel); the exec greets, and waits. A Keep that does not greet is
    /// destroyed.
    pub fn start(backend: &dyn Backend, limits: HostLimits) -> Result<Self, LaunchError> {
        let mut plan = KeepPlan::sealed(limits);
        let keep = backend.start(&mut plan)?;
        let mut channel = keep.channel().map_err(LaunchError::Channel)?;
        // Dropped on failure: the Keep is killed and reaped.
        match greeting(&mut channel) {
            Ok(()) => Ok(Self { keep, channel }),
            Err(ConverseError::Wire(e)) => Err(LaunchError::Greeting(e)),
            Err(ConverseError::Protocol(v)) => Err(LaunchError::Protocol(v)),
        }
    }

    /// The launch channel (frames to and from the exec).
    pub fn channel(&self) -> std::io::Result<UnixStream> {
        self.channel.try_clone()
    }

    /// The Keep's process: the exec, or the VMM of a KVM Keep.
    pub fn pid(&self) -> u32 {
        self.keep.pid()
    }

    /// `process` or `kvm`.
    pub fn backend(&self) -> &'static str {
        self.keep.kind().name()
    }

    /// The runtime measurement the host reports to the Keep's attester (hex): the
    /// exec's SHA-384 on the process backend, the KVM launch digest (shim + exec +
    /// boot parameters, as `keep measure` prints it) on kvm. Without SEV-SNP or TDX
    /// both are only the host's word.
    pub fn measurement(&self) -> String {
        self.keep.measurement()
    }

    /// The sealed payload is `bytes` long: the Keep's memory budget allows the
    /// runtime to compile a module of that size (it cannot be larger).
    pub fn expect_workload(&self, bytes: u64) {
        self.keep.expect_workload(bytes);
    }

    /// Counts relayed output bytes; past the owner's cap the Keep is killed and this
    /// returns false.
    pub fn count_output(&self, bytes: u64) -> bool {
        self.keep.count_output(bytes)
    }

    /// What the host sees of the Keep's use (see [`RunningKeep::figures`]).
    pub fn figures(&self) -> crate::KeepFigures {
        self.keep.figures()
    }

    /// Bytes of output relayed so far.
    pub fn output_bytes(&self) -> u64 {
        self.keep.output_bytes()
    }

    /// The host limit that stopped the Keep, if one did (the VMM's CPU limit and
    /// guest memory are known once the Keep was reaped by [`Self::terminate`] or
    /// [`Self::wait`]).
    pub fn limit_hit(&self) -> Option<(Limit, String)> {
        self.keep.limit_hit()
    }

    /// Kills the Keep (idempotent) and reaps it (its secrets directory, which a
    /// killed exec cannot remove, goes first).
    pub fn terminate(&mut self, why: &str) {
        let _ = why;
        self.keep.kill();
        // The VMM may be blocked relaying a write of the exec's onto the channel,
        // which nobody reads any more: closing our end fails that write.
        let _ = self.channel.shutdown(std::net::Shutdown::Both);
        self.keep.wait();
    }

    /// For a Keep whose conversation is over (its report relayed, or the channel
    /// closed): it gets a moment to end by itself (a VMM reports how its guest
    /// ended after the channel closes), then is terminated.
    pub fn finish(&mut self) {
        self.keep.end_within(crate::backend::BROKEN_OFF_GRACE);
        self.terminate("finished");
    }

    /// Waits for the exec to end on its own; returns the limit that stopped it.
    pub fn wait(&mut self) -> Option<(Limit, String)> {
        self.keep.wait().limit.clone()
    }

    /// Whether the exec has ended.
    pub fn has_ended(&mut self) -> bool {
        self.keep.has_ended()
    }
}

impl Drop for AttestedKeep {
    fn drop(&mut self) {
        self.terminate("dropped");
    }
}
