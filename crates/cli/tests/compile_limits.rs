//! Limits while the Keep compiles the workload (issue 11): a module big enough
//! that compiling it takes seconds, generated here (no big committed fixture),
//! run with a small CPU budget: the compile counts against `--cpu` on both
//! backends (status 152, one line); and a module whose compile needs more memory
//! than the Keep has (issue 12) is the memory limit (151, "while compiling"), on
//! both backends, with and without the compile cache.

#[path = "common/agent.rs"]
mod agent;
mod common;

use std::time::{Duration, Instant};

use agent::{ALICE, Agent, dev_policy};

use common::{assert_one_line, backends, have_kvm, keep, section, stderr, uleb};

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

/// A WASI command whose one function nests `blocks` empty blocks: 3 bytes each
/// in the module, hundreds in the compiler. 1,000,000 blocks make a 3 MB module
/// that takes ~850 MB to compile, far past the 30x of its size that a Keep's
/// runtime is given for compiling (see keep-host's `memory`).
fn nested_blocks(blocks: usize) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 0], &mut m);
    section(3, &[1, 0], &mut m);
    section(7, b"\x01\x06_start\x00\x00", &mut m);
    let mut body = vec![0]; // no locals
    for _ in 0..blocks {
        body.extend_from_slice(&[0x02, 0x40]); // block (no result)
    }
    body.resize(body.len() + blocks + 1, 0x0b); // the ends, and the function's
    let mut code = vec![1];
    uleb(body.len() as u64, &mut code);
    code.extend_from_slice(&body);
    section(10, &code, &mut m);
    m
}

/// A compile that needs more memory than the Keep has is the memory limit (151)
/// with one line saying so, on both backends, with the compile cache on and off
/// (nothing is cached from a compile that failed, so the second run compiles too),
/// and no allocation-failure message of the exec's own reaches the user.
#[test]
fn a_compile_past_the_memory_budget_is_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("nested_blocks.wasm");
    std::fs::write(&module, nested_blocks(1_000_000)).unwrap();
    let module = module.to_string_lossy().into_owned();
    for backend in backends() {
        for cache in [&["--no-cache"][..], &[], &[]] {
            let mut args = vec!["run", "--backend", backend, "--memory", "1MiB"];
            args.extend_from_slice(cache);
            args.push(&module);
            let o = keep().args(&args).output().expect("run keep");
            assert_one_line(
                &o,
                151,
                &[
                    "memory limit",
                    "ran out of memory while compiling",
                    "1 MiB for the workload",
                    "raise --memory",
                ],
            );
            assert!(
                !stderr(&o).contains("memory allocation"),
                "{args:?}: {}",
                stderr(&o)
            );
        }
    }
}

/// With a limit that leaves the compiler room, the same module compiles and runs
/// (2 GiB: in a KVM Keep this compile peaks at 2.05 GiB of guest memory, 0.85 GiB
/// in a process; the shim has no mremap, so growing a huge buffer copies it).
#[test]
fn the_same_compile_fits_a_larger_limit() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("nested_blocks.wasm");
    std::fs::write(&module, nested_blocks(1_000_000)).unwrap();
    let module = module.to_string_lossy().into_owned();
    for backend in backends() {
        let o = keep()
            .args([
                "run",
                "--backend",
                backend,
                "--no-cache",
                "--memory",
                "2GiB",
                &module,
            ])
            .output()
            .expect("run keep");
        assert_eq!(o.status.code(), Some(0), "{backend}: {}", stderr(&o));
    }
}

/// The same under `keep deploy`: the host cannot read the sealed workload, but it
/// knows the sealed payload's size, which bounds the module's, and holds the Keep
/// to the budget that size gives (process: its memory watch; KVM: the guest's
/// memory, fixed before the workload arrived). Memory limit, not an abort.
#[test]
fn an_attested_compile_past_the_memory_budget_is_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("nested_blocks.wasm");
    std::fs::write(&module, nested_blocks(1_000_000)).unwrap();
    let module = module.to_string_lossy().into_owned();
    let allowed = if have_kvm() {
        r#"backends = ["process", "kvm"]"#
    } else {
        ""
    };
    let agent = Agent::start_custom(None, false, allowed, "", |_| {});
    let policy = dev_policy(&agent);
    for backend in backends() {
        let o = agent.deploy(
            ALICE,
            &[
                "--backend",
                backend,
                "--policy",
                &policy,
                "--memory",
                "1MiB",
                &module,
            ],
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(151), "{backend}: {err}");
        assert!(
            err.contains("memory limit") && err.contains("ran out of memory"),
            "{backend}: {err}"
        );
        assert!(!err.contains("memory allocation"), "{backend}: {err}");
    }
}
