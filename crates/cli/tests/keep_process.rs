//! Every Keep is an OS process of its own: a KVM Keep's VMM (every parser of what
//! the guest writes) runs in a child of `keep run` or `keep host serve`, never in
//! them, and dies with them.

#[path = "common/agent.rs"]
mod agent;
mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use agent::{ALICE, Agent, alive, children, dev_policy};
use common::{fixture, have_kvm, keep, stderr};

/// What a process's descriptors point at.
fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.display().to_string())
        .collect()
}

fn holds_kvm(pid: u32) -> bool {
    fd_targets(pid)
        .iter()
        .any(|t| t == "/dev/kvm" || t.starts_with("anon_inode:kvm"))
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// The VMM processes among `pid`'s children, waited for up to 10 s.
fn vmm_children(pid: u32) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The VMM is the child of its jail's outer stage (or of the host itself,
        // unjailed).
        let vmms: Vec<u32> = children(pid)
            .into_iter()
            .flat_map(|c| std::iter::once(c).chain(children(c)))
            .filter(|c| cmdline(*c).contains("__keep-vmm") && holds_kvm(*c))
            .collect();
        if !vmms.is_empty() || Instant::now() > deadline {
            return vmms;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[test]
fn a_kvm_keep_runs_in_a_vmm_process_of_its_own_that_dies_with_its_host() {
    if !have_kvm() {
        return;
    }
    let mut run = keep()
        .args([
            "run",
            "--backend",
            "kvm",
            &fixture("sleep.wasm"),
            "--",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(run.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "sleeping\n");
    let host = run.id();
    let vmms = vmm_children(host);
    assert_eq!(vmms.len(), 1, "one VMM process under keep run: {vmms:?}");
    let vmm = vmms[0];
    // The VM is the child's alone: keep run holds no KVM descriptor.
    assert!(!holds_kvm(host), "keep run holds {:?}", fd_targets(host));
    // The VMM holds the guest's memory (the tenant's secrets, once provisioned):
    // it dumps no core.
    let limits = std::fs::read_to_string(format!("/proc/{vmm}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(
        core.split_whitespace().nth(4) == Some("0"),
        "core limit: {core}"
    );
    // The host killed outright: its VMM goes too (parent-death signal).
    run.kill().unwrap();
    let _ = run.wait();
    assert!(
        wait_gone(vmm, Duration::from_secs(5)),
        "the VMM process {vmm} outlived its host"
    );
}

#[test]
fn the_vmm_process_refuses_to_be_started_by_hand() {
    let o = keep().arg("__keep-vmm").output().unwrap();
    common::assert_one_line(&o, 2, &["the VMM process is started by keep itself"]);
}

#[test]
fn the_agent_serves_kvm_keeps_from_vmm_processes_and_holds_no_vm_itself() {
    if !have_kvm() {
        return;
    }
    let agent = Agent::start_custom(None, false, r#"backends = ["kvm"]"#, "", |_| {});
    let policy = dev_policy(&agent);
    let sleep = fixture("sleep.wasm");
    let url = agent.url.clone();
    let deploy = keep()
        .args([
            "deploy",
            "--host",
            &url,
            "--token",
            ALICE,
            "--backend",
            "kvm",
            "--policy",
            &policy,
            &sleep,
            "--",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let host = agent.child.id();
    let vmms = vmm_children(host);
    assert_eq!(vmms.len(), 1, "one VMM process under the agent: {vmms:?}");
    assert!(!holds_kvm(host), "the agent holds {:?}", fd_targets(host));
    let o = deploy.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "sleeping\nawake\n");
    assert!(
        wait_gone(vmms[0], Duration::from_secs(5)),
        "the VMM process outlived its Keep"
    );
}
