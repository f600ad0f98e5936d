//! `keep platform info`, `keep --version`, `keep init`.

mod common;

use common::{keep, run, stderr, stdout};

#[test]
fn version_names_the_exec_measurement() {
    let o = run(&["--version"], None);
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("exec sha384:"))
        .expect(&out);
    let hex = line.trim_start_matches("exec sha384:");
    assert_eq!(hex.len(), 96);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn platform_info_lists_every_backend() {
    let o = run(&["platform", "info", "--json"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["backend"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["process", "kvm", "sev-snp", "tdx", "sgx"]);
    let process = &v["backends"][0];
    assert_eq!(process["available"], true);
    assert_eq!(process["implemented"], true);
    assert_eq!(v["backends"][1]["implemented"], true);
    // The kvm line agrees with this machine.
    let kvm = &v["backends"][1];
    assert_eq!(
        kvm["available"].as_bool().unwrap(),
        std::path::Path::new("/dev/kvm").exists()
    );
    let text = run(&["platform", "info"], None);
    assert!(stdout(&text).contains("sev-snp"));
}

#[test]
fn init_writes_a_starter_that_runs_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Keep.toml");
    let p = path.to_str().unwrap();
    let o = run(&["init", p], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&["init", p], None);
    common::assert_one_line(&o, 125, &["already exists"]);
    let mut cmd = keep();
    let o = cmd
        .args(["run", "--manifest", p, &common::fixture("hello.wasm")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
