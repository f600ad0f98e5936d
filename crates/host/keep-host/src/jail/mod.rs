//! The jail every Keep's process runs in: the exec of a process Keep and the VMM
//! of a KVM Keep alike.
//!
//! Layers, each on where the host has it:
//! - new user, mount, PID, IPC and UTS namespaces, and a network namespace when
//!   the Keep declares no socket (its sockets are opened from inside, by the exec
//!   or the VMM, so a Keep with sockets keeps the host's network);
//! - `pivot_root` into an empty tmpfs holding only a fresh `/proc` (of the Keep's
//!   own PID namespace: the host's processes are not there), the preopened
//!   directories bind-mounted beneath `/dirs` (read-only where declared), the
//!   compile cache, `/dev/null` and `/dev/urandom`, `/dev/kvm` and the host's
//!   libraries (read-only) for a VMM, and a private `/dev/shm` and `/tmp`;
//!   the root itself read-only;
//! - no-new-privs, every capability dropped (bounding set emptied, securebits
//!   `NO_ROOT` locked: the Keep's process is root in its user namespace and gains
//!   nothing from it), `RLIMIT_NPROC` (no fork bombs).
//!
//! How, without `unsafe`: the host starts the jail's **outer** stage (this binary
//! re-run, [`JAIL_OUTER_ARG`]) as the Keep's process; it unshares the namespaces,
//! maps its user, and starts the **inner** stage ([`JAIL_INNER_ARG`]), which is
//! PID 1 of the new PID namespace, builds the new root, drops privileges and
//! replaces itself (`exec`) with the program, run from a descriptor (fd 5) the
//! host opened, so nothing on disk can be swapped in. The outer stage waits and
//! ends as the program ended; killing it kills the jail (parent-death signals,
//! and PID 1's end ends its namespace). The inner stage reports on fd 6 that the
//! jail is built (or what failed) before the program starts.

mod cgroup;
mod inner;
mod outer;
mod probe;

use serde::{Deserialize, Serialize};

pub(crate) use cgroup::PidsCgroup;
pub use inner::inner_main;
pub use outer::outer_main;
pub use probe::{JAIL_PROBE_ARG, ProbeCheck, ProbeReport, probe_main, run as run_probe};

/// The hidden first argument of the jail's outer stage.
pub const JAIL_OUTER_ARG: &str = "__keep-jail";
/// The hidden first argument of the jail's inner stage.
pub const JAIL_INNER_ARG: &str = "__keep-jail-inner";
/// The environment variable that carries the [`JailPlan`] to both stages.
pub(crate) const PLAN_ENV: &str = "KEEP_JAIL_PLAN";
/// The program to run, as an open descriptor.
pub(crate) const PROGRAM_FD: i32 = 5;
/// Where the inner stage says the jail is built.
pub(crate) const STATUS_FD: i32 = 6;
/// Processes (threads included) the Keep's user may have in its namespace.
pub(crate) const MAX_TASKS: u64 = 256;

/// Whether Keeps are jailed (host.toml `jail`, `keep run --no-jail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JailMode {
    /// No jail (for comparison and debugging).
    Off,
    /// Every layer the host has; a Keep runs without the jail, with a warning,
    /// where the host has none of it.
    #[default]
    On,
    /// Every layer, or the Keep is refused with one line naming what is missing.
    Required,
}

impl JailMode {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "off" => Some(Self::Off),
            "on" => Some(Self::On),
            "required" => Some(Self::Required),
            _ => None,
        }
    }
}

/// What the jail holds, passed to both stages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JailPlan {
    /// The program's arguments (its first, argv[0], included).
    pub(crate) args: Vec<String>,
    /// The program's environment (nothing else is passed).
    pub(crate) env: Vec<(String, String)>,
    /// Host paths bind-mounted into the jail, at `target`.
    pub(crate) binds: Vec<Bind>,
    /// A network namespace of its own (no interface but a down loopback).
    pub(crate) isolate_network: bool,
    /// The host's pid, which the outer stage checks against its parent.
    pub(crate) host_pid: i32,
    /// The host's user (root is exempt from `RLIMIT_NPROC`).
    pub(crate) host_uid: u32,
    /// The Keep's pids cgroup, which the outer stage joins first.
    pub(crate) cgroup_procs: Option<String>,
    /// The TCP ports the Keep declared (Landlock allows binding and connecting
    /// to these only).
    pub(crate) tcp_ports: Vec<u16>,
}

pub(crate) use crate::program::Bind;

/// The inner stage's one line on fd 6.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JailStatus {
    Built { layers: Vec<String> },
    Failed { layer: String, error: String },
}

/// The layers a built jail may have, in the order `keep platform info` names
/// them (each is listed only where the host gave it).
pub const LAYERS: [&str; 13] = [
    USER_NS,
    "mount namespace",
    "pid namespace",
    "ipc namespace",
    "uts namespace",
    NET_NS,
    "pivot_root into an empty tmpfs",
    "no-new-privs",
    "capabilities dropped",
    LANDLOCK,
    NPROC,
    PIDS_CGROUP,
    SECCOMP,
];
pub(crate) const USER_NS: &str = "user namespace";
pub(crate) const NET_NS: &str = "network namespace (Keeps without sockets)";
pub(crate) const LANDLOCK: &str = "Landlock (files beneath the root's own, TCP only on declared ports, no signals or abstract sockets out)";
pub(crate) const NPROC: &str = "process limit (RLIMIT_NPROC)";
pub(crate) const PIDS_CGROUP: &str = "process limit (pids cgroup)";
pub(crate) const SECCOMP: &str =
    "seccomp allow-list (the exec once compiled, the VMM once launched; anything else kills it)";

/// Where a directory preopened as number `i` is seen in the jail.
pub(crate) fn dir_target(i: usize) -> String {
    format!("/dirs/{i}")
}

/// Why this host cannot build the jail, once a Keep found out (its later Keeps
/// run without it under [`JailMode::On`]).
static UNAVAILABLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub(crate) fn unavailable() -> Option<&'static str> {
    UNAVAILABLE.get().map(String::as_str)
}

pub(crate) fn mark_unavailable(why: &str) {
    let _ = UNAVAILABLE.set(why.to_string());
}

/// A jail's outer stage about to start: its command, the status pipe's read end,
/// and the Keep's pids cgroup (kept until the Keep is reaped).
pub(crate) struct Prepared {
    pub(crate) command: std::process::Command,
    pub(crate) status: std::os::fd::OwnedFd,
    pub(crate) cgroup: Option<cgroup::PidsCgroup>,
}

/// The command that starts `program` in a jail (its outer stage), with the
/// program's descriptor and the status pipe added to `fds`.
pub(crate) fn command(
    program: &crate::program::Program,
    fds: &mut Vec<command_fds::FdMapping>,
) -> Result<Prepared, crate::LaunchError> {
    use crate::LaunchError;
    let file = std::fs::File::open(&program.path).map_err(LaunchError::Spawn)?;
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| LaunchError::Channel(e.into()))?;
    fds.push(command_fds::FdMapping {
        parent_fd: file.into(),
        child_fd: PROGRAM_FD,
    });
    fds.push(command_fds::FdMapping {
        parent_fd: write,
        child_fd: STATUS_FD,
    });
    let mut env = program.env.clone();
    // The program is PID 1 of its namespace: its parent is outside it (pid 0).
    env.retain(|(k, _)| k != "KEEP_HOST_PID");
    env.push(("KEEP_HOST_PID".into(), "0".into()));
    if program.seccomp {
        env.push(("KEEP_SECCOMP".into(), "1".into()));
    }
    let cgroup = cgroup::PidsCgroup::create(MAX_TASKS);
    let plan = JailPlan {
        args: program.args.clone(),
        env,
        binds: program.binds.clone(),
        isolate_network: program.isolate_network,
        host_pid: i32::try_from(std::process::id()).unwrap_or(0),
        host_uid: rustix::process::getuid().as_raw(),
        cgroup_procs: cgroup.as_ref().map(cgroup::PidsCgroup::procs),
        tcp_ports: program.tcp_ports.clone(),
    };
    let json =
        serde_json::to_string(&plan).map_err(|e| LaunchError::Jail(format!("the plan: {e}")))?;
    let mut command = std::process::Command::new("/proc/self/exe");
    command.arg(JAIL_OUTER_ARG).env_clear().env(PLAN_ENV, json);
    Ok(Prepared {
        command,
        status: read,
        cgroup,
    })
}

/// How long a jail may take to build.
const BUILD_TIMEOUT_MS: i32 = 10_000;

/// Waits for the inner stage's word: the layers and the program's pid (the outer
/// stage's child), or what failed.
pub(crate) fn built(
    status: std::os::fd::OwnedFd,
    outer: &crate::spawn::Exec,
    in_cgroup: bool,
    seccomp: bool,
) -> Result<(Vec<String>, rustix::process::Pid), String> {
    use std::io::BufRead;
    let mut fds = [rustix::event::PollFd::new(
        &status,
        rustix::event::PollFlags::IN,
    )];
    let timeout = rustix::event::Timespec {
        tv_sec: i64::from(BUILD_TIMEOUT_MS / 1000),
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&timeout)) {
        Ok(0) => return Err("the jail was not built within 10 s".into()),
        Ok(_) => {}
        Err(e) => return Err(format!("waiting for the jail: {e}")),
    }
    let mut line = Vec::new();
    let _ = std::io::BufReader::new(std::io::Read::take(
        std::fs::File::from(status),
        MAX_STATUS_LINE,
    ))
    .read_until(b'\n', &mut line);
    match serde_json::from_slice::<JailStatus>(&line) {
        Ok(JailStatus::Built { mut layers }) => {
            if in_cgroup {
                layers.push(PIDS_CGROUP.into());
            }
            if seccomp {
                layers.push(SECCOMP.into());
            }
            let pid = outer.handle.pid();
            let children = std::fs::read_to_string(format!(
                "/proc/{p}/task/{p}/children",
                p = pid.as_raw_pid()
            ))
            .unwrap_or_default();
            let program = children
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<i32>().ok())
                .and_then(rustix::process::Pid::from_raw)
                .ok_or("the jailed program is not running")?;
            Ok((layers, program))
        }
        Ok(JailStatus::Failed { layer, error }) => Err(format!("{layer}: {error}")),
        Err(_) => Err("the jail ended before it was built".into()),
    }
}

/// The most of the inner stage's status line that is read.
const MAX_STATUS_LINE: u64 = 64 * 1024;

/// Builds a jail as a Keep's would be (no network, the host's libraries) around
/// this binary's `--version`: the layers this host gives every Keep, or why it
/// cannot (for `keep platform info` and the agent's start-up).
pub fn probe() -> Result<Vec<String>, String> {
    run_jailed(vec!["keep".into(), "--version".into()], &["/dev/null"]).map(|(layers, _)| layers)
}

/// Runs this binary with `args` in a jail with `devices` and the host's
/// libraries, no network and no socket; returns the layers it got and what it
/// printed (at most 1 MiB).
pub(crate) fn run_jailed(
    args: Vec<String>,
    devices: &[&str],
) -> Result<(Vec<String>, Vec<u8>), String> {
    use std::io::Read;
    let program = crate::program::Program {
        path: "/proc/self/exe".into(),
        args,
        env: Vec::new(),
        extra_fds: Vec::new(),
        binds: Bind::devices(devices)
            .into_iter()
            .chain(Bind::system_libraries())
            .collect(),
        isolate_network: true,
        tcp_ports: Vec::new(),
        seccomp: false,
    };
    let mut fds = Vec::new();
    let Prepared {
        command: mut cmd,
        status,
        cgroup,
    } = command(&program, &mut fds).map_err(|e| e.to_string())?;
    use command_fds::CommandFdExt;
    cmd.fd_mappings(fds).map_err(|e| e.to_string())?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut outer = crate::spawn::spawn(cmd).map_err(|e| e.to_string())?;
    let built = built(status, &outer, cgroup.is_some(), false);
    let mut out = Vec::new();
    if let Some(stdout) = outer.child.stdout.take() {
        let _ = stdout.take(1 << 20).read_to_end(&mut out);
    }
    let _ = outer.reap();
    // Removed only now: its processes have ended.
    drop(cgroup);
    built.map(|(layers, _)| (layers, out))
}

/// What the jail does not have yet, said wherever its layers are listed.
pub const NOT_YET: &str = "not yet: cgroup memory and CPU accounting";
