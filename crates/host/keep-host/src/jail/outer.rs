//! The jail's outer stage: the Keep's process as the host sees it.
//!
//! Started by the host with the plan in its environment, fds 0-3 as the
//! program's and fds 5-6 for the jail. It dies with the host, unshares the
//! namespaces, maps its user and group (root inside, itself outside, nobody
//! else), limits processes, starts the inner stage (PID 1 of the new PID
//! namespace), waits, and ends as the program ended.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use rustix::process::{Resource, Rlimit, Signal};
use rustix::thread::UnshareFlags;

use super::{JAIL_INNER_ARG, JailPlan, JailStatus, MAX_TASKS, PLAN_ENV, STATUS_FD};

/// Runs the outer stage; returns the exit status (the program's).
pub fn outer_main() -> i32 {
    let plan = match read_plan() {
        Ok(p) => p,
        Err(e) => return failed("plan", &e),
    };
    if let Err(e) = die_with_host(plan.host_pid) {
        return failed("parent-death signal", &e);
    }
    // First, so that everything the jail starts is counted.
    if let Some(procs) = &plan.cgroup_procs
        && let Err(e) = std::fs::write(procs, "0")
    {
        return failed(super::PIDS_CGROUP, &format!("{procs}: {e}"));
    }
    // Read before the unshare: unmapped, they read as the overflow ids after.
    let ids = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    let mut flags = UnshareFlags::NEWUSER
        | UnshareFlags::NEWNS
        | UnshareFlags::NEWPID
        | UnshareFlags::NEWIPC
        | UnshareFlags::NEWUTS;
    if plan.isolate_network {
        flags |= UnshareFlags::NEWNET;
    }
    // Not CLONE_FILES (what the deprecation is about): the namespaces only.
    #[allow(deprecated)]
    if let Err(e) = rustix::thread::unshare(flags) {
        return failed("user, mount, pid, ipc, uts namespaces", &e.to_string());
    }
    if let Err(e) = map_ids(ids) {
        return failed("user namespace", &e);
    }
    let tasks = Rlimit {
        current: Some(MAX_TASKS),
        maximum: Some(MAX_TASKS),
    };
    if let Err(e) = rustix::process::setrlimit(Resource::Nproc, tasks) {
        return failed("process limit (RLIMIT_NPROC)", &e.to_string());
    }
    // Inherits fds 0-6 (none of them close-on-exec) and the environment's plan.
    let inner = Command::new("/proc/self/exe")
        .arg(JAIL_INNER_ARG)
        .env_clear()
        .env(PLAN_ENV, std::env::var_os(PLAN_ENV).unwrap_or_default())
        .spawn();
    let status = match inner.and_then(|mut c| c.wait()) {
        Ok(s) => s,
        Err(e) => return failed("pid namespace", &e.to_string()),
    };
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => {
            // Ends as the program did: by the same signal.
            if let Some(sig) = Signal::from_named_raw(sig) {
                let _ = rustix::process::kill_process(rustix::process::getpid(), sig);
            }
            128 + sig
        }
        _ => 125,
    }
}

fn read_plan() -> Result<JailPlan, String> {
    let text = std::env::var(PLAN_ENV).map_err(|_| "no plan".to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("the plan does not parse: {e}"))
}

fn die_with_host(host: i32) -> Result<(), String> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| e.to_string())?;
    let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_pid());
    if parent != host {
        return Err(format!("the host (pid {host}) is gone"));
    }
    Ok(())
}

/// Root inside the namespace is this process's own user and group outside.
fn map_ids((uid, gid): (u32, u32)) -> Result<(), String> {
    let write =
        |path: &str, text: String| std::fs::write(path, text).map_err(|e| format!("{path}: {e}"));
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))
}

/// Says which layer failed on the status descriptor, and returns 125.
pub(super) fn failed(layer: &str, error: &str) -> i32 {
    report(&JailStatus::Failed {
        layer: layer.into(),
        error: error.into(),
    });
    125
}

/// Writes one status line on fd 6 (reopened by its /proc name: a pipe's end).
pub(super) fn report(status: &JailStatus) {
    if let (Ok(mut line), Ok(mut pipe)) = (
        serde_json::to_vec(status),
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{STATUS_FD}")),
    ) {
        line.push(b'\n');
        let _ = pipe.write_all(&line);
    }
}
