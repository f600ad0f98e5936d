//! An empty Keep for an attested launch (trust state 1): the exec is running and
//! waits for a challenge. The host relays frames it cannot read and keeps its own
//! limits: memory (RLIMIT_DATA backstop), wall-clock time (watchdog), output (the
//! caller counts the sealed records it relays, see [`AttestedKeep::count_output`]).

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use command_fds::{CommandFdExt, FdMapping};
use keep_wire::{CHANNEL_FD, FrameKind, Limit, PROTOCOL_VERSION, read_frame};

use crate::process::{
    HostLimits, Killer, LaunchError, ProcessBackend, RUNTIME_MEMORY_SLACK, Watchdog,
};

/// A running exec that has greeted the host and waits for a `Challenge`.
pub struct AttestedKeep {
    child: Child,
    channel: UnixStream,
    killer: Arc<Killer>,
    watchdog: Option<Watchdog>,
    output: AtomicU64,
    output_cap: Option<u64>,
}

#[derive(serde::Deserialize)]
struct Hello {
    protocol: u32,
}

impl ProcessBackend {
    /// Starts an empty Keep for an attested launch: the exec is spawned with no
    /// stdio (its output is sealed on the channel), greets, and waits.
    pub fn start_attested(&self, limits: HostLimits) -> Result<AttestedKeep, LaunchError> {
        let (mut channel, exec_end) =
            UnixStream::pair().map_err(|e| LaunchError::Channel(e.to_string()))?;
        let mut cmd = Command::new(&self.exec.path);
        cmd.env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd.fd_mappings(vec![FdMapping {
            parent_fd: OwnedFd::from(exec_end),
            child_fd: CHANNEL_FD,
        }])
        .map_err(|e| LaunchError::Channel(e.to_string()))?;
        let child = cmd.spawn().map_err(LaunchError::Spawn)?;
        let killer = Arc::new(Killer::new(&child));
        if let Some(cap) = limits.memory_bytes {
            killer.limit_data(cap.saturating_add(RUNTIME_MEMORY_SLACK));
        }
        let watchdog = limits.wall.map(|w| Watchdog::start(w, killer.clone()));
        let mut keep = AttestedKeep {
            child,
            channel: channel
                .try_clone()
                .map_err(|e| LaunchError::Channel(e.to_string()))?,
            killer,
            watchdog,
            output: AtomicU64::new(0),
            output_cap: limits.output_bytes,
        };
        let hello: Hello = match read_frame(&mut channel, keep_wire::MAX_CONTROL_FRAME)
            .and_then(|f| f.expect_json(FrameKind::Hello))
        {
            Ok(h) => h,
            Err(e) => {
                keep.terminate("no greeting");
                return Err(LaunchError::Channel(e.to_string()));
            }
        };
        if hello.protocol != PROTOCOL_VERSION {
            keep.terminate("protocol");
            return Err(LaunchError::Protocol(hello.protocol));
        }
        Ok(keep)
    }
}

impl AttestedKeep {
    /// The launch channel (frames to and from the exec).
    pub fn channel(&self) -> std::io::Result<UnixStream> {
        self.channel.try_clone()
    }

    /// The exec's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Counts relayed output bytes; past the owner's cap the Keep is killed and this
    /// returns false.
    pub fn count_output(&self, bytes: u64) -> bool {
        let total = self.output.fetch_add(bytes, Ordering::Relaxed) + bytes;
        match self.output_cap {
            Some(cap) if total > cap => {
                self.killer.kill(
                    Limit::Output,
                    format!("relayed more than {cap} bytes of sealed output"),
                );
                false
            }
            _ => true,
        }
    }

    /// Bytes of output relayed so far.
    pub fn output_bytes(&self) -> u64 {
        self.output.load(Ordering::Relaxed)
    }

    /// The host limit that stopped the Keep, if one did.
    pub fn limit_hit(&self) -> Option<(Limit, String)> {
        self.killer.reason()
    }

    /// Kills the exec (idempotent) and reaps it.
    pub fn terminate(&mut self, why: &str) {
        if self.killer.reason().is_none()
            && let Ok(None) = self.child.try_wait()
        {
            let _ = self.child.kill();
        }
        let _ = why;
        let _ = self.child.wait();
        let _ = self.channel.shutdown(std::net::Shutdown::Both);
        if let Some(w) = self.watchdog.take() {
            w.stop();
        }
    }

    /// Waits for the exec to end on its own; returns the limit that stopped it.
    pub fn wait(&mut self) -> Option<(Limit, String)> {
        let _ = self.child.wait();
        if let Some(w) = self.watchdog.take() {
            w.stop();
        }
        self.killer.reason()
    }

    /// Whether the exec has ended.
    pub fn has_ended(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for AttestedKeep {
    fn drop(&mut self) {
        self.terminate("dropped");
    }
}
