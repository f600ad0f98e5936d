//! A workload with nothing to run is refused from its bytes, before compiling
//! (issue 12): a reactor module (no `_start`) and a component without
//! `wasi:cli/run`, on both backends, in one line naming what is missing. The
//! large ones are generated so that compiling them would take seconds: the
//! exec's report says no time went into compiling (compile_time_ms 0).

mod common;

use common::{assert_one_line, backends, fixture, keep, section, stderr, uleb};

#[test]
fn a_reactor_module_is_refused_by_name() {
    for backend in backends() {
        let o = keep()
            .args(["run", "--backend", backend, &fixture("reactor.wasm")])
            .output()
            .expect("run keep");
        assert_one_line(&o, 125, &["no `_start`", "a reactor", "_initialize, add"]);
    }
}

#[test]
fn a_component_without_cli_run_is_refused_by_name() {
    for backend in backends() {
        let o = keep()
            .args([
                "run",
                "--backend",
                backend,
                &fixture("no_run_component.wasm"),
            ])
            .output()
            .expect("run keep");
        assert_one_line(&o, 125, &["no `wasi:cli/run`", "answer"]);
    }
}

/// A reactor whose `_initialize` nests 500,000 blocks: compiling it takes
/// seconds and hundreds of MB.
fn big_reactor() -> Vec<u8> {
    let blocks = 500_000;
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 0], &mut m);
    section(3, &[1, 0], &mut m);
    section(7, b"\x01\x0b_initialize\x00\x00", &mut m);
    let mut body = vec![0];
    for _ in 0..blocks {
        body.extend_from_slice(&[0x02, 0x40]);
    }
    body.resize(body.len() + blocks + 1, 0x0b);
    let mut code = vec![1];
    uleb(body.len() as u64, &mut code);
    code.extend_from_slice(&body);
    section(10, &code, &mut m);
    m
}

/// A component holding that module and exporting nothing.
fn big_component_without_run() -> Vec<u8> {
    let mut c = b"\0asm\x0d\0\x01\0".to_vec();
    section(1, &big_reactor(), &mut c);
    c
}

#[test]
fn large_workloads_with_nothing_to_run_are_refused_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("reactor.wasm", big_reactor(), "no `_start`"),
        (
            "component.wasm",
            big_component_without_run(),
            "no `wasi:cli/run`",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let path = path.to_string_lossy().into_owned();
        for backend in backends() {
            let o = keep()
                .args([
                    "run",
                    "--backend",
                    backend,
                    "--no-cache",
                    "--stats",
                    "--json",
                    &path,
                ])
                .output()
                .expect("run keep");
            assert_eq!(
                o.status.code(),
                Some(125),
                "{name} {backend}: {}",
                stderr(&o)
            );
            let line = stderr(&o);
            let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
            let message = v["message"].as_str().unwrap_or_default();
            assert!(message.contains(want), "{name} {backend}: {message}");
            assert_eq!(
                v["stats"]["compile_time_ms"].as_f64(),
                Some(0.0),
                "{name} {backend}: it was compiled"
            );
        }
    }
}
