//! The jail, probed from inside: a program started in the jail a Keep's process
//! gets (`keep platform jail-probe`) tries each way out, and every one must be
//! stopped, on the process (the exec's jail) and KVM (the VMM's) paths.

mod common;

use common::{backends, keep, stderr};

const CHECKS: [&str; 12] = [
    "open /etc/passwd",
    "write under the host's /tmp",
    "list / for the host's files",
    "connect to an undeclared port",
    "bind an undeclared port",
    "execve /bin/sh",
    "ptrace its parent",
    "fork 1,000 times",
    "mount a tmpfs",
    "the host's memory",
    "kill the host",
    "load a kernel module",
];

#[test]
fn every_way_out_of_the_jail_is_stopped() {
    for backend in backends() {
        let o = keep()
            .args(["platform", "jail-probe", "--json", "--backend", backend])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{backend}: {e}: {}", stderr(&o)));
        let checks = report["checks"].as_array().unwrap();
        for name in CHECKS {
            let c = checks
                .iter()
                .find(|c| c["check"].as_str().unwrap().contains(name))
                .unwrap_or_else(|| panic!("{backend}: no check {name:?}: {report}"));
            assert_eq!(c["stopped"], true, "{backend}: {name}: {}", c["how"]);
        }
        assert_eq!(o.status.code(), Some(0), "{backend}: {report}");
        let how = |name: &str| {
            checks
                .iter()
                .find(|c| c["check"].as_str().unwrap().contains(name))
                .map(|c| c["how"].as_str().unwrap().to_string())
                .unwrap()
        };
        // Stopped by the layer meant to stop it, not by accident.
        assert!(how("fork").contains("refused after"), "{}", how("fork"));
        assert!(
            how("list /").contains("only the jail's root"),
            "{}",
            how("list /")
        );
        assert!(
            how("/etc/passwd").contains("No such file"),
            "{}",
            how("/etc/passwd")
        );
        let layers = report["layers"].to_string();
        for layer in [
            "user namespace",
            "pid namespace",
            "network namespace",
            "no-new-privs",
        ] {
            assert!(layers.contains(layer), "{backend}: {layers}");
        }
    }
}

/// Child processes of `pid` (all its threads').
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|t| {
            std::fs::read_to_string(t.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|k| k.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The exec of a process Keep and the VMM of a KVM Keep run under a seccomp
/// filter (mode 2) once set up, with no-new-privs, no capabilities and the host's
/// RLIMIT_DATA.
#[test]
fn the_keeps_program_runs_under_its_seccomp_allow_list() {
    use std::io::BufRead;
    for backend in backends() {
        let mut run = keep()
            .args([
                "run",
                "--backend",
                backend,
                &common::fixture("sleep.wasm"),
                "--",
                "10",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(run.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "sleeping\n", "{backend}");
        // keep run -> the jail's outer stage -> the program (PID 1 of its jail).
        let program = children(run.id())
            .into_iter()
            .flat_map(children)
            .next()
            .unwrap_or_else(|| panic!("{backend}: no jailed program"));
        let status = std::fs::read_to_string(format!("/proc/{program}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        assert_eq!(field("Seccomp:"), "2", "{backend}: {status}");
        assert_eq!(field("NoNewPrivs:"), "1", "{backend}");
        assert_eq!(field("CapEff:"), "0000000000000000", "{backend}");
        assert_eq!(field("CapBnd:"), "0000000000000000", "{backend}");
        // The host's memory backstop reaches the program itself, not only the
        // jail's outer stage.
        let limits = std::fs::read_to_string(format!("/proc/{program}/limits")).unwrap();
        let data = limits
            .lines()
            .find(|l| l.starts_with("Max data size"))
            .unwrap()
            .to_string();
        assert!(!data.contains("unlimited"), "{backend}: {data}");
        run.kill().unwrap();
        let _ = run.wait();
    }
}
