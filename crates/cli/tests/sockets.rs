//! Sockets declared in Enarx.toml and Keep.toml: preopened for WASI preview 1, an
//! address allowlist for preview 2 components.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::process::Stdio;
use std::time::Duration;

use common::{connect_with_retry, fixture, free_port, keep, stderr, stdout};

#[test]
fn enarx_toml_listen_socket_echoes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let manifest = dir.path().join("Enarx.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
[[files]]
kind = "stdin"
[[files]]
kind = "stdout"
[[files]]
kind = "stderr"
[[files]]
kind = "listen"
prot = "tcp"
name = "web"
addr = "127.0.0.1"
port = {port}
"#
        ),
    )
    .unwrap();
    let child = keep()
        .args([
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("echo_server.wasm"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut conn = connect_with_retry(port, Duration::from_secs(30));
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
    let writer = {
        let mut w = conn.try_clone().unwrap();
        let payload = payload.clone();
        std::thread::spawn(move || {
            w.write_all(&payload).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut echoed = Vec::new();
    conn.read_to_end(&mut echoed).unwrap();
    writer.join().unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload);
    assert!(
        stderr(&o).contains("FD_COUNT=4 FD_NAMES=stdin:stdout:stderr:web"),
        "{}",
        stderr(&o)
    );
}

/// A one-connection server: reads until EOF, answers `reply` followed by what it
/// got, and returns what it got.
fn serve_once(reply: &'static [u8]) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(reply).unwrap();
        s.write_all(&got).unwrap();
        got
    });
    (port, serve)
}

/// Writes a Keep.toml declaring `dirs` and a connect socket `db` to `port`, and
/// runs the connect client with it.
fn run_client(dirs: &str, port: u16, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Keep.toml");
    let socket = format!(
        "[[sockets]]\nname = \"db\"\nkind = \"connect\"\nhost = \"127.0.0.1\"\nport = {port}\n"
    );
    std::fs::write(&manifest, format!("{dirs}{socket}")).unwrap();
    let client = fixture("connect_client.wasm");
    let mut all = vec![
        "run",
        "--manifest",
        manifest.to_str().unwrap(),
        &client,
        "--",
    ];
    all.extend_from_slice(args);
    keep().args(all).output().unwrap()
}

#[test]
fn keep_toml_connect_socket_talks_to_a_server() {
    let (port, serve) = serve_once(b"reply to ");
    let o = run_client("", port, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(serve.join().unwrap(), b"ping\n");
    assert_eq!(stdout(&o), "reply to ping\n");
    let err = stderr(&o);
    assert!(
        err.contains("FD_COUNT=4 FD_NAMES=stdin:stdout:stderr:db"),
        "{err}"
    );
}

#[test]
fn sockets_follow_preopened_directories() {
    let (port, serve) = serve_once(b"ok ");
    // stdio 0-2, /here at 3, the socket at 4.
    let o = run_client(
        "[[dirs]]\nhost = \".\"\nguest = \"/here\"\n\n",
        port,
        &["4"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ok ping\n");
    let err = stderr(&o);
    assert!(
        err.contains("FD_COUNT=5 FD_NAMES=stdin:stdout:stderr:/here:db"),
        "{err}"
    );
    serve.join().unwrap();
}

#[test]
fn unreachable_connect_is_one_line() {
    let o = run_client("", free_port(), &[]);
    common::assert_one_line(&o, 125, &["socket db", "cannot connect"]);
}

/// socket_check_component.wasm (tests/fixtures/src/socket_check) exits 0 only when a
/// connect to 127.0.0.1:47001 and a bind of 127.0.0.1:47003 are not refused, and a
/// connect to :47002 and a bind of :47004 are refused with access-denied.
fn socket_check(connect: bool, listen: bool) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::new();
    if connect {
        toml.push_str(
            "[[sockets]]\nname = \"out\"\nkind = \"connect\"\nhost = \"127.0.0.1\"\nport = 47001\n",
        );
    }
    if listen {
        toml.push_str(
            "[[sockets]]\nname = \"in\"\nkind = \"listen\"\naddr = \"127.0.0.1\"\nport = 47003\n",
        );
    }
    let manifest = dir.path().join("Keep.toml");
    std::fs::write(&manifest, toml).unwrap();
    keep()
        .args([
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("socket_check_component.wasm"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_component_serves_tcp_through_wasi_sockets() {
    common::assert_tcp_serve("process");
}

#[test]
fn a_component_talks_tcp_through_wasi_sockets() {
    common::assert_tcp_echo("process");
}

#[test]
fn a_component_gets_tcp_to_and_from_declared_addresses_only() {
    let o = socket_check(true, true);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Each check matters: without the connect or the listen declared, it is refused.
    for (connect, listen) in [(true, false), (false, true), (false, false)] {
        let o = socket_check(connect, listen);
        assert_eq!(
            o.status.code(),
            Some(1),
            "connect {connect} listen {listen}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn poll_oneoff_waits_on_preopened_sockets_with_a_timeout() {
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
    let child = keep()
        .args([
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("poll_server.wasm"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut conn = connect_with_retry(port, Duration::from_secs(30));
    // The server polls the quiet connection first (100 ms timeout), then says ready.
    let mut ready = [0u8; 6];
    conn.read_exact(&mut ready).unwrap();
    assert_eq!(&ready, b"ready\n");
    conn.write_all(b"ping").unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
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
