//! Helpers for running the real `keep` binary as a user would.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Path of a committed fixture.
pub fn fixture(name: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    root.join(name).display().to_string()
}

/// A `keep` command with its own exec cache under the test target directory.
pub fn keep() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keep"));
    cmd.env(
        "KEEP_CACHE_DIR",
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("keep-cache"),
    );
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `keep` with arguments and optional stdin.
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = keep();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("spawn keep");
    // Feed stdin from another thread: the workload may fill stdout before it has
    // read all of its input.
    let feeder = stdin.map(|input| {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let output = child.wait_with_output().expect("wait keep");
    if let Some(f) = feeder {
        f.join().expect("stdin feeder");
    }
    output
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit status and that stderr is exactly one `keep:` line containing
/// every given fragment (what a user sees on failure: one clear line, no panic).
pub fn assert_one_line(o: &Output, status: i32, fragments: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(status), "status; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("keep:")).collect();
    assert_eq!(lines.len(), 1, "one keep: line expected, got: {err}");
    for f in fragments {
        assert!(lines[0].contains(f), "{f:?} not in {:?}", lines[0]);
    }
    assert!(!err.contains("panicked"), "panic: {err}");
}

/// Whether /dev/kvm opens here; says why a test is skipped when it does not.
pub fn have_kvm() -> bool {
    let ok = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !ok {
        eprintln!("skipped: /dev/kvm is not available");
    }
    ok
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects to a Keep's listening socket on loopback, retrying for up to `wait`
/// while the Keep starts.
pub fn connect_with_retry(port: u16, wait: std::time::Duration) -> std::net::TcpStream {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("the Keep never listened on {port}: {e}"),
        }
    }
}

/// A manifest (in `dir`) declaring the given sockets: (kind, host, port).
pub fn sockets_manifest(dir: &std::path::Path, sockets: &[(&str, &str, u16)]) -> String {
    let mut toml = String::new();
    for (i, (kind, host, port)) in sockets.iter().enumerate() {
        let key = if *kind == "listen" { "addr" } else { "host" };
        toml.push_str(&format!(
            "[[sockets]]\nname = \"s{i}\"\nkind = \"{kind}\"\n{key} = \"{host}\"\nport = {port}\n"
        ));
    }
    let manifest = dir.join("Keep.toml");
    std::fs::write(&manifest, toml).unwrap();
    manifest.to_string_lossy().into_owned()
}

/// Asserts that a TCP fixture exited 0, that `line` crossed the connection and
/// that the workload printed it.
fn assert_tcp_line(o: &Output, crossed: &[u8], line: &str) {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    assert_eq!(String::from_utf8_lossy(crossed), line);
    assert_eq!(stdout(o), line);
}

/// tcp_echo_component.wasm (tests/fixtures/src/tcp_echo) connects to
/// 127.0.0.1:47011, sends a 40-byte line, prints what comes back. Runs it on
/// `backend` against an echo server on that port and checks the line went there
/// and back.
pub fn assert_tcp_echo(backend: &str) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:47011")
        .expect("port 47011 (fixed in tcp_echo.wat) is free for the echo server");
    let server = std::thread::spawn(move || {
        let Ok((mut c, _)) = listener.accept() else {
            return Vec::new();
        };
        let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(20)));
        let mut got = vec![0u8; 40];
        if c.read_exact(&mut got).is_err() || c.write_all(&got).is_err() {
            return Vec::new();
        }
        got
    });
    let dir = tempfile::tempdir().unwrap();
    let manifest = sockets_manifest(dir.path(), &[("connect", "127.0.0.1", 47011)]);
    let o = run(
        &[
            "run",
            "--backend",
            backend,
            "--manifest",
            &manifest,
            &fixture("tcp_echo_component.wasm"),
        ],
        None,
    );
    // If the workload never connected, this wakes the server (whose read then
    // fails, so `got` is empty) instead of leaving the test waiting in accept.
    let _ = std::net::TcpStream::connect("127.0.0.1:47011");
    let got = server.join().unwrap_or_default();
    assert_tcp_line(&o, &got, "ping from a component over wasi:sockets\n");
}

/// tcp_serve_component.wasm (tests/fixtures/src/tcp_serve) listens on
/// 127.0.0.1:47013, echoes one 40-byte line and prints it. Runs it on `backend`,
/// connects as the client and checks the line came back.
pub fn assert_tcp_serve(backend: &str) {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let manifest = sockets_manifest(dir.path(), &[("listen", "127.0.0.1", 47013)]);
    let child = keep()
        .args([
            "run",
            "--backend",
            backend,
            "--timeout",
            "30s",
            "--manifest",
            &manifest,
            &fixture("tcp_serve_component.wasm"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keep");
    let mut c = connect_with_retry(47013, std::time::Duration::from_secs(20));
    let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(20)));
    c.write_all(b"pong from the host to a Keep's listener\n")
        .unwrap();
    let mut back = vec![0u8; 40];
    if c.read_exact(&mut back).is_err() {
        back.clear();
    }
    let o = child.wait_with_output().expect("wait keep");
    assert_tcp_line(&o, &back, "pong from the host to a Keep's listener\n");
}

/// The backends to run a test on: process, and kvm where /dev/kvm opens.
pub fn backends() -> Vec<&'static str> {
    let mut b = vec!["process"];
    if have_kvm() {
        b.push("kvm");
    }
    b
}

/// Appends `n` as an unsigned LEB128 (for WebAssembly binaries built in a test).
pub fn uleb(mut n: u64, out: &mut Vec<u8>) {
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

/// Appends a WebAssembly section: its id, its size, its body.
pub fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    uleb(body.len() as u64, out);
    out.extend_from_slice(body);
}
