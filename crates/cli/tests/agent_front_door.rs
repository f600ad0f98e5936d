//! The agent's front door, attacked through the real binaries on loopback: an
//! unauthenticated stranger (huge bodies, half-sent requests, thousands of
//! connections), a hostile tenant (crowding others out, leaving Keeps waiting), the
//! admin reaching into a tenant's Keep, a tenant that vanishes, and a client that
//! would send its token in clear. Every loop here is bounded in count and time.

#[path = "common/agent.rs"]
mod agent;
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use agent::{ADMIN, ALICE, Agent, BOB, children, dev_policy};
use common::{fixture, keep, stderr};

/// A TCP connection to the agent from another loopback address (another peer).
fn connect_from(source: &str, agent: &Agent) -> TcpStream {
    let target: SocketAddr = agent.addr.parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket.connect(&target.into()).unwrap();
    socket.into()
}

/// Whether the agent closed this connection within `wait` (EOF or reset).
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 or the like, then the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// Whether the connection is still open right now (no EOF or reset queued).
fn open_now(mut s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let open = matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    open
}

/// A field of /proc/PID/status in KiB (VmHWM, VmRSS).
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn create(agent: &Agent, token: &str, body: &str) -> String {
    let (status, b) = agent.http("POST", "/v1/keeps", token, body);
    assert_eq!(status, 201, "{b}");
    json(&b)["id"].as_str().unwrap().to_string()
}

const NONCE: &str =
    "{\"nonce\": \"0000000000000000000000000000000000000000000000000000000000000000\"}";

/// Polls `GET /v1/keeps` (admin) until `id` is gone; returns how long it took.
fn gone_within(agent: &Agent, id: &str, wait: Duration) -> Duration {
    let start = Instant::now();
    while start.elapsed() < wait {
        let (_, b) = agent.http("GET", "/v1/keeps", ADMIN, "");
        if !b.contains(id) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("Keep {id} still listed after {wait:?}");
}

fn events(agent: &Agent, id: &str) -> String {
    let (status, b) = agent.http("GET", &format!("/v1/keeps/{id}/events"), ADMIN, "");
    assert_eq!(status, 200, "{b}");
    b
}

#[test]
fn unauthenticated_uploads_are_refused_before_their_bodies_are_read() {
    let agent = Agent::start(None);
    let id = create(&agent, ALICE, "{}");
    let pid = agent.child.id();
    let before = status_kib(pid, "VmHWM:");
    // Two strangers announce 1 GiB each and start sending it: the answer comes at
    // once, and the agent stops reading.
    let mut written_total = 0usize;
    for _ in 0..2 {
        let mut s = TcpStream::connect(&agent.addr).unwrap();
        let mut reader = s.try_clone().unwrap();
        let answer = std::thread::spawn(move || {
            reader
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut head = [0u8; 12];
            reader.read_exact(&mut head).map(|_| head)
        });
        write!(
            s,
            "POST /v1/keeps/{id}/payload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            1u64 << 30
        )
        .unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let mut written = 0usize;
        while written < 256 << 20 {
            match s.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        let head = answer
            .join()
            .unwrap()
            .expect("an answer while the body was sent");
        assert_eq!(&head, b"HTTP/1.1 401");
        assert!(
            written < 256 << 20,
            "the agent kept reading an unauthenticated body"
        );
        written_total += written;
    }
    let after = status_kib(pid, "VmHWM:");
    eprintln!(
        "agent peak RSS {before} KiB -> {after} KiB after two unauthenticated 1 GiB uploads ({} MiB sent before the close)",
        written_total >> 20
    );
    assert!(after < before + 32 * 1024, "{before} -> {after} KiB");
    // A tenant's own oversized requests are refused from their headers.
    let mut s = TcpStream::connect(&agent.addr).unwrap();
    write!(
        s,
        "POST /v1/keeps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ALICE}\r\nContent-Length: 1048576\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
    let mut s = TcpStream::connect(&agent.addr).unwrap();
    write!(
        s,
        "POST /v1/keeps/{id}/payload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ALICE}\r\nContent-Length: {}\r\n\r\n",
        4u64 << 30
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
}

#[test]
fn half_sent_requests_are_cut_off_and_connections_are_capped() {
    let agent = Agent::start_custom(
        None,
        false,
        "header_timeout = \"2s\"\nmax_connections = 100\nmax_connections_per_peer = 40",
        "",
        |_| {},
    );
    let pid = agent.child.id();
    // The soft limit on open files was raised to the hard one.
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(files[3], files[4], "{limits}");
    // One peer sends 60 half requests: 40 are held (until the header timeout), the
    // rest closed at once.
    let start = Instant::now();
    let mut conns: Vec<TcpStream> = (0..60)
        .map(|_| {
            let mut s = connect_from("127.0.0.2", &agent);
            let _ = s.write_all(b"POST /v1/keeps HTTP/1.1\r\nHost: x\r\n");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let held = conns.iter().filter(|s| open_now(s)).count();
    assert_eq!(held, 40, "held from one peer");
    // Another peer still gets in.
    let o = agent.cli(ALICE, &["ps"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Every half request is cut off by the header timeout.
    for s in &mut conns {
        assert!(
            closed_within(s, Duration::from_secs(6)),
            "a half request stayed open"
        );
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(8), "{took:?}");
    // Idle connections (nothing sent) from many peers fill the global cap; past it
    // everyone is refused until the header timeout frees them.
    let mut idle: Vec<TcpStream> = (0..110)
        .map(|i| connect_from(&format!("127.0.1.{}", 1 + i % 5), &agent))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let open = idle.iter().filter(|s| open_now(s)).count();
    assert!((95..=100).contains(&open), "{open} idle connections held");
    for s in &mut idle {
        assert!(
            closed_within(s, Duration::from_secs(6)),
            "an idle connection stayed open"
        );
    }
    let o = agent.cli(ALICE, &["ps"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_, metrics) = agent.http("GET", "/metrics", "", "");
    let refused_total: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("keep_agent_connections_refused_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(refused_total >= 30, "{metrics}");
}

#[test]
fn the_admin_lists_and_kills_but_never_drives_a_tenants_keep() {
    let agent = Agent::start(None);
    let id = create(&agent, ALICE, "{}");
    for (route, body) in [("challenge", NONCE), ("payload", "x"), ("stdin", "")] {
        let (status, b) = agent.http("POST", &format!("/v1/keeps/{id}/{route}"), ADMIN, body);
        assert_eq!(status, 403, "{route}: {b}");
        assert!(b.contains("only their tenant"), "{b}");
    }
    // The tenant's one challenge was not used up.
    let (status, b) = agent.http("POST", &format!("/v1/keeps/{id}/challenge"), ALICE, NONCE);
    assert_eq!(status, 200, "{b}");
    // Bob cannot either (not his Keep: as if it did not exist).
    let (status, _) = agent.http("POST", &format!("/v1/keeps/{id}/challenge"), BOB, NONCE);
    assert_eq!(status, 404);
    // What the admin may do.
    assert_eq!(
        agent.http("GET", &format!("/v1/keeps/{id}"), ADMIN, "").0,
        200
    );
    assert_eq!(
        agent
            .http("GET", &format!("/v1/keeps/{id}/events"), ADMIN, "")
            .0,
        200
    );
    assert_eq!(
        agent
            .http("DELETE", &format!("/v1/keeps/{id}"), ADMIN, "")
            .0,
        200
    );
}

#[test]
fn keeps_left_waiting_are_reaped_and_tenants_cannot_crowd_each_other_out() {
    let agent = Agent::start_custom(
        None,
        false,
        "challenge_timeout = \"1s\"\npayload_timeout = \"1s\"\nmax_keeps = 6",
        "",
        |_| {},
    );
    // Never challenged; challenged but never provisioned; an exec ended by its
    // wall-clock limit while it waited.
    let waiting = create(&agent, ALICE, "{}");
    let challenged = create(&agent, ALICE, "{}");
    let (status, b) = agent.http(
        "POST",
        &format!("/v1/keeps/{challenged}/challenge"),
        ALICE,
        NONCE,
    );
    assert_eq!(status, 200, "{b}");
    let walled = create(&agent, BOB, r#"{"limits": {"wall_ms": 300}}"#);
    for (id, why) in [
        (&walled, "stopped at the wall-clock limit"),
        (&waiting, "not challenged within 1s"),
        (&challenged, "no sealed payload within 1s of its evidence"),
    ] {
        let took = gone_within(&agent, id, Duration::from_secs(5));
        let log = events(&agent, id);
        assert!(log.contains(why), "{why:?} not in {log}");
        eprintln!("{id} reaped after {took:?}: {why}");
    }
    let (_, metrics) = agent.http("GET", "/metrics", "", "");
    assert!(
        metrics.contains("keep_agent_keeps_reaped_total 3"),
        "{metrics}"
    );
    assert!(metrics.contains("keep_agent_keeps_running 0"), "{metrics}");
    // max_keeps 6 between two tenants: 3 each, so alice cannot take bob's.
    for _ in 0..3 {
        create(&agent, ALICE, "{}");
    }
    let (status, b) = agent.http("POST", "/v1/keeps", ALICE, "{}");
    assert_eq!(status, 429, "{b}");
    assert!(b.contains("the tenant has its maximum of 3 Keeps"), "{b}");
    create(&agent, BOB, "{}");
}

#[test]
fn keep_creation_is_rate_limited_per_tenant() {
    let agent = Agent::start_custom(
        None,
        false,
        "creates_per_minute = 1\ncreate_burst = 2",
        "",
        |_| {},
    );
    for _ in 0..2 {
        let id = create(&agent, ALICE, "{}");
        assert_eq!(
            agent
                .http("DELETE", &format!("/v1/keeps/{id}"), ALICE, "")
                .0,
            200
        );
    }
    let (status, b) = agent.http("POST", "/v1/keeps", ALICE, "{}");
    assert_eq!(status, 429, "{b}");
    assert!(
        b.contains("faster than this host allows (1 a minute, 2 at once)"),
        "{b}"
    );
    // Bob has his own budget.
    create(&agent, BOB, "{}");
    // The client names it at state 1.
    let o = agent.deploy(
        ALICE,
        &["--policy", &dev_policy(&agent), &fixture("hello.wasm")],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("state 1 (pre-attestation) failed") && stderr(&o).contains("retry in"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_stalled_payload_upload_times_out_and_ends_the_keep() {
    let agent = Agent::start_custom(None, false, "body_timeout = \"1s\"", "", |_| {});
    let id = create(&agent, ALICE, "{}");
    let (status, b) = agent.http("POST", &format!("/v1/keeps/{id}/challenge"), ALICE, NONCE);
    assert_eq!(status, 200, "{b}");
    let mut s = TcpStream::connect(&agent.addr).unwrap();
    write!(
        s,
        "POST /v1/keeps/{id}/payload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ALICE}\r\nContent-Length: 100000\r\n\r\nonly a few bytes"
    )
    .unwrap();
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("paused for over 1s after 16 of 100000 bytes"),
        "{answer}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    gone_within(&agent, &id, Duration::from_secs(3));
    assert!(events(&agent, &id).contains("did not arrive whole"));
}

#[test]
fn a_keep_ends_when_its_tenant_goes_away() {
    let agent = Agent::start(None);
    let mut cmd = keep();
    cmd.args(["deploy", "--host", &agent.url, "--token", ALICE])
        .args(["--policy", &dev_policy(&agent), "--no-stdin"])
        .arg(fixture("sleep.wasm"))
        .args(["--", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut client = cmd.spawn().unwrap();
    let mut out = client.stdout.take().unwrap();
    let mut first = [0u8; 8];
    out.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"sleeping");
    let (_, b) = agent.http("GET", "/v1/keeps", ALICE, "");
    let id = json(&b)["keeps"][0]["id"].as_str().unwrap().to_string();
    let agent_pid = agent.child.id();
    assert_eq!(children(agent_pid).len(), 1, "the exec runs");
    // kill -9: no goodbye from the tenant.
    client.kill().unwrap();
    client.wait().unwrap();
    let took = gone_within(&agent, &id, Duration::from_secs(10));
    eprintln!("the Keep ended {took:?} after its tenant was killed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !children(agent_pid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        children(agent_pid).is_empty(),
        "the exec outlived its tenant"
    );
    assert!(events(&agent, &id).contains("its tenant went away"));
}

#[test]
fn the_client_never_sends_its_token_in_clear_off_loopback() {
    // A listener on this machine's wildcard address: reachable as http://0.0.0.0,
    // which is not loopback, so the client must not connect at all.
    let trap = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let url = format!("http://0.0.0.0:{}", trap.local_addr().unwrap().port());
    for args in [
        vec!["ps", "--host", &url, "--token", ALICE],
        vec![
            "deploy",
            "--host",
            &url,
            "--token",
            ALICE,
            &fixture("hello.wasm"),
        ],
    ] {
        let o = keep().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("refusing to send the bearer token in clear"),
            "{err}"
        );
    }
    assert!(trap.accept().is_err(), "the client connected");
    // A host that redirects elsewhere is not followed (the token and the sealed
    // payload would go with it): the redirect is the answer.
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let redirecting = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", redirecting.local_addr().unwrap());
    let location = format!("http://{}/v1/keeps", elsewhere.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut c, _) = redirecting.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = c.read(&mut buf);
        let _ = write!(
            c,
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    });
    let o = keep()
        .args(["ps", "--host", &url, "--token", ALICE])
        .output()
        .unwrap();
    server.join().unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("307"), "{}", stderr(&o));
    assert!(elsewhere.accept().is_err(), "the redirect was followed");
}

/// Forwards to the agent, but breaks every DELETE: the client cannot destroy Keeps.
fn delete_breaking_proxy(agent_addr: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let target = agent_addr.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().take(64) {
            let Ok(mut client) = client else { continue };
            let Ok(mut server) = TcpStream::connect(&target) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Both);
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 64 * 1024];
                loop {
                    match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) if buf[..n].starts_with(b"DELETE ") => break,
                        Ok(n) => {
                            if server.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
                let _ = server.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    addr
}

#[test]
fn a_failed_deploy_says_whether_the_keep_was_destroyed() {
    let agent = Agent::start(None);
    // Refused at state 2 by the default policy; the delete reaches the host.
    let o = agent.deploy(ALICE, &[&fixture("hello.wasm")]);
    assert_eq!(o.status.code(), Some(11));
    assert!(stderr(&o).contains("(Keep destroyed)"), "{}", stderr(&o));
    // Through a proxy that breaks the delete: the client must not claim it.
    let url = format!("http://{}", delete_breaking_proxy(&agent.addr));
    let o = keep()
        .args(["deploy", "--host", &url, "--token", ALICE, "--json"])
        .arg(fixture("hello.wasm"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(11));
    let err = stderr(&o);
    assert!(!err.contains("Keep destroyed"), "{err}");
    let failed: serde_json::Value = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "failed")
        .unwrap();
    assert_eq!(failed["keep_fate"], "unknown", "{failed}");
    // The Keep the client could not destroy is still there (until its deadline).
    let (_, b) = agent.http("GET", "/v1/keeps", ALICE, "");
    assert!(b.contains(failed["keep"].as_str().unwrap()), "{b}");
}

#[test]
fn fifty_tenants_deploy_while_two_hundred_idle_connections_stay_open() {
    let tenants: String = (0..50)
        .map(|i| {
            format!("[[tenant]]\nname = \"t{i:02}\"\ntoken = \"tenant-{i:02}-token-0123456789\"\n")
        })
        .collect();
    let agent = std::sync::Arc::new(Agent::start_custom(
        None,
        false,
        "max_keeps = 104\nheader_timeout = \"60s\"",
        &tenants,
        |_| {},
    ));
    let pid = agent.child.id();
    let before = status_kib(pid, "VmHWM:");
    let idle: Vec<TcpStream> = (0..200)
        .map(|i| connect_from(&format!("127.0.2.{}", 1 + i % 4), &agent))
        .collect();
    let policy = dev_policy(&agent);
    let start = Instant::now();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let (agent, policy) = (agent.clone(), policy.clone());
            std::thread::spawn(move || {
                let token = format!("tenant-{i:02}-token-0123456789");
                let o = agent.deploy(
                    &token,
                    &[
                        "--policy",
                        &policy,
                        "--idle-timeout",
                        "60s",
                        &fixture("hello.wasm"),
                    ],
                );
                (i, o)
            })
        })
        .collect();
    for h in handles {
        let (i, o) = h.join().unwrap();
        assert_eq!(o.status.code(), Some(0), "tenant {i}: {}", stderr(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "Hello from inside a Keep!\n"
        );
    }
    let took = start.elapsed();
    let (_, metrics) = agent.http("GET", "/metrics", "", "");
    let open: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("keep_agent_connections_open "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        open >= 200,
        "the idle connections were dropped: {open} open"
    );
    let after = status_kib(pid, "VmHWM:");
    eprintln!(
        "50 tenants deployed in {took:?} beside {} idle connections; agent peak RSS {before} KiB before, {after} KiB after",
        idle.len()
    );
    assert!(after < 256 * 1024, "agent peak RSS {after} KiB");
    agent::no_keeps_left(&agent);
}

/// The host owner sees each running Keep's use, measured by the host from the
/// kernel, in `GET /v1/keeps` (`keep ps --json`) and in `/metrics`, on every
/// backend; a stranger scraping `/metrics` (and a tenant) sees only the totals.
#[test]
fn the_owner_sees_each_keeps_figures_in_ps_and_metrics() {
    let allowed = if common::have_kvm() {
        r#"backends = ["process", "kvm"]"#
    } else {
        ""
    };
    let agent = Agent::start_custom(None, false, allowed, "", |_| {});
    let policy = dev_policy(&agent);
    for backend in common::backends() {
        let mut deploy = keep()
            .args([
                "deploy",
                "--host",
                &agent.url,
                "--token",
                ALICE,
                "--no-stdin",
            ])
            .args(["--backend", backend, "--policy", &policy])
            .arg(fixture("sleep.wasm"))
            .args(["--", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let keep = loop {
            let (status, body) = agent.http("GET", "/v1/keeps", ADMIN, "");
            assert_eq!(status, 200, "{body}");
            let found = json(&body)["keeps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| {
                    k["state"] == "provisioned"
                        && k["figures"]["peak_memory_bytes"].as_u64().unwrap_or(0) > 0
                        && k["figures"]["open_files"].as_u64().unwrap_or(0) > 0
                })
                .cloned();
            if let Some(k) = found {
                break k;
            }
            assert!(Instant::now() < deadline, "{backend}: no figures: {body}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(keep["backend"], backend);
        assert_eq!(keep["figures"]["running"], true);
        assert!(keep["figures"]["cpu_ms"].as_u64().is_some(), "{keep}");
        let id = keep["id"].as_str().unwrap();
        // `keep ps --json` shows the same.
        let o = agent.cli(ADMIN, &["ps", "--json"]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("peak_memory_bytes"),
            "{}",
            stderr(&o)
        );
        // Per-Keep figures are the owner's: an unauthenticated scrape and a
        // tenant get the host's totals only.
        for token in ["", ALICE] {
            let (status, metrics) = agent.http("GET", "/metrics", token, "");
            assert_eq!(status, 200);
            assert!(metrics.contains("keep_agent_keeps_running"), "{metrics}");
            assert!(
                !metrics.contains(id),
                "{token:?} sees a Keep's figures: {metrics}"
            );
        }
        let (status, metrics) = agent.http("GET", "/metrics", ADMIN, "");
        assert_eq!(status, 200);
        for gauge in [
            "keep_agent_keep_cpu_milliseconds",
            "keep_agent_keep_peak_memory_bytes",
            "keep_agent_keep_output_bytes",
            "keep_agent_keep_open_files",
        ] {
            let line = format!("{gauge}{{keep=\"{id}\",backend=\"{backend}\"}} ");
            assert!(metrics.contains(&line), "{backend}: no {line} in {metrics}");
        }
        assert!(
            !metrics.contains("alice"),
            "tenant names stay out of /metrics"
        );
        assert_eq!(deploy.wait().unwrap().code(), Some(0), "{backend}");
    }
}
