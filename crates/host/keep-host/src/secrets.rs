//! Removing the secrets directories of execs that could not remove them
//! themselves (killed: for a limit, by the tenant, or with the host).
//!
//! The exec puts a run's secret files in `/dev/shm/keep-secrets-<pid>-<random>`
//! (keep-exec's `secrets.rs`) and removes it on every way it ends by itself. For an
//! exec that was killed, the host removes `keep-secrets-<pid>-*` after the exec
//! ended and before reaping it ([`crate::spawn::Exec::reap`]), so the pid is still
//! that exec's. What a killed host left behind is removed when the next one starts
//! ([`remove_stale`]): directories whose exec no longer exists.

use std::os::unix::fs::MetadataExt;

/// Where the exec makes secrets directories, and how it names them (the contract
/// with keep-exec's `secrets.rs`).
const SECRETS_PARENT: &str = "/dev/shm";
fn secrets_dir_prefix(pid: u32) -> String {
    format!("keep-secrets-{pid}-")
}

/// Removes the secrets directories of the (ended, unreaped) exec with this pid.
pub(crate) fn remove_for(pid: u32) {
    let prefix = secrets_dir_prefix(pid);
    remove_matching(|name| name.starts_with(&prefix));
}

/// Removes secrets directories whose exec is gone (no such process, or a zombie
/// nobody reaps: an orphan of a killed host).
pub(crate) fn remove_stale() {
    remove_matching(|name| {
        let pid = name
            .strip_prefix("keep-secrets-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        pid.is_some_and(|pid| !running(pid))
    });
}

/// Whether a process with this pid runs (exists and is not a zombie).
fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')'.
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    !(state.starts_with('Z') || state.starts_with('X'))
}

/// Removes the directories of this user's in `/dev/shm` whose names match.
fn remove_matching(matches: impl Fn(&str) -> bool) {
    let me = rustix::process::geteuid().as_raw();
    let Ok(entries) = std::fs::read_dir(SECRETS_PARENT) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if !matches(name) {
            continue;
        }
        // A directory of ours, not a link another user (or the exec) put there:
        // remove_dir_all does not follow links inside it either.
        let path = entry.path();
        if let Ok(meta) = std::fs::symlink_metadata(&path)
            && meta.is_dir()
            && meta.uid() == me
        {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}
