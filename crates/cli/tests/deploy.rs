//! Attested deployment through the real binaries on loopback: `keep host serve` as a
//! child process with a temporary config, `keep deploy` / `ps` / `kill` against it.
//! The hostile-host tests use the agent's debug-build-only hook
//! `KEEP_AGENT_TEST_TAMPER` (see crates/host/keep-agent/src/relay.rs).

#[path = "common/agent.rs"]
mod agent;
mod common;

use agent::{ADMIN, ALICE, Agent, BOB, alive, children, dev_policy, no_keeps_left, test_pki};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};

use common::{fixture, have_kvm, keep, stderr, stdout};

fn assert_state_failure(o: &Output, status: i32, fragments: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(status), "stderr: {err}");
    let line = err
        .lines()
        .find(|l| l.contains(") failed:"))
        .unwrap_or_else(|| panic!("no failure line in {err}"));
    for f in fragments {
        assert!(line.contains(f), "{f:?} not in {line:?}");
    }
    assert!(line.contains("Keep destroyed"), "{line}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn deploy_runs_hello_and_returns_exit_codes() {
    let agent = Agent::start(None);
    let policy = dev_policy(&agent);
    let o = agent.deploy(ALICE, &["--policy", &policy, &fixture("hello.wasm")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello from inside a Keep!\n");
    let err = stderr(&o);
    for s in [
        "state 1 pre-attestation",
        "state 2 attested",
        "INSECURE",
        "state 3 provisioned",
    ] {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
    let o = agent.deploy(
        ALICE,
        &["--policy", &policy, &fixture("exit_code.wasm"), "--", "42"],
    );
    assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));
    let o = agent.deploy(
        ALICE,
        &[
            "--policy",
            &policy,
            "--json",
            &fixture("args_env.wasm"),
            "--",
            "x y",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "argv[0]=args_env.wasm\nargv[1]=x y\n");
    let events: Vec<serde_json::Value> = stderr(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON event"))
        .collect();
    let states: Vec<i64> = events.iter().filter_map(|e| e["state"].as_i64()).collect();
    assert_eq!(states, [0, 1, 2, 3]);
    assert_eq!(events.last().unwrap()["event"], "exit");
    no_keeps_left(&agent);
    let (_, metrics) = agent.http("GET", "/metrics", "", "");
    assert!(
        metrics.contains("keep_agent_keeps_created_total 3"),
        "{metrics}"
    );
    assert!(metrics.contains("keep_agent_keeps_running 0"), "{metrics}");
}

#[test]
fn insecure_attester_is_refused_by_the_default_policy() {
    let agent = Agent::start(None);
    let o = agent.deploy(ALICE, &[&fixture("hello.wasm")]);
    assert_state_failure(
        &o,
        11,
        &["state 2 (attested)", "insecure.allowed", "allow_insecure"],
    );
    assert_eq!(stdout(&o), "");
    no_keeps_left(&agent);
}

#[test]
fn evidence_for_another_nonce_is_refused() {
    let agent = Agent::start(Some("nonce"));
    let o = agent.deploy(
        ALICE,
        &["--policy", &dev_policy(&agent), &fixture("hello.wasm")],
    );
    assert_state_failure(&o, 11, &["state 2 (attested)", "insecure.report_data"]);
    no_keeps_left(&agent);
}

#[test]
fn replayed_evidence_from_another_keep_is_refused() {
    let agent = Agent::start(Some("replay-evidence"));
    let policy = dev_policy(&agent);
    let first = agent.deploy(ALICE, &["--policy", &policy, &fixture("hello.wasm")]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let o = agent.deploy(ALICE, &["--policy", &policy, &fixture("hello.wasm")]);
    assert_state_failure(&o, 11, &["state 2 (attested)", "insecure.report_data"]);
    assert_eq!(stdout(&o), "");
}

#[test]
fn swapped_public_key_is_refused() {
    let agent = Agent::start(Some("public-key"));
    let o = agent.deploy(
        ALICE,
        &["--policy", &dev_policy(&agent), &fixture("hello.wasm")],
    );
    assert_state_failure(&o, 11, &["state 2 (attested)", "insecure.report_data"]);
}

#[test]
fn truncated_sealed_payload_is_refused_inside_the_keep() {
    let agent = Agent::start(Some("truncate-payload"));
    let o = agent.deploy(
        ALICE,
        &["--policy", &dev_policy(&agent), &fixture("hello.wasm")],
    );
    assert_state_failure(&o, 125, &["state 3 (provisioned)", "does not open"]);
    assert_eq!(stdout(&o), "");
    no_keeps_left(&agent);
}

#[test]
fn swapped_workload_is_refused_inside_the_keep() {
    let agent = Agent::start(None);
    let other = std::fs::read(fixture("cat.wasm")).unwrap();
    let digest = hex_sha384(&other);
    let o = agent.deploy(
        ALICE,
        &[
            "--policy",
            &dev_policy(&agent),
            "--workload-sha384",
            &digest,
            &fixture("hello.wasm"),
        ],
    );
    assert_state_failure(&o, 125, &["state 3 (provisioned)", "digest mismatch"]);
    assert_eq!(stdout(&o), "");
}

fn hex_sha384(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha384::digest(b))
}

#[test]
fn dropped_or_reordered_output_records_are_detected() {
    for hook in ["drop-record", "reorder-records"] {
        let agent = Agent::start(Some(hook));
        let o = agent.deploy(
            ALICE,
            &["--policy", &dev_policy(&agent), &fixture("hello.wasm")],
        );
        assert_state_failure(&o, 125, &["state 3 (provisioned)", "out of order"]);
        assert_eq!(stdout(&o), "", "{hook}");
    }
}

#[test]
fn a_tenant_cannot_see_or_kill_another_tenants_keep() {
    let agent = Agent::start(None);
    let (status, body) = agent.http("POST", "/v1/keeps", ALICE, "{}");
    assert_eq!(status, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["state"], "pre-attestation");

    assert_eq!(
        agent.http("GET", &format!("/v1/keeps/{id}"), BOB, "").0,
        404
    );
    assert_eq!(
        agent.http("DELETE", &format!("/v1/keeps/{id}"), BOB, "").0,
        404
    );
    let nonce = format!("{{\"nonce\":\"{}\"}}", "00".repeat(32));
    assert_eq!(
        agent
            .http("POST", &format!("/v1/keeps/{id}/challenge"), BOB, &nonce)
            .0,
        404
    );
    assert_eq!(agent.http("GET", "/v1/keeps", "not-a-token", "").0, 401);
    let o = agent.cli(BOB, &["ps"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!stdout(&o).contains(&id), "{}", stdout(&o));
    let o = agent.cli(BOB, &["kill", &id]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));

    let o = agent.cli(ALICE, &["ps"]);
    assert!(stdout(&o).contains(&id));
    let (_, all) = agent.http("GET", "/v1/keeps", ADMIN, "");
    assert!(all.contains(&id));
    let o = agent.cli(BOB, &["logs", &id]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let o = agent.cli(ALICE, &["kill", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    no_keeps_left(&agent);
    // Its log outlives it, for its tenant only.
    let o = agent.cli(ALICE, &["logs", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let log = stdout(&o);
    assert!(
        log.contains("state 1 pre-attestation") && log.contains("terminated: killed by its tenant"),
        "{log}"
    );
    assert_eq!(agent.cli(BOB, &["logs", &id]).status.code(), Some(125));
}

#[test]
fn secrets_reach_the_workload_but_never_the_agents_logs_or_disk() {
    let agent = Agent::start(None);
    let canary = "CANARY-7f3a9c1e-never-on-the-host";
    let secret_file = agent.dir.path().join("secret.txt");
    std::fs::write(&secret_file, canary).unwrap();
    let o = agent.deploy(
        ALICE,
        &[
            "--policy",
            &dev_policy(&agent),
            "--secret",
            &format!("canary=@{}", secret_file.display()),
            &fixture("files.wasm"),
            "--",
            "read",
            "/secrets/canary",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(canary), "{}", stdout(&o));
    let o = agent.deploy(
        ALICE,
        &[
            "--policy",
            &dev_policy(&agent),
            "--secret-env",
            &format!("CANARY={canary}"),
            &fixture("args_env.wasm"),
        ],
    );
    assert!(stdout(&o).contains(&format!("env:CANARY={canary}")));
    std::fs::remove_file(&secret_file).unwrap();

    let log = agent.log();
    assert!(
        log.contains("trust state"),
        "the agent logs its steps: {log}"
    );
    assert!(!log.contains(canary), "canary in the agent's log");
    let wasm = std::fs::read(fixture("files.wasm")).unwrap();
    let needle = &wasm[wasm.len() / 2..wasm.len() / 2 + 64];
    assert!(!contains(log.as_bytes(), needle));
    // Nothing in the agent's data directory holds the canary or the workload.
    let mut stack = vec![agent.dir.path().join("data")];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            let path: PathBuf = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                assert!(
                    !contains(&bytes, canary.as_bytes()),
                    "canary in {}",
                    path.display()
                );
                assert!(
                    !contains(&bytes, needle),
                    "workload bytes in {}",
                    path.display()
                );
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn limits_stop_the_workload_and_the_tenant_is_told_which() {
    let agent = Agent::start(None);
    let policy = dev_policy(&agent);
    // CPU: enforced inside the exec, reported in the sealed exit report.
    let o = agent.deploy(
        ALICE,
        &[
            "--policy",
            &policy,
            "--cpu",
            "200ms",
            &fixture("infinite_loop.wasm"),
        ],
    );
    assert_eq!(o.status.code(), Some(152), "{}", stderr(&o));
    assert!(stderr(&o).contains("cpu limit"), "{}", stderr(&o));
    // Wall clock: enforced by the host, reported (unauthenticated) by the agent.
    let o = agent.deploy(
        ALICE,
        &[
            "--policy",
            &policy,
            "--timeout",
            "1s",
            &fixture("infinite_loop.wasm"),
        ],
    );
    assert_eq!(o.status.code(), Some(153), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("wall-clock limit") && err.contains("reported by the host"),
        "{err}"
    );
    // Output: the host counts the sealed bytes it relays.
    let o = agent.deploy(
        ALICE,
        &[
            "--policy",
            &policy,
            "--max-output",
            "1MiB",
            &fixture("output_flood.wasm"),
        ],
    );
    assert_eq!(o.status.code(), Some(154), "{}", stderr(&o));
    assert!(stderr(&o).contains("output limit"), "{}", stderr(&o));
    assert!(o.stdout.len() <= 1 << 20, "{} bytes passed", o.stdout.len());
    no_keeps_left(&agent);
}

#[test]
fn concurrent_deploys_succeed_or_fail_cleanly() {
    let agent = Arc::new(Agent::start(None));
    let policy = dev_policy(&agent);
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let agent = agent.clone();
            let policy = policy.clone();
            std::thread::spawn(move || {
                agent.deploy(ALICE, &["--policy", &policy, &fixture("hello.wasm")])
            })
        })
        .collect();
    let mut ok = 0;
    for h in handles {
        let o = h.join().unwrap();
        match o.status.code() {
            Some(0) => {
                assert_eq!(stdout(&o), "Hello from inside a Keep!\n");
                ok += 1;
            }
            // Over max_keeps (8): refused at state 1, by name.
            Some(125) => assert!(
                stderr(&o).contains("state 1 (pre-attestation) failed"),
                "{}",
                stderr(&o)
            ),
            other => panic!("{other:?}: {}", stderr(&o)),
        }
    }
    assert!(ok >= 1);
    no_keeps_left(&agent);
}

#[test]
fn shutdown_terminates_every_keep_and_says_so() {
    let mut agent = Agent::start(None);
    for _ in 0..2 {
        assert_eq!(agent.http("POST", "/v1/keeps", ALICE, "{}").0, 201);
    }
    let pid = agent.child.id() as i32;
    // SIGTERM, as a service manager would.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = agent.child.wait().unwrap();
    assert!(code.success(), "{code:?}");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let log = agent.log();
    assert!(log.contains("terminated 2 Keep(s)"), "{log}");
}

/// The exec processes the agent started (its children).

#[test]
fn agent_killed_mid_deploy_the_client_is_told_and_no_keep_survives() {
    let mut agent = Agent::start(None);
    let policy = dev_policy(&agent);
    assert_eq!(agent.http("POST", "/v1/keeps", ALICE, "{}").0, 201);
    let url = agent.url.clone();
    let deploy = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let o = keep()
            .args([
                "deploy", "--host", &url, "--token", ALICE, "--policy", &policy,
            ])
            .arg(fixture("infinite_loop.wasm"))
            .output()
            .unwrap();
        (o, start.elapsed())
    });
    // Wait until both Keeps run (the idle one and the deploying one).
    let mut execs = Vec::new();
    for _ in 0..100 {
        execs = children(agent.child.id());
        if execs.len() == 2 && agent.log().contains("state=3") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(execs.len(), 2, "{}", agent.log());
    agent.child.kill().unwrap(); // SIGKILL: no chance to clean up
    agent.child.wait().unwrap();
    let (o, took) = deploy.join().unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("state 3 (provisioned) failed"),
        "{}",
        stderr(&o)
    );
    assert!(took < std::time::Duration::from_secs(20));
    // Every exec notices its launch channel closed and ends: no orphan Keep.
    for _ in 0..100 {
        if execs.iter().all(|p| !alive(*p)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for p in execs {
        assert!(!alive(p), "exec {p} outlived the agent");
    }
}

#[test]
fn one_challenge_and_one_payload_per_keep_in_order() {
    let agent = Agent::start(None);
    let (_, body) = agent.http("POST", "/v1/keeps", ALICE, "{}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["id"].as_str().unwrap();
    assert_eq!(
        agent
            .http("POST", &format!("/v1/keeps/{id}/payload"), ALICE, "xx")
            .0,
        409
    );
    let bad = agent.http(
        "POST",
        &format!("/v1/keeps/{id}/challenge"),
        ALICE,
        "{\"nonce\":\"00\"}",
    );
    assert_eq!(bad.0, 400);
    let nonce = format!("{{\"nonce\":\"{}\"}}", "ab".repeat(32));
    let (status, ev) = agent.http("POST", &format!("/v1/keeps/{id}/challenge"), ALICE, &nonce);
    assert_eq!(status, 200, "{ev}");
    let ev: serde_json::Value = serde_json::from_str(&ev).unwrap();
    assert_eq!(ev["tee"], "insecure");
    assert!(
        ev["evidence"]
            .as_str()
            .unwrap()
            .contains("no hardware root of trust")
    );
    assert_eq!(
        agent
            .http("POST", &format!("/v1/keeps/{id}/challenge"), ALICE, &nonce)
            .0,
        409
    );
    assert_eq!(
        agent
            .http("DELETE", &format!("/v1/keeps/{id}"), ADMIN, "")
            .0,
        200
    );
    no_keeps_left(&agent);
}

/// A loopback proxy that records every byte between client and agent.
fn recording_proxy(agent_addr: &str) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (target, record) = (agent_addr.to_string(), seen.clone());
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let server = TcpStream::connect(&target).unwrap();
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (format!("http://{addr}"), seen)
}

#[test]
fn the_loopback_traffic_carries_no_secret_workload_or_output_in_clear() {
    let agent = Agent::start(None);
    let (url, seen) = recording_proxy(&agent.addr);
    let canary = "CANARY-wire-5b1d0e77";
    let o = keep()
        .args([
            "deploy",
            "--host",
            &url,
            "--token",
            ALICE,
            "--policy",
            &dev_policy(&agent),
        ])
        .args(["--secret", &format!("canary={canary}")])
        .arg(fixture("files.wasm"))
        .args(["--", "read", "/secrets/canary"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(canary));
    let traffic = seen.lock().unwrap().clone();
    assert!(
        contains(&traffic, b"/v1/keeps"),
        "the proxy saw the exchange"
    );
    assert!(!contains(&traffic, canary.as_bytes()), "canary on the wire");
    assert!(
        !contains(&traffic, b"/secrets/canary"),
        "arguments on the wire"
    );
    let wasm = std::fs::read(fixture("files.wasm")).unwrap();
    for at in [0, wasm.len() / 3, wasm.len() / 2] {
        assert!(
            !contains(&traffic, &wasm[at..at + 32]),
            "workload bytes on the wire"
        );
    }
}

/// A CA and its key pair.
fn test_ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, name);
    (ca.self_signed(&ca_key).unwrap(), ca_key)
}

/// A client certificate (CN `cn`, SAN DNS names `dns`) signed by the CA; returns
/// (cert PEM, key PEM, SHA-256 of the DER in hex).
fn client_cert(
    ca: &(rcgen::Certificate, rcgen::KeyPair),
    cn: &str,
    dns: &[&str],
) -> (String, String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca.0, &ca.1).unwrap();
    use sha2::Digest;
    let fp = hex::encode(sha2::Sha256::digest(cert.der()));
    (cert.pem(), key.serialize_pem()).pipe(|(c, k)| (c, k, fp))
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[test]
fn deploy_over_tls_with_the_hosts_ca() {
    let agent = Agent::start_with(None, true);
    assert!(agent.url.starts_with("https://127.0.0.1:"), "{}", agent.url);
    let ca = agent.dir.path().join("ca.pem").display().to_string();
    let policy = dev_policy(&agent);
    let o = agent.deploy(
        ALICE,
        &["--ca", &ca, "--policy", &policy, &fixture("hello.wasm")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello from inside a Keep!\n");
    // Without the CA, or with another one, the client refuses the connection.
    let o = agent.deploy(ALICE, &["--policy", &policy, &fixture("hello.wasm")]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--ca"), "{}", stderr(&o));
    let (other_ca, _, _) = test_pki();
    let other = agent.dir.path().join("other-ca.pem");
    std::fs::write(&other, other_ca).unwrap();
    let o = agent.deploy(
        ALICE,
        &[
            "--ca",
            &other.display().to_string(),
            "--policy",
            &policy,
            &fixture("hello.wasm"),
        ],
    );
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("state 1 (pre-attestation) failed"),
        "{}",
        stderr(&o)
    );
}

/// Writes `name`.pem and `name`.key into `dir`; returns their paths.
fn write_identity(
    dir: &std::path::Path,
    name: &str,
    id: &(String, String, String),
) -> (String, String) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &id.0).unwrap();
    std::fs::write(&key, &id.1).unwrap();
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn mtls_tenants_deploy_by_certificate_and_stay_apart() {
    let clients_ca = test_ca("keep test client CA");
    let dave = client_cert(&clients_ca, "dave", &[]);
    let erin = client_cert(&clients_ca, "erin-laptop", &["erin.example"]);
    let frank = client_cert(&clients_ca, "frank", &[]);
    // The same CN as dave's, from a CA the host does not trust.
    let impostor = client_cert(&test_ca("another CA"), "dave", &[]);
    let ca_pem = clients_ca.0.pem();
    let tail = format!(
        "[[tenant]]\nname = \"dave\"\nclient_certs = [\"cn:dave\"]\n\
         [[tenant]]\nname = \"erin\"\nclient_certs = [\"dns:erin.example\"]\n\
         [[tenant]]\nname = \"frank\"\nclient_certs = [\"sha256:{}\"]\n",
        frank.2
    );
    let agent = Agent::start_custom(
        None,
        true,
        "client_ca = \"{dir}/clients-ca.pem\"",
        &tail,
        |d| {
            std::fs::write(d.join("clients-ca.pem"), &ca_pem).unwrap();
        },
    );
    let dir = agent.dir.path().to_path_buf();
    let ca = dir.join("ca.pem").display().to_string();
    let policy = dev_policy(&agent);
    let (dave_cert, dave_key) = write_identity(&dir, "dave", &dave);
    let (erin_cert, erin_key) = write_identity(&dir, "erin", &erin);
    let (frank_cert, frank_key) = write_identity(&dir, "frank", &frank);
    let (imp_cert, imp_key) = write_identity(&dir, "impostor", &impostor);
    let with_cert = |cert: &str, key: &str, args: &[&str]| {
        let mut cmd = keep();
        cmd.args(args)
            .args([
                "--host", &agent.url, "--ca", &ca, "--cert", cert, "--key", key,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.output().unwrap()
    };

    // A tenant with no token deploys with its certificate (CN, SAN DNS, fingerprint).
    for (cert, key) in [
        (&dave_cert, &dave_key),
        (&erin_cert, &erin_key),
        (&frank_cert, &frank_key),
    ] {
        let o = with_cert(
            cert,
            key,
            &["deploy", "--policy", &policy, &fixture("hello.wasm")],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o), "Hello from inside a Keep!\n");
    }
    // Environment variables work as the flags do.
    let o = keep()
        .args(["deploy", "--policy", &policy, &fixture("hello.wasm")])
        .env("KEEP_HOST", &agent.url)
        .env("KEEP_CA", &ca)
        .env("KEEP_CERT", &dave_cert)
        .env("KEEP_KEY", &dave_key)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A certificate from another CA fails the TLS handshake: nothing is created.
    let o = with_cert(
        &imp_cert,
        &imp_key,
        &["deploy", "--policy", &policy, &fixture("hello.wasm")],
    );
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("state 1 (pre-attestation) failed"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"));

    // dave's Keep: erin's certificate neither sees nor kills it.
    let o = with_cert(&dave_cert, &dave_key, &["ps", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut cmd = keep();
    let o = cmd
        .args([
            "deploy", "--host", &agent.url, "--ca", &ca, "--cert", &dave_cert, "--key", &dave_key,
        ])
        .args([
            "--policy",
            &policy,
            "--timeout",
            "30s",
            &fixture("infinite_loop.wasm"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deploying = o;
    let mut id = String::new();
    for _ in 0..400 {
        let o = with_cert(&dave_cert, &dave_key, &["ps", "--json"]);
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        if let Some(k) = v["keeps"].as_array().and_then(|k| k.first()) {
            id = k["id"].as_str().unwrap().to_string();
            assert_eq!(k["tenant"], "dave");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(!id.is_empty(), "dave's Keep never showed up");
    let o = with_cert(&erin_cert, &erin_key, &["ps"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains(&id), "{}", stdout(&o));
    let o = with_cert(&erin_cert, &erin_key, &["kill", &id]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("404"), "{}", stderr(&o));
    // A certificate and a token that name different tenants: refused.
    let o = with_cert(&erin_cert, &erin_key, &["ps", "--token", ALICE]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("401") && stderr(&o).contains("different callers"),
        "{}",
        stderr(&o)
    );
    // Bearer tokens still work on the same listener.
    let o = agent.cli(ALICE, &["ps", "--ca", &ca]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains(&id));
    let o = with_cert(&dave_cert, &dave_key, &["kill", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The deploy is told who ended its Keep.
    let o = output_within(
        deploying,
        std::time::Instant::now() + std::time::Duration::from_secs(30),
        "the killed deploy",
    );
    assert_state_failure(
        &o,
        125,
        &["state 3 (provisioned)", "terminated (killed by its tenant)"],
    );
    no_keeps_left(&agent);
}

#[test]
fn tls_trust_roots_system_and_ca_and_clear_errors() {
    let agent = Agent::start_with(None, true);
    let dir = agent.dir.path().to_path_buf();
    let ca = dir.join("ca.pem").display().to_string();
    let (other_ca, _, _) = test_pki();
    let other = dir.join("other-ca.pem");
    std::fs::write(&other, other_ca).unwrap();
    let ps = |url: &str, env_file: Option<&str>, extra: &[&str]| {
        let mut cmd = keep();
        cmd.args(["ps", "--host", url, "--token", ALICE])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // rustls-native-certs reads the system's roots from here when set.
        if let Some(f) = env_file {
            cmd.env("SSL_CERT_FILE", f)
                .env("SSL_CERT_DIR", dir.join("none"));
        }
        cmd.output().unwrap()
    };
    // The host's CA as a system root: no --ca needed.
    let o = ps(&agent.url, Some(&ca), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // System roots that do not include it: refused, one clear line.
    let o = ps(&agent.url, Some(&other.display().to_string()), &[]);
    common::assert_one_line(&o, 125, &["not trusted", "--ca"]);
    // System roots plus --ca.
    let o = ps(
        &agent.url,
        Some(&other.display().to_string()),
        &["--ca", &ca],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The certificate is for 127.0.0.1, not localhost.
    let port = agent.addr.rsplit(':').next().unwrap();
    let o = ps(&format!("https://localhost:{port}"), None, &["--ca", &ca]);
    common::assert_one_line(&o, 125, &["not valid for", "localhost"]);
}

#[test]
fn a_quiet_workload_is_kept_alive_by_the_agent() {
    let agent = Agent::start(None);
    let start = std::time::Instant::now();
    // Silent for 5 s, against an idle timeout of 3 s: the agent's keepalives
    // (after every quiet second) keep the client waiting.
    let o = agent.deploy(
        ALICE,
        &[
            "--policy",
            &dev_policy(&agent),
            "--idle-timeout",
            "3s",
            &fixture("sleep.wasm"),
            "--",
            "5",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "sleeping\nawake\n");
    assert!(start.elapsed() >= std::time::Duration::from_secs(5));
}

/// A loopback proxy to the agent that, on the connection carrying the payload's
/// output stream, forwards the response head and then nothing more (the host goes
/// silent, its connection open). Other connections pass.
fn freezing_proxy(agent_addr: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let target = agent_addr.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let server = TcpStream::connect(&target).unwrap();
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let mut frozen = false;
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if frozen {
                        continue; // read and drop: the client hears nothing
                    }
                    if let Some(at) = find(&buf[..n], b"x-keep-frames") {
                        // The response head only (up to its blank line).
                        let end = find(&buf[at..n], b"\r\n\r\n").map_or(n, |e| at + e + 4);
                        let _ = c_out.write_all(&buf[..end]);
                        frozen = true;
                        continue;
                    }
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                // Keep the client's connection open, silent, until the test ends.
                std::thread::sleep(std::time::Duration::from_secs(60));
                drop(c_out);
            });
        }
    });
    format!("http://{addr}")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_silent_host_is_detected_by_the_idle_timeout() {
    // A "host" that accepts connections and never answers: state 1, bounded.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let start = std::time::Instant::now();
    let o = keep()
        .args([
            "deploy",
            "--host",
            &url,
            "--token",
            ALICE,
            "--idle-timeout",
            "1s",
        ])
        .arg(fixture("hello.wasm"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("state 1 (pre-attestation) failed") && err.contains("sent nothing"),
        "{err}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    drop(silent);

    // A host that goes silent once the workload runs (a quiet workload: only the
    // keepalives would have spoken): state 3, and the Keep is destroyed.
    let agent = Agent::start(None);
    let url = freezing_proxy(&agent.addr);
    let start = std::time::Instant::now();
    let o = keep()
        .args([
            "deploy",
            "--host",
            &url,
            "--token",
            ALICE,
            "--idle-timeout",
            "2s",
        ])
        .args(["--policy", &dev_policy(&agent)])
        .arg(fixture("sleep.wasm"))
        .args(["--", "30"])
        .output()
        .unwrap();
    assert_state_failure(
        &o,
        125,
        &["state 3 (provisioned)", "sent nothing", "--idle-timeout"],
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    no_keeps_left(&agent);
}

/// Waits for a child (draining its stdout and stderr meanwhile), killing it and
/// failing the test if it runs past `deadline`.
fn output_within(mut child: Child, deadline: std::time::Instant, what: &str) -> Output {
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.join().unwrap();
            panic!("{what} hung: {}", String::from_utf8_lossy(&err));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `n` concurrent `keep deploy` processes against one agent with `max_keeps`; each
/// must succeed with its own output or fail cleanly at a named state, none may hang.
/// Returns (succeeded, failed cleanly) after checking that no Keep is left.
fn concurrent_deploys(n: usize, max_keeps: usize) -> (usize, usize) {
    // All of them alice's (not the fair share), all created at once.
    let top = format!("max_keeps = {max_keeps}\nalice.max_keeps = {max_keeps}\ncreate_burst = {n}");
    let agent = Arc::new(Agent::start_custom(None, false, &top, "", |_| {}));
    let policy = dev_policy(&agent);
    let start = std::time::Instant::now();
    // Generous: only a hang gets near it (the batch takes a few seconds).
    let deadline = start + std::time::Duration::from_secs(120);
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (agent, policy, barrier) = (agent.clone(), policy.clone(), barrier.clone());
            std::thread::spawn(move || {
                // Three workloads, so a mix-up of outputs between Keeps would show.
                let arg = i.to_string();
                let (wasm, args): (&str, Vec<&str>) = match i % 3 {
                    0 => ("hello.wasm", vec![]),
                    1 => ("exit_code.wasm", vec!["--", "7"]),
                    _ => ("args_env.wasm", vec!["--", &arg]),
                };
                let mut cmd = keep();
                cmd.args(["deploy", "--host", &agent.url, "--token", ALICE])
                    .args(["--policy", &policy, "--idle-timeout", "60s"])
                    .arg(fixture(wasm))
                    .args(&args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                barrier.wait();
                let child = cmd.spawn().unwrap();
                let o = output_within(child, deadline, &format!("deploy {i}"));
                (i, o)
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    for h in handles {
        let (i, o) = h.join().unwrap();
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{err}");
        let expected = match i % 3 {
            0 => (0, "Hello from inside a Keep!\n".to_string()),
            1 => (7, String::new()),
            _ => (0, format!("argv[0]=args_env.wasm\nargv[1]={i}\n")),
        };
        match o.status.code() {
            Some(c) if c == expected.0 && err.contains("state 3 provisioned") => {
                assert_eq!(stdout(&o), expected.1, "deploy {i}: {err}");
                ok += 1;
            }
            // Failing cleanly: over max_keeps, refused at state 1 by name.
            Some(125) => {
                assert!(
                    err.contains("state 1 (pre-attestation) failed") && err.contains("maximum"),
                    "deploy {i}: {err}"
                );
                assert_eq!(stdout(&o), "");
                failed += 1;
            }
            other => panic!("deploy {i}: {other:?}: {err}"),
        }
    }
    eprintln!(
        "{n} concurrent deploys, max_keeps {max_keeps}: {ok} succeeded, {failed} failed cleanly, {:?}",
        start.elapsed()
    );
    assert_eq!(ok + failed, n);
    no_keeps_left(&agent);
    let (_, metrics) = agent.http("GET", "/metrics", "", "");
    assert!(
        metrics.contains(&format!("keep_agent_keeps_created_total {ok}"))
            && metrics.contains(&format!("keep_agent_keeps_completed_total {ok}"))
            && metrics.contains("keep_agent_keeps_running 0"),
        "{metrics}"
    );
    (ok, failed)
}

#[test]
fn fifty_concurrent_deploys_against_one_agent_all_end_cleanly() {
    // Room for all: every one succeeds.
    let (ok, _) = concurrent_deploys(50, 64);
    assert_eq!(ok, 50);
    // Room for a few: the rest are refused at state 1, cleanly.
    let (ok, _) = concurrent_deploys(50, 4);
    assert!(ok >= 1);
}

/// `keep deploy` with `input` on its stdin (fed from another thread).
fn deploy_with_stdin(agent: &Agent, extra: &[&str], input: &[u8]) -> Output {
    let mut cmd = keep();
    cmd.args(["deploy", "--host", &agent.url, "--token", ALICE])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let o = output_within(child, deadline, "deploy with stdin");
    feeder.join().unwrap();
    o
}

#[test]
fn stdin_reaches_the_workload_sealed_with_its_end() {
    let agent = Agent::start(None);
    let policy = dev_policy(&agent);
    // Larger than a record (64 KiB) and than a pipe buffer: several records, and
    // back-pressure from a workload that writes as it reads.
    let mut input = Vec::new();
    for i in 0..40_000 {
        input.extend_from_slice(format!("line {i} CANARY-stdin-3e9d\n").as_bytes());
    }
    let (url, seen) = recording_proxy(&agent.addr);
    let mut cmd = keep();
    cmd.args([
        "deploy", "--host", &url, "--token", ALICE, "--policy", &policy,
    ])
    .arg(fixture("cat.wasm"))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let fed = input.clone();
    let feeder = std::thread::spawn(move || {
        let _ = pipe.write_all(&fed);
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let o = output_within(child, deadline, "cat with stdin");
    feeder.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout.len(), input.len());
    assert!(o.stdout == input, "stdin came back changed");
    // Neither the input nor the output crossed the wire in clear.
    let traffic = seen.lock().unwrap().clone();
    assert!(contains(&traffic, b"/stdin"), "the proxy saw the input");
    assert!(
        !contains(&traffic, b"CANARY-stdin-3e9d"),
        "stdin on the wire"
    );
    // An empty stdin is EOF at once; --no-stdin likewise.
    let o = deploy_with_stdin(&agent, &["--policy", &policy, &fixture("cat.wasm")], b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    let o = deploy_with_stdin(
        &agent,
        &["--policy", &policy, "--no-stdin", &fixture("cat.wasm")],
        b"not forwarded\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    // A workload that does not read its stdin still ends.
    let o = deploy_with_stdin(
        &agent,
        &["--policy", &policy, &fixture("hello.wasm")],
        &input,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello from inside a Keep!\n");
    no_keeps_left(&agent);
    let log = agent.log();
    assert!(log.contains("sealed input relayed"), "{log}");
    assert!(!log.contains("CANARY-stdin"), "input in the agent's log");
}

#[test]
fn dropped_input_is_refused_inside_the_keep() {
    let agent = Agent::start(Some("drop-input"));
    let o = deploy_with_stdin(
        &agent,
        &["--policy", &dev_policy(&agent), &fixture("cat.wasm")],
        b"first\nsecond\n",
    );
    assert_state_failure(
        &o,
        125,
        &[
            "state 3 (provisioned)",
            "refused the tenant's input",
            "out of order",
        ],
    );
    assert_eq!(stdout(&o), "");
    no_keeps_left(&agent);
}

#[test]
fn real_snp_evidence_is_verified_and_must_bind_the_nonce_and_key() {
    // A real SEV-SNP report and VCEK (keep-verifier's milan-virtee vector) as one
    // bundle, written by `keep verify --save-bundle`.
    let dir = tempfile::tempdir().unwrap();
    let vector = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../verifier/keep-verifier/tests/vectors/snp/milan-virtee");
    let bundle = dir.path().join("snp.cbor");
    let o = keep()
        .args(["verify", "--now", "2025-01-01", "--snp-report"])
        .arg(vector.join("report.bin"))
        .arg("--vcek")
        .arg(vector.join("vcek.der"))
        .arg("--save-bundle")
        .arg(&bundle)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A hostile (debug) agent relays it as its Keep's evidence: genuine hardware
    // evidence, but bound to someone else's report_data: refused at state 2.
    let agent = Agent::start(Some(&format!("evidence=sev-snp:{}", bundle.display())));
    let o = agent.deploy(ALICE, &[&fixture("hello.wasm")]);
    assert_state_failure(&o, 11, &["state 2 (attested)", "policy.snp.report_data"]);
    assert!(!stderr(&o).contains("not genuine"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    // The same report with one signed byte changed: not genuine.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let report = std::fs::read(vector.join("report.bin")).unwrap();
    let at = bytes
        .windows(64)
        .position(|w| w == &report[..64])
        .expect("the report in the bundle");
    bytes[at + 0x60] ^= 1; // inside REPORT_DATA, under the signature
    let tampered = dir.path().join("tampered.cbor");
    std::fs::write(&tampered, &bytes).unwrap();
    let agent = Agent::start(Some(&format!("evidence=sev-snp:{}", tampered.display())));
    let o = agent.deploy(ALICE, &[&fixture("hello.wasm")]);
    assert_state_failure(
        &o,
        10,
        &["state 2 (attested)", "not genuine", "snp.report.signature"],
    );
    // Evidence that claims one TEE and holds another.
    let agent = Agent::start(Some(&format!("evidence=tdx:{}", bundle.display())));
    let o = agent.deploy(ALICE, &[&fixture("hello.wasm")]);
    assert_state_failure(
        &o,
        10,
        &[
            "state 2 (attested)",
            "says tdx but its bundle holds sev-snp",
        ],
    );
    no_keeps_left(&agent);
}

#[test]
fn a_host_that_stalls_past_the_wall_clock_limit_is_not_believed() {
    // The agent relays the receipt, then only keepalives: the idle timeout never
    // fires, but the Keep should have ended at its wall-clock limit.
    let agent = Agent::start(Some("stall"));
    let start = std::time::Instant::now();
    let o = agent.deploy(
        ALICE,
        &[
            "--policy",
            &dev_policy(&agent),
            "--timeout",
            "2s",
            "--idle-timeout",
            "2s",
            &fixture("hello.wasm"),
        ],
    );
    assert_state_failure(
        &o,
        125,
        &["state 3 (provisioned)", "wall-clock limit", "stalling"],
    );
    let took = start.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(4) && took < std::time::Duration::from_secs(15),
        "{took:?}"
    );
}

/// The keep id from `keep deploy --json` events.
fn keep_id(o: &Output) -> String {
    stderr(o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|e| {
            (e["state"] == 1)
                .then(|| e["keep"].as_str().map(String::from))
                .flatten()
        })
        .unwrap_or_else(|| panic!("no Keep id in {}", stderr(o)))
}

#[test]
fn deploy_on_kvm_attests_the_launch_digest_and_runs_with_stdin_and_limits() {
    if !have_kvm() {
        return;
    }
    let agent = Agent::start_custom(None, false, r#"backends = ["process", "kvm"]"#, "", |_| {});
    let policy = dev_policy(&agent);
    let kvm = ["--backend", "kvm", "--policy", &policy];
    let o = agent.deploy(ALICE, &[&kvm[..], &[&fixture("hello.wasm")]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello from inside a Keep!\n");
    // The evidence binds the launch digest of the Keep (host memory limit 512 MiB),
    // the one `keep measure` computes offline.
    let m = keep()
        .args(["measure", "--json", "--memory", "512MiB"])
        .output()
        .unwrap();
    let digest: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
    let digest = digest["launch_digest"].as_str().unwrap().to_string();
    let err = stderr(&o);
    for s in [
        "(kvm backend)",
        "state 2 attested",
        &format!("KVM launch digest sha384:{}", &digest[..16]),
        "state 3 provisioned",
    ] {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
    // Exit codes and arguments.
    let o = agent.deploy(
        ALICE,
        &[&kvm[..], &[&fixture("exit_code.wasm"), "--", "42"]].concat(),
    );
    assert_eq!(o.status.code(), Some(42), "{}", stderr(&o));
    // stdin through cat: several input and output records.
    let mut input = Vec::new();
    for i in 0..20_000 {
        input.extend_from_slice(format!("line {i} on kvm\n").as_bytes());
    }
    let o = deploy_with_stdin(
        &agent,
        &[&kvm[..], &[&fixture("cat.wasm")]].concat(),
        &input,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        o.stdout == input,
        "stdin came back changed ({} bytes)",
        o.stdout.len()
    );
    let o = deploy_with_stdin(&agent, &[&kvm[..], &[&fixture("cat.wasm")]].concat(), b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    // A policy pinning another measurement refuses the Keep.
    let pinned = agent.dir.path().join("pinned.toml");
    std::fs::write(
        &pinned,
        format!(
            "allow_insecure = true\n[insecure]\nmeasurement = \"{}\"\n",
            "00".repeat(48)
        ),
    )
    .unwrap();
    let o = agent.deploy(
        ALICE,
        &[
            "--backend",
            "kvm",
            "--policy",
            &pinned.display().to_string(),
            &fixture("hello.wasm"),
        ],
    );
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("insecure.measurement"),
        "{}",
        stderr(&o)
    );
    // Limits: memory (the guest's is fixed at creation from it; the exec's limiter
    // inside), CPU and wall clock (the VMM's watchdog), output (the agent counts).
    let o = agent.deploy(
        ALICE,
        &[
            &kvm[..],
            &["--memory", "2MiB", &fixture("memory_grow.wasm")],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(151), "{}", stderr(&o));
    assert!(stderr(&o).contains("memory limit"), "{}", stderr(&o));
    let o = agent.deploy(
        ALICE,
        &[&kvm[..], &["--cpu", "2s", &fixture("infinite_loop.wasm")]].concat(),
    );
    assert_eq!(o.status.code(), Some(152), "{}", stderr(&o));
    assert!(stderr(&o).contains("cpu limit"), "{}", stderr(&o));
    let o = agent.deploy(
        ALICE,
        &[
            &kvm[..],
            &["--timeout", "3s", &fixture("infinite_loop.wasm")],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(153), "{}", stderr(&o));
    let o = agent.deploy(
        ALICE,
        &[
            &kvm[..],
            &["--max-output", "1MiB", &fixture("output_flood.wasm")],
        ]
        .concat(),
    );
    assert_eq!(o.status.code(), Some(154), "{}", stderr(&o));
    assert!(o.stdout.len() <= 1 << 20, "{} bytes passed", o.stdout.len());
    // ps and logs name the backend.
    let o = agent.deploy(
        ALICE,
        &[&kvm[..], &["--json", &fixture("hello.wasm")]].concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let id = keep_id(&o);
    let logs = agent.cli(ALICE, &["logs", &id]);
    assert_eq!(logs.status.code(), Some(0), "{}", stderr(&logs));
    let text = stdout(&logs);
    assert!(text.contains("on the kvm backend"), "{text}");
    assert!(text.contains(&format!("sha384:{digest}")), "{text}");
    no_keeps_left(&agent);
}

#[test]
fn kvm_keeps_show_in_ps_with_their_backend() {
    if !have_kvm() {
        return;
    }
    let agent = Agent::start_custom(None, false, r#"backends = ["kvm", "process"]"#, "", |_| {});
    // The owner's first backend is the default.
    let (status, body) = agent.http("POST", "/v1/keeps", ALICE, "{}");
    assert_eq!(status, 201, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["backend"], "kvm");
    let (status, body) = agent.http("POST", "/v1/keeps", ALICE, r#"{"backend":"process"}"#);
    assert_eq!(status, 201, "{body}");
    let o = agent.cli(ALICE, &["ps"]);
    let text = stdout(&o);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().nth(3) == Some("kvm")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().nth(3) == Some("process")),
        "{text}"
    );
}

#[test]
fn a_backend_the_owner_does_not_allow_is_refused_at_state_1() {
    // The default config allows the process backend only (no /dev/kvm needed).
    let agent = Agent::start(None);
    let policy = dev_policy(&agent);
    for backend in ["kvm", "sgx"] {
        let o = agent.deploy(
            ALICE,
            &[
                "--backend",
                backend,
                "--policy",
                &policy,
                &fixture("hello.wasm"),
            ],
        );
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        let err = stderr(&o);
        let line = err
            .lines()
            .find(|l| l.contains(") failed:"))
            .unwrap_or_else(|| panic!("no failure line in {err}"));
        for f in [
            "state 1 (pre-attestation) failed",
            "does not allow",
            backend,
            "allows: process",
        ] {
            assert!(line.contains(f), "{f:?} not in {line:?}");
        }
        assert!(!err.contains("state 2"), "{err}");
    }
    // Asking for the allowed one works.
    let o = agent.deploy(
        ALICE,
        &[
            "--backend",
            "process",
            "--policy",
            &policy,
            &fixture("hello.wasm"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    no_keeps_left(&agent);
}
