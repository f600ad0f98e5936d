//! A `keep host serve` child process on a random loopback port, with a temporary
//! config (tenants alice and bob, an admin), for the tests that drive the agent
//! through the real binaries (deploy.rs, agent_front_door.rs).

#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};

use super::common::{keep, stderr, stdout};

pub const ALICE: &str = "alice-token-0123456789";
pub const BOB: &str = "bob-token-0123456789ab";
pub const ADMIN: &str = "admin-token-0123456789";

pub struct Agent {
    pub child: Child,
    pub url: String,
    pub addr: String,
    pub log: Arc<Mutex<String>>,
    pub dir: tempfile::TempDir,
}

impl Agent {
    pub fn start(tamper: Option<&str>) -> Agent {
        Self::start_with(tamper, false)
    }

    /// With `tls`, the agent serves HTTPS with a certificate (for 127.0.0.1) signed by
    /// a fresh CA written to `ca.pem` in its directory.
    pub fn start_with(tamper: Option<&str>, tls: bool) -> Agent {
        Self::start_custom(tamper, tls, "", "", |_| {})
    }

    /// With extra top-level config lines (`top`; a line `alice.KEY = VALUE` goes
    /// into alice's tenant table instead), extra tables at the end (`tail`), and
    /// `prepare` to write files into the agent's directory first.
    pub fn start_custom(
        tamper: Option<&str>,
        tls: bool,
        top: &str,
        tail: &str,
        prepare: impl FnOnce(&std::path::Path),
    ) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        prepare(dir.path());
        let top = top.replace("{dir}", &dir.path().display().to_string());
        let (alice, top): (Vec<&str>, Vec<&str>) =
            top.lines().partition(|l| l.starts_with("alice."));
        let alice: String = alice
            .iter()
            .map(|l| format!("{}\n", l.trim_start_matches("alice.")))
            .collect();
        let top = top.join("\n");
        let max_keeps = if top.contains("max_keeps") {
            ""
        } else {
            "max_keeps = 8"
        };
        let transport = if tls {
            let (ca, cert, key) = test_pki();
            std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
            std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
            std::fs::write(dir.path().join("key.pem"), key).unwrap();
            format!(
                "tls_cert = \"{}\"\ntls_key = \"{}\"",
                dir.path().join("cert.pem").display(),
                dir.path().join("key.pem").display()
            )
        } else {
            "insecure_http = true".to_string()
        };
        let data = dir.path().join("data");
        let config = dir.path().join("host.toml");
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:0"
{transport}
{top}
data_dir = "{}"
{max_keeps}
admin_token = "{ADMIN}"
[limits]
memory = "512MiB"
wall = "60s"
output = "16MiB"
[[tenant]]
name = "alice"
token = "{ALICE}"
{alice}
[[tenant]]
name = "bob"
token = "{BOB}"
{tail}
"#,
                data.display()
            ),
        )
        .unwrap();
        let mut cmd = keep();
        cmd.args(["host", "serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(t) = tamper {
            cmd.env("KEEP_AGENT_TEST_TAMPER", t);
        }
        let mut child = cmd.spawn().expect("start the agent");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.lock().unwrap().push_str(&line);
            log.lock().unwrap().push('\n');
            if let Some(rest) = line.strip_prefix("keep host: listening on ") {
                url = Some(rest.split(' ').next().unwrap().to_string());
                break;
            }
        }
        let url = url.expect("the agent did not say where it listens");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_string();
        Agent {
            child,
            url,
            addr,
            log,
            dir,
        }
    }

    pub fn deploy(&self, token: &str, extra: &[&str]) -> Output {
        let mut cmd = keep();
        cmd.args(["deploy", "--host", &self.url, "--token", token])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.output().unwrap()
    }

    pub fn cli(&self, token: &str, args: &[&str]) -> Output {
        let mut cmd = keep();
        cmd.args(args)
            .args(["--host", &self.url, "--token", token])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.output().unwrap()
    }

    /// One raw HTTP/1.1 request; returns status and body.
    pub fn http(&self, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        (status, body)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, and a server certificate for 127.0.0.1 it signed (PEM: ca, cert, key).
pub fn test_pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "keep test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

pub fn dev_policy(agent: &Agent) -> String {
    let p = agent.dir.path().join("dev-policy.toml");
    std::fs::write(&p, "allow_insecure = true\n").unwrap();
    p.display().to_string()
}

/// The agent removes a Keep once its exec is reaped, just after the client has its
/// answer: allow it a moment.
pub fn no_keeps_left(agent: &Agent) {
    let mut body = String::new();
    for _ in 0..100 {
        let b = if agent.url.starts_with("https://") {
            let ca = agent.dir.path().join("ca.pem").display().to_string();
            let o = agent.cli(ADMIN, &["ps", "--json", "--ca", &ca]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            stdout(&o).replace(' ', "")
        } else {
            let (status, b) = agent.http("GET", "/v1/keeps", ADMIN, "");
            assert_eq!(status, 200);
            b
        };
        if b.contains("\"keeps\":[]") {
            return;
        }
        body = b;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("orphan Keeps: {body}");
}

pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let kids = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            kids.split_whitespace()
                .filter_map(|k| k.parse::<u32>().ok()),
        );
    }
    out
}

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}
