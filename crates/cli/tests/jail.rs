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
