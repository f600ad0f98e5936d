//! Starting, signalling and reaping the exec as a child process.
//!
//! - Every exec is spawned by one long-lived thread of the host process. The exec
//!   arms a parent-death signal (SIGKILL) at start, and Linux sends it when the
//!   *thread* that forked it ends: spawned from a worker thread that retires (the
//!   agent's blocking pool), the exec would be killed with it.
//! - The exec is signalled through a pidfd opened right after the spawn (while the
//!   child is unreaped its pid cannot be reused), never by pid: a kill that comes
//!   after the exec was reaped reaches nobody.
//! - It is reaped in two steps: wait for it to end without reaping it, remove its
//!   secrets directory (named after its pid, which is still its own), then reap.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, mpsc};

use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

/// The environment variable with the host's pid, which the exec checks against its
/// parent (keep-exec's `harden.rs`).
const HOST_PID_ENV: &str = "KEEP_HOST_PID";

/// A running (or ended, unreaped) exec.
pub(crate) struct Exec {
    pub(crate) child: Child,
    pub(crate) handle: Arc<ExecHandle>,
    /// Set once reaped: its pid may belong to another process from then on.
    reaped: Option<std::process::ExitStatus>,
}

/// What other threads may do with the exec: signal it, set its limits.
#[derive(Debug)]
pub(crate) struct ExecHandle {
    pid: Pid,
    pidfd: OwnedFd,
}

type Job = (Command, mpsc::Sender<io::Result<Child>>);

/// The spawning thread's queue (started on first use, lives as long as the process).
static SPAWNER: Mutex<Option<mpsc::Sender<Job>>> = Mutex::new(None);

fn spawner() -> io::Result<mpsc::Sender<Job>> {
    let mut slot = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = slot.as_ref() {
        return Ok(tx.clone());
    }
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("keep-spawner".into())
        // Small: it only forks (the default 2 MiB costs more to set up than a spawn).
        .stack_size(256 * 1024)
        .spawn(move || {
            for (mut cmd, reply) in rx {
                let spawned = cmd.spawn();
                // The parent's copies of the child's descriptors (the exec's end of
                // the launch channel) close here, before the caller hears back.
                drop(cmd);
                let _ = reply.send(spawned);
            }
        })?;
    *slot = Some(tx.clone());
    Ok(tx)
}

/// Spawns `cmd` from the spawning thread, with the host's pid in its environment.
pub(crate) fn spawn(mut cmd: Command) -> io::Result<Exec> {
    cmd.env(HOST_PID_ENV, std::process::id().to_string());
    let (reply, rx) = mpsc::channel();
    spawner()?
        .send((cmd, reply))
        .map_err(|_| io::Error::other("the spawning thread is gone"))?;
    let mut child = rx
        .recv()
        .map_err(|_| io::Error::other("the spawning thread is gone"))??;
    let opened = i32::try_from(child.id())
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::other("the exec has no valid pid"))
        .and_then(|pid| Ok((pid, rustix::process::pidfd_open(pid, PidfdFlags::empty())?)));
    match opened {
        Ok((pid, pidfd)) => Ok(Exec {
            child,
            handle: Arc::new(ExecHandle { pid, pidfd }),
            reaped: None,
        }),
        Err(e) => {
            // Unreaped: the pid is still this child's.
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

impl ExecHandle {
    /// SIGKILL through the pidfd (nothing happens once the exec was reaped).
    pub(crate) fn kill(&self) {
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL);
    }

    /// The exec's pid (valid while it is unreaped).
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// Whether the exec has ended (it is not reaped).
    pub(crate) fn has_ended(&self) -> bool {
        self.wait_ended(WaitIdOptions::NOHANG)
    }

    /// Blocks until the exec has ended, without reaping it.
    pub(crate) fn wait_until_ended(&self) {
        self.wait_ended(WaitIdOptions::empty());
    }

    fn wait_ended(&self, extra: WaitIdOptions) -> bool {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | extra;
        loop {
            match rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), options) {
                Ok(status) => return status.is_some(),
                Err(rustix::io::Errno::INTR) => continue,
                // ECHILD: already reaped.
                Err(_) => return true,
            }
        }
    }
}

impl Exec {
    /// Waits for the exec to end, removes what it may have left in memory, and
    /// reaps it.
    pub(crate) fn reap(&mut self) -> io::Result<std::process::ExitStatus> {
        if let Some(status) = self.reaped {
            return Ok(status);
        }
        self.handle.wait_until_ended();
        if let Ok(pid) = u32::try_from(self.handle.pid.as_raw_pid()) {
            crate::secrets::remove_for(pid);
        }
        let status = self.child.wait()?;
        self.reaped = Some(status);
        Ok(status)
    }
}
