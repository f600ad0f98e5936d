//! Limits while the Keep compiles the workload (issue 11): a module big enough
//! that compiling it takes seconds, generated here (no big committed fixture),
//! run with a small CPU budget: the compile counts against `--cpu` on both
//! backends (status 152, one line); and on KVM with a small memory limit, a
//! compile that runs out of guest memory is the memory limit (151), not a failure.

mod common;

use std::time::{Duration, Instant};

use common::{assert_one_line, have_kvm, keep, stderr};

fn uleb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sleb(mut n: i64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0) {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    uleb(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// A WASI command of `functions` functions of type () -> (), each adding
/// `adds` constants to a local; `_start` (function 0) returns at once. Compiling
/// it is the work: 100,000 functions of 8 adds (~8 MB) take ~5 s of CPU here.
fn many_functions(functions: u32, adds: u32) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 0], &mut m);
    let mut funcs = Vec::new();
    uleb(u64::from(functions), &mut funcs);
    funcs.resize(funcs.len() + functions as usize, 0);
    section(3, &funcs, &mut m);
    section(7, b"\x01\x06_start\x00\x00", &mut m);
    let mut code = Vec::new();
    uleb(u64::from(functions), &mut code);
    let mut body = Vec::new();
    for f in 0..functions {
        body.clear();
        body.extend_from_slice(&[1, 1, 0x7f]); // one i32 local
        for k in 0..adds {
            body.extend_from_slice(&[0x20, 0, 0x41]); // local.get 0; i32.const
            sleb(i64::from(f) * 31 + i64::from(k), &mut body);
            body.extend_from_slice(&[0x6a, 0x21, 0]); // i32.add; local.set 0
        }
        body.push(0x0b);
        uleb(body.len() as u64, &mut code);
        code.extend_from_slice(&body);
    }
    section(10, &code, &mut m);
    m
}

/// Writes the big module into a temporary directory.
fn big_module() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many_functions.wasm");
    std::fs::write(&path, many_functions(100_000, 8)).unwrap();
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

fn run_timed(args: &[&str]) -> (std::process::Output, Duration) {
    let start = Instant::now();
    let o = keep().args(args).output().expect("run keep");
    (o, start.elapsed())
}

/// The CPU time the message says the Keep used, in ms.
fn used_ms(o: &std::process::Output) -> u64 {
    let err = stderr(o);
    let at = err.find("used ").expect("a 'used N ms' figure") + 5;
    err[at..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number of ms")
}

#[test]
fn compiling_counts_against_the_cpu_budget_on_process() {
    let (_dir, module) = big_module();
    // Without a budget it compiles (seconds) and exits 0; --no-cache: compile it.
    let (o, full) = run_timed(&["run", "--no-cache", &module]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (o, stopped) = run_timed(&["run", "--no-cache", "--cpu", "1s", &module]);
    assert_one_line(&o, 152, &["cpu limit", "while compiling", "budget 1000 ms"]);
    // Stopped within the budget plus one epoch tick and the watcher's wake-up,
    // and well before the compile would have ended.
    let used = used_ms(&o);
    assert!((1000..1300).contains(&used), "used {used} ms");
    assert!(
        stopped < full && stopped < Duration::from_secs(15),
        "stopped after {stopped:?}, a full compile takes {full:?}"
    );
}

#[test]
fn compiling_counts_against_the_cpu_budget_on_kvm() {
    if !have_kvm() {
        return;
    }
    let (_dir, module) = big_module();
    let (o, stopped) = run_timed(&["run", "--backend", "kvm", "--cpu", "1s", &module]);
    assert_one_line(&o, 152, &["cpu limit", "compilation included"]);
    assert!(
        stopped < Duration::from_secs(15),
        "stopped after {stopped:?}"
    );
}

#[test]
fn a_compile_out_of_guest_memory_is_the_memory_limit_on_kvm() {
    if !have_kvm() {
        return;
    }
    let (_dir, module) = big_module();
    // 1 MiB for the workload: 258 MiB of guest memory, too little to compile it.
    let o = keep()
        .args(["run", "--backend", "kvm", "--memory", "1MiB", &module])
        .output()
        .expect("run keep");
    assert_eq!(o.status.code(), Some(151), "{}", stderr(&o));
    // The exec's own allocation-failure lines come first (from inside the Keep);
    // keep's verdict is the last line.
    let err = stderr(&o);
    let last = err.lines().last().unwrap_or_default();
    for want in [
        "memory limit",
        "258 MiB of guest memory ran out while compiling",
    ] {
        assert!(last.contains(want), "{want:?} not in {last:?}");
    }
    assert!(!err.contains("without a report"), "{err}");
}
