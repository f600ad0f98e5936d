//! What the exec does to itself before it reads anything from the host, on the
//! process backend (a KVM Keep is a VM: none of this applies inside it).
//!
//! - No core dumps: not dumpable (`PR_SET_DUMPABLE` 0, which also keeps other
//!   processes of the same user from attaching to it or reading its memory through
//!   /proc) and `RLIMIT_CORE` 0, so a crash after provisioning writes no file holding
//!   the tenant's secrets or workload.
//! - It dies with its host: `PR_SET_PDEATHSIG` = SIGKILL, then a check that the
//!   parent is still the host that started it (`KEEP_HOST_PID`, set by keep-host),
//!   in case the host died before the signal was armed.

use rustix::process::{DumpableBehavior, Resource, Rlimit, Signal};

/// The environment variable keep-host sets to its own process id.
pub const HOST_PID_ENV: &str = "KEEP_HOST_PID";

/// Applies the above; an error names what could not be set.
pub fn at_start() -> Result<(), String> {
    no_core()?;
    die_with_host()
}

fn no_core() -> Result<(), String> {
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| format!("cannot make the exec non-dumpable: {e}"))?;
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    rustix::process::setrlimit(Resource::Core, none)
        .map_err(|e| format!("cannot set RLIMIT_CORE to 0: {e}"))
}

fn die_with_host() -> Result<(), String> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| format!("cannot set the parent-death signal: {e}"))?;
    if let Some(expected) = std::env::var(HOST_PID_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    {
        let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_pid());
        if parent != expected {
            return Err(format!(
                "the host (pid {expected}) is gone before the exec started"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exec_is_not_dumpable_and_dumps_no_core() {
        // The test process itself takes the settings.
        no_core().unwrap();
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            DumpableBehavior::NotDumpable
        );
        let core = rustix::process::getrlimit(Resource::Core);
        assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
    }
}
