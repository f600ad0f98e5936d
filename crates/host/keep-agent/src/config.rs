//! The host configuration: one TOML file written by the host owner.
//!
//! ```toml
//! listen = "127.0.0.1:8400"
//! insecure_http = true          # plain HTTP; refused unless `listen` is loopback
//! # tls_cert = "cert.pem"       # or HTTPS: certificate chain and key (PEM)
//! # tls_key = "key.pem"
//! # client_ca = "clients-ca.pem" # with TLS: tenants may authenticate by client
//! #                              # certificate (mTLS) signed by this CA (PEM)
//! data_dir = "/var/lib/keep"    # created 0700, refused if others can write it (no tenant data is written)
//! max_keeps = 16
//! admin_token = "..."
//! backends = ["process", "kvm"] # where Keeps may be created (default ["process"]);
//!                               # a tenant picks one per Keep (`keep deploy --backend`)
//! jail = "on"                   # each Keep's process in its jail (namespaces, empty
//!                               # root, no privileges): "on" (default: every layer
//!                               # the host has, else none, with a warning),
//!                               # "required" (refuse a Keep the host cannot jail), "off"
//! # The front door (defaults shown): connections, timeouts, deadlines, quotas.
//! # max_connections = 1024       # open connections at most (TLS handshakes included)
//! # max_connections_per_peer = 128 # from one IP address
//! # header_timeout = "10s"       # to send a request's headers (idle connections too)
//! # body_timeout = "30s"         # the longest a request body may pause (not stdin)
//! # challenge_timeout = "60s"    # a new Keep not challenged by then is ended
//! # payload_timeout = "60s"      # after its evidence, a Keep not provisioned by then is ended
//! # creates_per_minute = 60      # per tenant, sustained (token bucket) ...
//! # create_burst = 16            # ... with this many at once
//! [limits]                      # the most any Keep gets (defaults for tenants)
//! memory = "512MiB"
//! cpu = "30s"
//! wall = "60s"
//! output = "64MiB"
//! [[tenant]]
//! name = "alice"
//! token = "..."                 # a bearer token, and/or client certificates:
//! # client_certs = ["cn:alice", "dns:alice.example", "sha256:<cert fingerprint hex>"]
//! max_keeps = 4                 # default: a fair share, max_keeps / number of tenants
//! limits = { memory = "256MiB" } # optional, lower than the host's
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The largest config file read.
const MAX_CONFIG: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: SocketAddr,
    #[serde(default)]
    insecure_http: bool,
    #[serde(default)]
    tls_cert: Option<PathBuf>,
    #[serde(default)]
    tls_key: Option<PathBuf>,
    #[serde(default)]
    client_ca: Option<PathBuf>,
    data_dir: PathBuf,
    #[serde(default = "default_max_keeps")]
    max_keeps: usize,
    #[serde(default)]
    admin_token: Option<String>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default = "default_backends")]
    backends: Vec<String>,
    #[serde(default)]
    jail: Option<String>,
    #[serde(default)]
    tenant: Vec<RawTenant>,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    #[serde(default = "default_max_connections_per_peer")]
    max_connections_per_peer: usize,
    #[serde(default)]
    header_timeout: Option<String>,
    #[serde(default)]
    body_timeout: Option<String>,
    #[serde(default)]
    challenge_timeout: Option<String>,
    #[serde(default)]
    payload_timeout: Option<String>,
    #[serde(default = "default_creates_per_minute")]
    creates_per_minute: u32,
    #[serde(default = "default_create_burst")]
    create_burst: u32,
}

fn default_max_connections() -> usize {
    1024
}
fn default_max_connections_per_peer() -> usize {
    128
}
fn default_creates_per_minute() -> u32 {
    60
}
fn default_create_burst() -> u32 {
    16
}

/// How the agent protects itself from its callers: connection caps, timeouts on
/// slow requests, deadlines for Keeps left waiting, and the rate of Keep creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontDoor {
    /// Open connections at most (a connection over the cap is closed at once).
    pub max_connections: usize,
    /// Open connections from one IP address at most.
    pub max_connections_per_peer: usize,
    /// The time a client has to send a request's headers (also how long an idle
    /// keep-alive connection stays open).
    pub header_timeout: Duration,
    /// The longest a request body may pause (every route but stdin, which a tenant
    /// may legitimately leave quiet; it ends with the Keep).
    pub body_timeout: Duration,
    /// A Keep in state 1 not challenged within this is ended.
    pub challenge_timeout: Duration,
    /// A Keep whose evidence was relayed and whose payload did not arrive within
    /// this is ended.
    pub payload_timeout: Duration,
    /// Keep creations per tenant per minute, sustained.
    pub creates_per_minute: u32,
    /// Keep creations per tenant at once (the bucket's size).
    pub create_burst: u32,
}

impl Default for FrontDoor {
    fn default() -> Self {
        FrontDoor {
            max_connections: default_max_connections(),
            max_connections_per_peer: default_max_connections_per_peer(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            challenge_timeout: Duration::from_secs(60),
            payload_timeout: Duration::from_secs(60),
            creates_per_minute: default_creates_per_minute(),
            create_burst: default_create_burst(),
        }
    }
}

fn default_backends() -> Vec<String> {
    vec!["process".into()]
}

/// A backend the owner may allow: keep-host's one list of kinds (only those
/// keep implements are accepted in host.toml).
pub use keep_host::BackendKind as Backend;

fn default_max_keeps() -> usize {
    16
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory: Option<String>,
    cpu: Option<String>,
    wall: Option<String>,
    output: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    name: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    client_certs: Vec<String>,
    #[serde(default)]
    max_keeps: Option<usize>,
    #[serde(default)]
    limits: RawLimits,
}

/// Per-Keep limits (None: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LimitsConfig {
    pub memory_bytes: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub wall_ms: Option<u64>,
    pub output_bytes: Option<u64>,
}

impl LimitsConfig {
    /// Each limit of `self` no higher than `cap`'s.
    pub fn clamp_to(self, cap: LimitsConfig) -> LimitsConfig {
        let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        LimitsConfig {
            memory_bytes: min(self.memory_bytes, cap.memory_bytes),
            cpu_ms: min(self.cpu_ms, cap.cpu_ms),
            wall_ms: min(self.wall_ms, cap.wall_ms),
            output_bytes: min(self.output_bytes, cap.output_bytes),
        }
    }
}

/// A client certificate identity that names a tenant (mTLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertIdentity {
    /// The subject's common name.
    CommonName(String),
    /// A DNS name in the subject alternative names.
    DnsName(String),
    /// The SHA-256 of the certificate (DER), lower-case hex.
    Sha256(String),
}

impl CertIdentity {
    fn parse(s: &str) -> Result<Self, String> {
        let (kind, value) = s.split_once(':').ok_or_else(|| {
            format!("client certificate identity {s:?}: expected cn:, dns: or sha256:")
        })?;
        if value.is_empty() {
            return Err(format!("client certificate identity {s:?} is empty"));
        }
        match kind {
            "cn" => Ok(Self::CommonName(value.to_string())),
            "dns" => Ok(Self::DnsName(value.to_ascii_lowercase())),
            "sha256" => {
                let hex = value.replace(':', "").to_ascii_lowercase();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "client certificate identity {s:?}: sha256 needs 64 hex digits"
                    ));
                }
                Ok(Self::Sha256(hex))
            }
            _ => Err(format!(
                "client certificate identity {s:?}: expected cn:, dns: or sha256:"
            )),
        }
    }
}

/// One tenant.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub name: String,
    /// Its bearer token, if it has one.
    pub token: Option<String>,
    /// Client certificate identities that authenticate it (with `client_ca`).
    pub client_certs: Vec<CertIdentity>,
    pub max_keeps: usize,
    pub limits: LimitsConfig,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub insecure_http: bool,
    /// Certificate chain and private key (PEM) for HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The CA (PEM) that signs tenants' client certificates (mTLS), if any.
    pub client_ca: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub max_keeps: usize,
    pub admin_token: Option<String>,
    pub limits: LimitsConfig,
    /// Where Keeps may be created; the first is the default.
    pub backends: Vec<Backend>,
    /// Whether and how every Keep is jailed.
    pub jail: keep_host::JailMode,
    pub tenants: Vec<TenantConfig>,
    pub front_door: FrontDoor,
}

impl Config {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let read = |message: String| ConfigError::Read {
            path: shown.clone(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| read(e.to_string()))?;
        if meta.len() > MAX_CONFIG {
            return Err(read(format!(
                "{} bytes is over the 1 MiB limit",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        Self::parse(&text, &shown)
    }

    /// Parses and checks configuration text.
    pub fn parse(text: &str, shown: &str) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.to_string(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => return Err(invalid("tls_cert and tls_key go together".into())),
        };
        if tls.is_some() && raw.insecure_http {
            return Err(invalid(
                "insecure_http and a TLS certificate exclude each other".into(),
            ));
        }
        if tls.is_none() && !raw.insecure_http {
            return Err(invalid(
                "no TLS certificate configured (tls_cert, tls_key); plain HTTP needs insecure_http = true and a loopback listen address".into(),
            ));
        }
        if tls.is_none() && !raw.listen.ip().is_loopback() {
            return Err(invalid(format!(
                "plain HTTP is allowed only on loopback, and {} is not",
                raw.listen
            )));
        }
        if raw.client_ca.is_some() && tls.is_none() {
            return Err(invalid(
                "client_ca (mTLS) needs TLS (tls_cert, tls_key)".into(),
            ));
        }
        let host_limits = parse_limits(&raw.limits).map_err(&invalid)?;
        let mut backends = Vec::new();
        for b in &raw.backends {
            let b = Backend::from_name(b)
                .filter(|b| b.implemented())
                .ok_or_else(|| {
                    invalid(format!(
                        "backends: unknown backend {b:?} (process and kvm are known)"
                    ))
                })?;
            if !backends.contains(&b) {
                backends.push(b);
            }
        }
        let jail = match raw.jail.as_deref() {
            None => keep_host::JailMode::On,
            Some(name) => keep_host::JailMode::from_name(name).ok_or_else(|| {
                invalid(format!(
                    "jail: {name:?} is not one of \"on\", \"required\", \"off\""
                ))
            })?,
        };
        if backends.is_empty() {
            return Err(invalid(
                "backends: allow at least one (process, kvm)".into(),
            ));
        }
        let front_door = front_door(&raw).map_err(&invalid)?;
        // A tenant without its own max_keeps gets a fair share, so that no tenant
        // can take every slot.
        let fair_share = (raw.max_keeps / raw.tenant.len().max(1)).max(1);
        let mut tenants = Vec::new();
        for t in &raw.tenant {
            if t.token.as_ref().is_some_and(|tok| tok.len() < 16) {
                return Err(invalid(format!(
                    "tenant {}: the token must have at least 16 characters",
                    t.name
                )));
            }
            let client_certs = t
                .client_certs
                .iter()
                .map(|c| CertIdentity::parse(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| invalid(format!("tenant {}: {m}", t.name)))?;
            if !client_certs.is_empty() && raw.client_ca.is_none() {
                return Err(invalid(format!(
                    "tenant {}: client_certs need client_ca (the CA that signs them)",
                    t.name
                )));
            }
            if t.token.is_none() && client_certs.is_empty() {
                return Err(invalid(format!(
                    "tenant {}: needs a token or client_certs",
                    t.name
                )));
            }
            if tenants.iter().any(|x: &TenantConfig| {
                x.name == t.name
                    || (x.token.is_some() && x.token == t.token)
                    || x.client_certs.iter().any(|c| client_certs.contains(c))
            }) {
                return Err(invalid(format!(
                    "tenant {}: duplicate name, token or client certificate identity",
                    t.name
                )));
            }
            tenants.push(TenantConfig {
                name: t.name.clone(),
                token: t.token.clone(),
                client_certs,
                max_keeps: t.max_keeps.unwrap_or(fair_share).min(raw.max_keeps),
                limits: parse_limits(&t.limits)
                    .map_err(|m| invalid(format!("tenant {}: {m}", t.name)))?
                    .clamp_to(host_limits),
            });
        }
        if let Some(a) = &raw.admin_token
            && (a.len() < 16 || tenants.iter().any(|t| t.token.as_ref() == Some(a)))
        {
            return Err(invalid(
                "admin_token must have at least 16 characters and differ from every tenant's"
                    .into(),
            ));
        }
        Ok(Config {
            listen: raw.listen,
            insecure_http: raw.insecure_http,
            tls,
            client_ca: raw.client_ca,
            data_dir: raw.data_dir,
            max_keeps: raw.max_keeps,
            admin_token: raw.admin_token,
            limits: host_limits,
            backends,
            jail,
            tenants,
            front_door,
        })
    }
}

fn front_door(raw: &RawConfig) -> Result<FrontDoor, String> {
    let d = FrontDoor::default();
    let dur = |v: &Option<String>, what: &str, default: Duration| -> Result<Duration, String> {
        match v.as_deref() {
            None => Ok(default),
            Some(s) => match keep_manifest::parse_duration_ms(s) {
                Ok(0) => Err(format!("{what}: must be more than 0")),
                Ok(ms) => Ok(Duration::from_millis(ms)),
                Err(e) => Err(format!("{what}: {e}")),
            },
        }
    };
    if raw.max_connections == 0 || raw.max_connections_per_peer == 0 {
        return Err("max_connections and max_connections_per_peer must be at least 1".into());
    }
    if raw.creates_per_minute == 0 || raw.create_burst == 0 {
        return Err("creates_per_minute and create_burst must be at least 1".into());
    }
    Ok(FrontDoor {
        max_connections: raw.max_connections,
        max_connections_per_peer: raw.max_connections_per_peer.min(raw.max_connections),
        header_timeout: dur(&raw.header_timeout, "header_timeout", d.header_timeout)?,
        body_timeout: dur(&raw.body_timeout, "body_timeout", d.body_timeout)?,
        challenge_timeout: dur(
            &raw.challenge_timeout,
            "challenge_timeout",
            d.challenge_timeout,
        )?,
        payload_timeout: dur(&raw.payload_timeout, "payload_timeout", d.payload_timeout)?,
        creates_per_minute: raw.creates_per_minute,
        create_burst: raw.create_burst,
    })
}

fn parse_limits(raw: &RawLimits) -> Result<LimitsConfig, String> {
    let size = |v: &Option<String>, what: &str| {
        v.as_deref()
            .map(|s| keep_manifest::parse_size(s).map_err(|e| format!("limits.{what}: {e}")))
            .transpose()
    };
    let dur = |v: &Option<String>, what: &str| {
        v.as_deref()
            .map(|s| keep_manifest::parse_duration_ms(s).map_err(|e| format!("limits.{what}: {e}")))
            .transpose()
    };
    Ok(LimitsConfig {
        memory_bytes: size(&raw.memory, "memory")?,
        cpu_ms: dur(&raw.cpu, "cpu")?,
        wall_ms: dur(&raw.wall, "wall")?,
        output_bytes: size(&raw.output, "output")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jail_is_on_by_default_and_its_modes_are_checked() {
        let base = "listen = \"127.0.0.1:0\"\ninsecure_http = true\ndata_dir = \"/tmp/x\"\n";
        assert_eq!(
            Config::parse(base, "t").unwrap().jail,
            keep_host::JailMode::On
        );
        for (name, mode) in [
            ("on", keep_host::JailMode::On),
            ("required", keep_host::JailMode::Required),
            ("off", keep_host::JailMode::Off),
        ] {
            let c = Config::parse(&format!("{base}jail = \"{name}\"\n"), "t").unwrap();
            assert_eq!(c.jail, mode);
        }
        let e = Config::parse(&format!("{base}jail = \"maybe\"\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("jail") && e.contains("required"), "{e}");
    }

    #[test]
    fn backends_default_to_process_and_unknown_ones_are_refused() {
        let base = "listen = \"127.0.0.1:0\"\ninsecure_http = true\ndata_dir = \"/tmp/x\"\n";
        let c = Config::parse(base, "t").unwrap();
        assert_eq!(c.backends, [Backend::Process]);
        let c = Config::parse(
            &format!("{base}backends = [\"kvm\", \"process\", \"kvm\"]\n"),
            "t",
        )
        .unwrap();
        assert_eq!(c.backends, [Backend::Kvm, Backend::Process]);
        let e = Config::parse(&format!("{base}backends = [\"sgx\"]\n"), "t").unwrap_err();
        assert!(e.to_string().contains("unknown backend \"sgx\""), "{e}");
        let e = Config::parse(&format!("{base}backends = []\n"), "t").unwrap_err();
        assert!(e.to_string().contains("at least one"), "{e}");
    }

    #[test]
    fn front_door_defaults_overrides_and_fair_shares() {
        let base = "listen = \"127.0.0.1:0\"\ninsecure_http = true\ndata_dir = \"/tmp/x\"\nmax_keeps = 9\n";
        let tenants = "[[tenant]]\nname = \"a\"\ntoken = \"aaaaaaaaaaaaaaaa\"\n[[tenant]]\nname = \"b\"\ntoken = \"bbbbbbbbbbbbbbbb\"\nmax_keeps = 7\n";
        let c = Config::parse(&format!("{base}{tenants}"), "t").unwrap();
        assert_eq!(c.front_door, FrontDoor::default());
        // a: its fair share of 9 between two tenants; b: its own number.
        assert_eq!((c.tenants[0].max_keeps, c.tenants[1].max_keeps), (4, 7));
        let c = Config::parse(
            &format!("{base}header_timeout = \"2s\"\nchallenge_timeout = \"500ms\"\nmax_connections = 10\nmax_connections_per_peer = 50\n{tenants}"),
            "t",
        )
        .unwrap();
        assert_eq!(c.front_door.header_timeout, Duration::from_secs(2));
        assert_eq!(c.front_door.challenge_timeout, Duration::from_millis(500));
        assert_eq!(c.front_door.max_connections_per_peer, 10);
        for bad in [
            "header_timeout = \"0s\"",
            "body_timeout = \"soon\"",
            "max_connections = 0",
            "create_burst = 0",
        ] {
            let e = Config::parse(&format!("{base}{bad}\n"), "t").unwrap_err();
            assert!(
                e.to_string().contains(bad.split(' ').next().unwrap()),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn plain_http_only_on_loopback_and_tenant_limits_clamped() {
        let base = r#"
            listen = "127.0.0.1:0"
            insecure_http = true
            data_dir = "/tmp/x"
            [limits]
            memory = "512MiB"
            [[tenant]]
            name = "a"
            token = "aaaaaaaaaaaaaaaa"
            limits = { memory = "1GiB", cpu = "2s" }
        "#;
        let c = Config::parse(base, "t").unwrap();
        assert_eq!(c.tenants[0].limits.memory_bytes, Some(512 << 20));
        assert_eq!(c.tenants[0].limits.cpu_ms, Some(2000));
        assert!(Config::parse(&base.replace("127.0.0.1", "0.0.0.0"), "t").is_err());
        assert!(Config::parse(&base.replace("insecure_http = true", ""), "t").is_err());
        let tls = base.replace("insecure_http = true", "tls_cert = \"c\"\ntls_key = \"k\"");
        assert!(Config::parse(&tls.replace("127.0.0.1", "0.0.0.0"), "t").is_ok());
        assert!(
            Config::parse(
                &base.replace("insecure_http = true", "tls_cert = \"c\""),
                "t"
            )
            .is_err()
        );
    }

    #[test]
    fn client_certificates_need_a_client_ca_and_tls() {
        let tls = r#"
            listen = "0.0.0.0:0"
            tls_cert = "c"
            tls_key = "k"
            client_ca = "ca.pem"
            data_dir = "/tmp/x"
            [[tenant]]
            name = "a"
            client_certs = ["cn:alice", "dns:Alice.Example", "sha256:AB:cd"]
        "#;
        let err = Config::parse(tls, "t").unwrap_err().to_string();
        assert!(err.contains("64 hex digits"), "{err}");
        let fp = "ab".repeat(32);
        let ok = tls.replace("sha256:AB:cd", &format!("sha256:{fp}"));
        let c = Config::parse(&ok, "t").unwrap();
        assert_eq!(c.tenants[0].token, None);
        assert_eq!(
            c.tenants[0].client_certs,
            [
                CertIdentity::CommonName("alice".into()),
                CertIdentity::DnsName("alice.example".into()),
                CertIdentity::Sha256(fp.clone()),
            ]
        );
        assert!(Config::parse(&ok.replace("client_ca = \"ca.pem\"", ""), "t").is_err());
        assert!(Config::parse(&ok.replace("cn:alice", "uid:alice"), "t").is_err());
        // Neither a token nor a certificate.
        let none = ok.replace(
            &format!("client_certs = [\"cn:alice\", \"dns:Alice.Example\", \"sha256:{fp}\"]"),
            "",
        );
        assert!(Config::parse(&none, "t").is_err());
        // Two tenants with one identity.
        let dup = format!("{ok}\n[[tenant]]\nname = \"b\"\nclient_certs = [\"cn:alice\"]\n");
        assert!(Config::parse(&dup, "t").is_err());
        let plain = ok
            .replace("0.0.0.0", "127.0.0.1")
            .replace("tls_cert = \"c\"", "insecure_http = true")
            .replace("tls_key = \"k\"", "");
        assert!(Config::parse(&plain, "t").is_err());
    }
}
