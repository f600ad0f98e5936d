//! `keep run` end to end, through the real binary, on the process backend.

mod common;

use common::{assert_one_line, fixture, run, stderr, stdout};

#[test]
fn hello_prints_and_exits_zero() {
    let o = run(&["run", &fixture("hello.wasm")], None);
    assert_eq!(stdout(&o), "Hello from inside a Keep!\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

#[test]
fn component_hello_runs_as_wasi_p2() {
    let o = run(&["run", &fixture("hello_component.wasm")], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello from inside a Keep!\n");
}

#[test]
fn args_and_only_declared_env_reach_the_workload() {
    let mut cmd = common::keep();
    let path = fixture("args_env.wasm");
    cmd.args([
        "run",
        "--env",
        "GREETING=hi",
        "-e",
        "EMPTY=",
        &path,
        "--",
        "one",
        "two words",
    ])
    .env("HOST_SECRET", "must-not-leak");
    let o = cmd.output().unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.contains(&format!("argv[0]={path}\n")), "{out}");
    assert!(out.contains("argv[1]=one\nargv[2]=two words\n"), "{out}");
    assert!(
        out.contains("env:GREETING=hi\n") && out.contains("env:EMPTY=\n"),
        "{out}"
    );
    assert!(
        !out.contains("HOST_SECRET") && !out.contains("PATH="),
        "{out}"
    );
}

#[test]
fn stdin_is_passed_through() {
    let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let o = run(&["run", &fixture("cat.wasm")], Some(&input));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, input);
}

#[test]
fn exit_codes_pass_through() {
    let o = run(&["run", &fixture("exit_code.wasm"), "--", "42"], None);
    assert_eq!(o.status.code(), Some(42));
    let o = run(&["run", &fixture("proc_exit.wasm")], None);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(stderr(&o), "");
    let o = run(&["run", &fixture("proc_exit_big.wasm")], None);
    assert_one_line(&o, 1, &["300"]);
}

#[test]
fn trap_prints_reason_and_backtrace() {
    let o = run(&["run", &fixture("trap_unreachable.wasm")], None);
    assert_one_line(
        &o,
        134,
        &[
            "trapped",
            "unreachable",
            "h_inner <- g_middle <- f_outer <- _start",
        ],
    );
    let o = run(&["run", &fixture("trap_div_zero.wasm")], None);
    assert_one_line(&o, 134, &["trapped", "divide by zero"]);
    let o = run(&["run", &fixture("stack_overflow.wasm")], None);
    assert_one_line(&o, 134, &["trapped", "call stack exhausted", "recurse x"]);
}

#[test]
fn cpu_budget_stops_an_infinite_loop() {
    let o = run(
        &["run", "--cpu", "200ms", &fixture("infinite_loop.wasm")],
        None,
    );
    assert_one_line(&o, 152, &["cpu limit", "budget 200 ms"]);
}

#[test]
fn wall_clock_limit_stops_an_infinite_loop() {
    let o = run(
        &["run", "--timeout", "300ms", &fixture("infinite_loop.wasm")],
        None,
    );
    assert_one_line(&o, 153, &["wall-clock limit"]);
}

#[test]
fn memory_limit_stops_growth() {
    let o = run(
        &["run", "--memory", "2MiB", &fixture("memory_grow.wasm")],
        None,
    );
    assert_one_line(&o, 151, &["memory limit", "2.0 MiB"]);
    // Within the limit the same C allocation succeeds.
    let o = run(
        &[
            "run",
            "--memory",
            "64MiB",
            &fixture("memory.wasm"),
            "--",
            "16",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(
        &[
            "run",
            "--memory",
            "8MiB",
            &fixture("memory.wasm"),
            "--",
            "16",
        ],
        None,
    );
    assert_one_line(&o, 151, &["memory limit"]);
}

#[test]
fn output_cap_passes_exactly_the_cap_then_stops() {
    let o = run(
        &["run", "--max-output", "1MiB", &fixture("output_flood.wasm")],
        None,
    );
    assert_one_line(&o, 154, &["output limit"]);
    assert_eq!(o.stdout.len(), 1 << 20);
}

#[test]
fn missing_import_is_one_clear_line() {
    let o = run(&["run", &fixture("missing_import.wasm")], None);
    assert_one_line(&o, 125, &["does_not_exist"]);
}

#[test]
fn module_without_start_is_refused() {
    let o = run(&["run", &fixture("not_start.wasm")], None);
    assert_one_line(&o, 125, &["_start"]);
}

#[test]
fn bad_workloads_are_one_line_errors() {
    let o = run(&["run", "/nonexistent/app.wasm"], None);
    assert_one_line(&o, 125, &["/nonexistent/app.wasm"]);
    let o = run(&["run", &fixture("not_wasm.wasm")], None);
    assert_one_line(&o, 125, &["not_wasm.wasm", "not a WebAssembly binary"]);
    let o = run(&["run", &fixture("truncated.wasm")], None);
    assert_one_line(&o, 125, &["invalid WebAssembly"]);
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["run", dir.path().to_str().unwrap()], None);
    assert_one_line(&o, 125, &["not a file"]);
}

#[test]
fn bad_flags_are_one_line_usage_errors() {
    let hello = fixture("hello.wasm");
    for (flag, value) in [
        ("--memory", "0"),
        ("--cpu", "0s"),
        ("--timeout", "0"),
        ("--max-output", "0"),
    ] {
        let o = run(&["run", flag, value, &hello], None);
        assert_one_line(&o, 2, &[flag]);
    }
    let o = run(&["run", "--max-files", "0", &hello], None);
    assert_one_line(&o, 2, &["--max-files"]);
    let o = run(&["run", "--memory", "lots", &hello], None);
    assert_one_line(&o, 2, &["--memory", "lots"]);
    let o = run(&["run", "--env", "NOEQUALS", &hello], None);
    assert_one_line(&o, 2, &["KEY=VALUE"]);
    // Unknown backends are usage errors (clap), not panics.
    let o = run(&["run", "--backend", "quantum", &hello], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("quantum"));
    // kvm runs where /dev/kvm can be opened, and says why not elsewhere.
    let o = run(&["run", "--backend", "kvm", &hello], None);
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    } else {
        assert_one_line(&o, 125, &["kvm", "/dev/kvm"]);
    }
    let o = run(&["run", "--backend", "sev-snp", &hello], None);
    assert_one_line(&o, 125, &["not implemented"]);
}

#[test]
fn stats_in_text_and_json() {
    let o = run(&["run", "--stats", &fixture("hello.wasm")], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).starts_with("keep: stats: peak memory "),
        "{}",
        stderr(&o)
    );
    let o = run(&["run", "--stats", "--json", &fixture("hello.wasm")], None);
    let v: serde_json::Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(v["exit_status"], 0);
    assert_eq!(v["outcome"]["kind"], "exited");
    assert!(v["stats"]["peak_memory_bytes"].as_u64().unwrap() > 1_000_000);
    assert!(v["stats"]["wall_time_ms"].as_f64().unwrap() > 0.0);
    let o = run(&["run", "--json", &fixture("trap_unreachable.wasm")], None);
    let v: serde_json::Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert_eq!(v["exit_status"], 134);
    assert_eq!(v["outcome"]["kind"], "trapped");
}

#[test]
fn open_files_limit_stops_the_workload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "x").unwrap();
    let map = format!("{}::/d", dir.path().display());
    let o = run(
        &[
            "run",
            "--ro-dir",
            &map,
            "--max-files",
            "10",
            &fixture("open_many.wasm"),
            "--",
            "/d/f.txt",
            "100",
        ],
        None,
    );
    assert_one_line(&o, 155, &["open-files limit", "10"]);
    let o = run(
        &[
            "run",
            "--ro-dir",
            &map,
            "--max-files",
            "200",
            &fixture("open_many.wasm"),
            "--",
            "/d/f.txt",
            "100",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("opened 100 files"), "{}", stdout(&o));
}

#[test]
fn bad_manifest_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Keep.toml");
    std::fs::write(&path, "args = []\n[limits]\nmemroy = \"1MiB\"\n").unwrap();
    let o = run(
        &[
            "run",
            "--manifest",
            path.to_str().unwrap(),
            &fixture("hello.wasm"),
        ],
        None,
    );
    assert_one_line(&o, 125, &[&format!("{}:3:1:", path.display()), "memroy"]);
    let o = run(
        &[
            "run",
            "--manifest",
            "/nonexistent/Keep.toml",
            &fixture("hello.wasm"),
        ],
        None,
    );
    assert_one_line(&o, 125, &["/nonexistent/Keep.toml"]);
}

#[test]
fn manifest_limits_and_env_apply() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Keep.toml");
    std::fs::write(
        &path,
        "args = [\"a\"]\n[env]\nFROM_MANIFEST = \"yes\"\n[limits]\ncpu = \"200ms\"\n",
    )
    .unwrap();
    let o = run(
        &[
            "run",
            "--manifest",
            path.to_str().unwrap(),
            &fixture("args_env.wasm"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("argv[1]=a\n") && stdout(&o).contains("env:FROM_MANIFEST=yes\n"));
    let o = run(
        &[
            "run",
            "--manifest",
            path.to_str().unwrap(),
            &fixture("infinite_loop.wasm"),
        ],
        None,
    );
    assert_one_line(&o, 152, &["cpu limit"]);
    // The stricter of flag and manifest wins.
    let o = run(
        &[
            "run",
            "--manifest",
            path.to_str().unwrap(),
            "--cpu",
            "10s",
            &fixture("infinite_loop.wasm"),
        ],
        None,
    );
    assert_one_line(&o, 152, &["budget 200 ms"]);
}

#[test]
fn compiled_code_cache_never_changes_what_runs() {
    let cache = tempfile::tempdir().unwrap();
    let run_with_cache = |args: &[&str]| {
        let mut cmd = common::keep();
        cmd.env("KEEP_CACHE_DIR", cache.path())
            .args(args)
            .output()
            .unwrap()
    };
    let hello = fixture("hello.wasm");
    let first = run_with_cache(&["run", &hello]);
    assert_eq!(stdout(&first), "Hello from inside a Keep!\n");
    let entries = walk_files(&cache.path().join("modules"));
    assert!(!entries.is_empty(), "nothing cached");
    // A cache hit runs the same thing.
    let second = run_with_cache(&["run", &hello]);
    assert_eq!(stdout(&second), "Hello from inside a Keep!\n");
    // Another workload of the same size with one byte changed in its data is not
    // served from hello's entry.
    let mut bytes = std::fs::read(&hello).unwrap();
    let at = bytes.windows(5).position(|w| w == b"Hello").unwrap();
    bytes[at] = b'J';
    let other = cache.path().join("jello.wasm");
    std::fs::write(&other, &bytes).unwrap();
    let third = run_with_cache(&["run", other.to_str().unwrap()]);
    assert_eq!(stdout(&third), "Jello from inside a Keep!\n");
    // Another engine configuration (a CPU budget adds epoch checks) is another key.
    let fourth = run_with_cache(&["run", "--cpu", "10s", &hello]);
    assert_eq!(stdout(&fourth), "Hello from inside a Keep!\n");
    assert!(walk_files(&cache.path().join("modules")).len() > entries.len());
    // --no-cache still runs.
    let fifth = run_with_cache(&["run", "--no-cache", &hello]);
    assert_eq!(stdout(&fifth), "Hello from inside a Keep!\n");
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn open_files_limit_holds_components_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "x").unwrap();
    let map = format!("{}::/d", dir.path().display());
    let open = |max: &str| {
        run(
            &[
                "run",
                "--ro-dir",
                &map,
                "--max-files",
                max,
                &fixture("open_many_component.wasm"),
                "--",
                "/d/f.txt",
                "100",
            ],
            None,
        )
    };
    let o = open("10");
    assert_one_line(&o, 155, &["open-files limit", "10"]);
    let o = open("200");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("opened 100 files"), "{}", stdout(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}
