//! What `--memory` means (issue 12): the default (768 MiB) holds on both
//! backends, with or without a flag, and `--stats` on KVM reports what the Keep
//! used, with the VM's size apart.

mod common;

use common::{assert_one_line, backends, fixture, have_kvm, keep, stderr};

fn grow_to(backend: &str, mib: &str) -> std::process::Output {
    keep()
        .args([
            "run",
            "--backend",
            backend,
            &fixture("grow_to.wasm"),
            "--",
            mib,
        ])
        .output()
        .expect("run keep")
}

#[test]
fn the_default_limit_holds_on_both_backends() {
    for backend in backends() {
        let o = grow_to(backend, "767");
        assert_eq!(o.status.code(), Some(0), "{backend}: {}", stderr(&o));
        let o = grow_to(backend, "769");
        assert_one_line(&o, 151, &["memory limit", "769.0 MiB", "768.0 MiB allowed"]);
    }
}

#[test]
fn a_flag_under_the_default_holds_too() {
    for backend in backends() {
        let o = keep()
            .args(["run", "--backend", backend, "--memory", "64MiB"])
            .args([&fixture("grow_to.wasm"), "--", "65"])
            .output()
            .expect("run keep");
        assert_one_line(&o, 151, &["memory limit", "64.0 MiB allowed"]);
    }
}

#[test]
fn kvm_stats_report_what_was_used_and_the_vm_apart() {
    if !have_kvm() {
        return;
    }
    let o = keep()
        .args([
            "run",
            "--backend",
            "kvm",
            "--stats",
            &fixture("grow_to.wasm"),
            "--",
            "100",
            "touch",
        ])
        .output()
        .expect("run keep");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("in a VM of 1026 MiB"), "{err}");
    // 100 MiB touched: the peak is about that, far below the VM's size.
    let at = err.find("peak memory ").expect("peak memory") + 12;
    let peak: f64 = err[at..].split(' ').next().unwrap().parse().unwrap();
    assert!((100.0..300.0).contains(&peak), "{err}");
    let o = keep()
        .args([
            "run",
            "--backend",
            "kvm",
            "--stats",
            "--json",
            &fixture("hello.wasm"),
        ])
        .output()
        .expect("run keep");
    let v: serde_json::Value = serde_json::from_str(stderr(&o).trim()).expect("json");
    let peak = v["stats"]["peak_memory_bytes"].as_u64().unwrap();
    let vm = v["stats"]["vm_memory_bytes"].as_u64().unwrap();
    assert!(peak > 0 && peak < 64 << 20, "peak {peak}");
    assert_eq!(vm, 1026 << 20);
}
