//! The jail probe: a program started inside the same jail a Keep's process gets,
//! which tries each way out and reports how it was stopped (`keep platform
//! jail-probe`). Not a Keep: it proves the walls, not the workload.
//!
//! The probe is this binary re-run ([`JAIL_PROBE_ARG`]): dynamically linked, so
//! its jail also has the host's libraries read-only, as a KVM Keep's VMM's does
//! (a process Keep's exec is static and gets none).

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::run_jailed;
use crate::platform::BackendKind;

/// The hidden first argument of the probe.
pub const JAIL_PROBE_ARG: &str = "__keep-jail-probe";

/// One way out the probe tried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeCheck {
    pub check: String,
    /// Whether the jail stopped it.
    pub stopped: bool,
    /// How (or, when not stopped, what happened).
    pub how: String,
}

/// What the probe found, and the jail it ran in.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub backend: BackendKind,
    pub layers: Vec<String>,
    pub checks: Vec<ProbeCheck>,
}

/// Runs the probe in the jail of a Keep of `backend` (KVM: the VMM's, with
/// /dev/kvm), with no socket declared. `marker` is a file name the probe tries
/// to create in the host's /tmp (the caller checks it is not there).
pub fn run(backend: BackendKind, marker: &str) -> Result<ProbeReport, String> {
    let mut devices = vec!["/dev/null", "/dev/urandom", "/dev/random"];
    if backend == BackendKind::Kvm {
        devices.push("/dev/kvm");
    }
    let args = vec![
        "keep".into(),
        JAIL_PROBE_ARG.into(),
        std::process::id().to_string(),
        marker.into(),
    ];
    let (layers, out) = run_jailed(args, &devices)?;
    let checks = serde_json::from_slice(&out)
        .map_err(|e| format!("the probe's report does not parse: {e}"))?;
    Ok(ProbeReport {
        backend,
        layers,
        checks,
    })
}

/// The probe's `main`, inside the jail: args are the host's pid and the marker
/// name. Prints the checks as JSON.
pub fn probe_main() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    if args.get(2).is_some_and(|a| a == "spin") {
        // A child of the fork check: wait to be killed with the jail.
        std::thread::sleep(std::time::Duration::from_secs(30));
        return 0;
    }
    let host: i32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    let marker = args.get(3).cloned().unwrap_or_else(|| "keep-probe".into());
    let checks = vec![
        check("open /etc/passwd", || {
            std::fs::read("/etc/passwd").map(|_| "read it".to_string())
        }),
        check("write under the host's /tmp", || {
            // The jail's /tmp is its own tmpfs: the write lands there, never in
            // the host's (the caller looks for the marker).
            std::fs::write(format!("/tmp/{marker}"), b"probe")?;
            let root = std::fs::read_dir("/").map(|d| d.count()).unwrap_or(0);
            Err(std::io::Error::other(format!(
                "written to the jail's own /tmp (a private tmpfs; the root has {root} entries)"
            )))
        }),
        check("list / for the host's files", || {
            let names: Vec<String> = std::fs::read_dir("/")?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            let host_like = ["etc", "home", "root", "var", "bin", "sbin", "boot"];
            if names.iter().any(|n| host_like.contains(&n.as_str())) {
                Ok(format!("sees the host's root: {names:?}"))
            } else {
                Err(std::io::Error::other(format!(
                    "only the jail's root: {}",
                    names.join(" ")
                )))
            }
        }),
        check("connect to an undeclared port (127.0.0.1:22)", || {
            std::net::TcpStream::connect_timeout(
                &"127.0.0.1:22".parse().map_err(std::io::Error::other)?,
                std::time::Duration::from_secs(2),
            )
            .map(|_| "connected".to_string())
        }),
        check("bind an undeclared port (127.0.0.1:8080)", || {
            std::net::TcpListener::bind("127.0.0.1:8080").map(|_| "bound".to_string())
        }),
        check("execve /bin/sh", || {
            Command::new("/bin/sh")
                .arg("-c")
                .arg("true")
                .status()
                .map(|s| format!("ran: {s}"))
        }),
        check("ptrace its parent (the host)", || {
            let pid = nix::unistd::Pid::from_raw(host);
            nix::sys::ptrace::attach(pid)
                .map(|()| "attached".to_string())
                .map_err(std::io::Error::from)
        }),
        check("fork 1,000 times", fork_bomb),
        check("mount a tmpfs", || {
            rustix::mount::mount(
                "tmpfs",
                "/proc",
                "tmpfs",
                rustix::mount::MountFlags::empty(),
                None,
            )
            .map(|()| "mounted".to_string())
            .map_err(std::io::Error::from)
        }),
        check(
            &format!("read /proc/{host}/mem (the host's memory)"),
            || std::fs::read(format!("/proc/{host}/mem")).map(|_| "read it".to_string()),
        ),
        check("kill the host", || {
            let pid = rustix::process::Pid::from_raw(host)
                .ok_or_else(|| std::io::Error::other("no pid"))?;
            rustix::process::test_kill_process(pid)
                .map(|()| "may signal it".to_string())
                .map_err(std::io::Error::from)
        }),
        check("load a kernel module", || {
            let null = std::fs::File::open("/dev/null")?;
            nix::kmod::finit_module(null.as_fd(), c"", nix::kmod::ModuleInitFlags::empty())
                .map(|()| "loaded".to_string())
                .map_err(std::io::Error::from)
        }),
    ];
    let mut out = std::io::stdout().lock();
    match serde_json::to_vec(&checks) {
        Ok(bytes) => {
            let _ = out.write_all(&bytes);
            0
        }
        Err(_) => 1,
    }
}

/// Runs one attempt: an error is the jail stopping it.
fn check(what: &str, attempt: impl FnOnce() -> std::io::Result<String>) -> ProbeCheck {
    match attempt() {
        Ok(happened) => ProbeCheck {
            check: what.into(),
            stopped: false,
            how: happened,
        },
        Err(e) => ProbeCheck {
            check: what.into(),
            stopped: true,
            how: e.to_string(),
        },
    }
}

/// Starts up to 1,000 children that wait; stopped when the process limit
/// refuses one. They all end with the jail.
fn fork_bomb() -> std::io::Result<String> {
    let mut children = Vec::new();
    let result = loop {
        if children.len() == 1000 {
            break Ok("started 1,000 processes".to_string());
        }
        match Command::new("/proc/self/exe")
            .args([JAIL_PROBE_ARG, "spin"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => children.push(c),
            Err(e) => {
                break Err(std::io::Error::other(format!(
                    "refused after {} processes: {e}",
                    children.len()
                )));
            }
        }
    };
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    result
}
