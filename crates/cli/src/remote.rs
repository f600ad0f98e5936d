//! Talking to a host agent over HTTP (`keep ps`, `keep kill`, and the transport of
//! `keep deploy`), and `keep host serve`.
//!
//! Everything the agent answers is untrusted: bodies are read with size limits and
//! parsed into typed values, never trusted for anything the tenant must rely on
//! (that is the evidence's and the sealed records' job).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::json;

use crate::cli::{KillArgs, RemoteArgs, ServeArgs};
use crate::output::outln;
use crate::usage::usage;

/// The largest JSON answer read from an agent.
const MAX_ANSWER: u64 = 1 << 20;

/// An HTTP client for one agent and token.
#[derive(Clone)]
pub struct Remote {
    agent: ureq::Agent,
    base: String,
    bearer: Option<String>,
    /// The longest the agent may stay silent (per read and per write).
    pub idle: std::time::Duration,
}

/// Whether an I/O error is the idle timeout expiring.
pub fn is_idle_timeout(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|i| i.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

/// The largest PEM file read (CA, client certificate, key).
const MAX_PEM: u64 = 1 << 20;

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>> {
    crate::input::read_bounded(path, MAX_PEM)
}

/// A client certificate chain and its key for mTLS.
fn client_cert(cert: &std::path::Path, key: &std::path::Path) -> Result<ureq::tls::ClientCert> {
    let pem = read_pem(cert)?;
    let chain: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if chain.is_empty() {
        bail!("--cert {}: no certificate", cert.display());
    }
    let key_pem = read_pem(key)?;
    let key = ureq::tls::PrivateKey::from_pem(&key_pem)
        .map_err(|e| anyhow::anyhow!("--key {}: {e}", key.display()))?;
    Ok(ureq::tls::ClientCert::new_with_certs(&chain, key))
}

impl Remote {
    pub fn new(args: &RemoteArgs) -> Result<Self> {
        let base = args.host.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            usage!("--host must be an http:// or https:// URL, not {base:?}");
        }
        if args.token.is_some() && base.starts_with("http://") && !is_loopback(&base) {
            bail!(
                "refusing to send the bearer token in clear to {base}: plain http:// is only for a host agent on loopback (127.0.0.1, ::1, localhost); use https://"
            );
        }
        if args.token.is_none() && args.cert.is_none() {
            usage!(
                "give a bearer token (--token or KEEP_TOKEN) or a client certificate (--cert and --key)"
            );
        }
        let mut config = ureq::Agent::config_builder();
        if !base.starts_with("https://") && args.cert.is_some() {
            usage!("a client certificate (--cert) needs an https:// host");
        }
        if base.starts_with("https://") {
            // The system's roots (rustls-native-certs: the OS store, or SSL_CERT_FILE /
            // SSL_CERT_DIR) plus the CA(s) given with --ca.
            let mut certs: Vec<ureq::tls::Certificate<'static>> = Vec::new();
            let system = rustls_native_certs::load_native_certs();
            for c in system.certs {
                certs.push(ureq::tls::Certificate::from_der(c.as_ref()).to_owned());
            }
            if let Some(ca) = &args.ca {
                let pem = read_pem(ca)?;
                let before = certs.len();
                certs.extend(ureq::tls::parse_pem(&pem).filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                }));
                if certs.len() == before {
                    bail!("--ca {}: no certificate", ca.display());
                }
            }
            if certs.is_empty() {
                bail!(
                    "no trusted root certificates: this system has none, so an https:// host needs --ca (the CA its TLS certificate chains to)"
                );
            }
            // rustls with the aws-lc-rs provider (the process default; set once).
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let identity = match (&args.cert, &args.key) {
                (Some(c), Some(k)) => Some(client_cert(c, k)?),
                _ => None,
            };
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .provider(ureq::tls::TlsProvider::Rustls)
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
                    .client_cert(identity)
                    .build(),
            );
        }
        let idle = match keep_manifest::parse_duration_ms(&args.idle_timeout) {
            Ok(0) => usage!("--idle-timeout must be more than 0"),
            Ok(ms) => ms,
            Err(e) => usage!("--idle-timeout: {e}"),
        };
        let idle = std::time::Duration::from_millis(idle);
        let agent: ureq::Agent = config
            .http_status_as_error(false)
            // The agent never redirects: a redirect is an answer, never followed
            // (it could point the token or the sealed payload elsewhere).
            .max_redirects(0)
            .timeout_connect(Some(idle.min(std::time::Duration::from_secs(10))))
            .timeout_per_read(Some(idle))
            .timeout_per_write(Some(idle))
            .build()
            .into();
        Ok(Self {
            agent,
            base,
            bearer: args.token.as_ref().map(|t| format!("Bearer {t}")),
            idle,
        })
    }

    /// One line on why the agent could not be reached, naming TLS trust and name
    /// failures plainly.
    fn unreachable(&self, e: ureq::Error) -> anyhow::Error {
        let host = self
            .base
            .split_once("://")
            .map_or(self.base.as_str(), |x| x.1);
        let tls = match &e {
            ureq::Error::Rustls(r) => Some(r),
            ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
            _ => None,
        };
        use rustls::CertificateError as C;
        match tls {
            Some(rustls::Error::InvalidCertificate(
                c @ (C::NotValidForName | C::NotValidForNameContext { .. }),
            )) => anyhow::anyhow!(
                "cannot reach the host agent: its TLS certificate is not valid for {host} ({c:?})"
            ),
            Some(rustls::Error::InvalidCertificate(c)) => anyhow::anyhow!(
                "cannot reach the host agent at {host}: its TLS certificate is not trusted ({c:?}); give the CA it chains to with --ca"
            ),
            Some(rustls::Error::AlertReceived(a)) => anyhow::anyhow!(
                "cannot reach the host agent at {host}: it ended the TLS handshake ({a:?}; a client certificate it does not accept?)"
            ),
            Some(r) => anyhow::anyhow!("cannot reach the host agent at {host}: TLS: {r}"),
            None if matches!(e, ureq::Error::Timeout(_)) => anyhow::anyhow!(
                "the host agent at {host} sent nothing for {:?} (--idle-timeout): it stopped responding",
                self.idle
            ),
            None => anyhow::Error::new(e).context("cannot reach the host agent"),
        }
    }

    /// Adds the bearer token, when there is one.
    fn auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.bearer {
            Some(b) => req.header("Authorization", b),
            None => req,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Turns a response into JSON, or its error into a one-line message.
    fn answer<T: serde::de::DeserializeOwned>(
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<T> {
        let status = resp.status();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .context("reading the agent's answer")?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct E {
                error: String,
            }
            let msg = serde_json::from_str::<E>(&text)
                .map(|e| e.error)
                .unwrap_or_else(|_| text.chars().take(200).collect());
            bail!("the host agent answered {}: {msg}", status.as_u16());
        }
        serde_json::from_str(&text).context("the host agent's answer is malformed")
    }

    pub fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self
            .auth(self.agent.get(self.url(path)))
            .call()
            .map_err(|e| self.unreachable(e))?;
        Self::answer(resp)
    }

    pub fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T> {
        let resp = self
            .auth(self.agent.post(self.url(path)))
            .send_json(body)
            .map_err(|e| self.unreachable(e))?;
        Self::answer(resp)
    }

    pub fn delete(&self, path: &str) -> Result<serde_json::Value> {
        let resp = self
            .auth(self.agent.delete(self.url(path)))
            .call()
            .map_err(|e| self.unreachable(e))?;
        Self::answer(resp)
    }

    /// Posts a body streamed from `reader` (chunked), with no write timeout: it may
    /// wait as long as the far end does not read (a workload not reading its stdin).
    pub fn post_reader(
        &self,
        path: &str,
        reader: impl std::io::Read + 'static,
    ) -> Result<serde_json::Value> {
        let resp = self
            .auth(
                self.agent
                    .post(self.url(path))
                    .config()
                    .timeout_per_write(None)
                    .build(),
            )
            .header("Content-Type", "application/x-keep-frames")
            .send(ureq::SendBody::from_owned_reader(reader))
            .map_err(|e| self.unreachable(e))?;
        Self::answer(resp)
    }

    /// Posts bytes and returns the streaming body on success.
    pub fn post_stream(&self, path: &str, body: &[u8]) -> Result<impl std::io::Read + use<>> {
        let resp = self
            .auth(self.agent.post(self.url(path)))
            .header("Content-Type", "application/octet-stream")
            .send(body)
            .map_err(|e| self.unreachable(e))?;
        if !resp.status().is_success() {
            let e: Result<serde_json::Value> = Self::answer(resp);
            bail!("{}", e.err().map(|e| e.to_string()).unwrap_or_default());
        }
        Ok(resp.into_body().into_reader())
    }
}

/// Whether an `http(s)://HOST[:PORT]...` URL names a loopback host: an address in
/// 127.0.0.0/8, `::1`, or `localhost`. Anything else (names included) is not.
pub fn is_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What became of a Keep the client tried to destroy.
pub enum Destroyed {
    /// The host answered that it terminated it.
    Yes,
    /// The host no longer had it (it had ended).
    AlreadyGone,
    /// The request failed: the Keep may still exist.
    Unknown(String),
}

impl Destroyed {
    /// How `keep deploy` ends its failure line, and the JSON value.
    pub fn said(&self) -> (String, &'static str) {
        match self {
            Destroyed::Yes => (" (Keep destroyed)".into(), "destroyed"),
            Destroyed::AlreadyGone => (
                " (Keep destroyed: the host had already ended it)".into(),
                "gone",
            ),
            Destroyed::Unknown(why) => (
                format!(" (the Keep may still exist: destroying it failed: {why})"),
                "unknown",
            ),
        }
    }
}

impl Remote {
    /// Asks the host to terminate Keep `id`, and says what is known of the result.
    pub fn destroy(&self, id: &str) -> Destroyed {
        let resp = match self
            .auth(self.agent.delete(self.url(&format!("/v1/keeps/{id}"))))
            .call()
        {
            Ok(r) => r,
            Err(e) => {
                let e = self.unreachable(e);
                return Destroyed::Unknown(format!("{e:#}"));
            }
        };
        match resp.status().as_u16() {
            200..=299 => Destroyed::Yes,
            404 => Destroyed::AlreadyGone,
            s => Destroyed::Unknown(format!("the host agent answered {s}")),
        }
    }
}

/// A Keep as the agent lists it.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct KeepView {
    pub id: String,
    pub tenant: String,
    pub state: String,
    #[serde(default)]
    pub created_unix: u64,
    #[serde(default)]
    pub backend: String,
    #[serde(default)]
    pub limits: ViewLimits,
    /// What the host measures of the Keep's use (its word, shown as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<serde_json::Value>,
}

/// The limits a Keep was created with (as the host says).
#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct ViewLimits {
    #[serde(default)]
    pub memory_bytes: Option<u64>,
}

pub fn ps(args: RemoteArgs) -> Result<ExitCode> {
    #[derive(Deserialize)]
    struct List {
        keeps: Vec<KeepView>,
    }
    let remote = Remote::new(&args)?;
    let list: List = remote.get("/v1/keeps")?;
    if args.json {
        outln!("{}", json!({ "keeps": list.keeps }))?;
    } else {
        outln!(
            "{:<20} {:<12} {:<18} {:<8} {:>8} {:>10} {:>10}",
            "ID",
            "TENANT",
            "STATE",
            "BACKEND",
            "CPU MS",
            "PEAK MIB",
            "OUTPUT"
        )?;
        for k in &list.keeps {
            let f = k.figures.as_ref();
            let num = |key: &str| {
                f.and_then(|f| f[key].as_u64())
                    .map_or_else(|| "-".to_string(), |v| v.to_string())
            };
            let peak = f.and_then(|f| f["peak_memory_bytes"].as_u64()).map_or_else(
                || "-".to_string(),
                |v| format!("{:.1}", v as f64 / 1048576.0),
            );
            outln!(
                "{:<20} {:<12} {:<18} {:<8} {:>8} {:>10} {:>10}",
                k.id,
                k.tenant,
                k.state,
                k.backend,
                num("cpu_ms"),
                peak,
                num("output_bytes")
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn kill(args: KillArgs) -> Result<ExitCode> {
    let remote = Remote::new(&args.remote)?;
    remote.delete(&format!("/v1/keeps/{}", args.id))?;
    if args.remote.json {
        outln!("{}", json!({ "killed": args.id }))?;
    } else {
        eprintln!("keep: Keep {} terminated", args.id);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn logs(args: KillArgs) -> Result<ExitCode> {
    #[derive(Deserialize, serde::Serialize)]
    struct Event {
        unix_ms: u64,
        event: String,
    }
    #[derive(Deserialize)]
    struct Events {
        #[serde(default)]
        backend: String,
        events: Vec<Event>,
    }
    let remote = Remote::new(&args.remote)?;
    let log: Events = remote.get(&format!("/v1/keeps/{}/events", args.id))?;
    if !args.remote.json && !log.backend.is_empty() {
        outln!("Keep {} on the {} backend", args.id, log.backend)?;
    }
    let start = log.events.first().map_or(0, |e| e.unix_ms);
    for e in &log.events {
        if args.remote.json {
            outln!("{}", json!(e))?;
        } else {
            outln!("{:>+8} ms  {}", e.unix_ms.saturating_sub(start), e.event)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn serve(args: ServeArgs) -> Result<ExitCode> {
    keep_agent::init_logging();
    let config = keep_agent::Config::load(&args.config)?;
    keep_agent::serve(config)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_loopback_hosts_may_get_a_token_over_plain_http() {
        for yes in [
            "http://127.0.0.1:8400",
            "http://127.9.8.7",
            "http://[::1]:8400/",
            "http://localhost:1",
            "http://LOCALHOST",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "http://10.0.0.1:8400",
            "http://0.0.0.0:8400",
            "http://[::]:8400",
            "http://example.com",
            "http://localhost.example.com",
            "http://127.0.0.1.example.com",
            "http://user@[fe80::1]:80",
            "not a url",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }
}
