//! Every `keep` subcommand that prints to stdout, with a stdout that fails: a pipe
//! whose reader has gone (`keep ... | head -c 1`) must not panic (exit 101) nor change
//! the exit status; any other write error (`> /dev/full`) is one line and status 125.

#[path = "common/agent.rs"]
mod agent;
mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::{assert_one_line, keep, stderr};

fn vector(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../verifier/keep-verifier/tests/vectors")
        .join(path)
        .display()
        .to_string()
}

/// Runs `cmd` with its stdout a pipe whose read end is closed before it writes.
fn with_closed_pipe(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keep");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait keep")
}

/// Runs `cmd` with its stdout on /dev/full (every write fails with ENOSPC).
fn with_full_stdout(mut cmd: Command) -> Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    cmd.stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .expect("run keep")
}

fn keep_with(args: &[&str]) -> Command {
    let mut cmd = keep();
    cmd.args(args);
    cmd
}

/// The closed pipe leaves `status` and no panic; /dev/full gives one line and 125.
fn assert_stdout_errors_handled(args: &[&str], status: i32) {
    let o = with_closed_pipe(keep_with(args));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(status), "{args:?} closed pipe: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(
        !err.contains("writing to standard output"),
        "{args:?}: {err}"
    );
    let o = with_full_stdout(keep_with(args));
    assert_one_line(&o, 125, &["writing to standard output", "No space left"]);
}

#[test]
fn keep_verify_survives_a_closed_or_full_stdout_with_its_verdict() {
    let report = vector("snp/milan-virtee/report.bin");
    let vcek = vector("snp/milan-virtee/vcek.der");
    let base = ["verify", "--snp-report", &report, "--vcek", &vcek];
    for (extra, status) in [
        (&["--now", "2025-01-01"][..], 0),
        (&["--now", "2025-01-01", "--json"], 0),
        (&["--now", "2025-01-01", "-v"], 0),
        (&["--now", "2025-01-01", "--report-data", "00"], 11),
        (&["--now", "2000-01-01"], 10),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        assert_stdout_errors_handled(&args, status);
    }
}

#[test]
fn keep_platform_info_measure_and_help_survive_a_closed_or_full_stdout() {
    for args in [
        &["platform", "info"][..],
        &["platform", "info", "--json"],
        &["measure", "--backend", "kvm"],
        &["measure", "--backend", "kvm", "--json"],
        &["--help"],
        &["verify", "--help"],
        &["--version"],
    ] {
        assert_stdout_errors_handled(args, 0);
    }
}

#[test]
fn keep_deploy_ps_and_logs_survive_a_closed_or_full_stdout() {
    let agent = agent::Agent::start(None);
    let policy = agent::dev_policy(&agent);
    let remote = ["--host", &agent.url, "--token", agent::ALICE];
    let hello = common::fixture("hello.wasm");
    let deploy = |extra: &[&str]| {
        let mut cmd = keep_with(&["deploy"]);
        cmd.args(remote).args(["--policy", &policy]).args(extra);
        cmd.arg(&hello);
        cmd
    };
    // The workload's output to a closed pipe is dropped; its exit status stands.
    let o = with_closed_pipe(deploy(&["--json"]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let id = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|e| (e["state"] == 1).then(|| e["keep"].as_str().map(String::from))?)
        .unwrap_or_else(|| panic!("no Keep id in {err}"));
    // On /dev/full the deploy stops, says why, and its Keep is destroyed.
    let o = with_full_stdout(deploy(&[]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.contains("writing to standard output") && !err.contains("panicked"),
        "{err}"
    );
    agent::no_keeps_left(&agent);

    let logs = ["logs", id.as_str()];
    for args in [
        &["ps"][..],
        &["ps", "--json"],
        &logs,
        &["logs", &id, "--json"],
    ] {
        let mut all = args.to_vec();
        all.extend_from_slice(&remote);
        assert_stdout_errors_handled(&all, 0);
    }
}
