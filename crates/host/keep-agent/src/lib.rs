//! `keep-agent`: the host owner's daemon (`keep host serve`).
//!
//! **Trusts:** its configuration file (tokens, limits, listen address) and the host
//! it runs on. **Does not trust:** tenants (every request is authenticated by a
//! bearer token, bounded in size, and may touch only the tenant's own Keeps) and the
//! Keeps (their frames are parsed with bounded sizes; their resource use is limited
//! from outside with `keep-host`'s machinery).
//!
//! It never sees plaintext workloads, secrets or tenant I/O: it relays the tenant's
//! nonce, the Keep's evidence, the sealed payload and the sealed output records
//! (`keep-seal`), and logs only identifiers, states, sizes and outcomes, never
//! payload or output bytes.
//!
//! HTTP API: see `docs/agent-api.md`.

mod api;
mod auth;
mod config;
mod listener;
mod metrics;
mod quota;
mod registry;
mod relay;
mod tls;

pub use config::{CertIdentity, Config, ConfigError, FrontDoor, LimitsConfig, TenantConfig};
pub use registry::TrustState;

use std::net::SocketAddr;
use std::sync::Arc;

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Each launch error names its own step ("cannot prepare the exec: ...",
    /// a refused data directory, ...).
    #[error(transparent)]
    Backend(#[from] keep_host::LaunchError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error("runtime: {0}")]
    Runtime(std::io::Error),
}

/// Starts logging to stderr (RUST_LOG or `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Runs the agent until SIGINT or SIGTERM, then terminates every Keep.
pub fn serve(config: Config) -> Result<(), AgentError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(AgentError::Runtime)?;
    runtime.block_on(api::serve(Arc::new(config)))
}
