//! Preopened sockets declared in Enarx.toml and Keep.toml (WASI preview 1).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{fixture, keep, stderr, stdout};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn connect_with_retry(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("the Keep never listened on {port}: {e}"),
        }
    }
}

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
    let mut conn = connect_with_retry(port);
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

#[test]
fn keep_toml_connect_socket_talks_to_a_server() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
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
            "[[sockets]]\nname = \"db\"\nkind = \"connect\"\nhost = \"127.0.0.1\"\nport = {port}\n"
        ),
    )
    .unwrap();
    let o = keep()
        .args([
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("connect_client.wasm"),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(serve.join().unwrap(), b"ping\n");
    assert_eq!(stdout(&o), "reply to ping\n");
    assert!(
        stderr(&o).contains("FD_COUNT=4 FD_NAMES=stdin:stdout:stderr:db"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sockets_follow_preopened_directories() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let serve = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(b"ok").unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Keep.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[dirs]]\nhost = \".\"\nguest = \"/here\"\n\n[[sockets]]\nname = \"db\"\nkind = \"connect\"\nhost = \"127.0.0.1\"\nport = {port}\n"
        ),
    )
    .unwrap();
    // stdio 0-2, /here at 3, the socket at 4.
    let o = keep()
        .args([
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("connect_client.wasm"),
            "--",
            "4",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ok");
    assert!(
        stderr(&o).contains("FD_NAMES=stdin:stdout:stderr:/here:db"),
        "{}",
        stderr(&o)
    );
    serve.join().unwrap();
}

#[test]
fn unreachable_connect_is_one_line() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Keep.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[sockets]]\nname = \"db\"\nkind = \"connect\"\nhost = \"127.0.0.1\"\nport = {port}\n"
        ),
    )
    .unwrap();
    let o = keep()
        .args([
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            &fixture("connect_client.wasm"),
        ])
        .output()
        .unwrap();
    common::assert_one_line(&o, 125, &["socket db", "cannot connect"]);
}
