//! `keep run --backend kvm` against `--backend process`, through the real binary:
//! the same fixtures must give the same exit status, stdout and stderr in a KVM
//! Keep as in a process (limits: the same status and limit named). Skipped, with a
//! message, where /dev/kvm cannot be opened.

mod common;

use std::time::Duration;

use common::{
    assert_one_line, connect_with_retry, fixture, free_port, have_kvm, run, stderr, stdout,
};

fn with_backend(backend: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec!["run".to_string(), "--backend".into(), backend.into()];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// Runs `keep run ARGS` on both backends; asserts identical status, stdout, stderr.
fn same_on_both(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let p = with_backend("process", args);
    let k = with_backend("kvm", args);
    let p = run(&p.iter().map(String::as_str).collect::<Vec<_>>(), stdin);
    let k = run(&k.iter().map(String::as_str).collect::<Vec<_>>(), stdin);
    assert_eq!(
        k.status.code(),
        p.status.code(),
        "status of {args:?}: kvm stderr {}, process stderr {}",
        stderr(&k),
        stderr(&p)
    );
    assert!(k.stdout == p.stdout, "stdout of {args:?} differs");
    assert_eq!(stderr(&k), stderr(&p), "stderr of {args:?}");
    k
}

#[test]
fn hello_and_component_hello() {
    if !have_kvm() {
        return;
    }
    let o = same_on_both(&[&fixture("hello.wasm")], None);
    assert_eq!(stdout(&o), "Hello from inside a Keep!\n");
    assert_eq!(o.status.code(), Some(0));
    let o = same_on_both(&[&fixture("hello_component.wasm")], None);
    assert_eq!(stdout(&o), "Hello from inside a Keep!\n");
}

#[test]
fn args_env_and_exit_codes() {
    if !have_kvm() {
        return;
    }
    let path = fixture("args_env.wasm");
    let o = same_on_both(
        &[
            "--env",
            "GREETING=hi",
            "-e",
            "EMPTY=",
            &path,
            "--",
            "one",
            "two words",
        ],
        None,
    );
    let out = stdout(&o);
    assert!(out.contains("argv[1]=one\nargv[2]=two words\n"), "{out}");
    assert!(out.contains("env:GREETING=hi\n"), "{out}");
    assert!(
        !out.contains("KEEP_BACKEND"),
        "the exec's env leaked: {out}"
    );
    let o = same_on_both(&[&fixture("exit_code.wasm"), "--", "42"], None);
    assert_eq!(o.status.code(), Some(42));
    let o = same_on_both(&[&fixture("exit_code.wasm")], None);
    assert_eq!(o.status.code(), Some(2));
    let o = same_on_both(&[&fixture("proc_exit.wasm")], None);
    assert_eq!(o.status.code(), Some(7));
    let o = same_on_both(&[&fixture("proc_exit_big.wasm")], None);
    assert_one_line(&o, 1, &["300"]);
}

#[test]
fn stdin_echo_and_bulk_output() {
    if !have_kvm() {
        return;
    }
    let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let o = same_on_both(&[&fixture("cat.wasm")], Some(&input));
    assert_eq!(o.stdout, input);
    let o = same_on_both(&[&fixture("flood.wasm"), "--", "8"], None);
    assert_eq!(o.stdout.len(), 8 << 20);
    let o = same_on_both(&[&fixture("cpu.wasm"), "--", "10"], None);
    assert!(stdout(&o).contains("0xd88c7210127840aa"), "{}", stdout(&o));
}

/// A write to a file opened for appending lands at its end in a KVM Keep too,
/// after a seek to the start (wasmtime-wasi appends with pwritev2(RWF_APPEND),
/// which the shim once did not serve: the write overwrote the file's start).
#[test]
fn appending_lands_at_the_end_as_on_process() {
    if !have_kvm() {
        return;
    }
    for backend in ["process", "kvm"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "abc").unwrap();
        let d = format!("{}::/d", dir.path().display());
        let o = run(
            &[
                "run",
                "--backend",
                backend,
                "--dir",
                &d,
                &fixture("files.wasm"),
                "--",
                "append",
                "/d/f",
                "def",
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(0), "{backend}: {}", stderr(&o));
        let text = std::fs::read_to_string(dir.path().join("f")).unwrap();
        assert_eq!(text, "abcdef", "{backend}");
    }
}

/// clock_res_get answers in a KVM Keep as in a process (the shim once left
/// clock_getres unserved, and wasmtime-wasi panics on a failed one).
#[test]
fn clock_resolution_is_served() {
    if !have_kvm() {
        return;
    }
    let o = same_on_both(&[&fixture("clock_res.wasm")], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn traps_and_bad_workloads() {
    if !have_kvm() {
        return;
    }
    let o = same_on_both(&[&fixture("trap_unreachable.wasm")], None);
    assert_one_line(&o, 134, &["h_inner <- g_middle <- f_outer <- _start"]);
    let o = same_on_both(&[&fixture("trap_div_zero.wasm")], None);
    assert_one_line(&o, 134, &["divide by zero"]);
    // A guard-page fault in the Keep, delivered as SIGSEGV to wasmtime's handler.
    let o = same_on_both(&[&fixture("trap_oob.wasm")], None);
    assert_one_line(&o, 134, &["out of bounds memory access", "peek <- _start"]);
    let o = same_on_both(&[&fixture("stack_overflow.wasm")], None);
    assert_one_line(&o, 134, &["call stack exhausted"]);
    for f in ["missing_import.wasm", "not_start.wasm", "truncated.wasm"] {
        let o = same_on_both(&[&fixture(f)], None);
        assert_eq!(o.status.code(), Some(125), "{f}");
    }
}

#[test]
fn limits() {
    if !have_kvm() {
        return;
    }
    let o = same_on_both(&["--memory", "2MiB", &fixture("memory_grow.wasm")], None);
    assert_one_line(&o, 151, &["memory limit", "2.0 MiB"]);
    let o = same_on_both(
        &["--memory", "64MiB", &fixture("memory.wasm"), "--", "16"],
        None,
    );
    assert_eq!(stdout(&o), "allocated 16 MiB\n");
    let o = same_on_both(
        &["--max-output", "100000", &fixture("output_flood.wasm")],
        None,
    );
    assert_eq!(o.stdout.len(), 100_000);
    assert_one_line(&o, 154, &["output limit"]);
    // CPU and wall-clock: the VMM's watchdog (the message differs from the exec's).
    let args = [
        "--backend",
        "kvm",
        "--cpu",
        "300ms",
        &fixture("infinite_loop.wasm"),
    ];
    let o = run(&[&["run"][..], &args[..]].concat(), None);
    assert_one_line(&o, 152, &["cpu limit"]);
    let args = [
        "--backend",
        "kvm",
        "--timeout",
        "300ms",
        &fixture("infinite_loop.wasm"),
    ];
    let start = std::time::Instant::now();
    let o = run(&[&["run"][..], &args[..]].concat(), None);
    assert_one_line(&o, 153, &["wall-clock limit"]);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

/// A directory tree for the files fixture: a file, a subdirectory, and symlinks
/// that point out of it (absolute and relative).
fn files_tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.txt"), "alpha\n").unwrap();
    std::fs::create_dir(d.path().join("sub")).unwrap();
    std::fs::write(d.path().join("sub/b.txt"), "beta").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.path().join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc/passwd", d.path().join("rel")).unwrap();
    std::os::unix::fs::symlink("sub/b.txt", d.path().join("inside")).unwrap();
    d
}

/// Sorted relative paths and contents of every file under `dir`.
fn tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
                out.push((rel, b"<dir>".to_vec()));
            } else if meta.is_symlink() {
                out.push((
                    rel,
                    std::fs::read_link(&path)
                        .unwrap()
                        .display()
                        .to_string()
                        .into_bytes(),
                ));
            } else {
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn preopened_directories_behave_as_on_process() {
    if !have_kvm() {
        return;
    }
    let (p, k) = (files_tree(), files_tree());
    let files = fixture("files.wasm");
    let steps: &[(&str, &[&str])] = &[
        ("--dir", &["read", "/data/a.txt"]),
        ("--dir", &["read", "/data/sub/b.txt"]),
        ("--dir", &["read", "/data/inside"]),
        ("--dir", &["list", "/data"]),
        ("--dir", &["list", "/data/sub"]),
        // Escapes are refused as on process: "..", absolute and relative symlinks
        // out of the directory, absolute paths outside every preopen.
        ("--dir", &["read", "/data/../../etc/passwd"]),
        ("--dir", &["read", "/data/sub/../../etc/passwd"]),
        ("--dir", &["read", "/data/abs"]),
        ("--dir", &["read", "/data/rel"]),
        ("--dir", &["read", "/etc/passwd"]),
        ("--dir", &["write", "/data/../escape.txt", "no"]),
        ("--dir", &["write", "/data/new.txt", "written in a Keep"]),
        ("--dir", &["read", "/data/new.txt"]),
        ("--dir", &["write", "/data/sub/b.txt", "shorter"]),
        ("--dir", &["mkdir", "/data/d"]),
        ("--dir", &["write", "/data/d/x", "x"]),
        ("--dir", &["rm", "/data/d"]),
        ("--dir", &["rm", "/data/d/x"]),
        ("--dir", &["rm", "/data/d"]),
        ("--dir", &["rm", "/data/../escape.txt"]),
        // Read-only: reading works, every change is refused.
        ("--ro-dir", &["read", "/data/a.txt"]),
        ("--ro-dir", &["list", "/data"]),
        ("--ro-dir", &["write", "/data/ro.txt", "no"]),
        ("--ro-dir", &["write", "/data/a.txt", "no"]),
        ("--ro-dir", &["mkdir", "/data/no"]),
        ("--ro-dir", &["rm", "/data/a.txt"]),
    ];
    for (flag, cmd) in steps {
        let one = |backend: &str, dir: &std::path::Path| {
            let spec = format!("{}::/data", dir.display());
            let mut args = vec!["run", "--backend", backend, flag, &spec, &files, "--"];
            args.extend_from_slice(cmd);
            run(&args, None)
        };
        let (op, ok) = (one("process", p.path()), one("kvm", k.path()));
        assert_eq!(
            ok.status.code(),
            op.status.code(),
            "status of {cmd:?}: kvm stderr {}, process stderr {}",
            stderr(&ok),
            stderr(&op)
        );
        assert_eq!(stdout(&ok), stdout(&op), "stdout of {cmd:?}");
        assert_eq!(stderr(&ok), stderr(&op), "stderr of {cmd:?}");
        assert_eq!(tree(k.path()), tree(p.path()), "tree after {cmd:?}");
    }
    let got = tree(k.path());
    assert!(got.contains(&("new.txt".into(), b"written in a Keep".to_vec())));
    assert!(got.contains(&("sub/b.txt".into(), b"shorter".to_vec())));
    assert!(!k.path().parent().unwrap().join("escape.txt").exists());
}

#[test]
fn many_open_files_and_the_open_files_limit() {
    if !have_kvm() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "x").unwrap();
    let map = format!("{}::/d", dir.path().display());
    let open_many = fixture("open_many.wasm");
    for (max, n) in [("10", "100"), ("2000", "1000")] {
        let o = same_on_both(
            &[
                "--ro-dir",
                &map,
                "--max-files",
                max,
                &open_many,
                "--",
                "/d/f.txt",
                n,
            ],
            None,
        );
        if max == "10" {
            assert_eq!(o.status.code(), Some(155));
        } else {
            assert!(stdout(&o).contains("opened 1000 files"), "{}", stdout(&o));
        }
    }
}

#[test]
fn manifest_dirs_and_components() {
    if !have_kvm() {
        return;
    }
    let (p, k) = (files_tree(), files_tree());
    let files = fixture("files.wasm");
    for (cmd, expect) in [
        (&["read", "/ro/a.txt"][..], 0),
        (&["write", "/ro/x", "no"][..], 1),
        (&["write", "/rw/x", "yes"][..], 0),
        (&["list", "/rw"][..], 0),
    ] {
        let one = |backend: &str, dir: &std::path::Path| {
            let manifest = dir.join("Keep.toml");
            std::fs::write(
                &manifest,
                format!(
                    "[[dirs]]\nhost = \"{0}\"\nguest = \"/ro\"\naccess = \"ro\"\n\n\
                     [[dirs]]\nhost = \"{0}/sub\"\nguest = \"/rw\"\naccess = \"rw\"\n",
                    dir.display()
                ),
            )
            .unwrap();
            let m = manifest.display().to_string();
            let mut args = vec!["run", "--backend", backend, "--manifest", &m, &files, "--"];
            args.extend_from_slice(cmd);
            run(&args, None)
        };
        let (op, ok) = (one("process", p.path()), one("kvm", k.path()));
        assert_eq!(ok.status.code(), Some(expect), "{cmd:?}: {}", stderr(&ok));
        assert_eq!(ok.status.code(), op.status.code(), "{cmd:?}");
        assert_eq!(stdout(&ok), stdout(&op), "{cmd:?}");
        assert_eq!(stderr(&ok), stderr(&op), "{cmd:?}");
    }
    assert_eq!(std::fs::read(k.path().join("sub/x")).unwrap(), b"yes");
    // A preview 2 component reads through the same host calls.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "x").unwrap();
    let map = format!("{}::/d", dir.path().display());
    let o = same_on_both(
        &[
            "--ro-dir",
            &map,
            &fixture("open_many_component.wasm"),
            "--",
            "/d/f.txt",
            "100",
        ],
        None,
    );
    assert!(stdout(&o).contains("opened 100 files"), "{}", stdout(&o));
}

#[test]
fn measure_is_stable_and_covers_the_memory_size() {
    // Offline: no /dev/kvm needed.
    let a = run(&["measure", "--json"], None);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    let b = run(&["measure", "--json"], None);
    let c = run(&["measure", "--json", "--memory", "64MiB"], None);
    let parse = |o: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&o.stdout).expect("json")
    };
    let (a, b, c) = (parse(&a), parse(&b), parse(&c));
    let digest = a["launch_digest"].as_str().unwrap();
    assert_eq!(digest.len(), 96);
    assert_eq!(a["launch_digest"], b["launch_digest"]);
    assert_ne!(a["launch_digest"], c["launch_digest"]);
    assert_eq!(c["guest_memory_bytes"], (64u64 << 20) + (256 << 20));
    // With the module: the runtime also gets 30x its size (whole 2 MiB), as keep run.
    let hello = fixture("hello.wasm");
    let d = run(
        &[
            "measure",
            "--json",
            "--memory",
            "64MiB",
            "--workload",
            &hello,
        ],
        None,
    );
    let d = parse(&d);
    let size = std::fs::metadata(&hello).unwrap().len();
    let want = ((64u64 << 20) + (256 << 20) + 30 * size).next_multiple_of(2 << 20);
    assert_eq!(d["guest_memory_bytes"], want);
    assert_eq!(d["runtime_memory_bytes"], (256u64 << 20) + 30 * size);
    assert_ne!(d["launch_digest"], c["launch_digest"]);
    let text = run(&["measure"], None);
    assert_eq!(
        stdout(&text).lines().next(),
        Some(&*format!("sha384:{digest}"))
    );
    // A Keep launched with the same memory reports the same digest.
    if have_kvm() {
        let r = run(
            &[
                "run",
                "--backend",
                "kvm",
                "--memory",
                "64MiB",
                "--stats",
                "--json",
                &fixture("hello.wasm"),
            ],
            None,
        );
        let line = stderr(&r);
        let v: serde_json::Value = serde_json::from_str(line.trim()).expect("stats json");
        assert_eq!(v["stats"]["launch_digest"], d["launch_digest"]);
        assert_eq!(v["stats"]["vm_memory_bytes"], d["guest_memory_bytes"]);
        assert!(v["stats"]["guest_used_bytes"].as_u64().unwrap() > 0);
        assert!(v["stats"]["host_calls"].as_u64().unwrap() > 0);
    }
    let o = run(&["measure", "--backend", "process"], None);
    assert_one_line(&o, 125, &["launch digest"]);
}

/// The echo server fixture behind an Enarx.toml listen socket on `backend`:
/// returns (echoed bytes, exit code, stderr).
fn echo_server_on(backend: &str) -> (Vec<u8>, Vec<u8>, Option<i32>, String) {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let manifest = dir.path().join("Enarx.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[files]]\nkind = \"stdin\"\n[[files]]\nkind = \"stdout\"\n[[files]]\nkind = \"stderr\"\n\
             [[files]]\nkind = \"listen\"\nprot = \"tcp\"\nname = \"web\"\naddr = \"127.0.0.1\"\nport = {port}\n"
        ),
    )
    .unwrap();
    let child = common::keep()
        .args([
            "run",
            "--backend",
            backend,
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("echo_server.wasm"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut conn = connect_with_retry(port, Duration::from_secs(60));
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let writer = {
        let mut w = conn.try_clone().unwrap();
        let payload = payload.clone();
        std::thread::spawn(move || {
            w.write_all(&payload).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut echoed = Vec::new();
    conn.read_to_end(&mut echoed).unwrap();
    writer.join().unwrap();
    let o = child.wait_with_output().unwrap();
    (payload, echoed, o.status.code(), stderr(&o))
}

#[test]
fn preopened_listen_socket_echoes_as_on_process() {
    if !have_kvm() {
        return;
    }
    let (payload, p_echo, p_code, p_err) = echo_server_on("process");
    let (_, k_echo, k_code, k_err) = echo_server_on("kvm");
    assert_eq!(p_code, Some(0), "{p_err}");
    assert_eq!(k_code, p_code, "kvm: {k_err}");
    assert!(p_echo == payload);
    assert_eq!(k_echo.len(), payload.len());
    assert!(k_echo == payload, "kvm echoed other bytes");
    assert_eq!(k_err, p_err);
    assert!(
        k_err.contains("FD_COUNT=4 FD_NAMES=stdin:stdout:stderr:web"),
        "{k_err}"
    );
}

/// The connect client fixture against a one-connection server on `backend`, the
/// socket after a preopened directory (fd 4): (what the server got, output).
fn connect_client_on(backend: &str) -> (Vec<u8>, std::process::Output) {
    use std::io::{Read, Write};
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(b"reply to ").unwrap();
        s.write_all(&got).unwrap();
        got
    });
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Keep.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[dirs]]\nhost = \"{}\"\nguest = \"/here\"\n\n\
             [[sockets]]\nname = \"db\"\nkind = \"connect\"\nhost = \"127.0.0.1\"\nport = {port}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let o = run(
        &[
            "run",
            "--backend",
            backend,
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("connect_client.wasm"),
            "--",
            "4",
        ],
        None,
    );
    (serve.join().unwrap(), o)
}

#[test]
fn preopened_connect_socket_talks_as_on_process() {
    if !have_kvm() {
        return;
    }
    let (p_got, p) = connect_client_on("process");
    let (k_got, k) = connect_client_on("kvm");
    assert_eq!(p.status.code(), Some(0), "{}", stderr(&p));
    assert_eq!(k.status.code(), p.status.code(), "kvm: {}", stderr(&k));
    assert_eq!(k_got, p_got);
    assert_eq!(k_got, b"ping\n");
    assert_eq!(stdout(&k), "reply to ping\n");
    assert_eq!(stdout(&k), stdout(&p));
    assert_eq!(stderr(&k), stderr(&p));
    assert!(
        stderr(&k).contains("FD_COUNT=5 FD_NAMES=stdin:stdout:stderr:/here:db"),
        "{}",
        stderr(&k)
    );
}

#[test]
fn poll_oneoff_on_a_preopened_socket_in_a_kvm_keep() {
    use std::io::{Read, Write};
    if !have_kvm() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let manifest = dir.path().join("Keep.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[sockets]]\nname = \"web\"\nkind = \"listen\"\naddr = \"127.0.0.1\"\nport = {port}\n"
        ),
    )
    .unwrap();
    let child = common::keep()
        .args([
            "run",
            "--backend",
            "kvm",
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("poll_server.wasm"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut conn = connect_with_retry(port, Duration::from_secs(60));
    let mut ready = [0u8; 6];
    conn.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    conn.write_all(b"ping").unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(answer, b"got: ping");
    let out = stdout(&o);
    assert!(
        out.starts_with("listener ready\nquiet: timeout\nreadable: "),
        "{out}"
    );
    assert!(out.contains("readable: 4 bytes"), "{out}");
}

#[test]
fn a_listen_address_in_use_is_one_line_on_kvm() {
    if !have_kvm() {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Keep.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[sockets]]\nname = \"web\"\nkind = \"listen\"\naddr = \"127.0.0.1\"\nport = {port}\n"
        ),
    )
    .unwrap();
    let o = run(
        &[
            "run",
            "--backend",
            "kvm",
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("echo_server.wasm"),
        ],
        None,
    );
    assert_one_line(&o, 125, &["socket web", "cannot listen"]);
}

/// socket_check_component.wasm (tests/fixtures/src/socket_check) exits 0 only when a
/// connect to 127.0.0.1:47001 and a bind of 127.0.0.1:47003 are not refused, and a
/// connect to :47002 and a bind of :47004 are refused with access-denied: the same
/// verdicts on kvm (sockets the component makes itself, served by the VMM) as on
/// process, for every combination of what the manifest declares.
#[test]
fn a_component_gets_tcp_to_and_from_declared_addresses_only_on_kvm_as_on_process() {
    if !have_kvm() {
        return;
    }
    for (connect, listen, expected) in [
        (true, true, 0),
        (true, false, 1),
        (false, true, 1),
        (false, false, 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut declared = Vec::new();
        if connect {
            declared.push(("connect", "127.0.0.1", 47001));
        }
        if listen {
            declared.push(("listen", "127.0.0.1", 47003));
        }
        let manifest = common::sockets_manifest(dir.path(), &declared);
        let o = same_on_both(
            &[
                "--manifest",
                &manifest,
                &fixture("socket_check_component.wasm"),
            ],
            None,
        );
        assert_eq!(
            o.status.code(),
            Some(expected),
            "connect {connect} listen {listen}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_component_serves_tcp_through_wasi_sockets_in_the_keep() {
    if !have_kvm() {
        return;
    }
    common::assert_tcp_serve("kvm");
}

#[test]
fn a_component_talks_tcp_through_wasi_sockets_in_the_keep() {
    if !have_kvm() {
        return;
    }
    common::assert_tcp_echo("kvm");
}

#[test]
fn a_keep_blocked_in_accept_stops_at_the_wall_clock_limit() {
    if !have_kvm() {
        return;
    }
    // Nobody connects: the exec waits in accept (in the VMM, 100 ms at a time).
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Keep.toml");
    std::fs::write(
        &manifest,
        "[[sockets]]\nname = \"web\"\nkind = \"listen\"\naddr = \"127.0.0.1\"\nport = 0\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let o = run(
        &[
            "run",
            "--backend",
            "kvm",
            "--timeout",
            "1s",
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("echo_server.wasm"),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(153), "{}", stderr(&o));
    assert!(stderr(&o).contains("wall-clock"), "{}", stderr(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn a_limit_stops_the_keep_even_when_nobody_reads_its_output() {
    if !have_kvm() {
        return;
    }
    // stdout is a pipe this test never reads: the writer blocks, the queue fills,
    // and the vCPU thread waits on it. The wall-clock limit must still end the run
    // (it once hung here until the reader read), as on the process backend.
    for backend in ["process", "kvm"] {
        let started = std::time::Instant::now();
        let mut child = common::keep()
            .args([
                "run",
                "--backend",
                backend,
                "--timeout",
                "1s",
                &fixture("flood.wasm"),
                "--",
                "1000",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let status = status.unwrap_or_else(|| panic!("{backend}: still running after 20 s"));
        assert_eq!(status.code(), Some(153), "{backend}");
    }
}
