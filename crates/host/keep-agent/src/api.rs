//! The HTTP API (axum), documented in `docs/agent-api.md`.

// Handlers return axum's `Response` as their error: the idiomatic early return.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keep_host::{HostLimits, KvmBackend, ProcessBackend};
use keep_wire::{Limits, Outcome};
use serde::Deserialize;
use serde_json::json;

use crate::AgentError;
use crate::auth::{Caller, ClientCert, caller};
use crate::config::{Backend, Config, LimitsConfig};
use crate::metrics::Metrics;
use crate::registry::{Entry, Registry, TrustState};
use crate::relay::{self, End};

struct AppState {
    config: Arc<Config>,
    backend: ProcessBackend,
    registry: Registry,
    metrics: Metrics,
}

type S = State<Arc<AppState>>;

/// The longest the output stream to a tenant stays silent: then a Keepalive frame.
const KEEPALIVE: Duration = Duration::from_secs(1);

fn keep_vmm_available() -> bool {
    KvmBackend::new().is_ok()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Runs the server until a signal; then terminates every Keep.
pub async fn serve(config: Arc<Config>) -> Result<(), AgentError> {
    let backend = ProcessBackend::new(&config.data_dir)?;
    if config.backends.contains(&Backend::Kvm) && !keep_vmm_available() {
        tracing::warn!(
            "the config allows the kvm backend but /dev/kvm cannot be opened here: kvm Keeps will be refused"
        );
    }
    let state = Arc::new(AppState {
        config: config.clone(),
        backend,
        registry: Registry::default(),
        metrics: Metrics::default(),
    });
    let app = Router::new()
        .route("/v1/keeps", post(create).get(list))
        .route("/v1/keeps/{id}", get(show).delete(kill))
        .route("/v1/keeps/{id}/challenge", post(challenge))
        .route("/v1/keeps/{id}/events", get(events))
        .route(
            "/v1/keeps/{id}/payload",
            post(payload).layer(DefaultBodyLimit::max(keep_wire::MAX_SEALED_FRAME as usize)),
        )
        .route(
            "/v1/keeps/{id}/stdin",
            post(stdin).layer(DefaultBodyLimit::disable()),
        )
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(state.clone());
    let tls = match &config.tls {
        Some((cert, key)) => Some(
            crate::tls::server_config(cert, key, config.client_ca.as_deref())
                .map_err(AgentError::Tls)?,
        ),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(AgentError::Serve)?;
    if let Some(t) = relay::tamper() {
        tracing::warn!(tamper = %t, "TEST HOOK: this debug build acts as a hostile host");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, tenants = config.tenants.len(), max_keeps = config.max_keeps, "listening");
    match tls {
        Some(tls) => {
            let mtls = if config.client_ca.is_some() {
                ", client certificates accepted"
            } else {
                ""
            };
            eprintln!("keep host: listening on https://{addr} (TLS{mtls})");
            let listener =
                crate::tls::TlsListener::new(listener, tls).map_err(AgentError::Serve)?;
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<crate::tls::Peer>(),
            )
            .with_graceful_shutdown(shutdown(state))
            .await
            .map_err(AgentError::Serve)
        }
        None => {
            eprintln!("keep host: listening on http://{addr} (plain HTTP, loopback only)");
            use axum::serve::ListenerExt as _;
            // Small frames (evidence, records) must not wait for delayed ACKs.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown(state))
                .await
                .map_err(AgentError::Serve)
        }
    }
}

/// On a signal: terminate every Keep, say so, and let the server stop.
async fn shutdown(state: Arc<AppState>) {
    shutdown_signal().await;
    let keeps = state.registry.all();
    let n = keeps.len();
    for e in keeps {
        terminate(&state, &e, "host shutdown");
    }
    tracing::info!(terminated = n, "shutting down: terminated every Keep");
    eprintln!("keep host: shutting down; terminated {n} Keep(s)");
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn terminate(state: &AppState, e: &Arc<Entry>, why: &str) {
    e.event(format!("terminated: {why}"));
    if let Ok(mut t) = e.terminated.lock() {
        t.get_or_insert_with(|| why.to_string());
    }
    if let Ok(mut k) = e.keep.lock() {
        k.terminate(why);
    }
    if state.registry.remove(&e.id).is_some() {
        Metrics::inc(&state.metrics.killed);
    }
    e.set_state(TrustState::Ended);
    tracing::info!(keep = %e.id, reason = why, "Keep terminated");
}

fn authed(state: &AppState, headers: &HeaderMap, cert: &ClientCert) -> Result<Caller, Response> {
    caller(&state.config, headers, cert.0.as_deref()).map_err(|why| {
        Metrics::inc(&state.metrics.refused);
        error(StatusCode::UNAUTHORIZED, why)
    })
}

/// The Keep, if the caller may see it. Another tenant's Keep is "not found".
/// The authenticated caller and the Keep `id`, if the caller may act on it.
fn authed_owner(
    state: &AppState,
    headers: &HeaderMap,
    cert: &ClientCert,
    id: &str,
) -> Result<(Caller, Arc<Entry>), Response> {
    let who = authed(state, headers, cert)?;
    let e = owned(state, &who, id)?;
    Ok((who, e))
}

fn owned(state: &AppState, who: &Caller, id: &str) -> Result<Arc<Entry>, Response> {
    match state.registry.get(id) {
        Some(e) if *who == Caller::Admin || *who == Caller::Tenant(e.owner) => Ok(e),
        _ => {
            Metrics::inc(&state.metrics.refused);
            Err(error(StatusCode::NOT_FOUND, format!("no Keep {id}")))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    #[serde(default)]
    limits: LimitsConfig,
    /// `process` or `kvm`; the owner's first allowed backend when absent.
    #[serde(default)]
    backend: Option<String>,
}

fn new_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    format!("k-{}", hex::encode(b))
}

async fn create(State(state): S, headers: HeaderMap, cert: ClientCert, body: Bytes) -> Response {
    let who = match authed(&state, &headers, &cert) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Caller::Tenant(owner) = who else {
        return error(StatusCode::FORBIDDEN, "the admin token cannot create Keeps");
    };
    let req: CreateRequest = if body.is_empty() {
        CreateRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request: {e}")),
        }
    };
    let Some(tenant) = state.config.tenants.get(owner) else {
        return error(StatusCode::UNAUTHORIZED, "unknown tenant");
    };
    let allowed = &state.config.backends;
    let backend = match req.backend.as_deref() {
        None => allowed.first().copied().unwrap_or(Backend::Process),
        Some(name) => match Backend::parse(name).filter(|b| allowed.contains(b)) {
            Some(b) => b,
            None => {
                Metrics::inc(&state.metrics.refused);
                let names: Vec<&str> = allowed.iter().map(|b| b.name()).collect();
                return error(
                    StatusCode::FORBIDDEN,
                    format!(
                        "this host does not allow the {:?} backend (the owner allows: {})",
                        name.chars().take(32).collect::<String>(),
                        names.join(", ")
                    ),
                );
            }
        },
    };
    let limits = req.limits.clamp_to(tenant.limits);
    let host_limits = HostLimits {
        wall: limits.wall_ms.map(Duration::from_millis),
        output_bytes: limits.output_bytes,
        memory_bytes: limits.memory_bytes,
    };
    if state.registry.count_owned(owner) >= tenant.max_keeps
        || state.registry.count() >= state.config.max_keeps
    {
        Metrics::inc(&state.metrics.refused);
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "the maximum number of Keeps is reached",
        );
    }
    let st = state.clone();
    let cpu = limits.cpu_ms.map(Duration::from_millis);
    let started = tokio::task::spawn_blocking(move || match backend {
        Backend::Process => st.backend.start_attested(host_limits),
        Backend::Kvm => KvmBackend::new().and_then(|k| k.start_attested(host_limits, cpu)),
    })
    .await;
    let keep = match started {
        Ok(Ok(k)) => k,
        Ok(Err(e @ keep_host::LaunchError::NoKvm)) => {
            Metrics::inc(&state.metrics.refused);
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot create a Keep on the kvm backend: {e}"),
            );
        }
        Ok(Err(e)) => {
            Metrics::inc(&state.metrics.failed);
            tracing::warn!(tenant = %tenant.name, error = %e, "cannot create a Keep");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot create a Keep: {e}"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let created_event = format!(
        "created on the {} backend (runtime measurement sha384:{}, reported by this host)",
        keep.backend(),
        keep.measurement()
    );
    let entry = Arc::new(Entry {
        id: new_id(),
        owner,
        owner_name: tenant.name.clone(),
        limits,
        created: SystemTime::now(),
        backend: keep.backend(),
        state: std::sync::Mutex::new(TrustState::PreAttestation),
        keep: std::sync::Mutex::new(keep),
        events: std::sync::Mutex::new(Vec::new()),
        challenged: AtomicBool::new(false),
        provisioning: AtomicBool::new(false),
        stdin_opened: AtomicBool::new(false),
        terminated: std::sync::Mutex::new(None),
    });
    if let Err(m) = state
        .registry
        .insert(entry.clone(), state.config.max_keeps, tenant.max_keeps)
    {
        Metrics::inc(&state.metrics.refused);
        return error(StatusCode::TOO_MANY_REQUESTS, m);
    }
    Metrics::inc(&state.metrics.created);
    entry.event(created_event);
    entry.set_state(TrustState::PreAttestation);
    (StatusCode::CREATED, axum::Json(entry.view())).into_response()
}

async fn list(State(state): S, headers: HeaderMap, cert: ClientCert) -> Response {
    let who = match authed(&state, &headers, &cert) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut keeps: Vec<_> = state
        .registry
        .all()
        .into_iter()
        .filter(|e| who == Caller::Admin || who == Caller::Tenant(e.owner))
        .map(|e| e.view())
        .collect();
    keeps.sort_by(|a, b| a.id.cmp(&b.id));
    axum::Json(json!({ "keeps": keeps })).into_response()
}

async fn events(
    State(state): S,
    headers: HeaderMap,
    cert: ClientCert,
    Path(id): Path<String>,
) -> Response {
    let who = match authed(&state, &headers, &cert) {
        Ok(w) => w,
        Err(r) => return r,
    };
    match state.registry.get_any(&id) {
        Some(e) if who == Caller::Admin || who == Caller::Tenant(e.owner) => axum::Json(
            json!({ "id": id, "tenant": e.owner_name, "backend": e.backend, "events": e.events() }),
        )
        .into_response(),
        _ => {
            Metrics::inc(&state.metrics.refused);
            error(StatusCode::NOT_FOUND, format!("no Keep {id}"))
        }
    }
}

async fn show(
    State(state): S,
    headers: HeaderMap,
    cert: ClientCert,
    Path(id): Path<String>,
) -> Response {
    match authed_owner(&state, &headers, &cert, &id) {
        Ok((_, e)) => axum::Json(e.view()).into_response(),
        Err(r) => r,
    }
}

async fn kill(
    State(state): S,
    headers: HeaderMap,
    cert: ClientCert,
    Path(id): Path<String>,
) -> Response {
    let (who, e) = match authed_owner(&state, &headers, &cert, &id) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let st = state.clone();
    let reason = if who == Caller::Admin {
        "killed by the host admin"
    } else {
        "killed by its tenant"
    };
    let _ = tokio::task::spawn_blocking(move || terminate(&st, &e, reason)).await;
    axum::Json(json!({ "id": id, "state": TrustState::Ended })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    nonce: String,
}

async fn challenge(
    State(state): S,
    headers: HeaderMap,
    cert: ClientCert,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (_, e) = match authed_owner(&state, &headers, &cert, &id) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let req: ChallengeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(err) => return error(StatusCode::BAD_REQUEST, format!("bad request: {err}")),
    };
    if req.nonce.len() != 64 || !req.nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return error(StatusCode::BAD_REQUEST, "nonce must be 32 bytes of hex");
    }
    if e.challenged.swap(true, Ordering::SeqCst) {
        return error(
            StatusCode::CONFLICT,
            "this Keep was already challenged (one challenge per Keep)",
        );
    }
    let limits = Limits {
        memory_bytes: e.limits.memory_bytes,
        cpu_ms: e.limits.cpu_ms,
        open_files: None,
    };
    let entry = e.clone();
    let result = tokio::task::spawn_blocking(move || {
        let (mut channel, measurement) = {
            let keep = entry
                .keep
                .lock()
                .map_err(|_| relay::RelayError::Evidence("poisoned".into()))?;
            (keep.channel()?, keep.measurement())
        };
        relay::challenge(&mut channel, &req.nonce, limits, measurement)
    })
    .await;
    match result {
        Ok(Ok(ev)) => {
            e.set_state(TrustState::EvidenceRelayed);
            e.event(format!(
                "evidence relayed: tee {} ({} bytes)",
                ev.tee,
                ev.evidence.len()
            ));
            tracing::info!(keep = %e.id, tee = %ev.tee, evidence_bytes = ev.evidence.len(), "evidence relayed (tee=insecure means no hardware root of trust)");
            axum::Json(ev).into_response()
        }
        Ok(Err(err)) => {
            Metrics::inc(&state.metrics.failed);
            terminate(&state, &e, "no evidence");
            error(StatusCode::BAD_GATEWAY, format!("state 2: {err}"))
        }
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

async fn payload(
    State(state): S,
    headers: HeaderMap,
    cert: ClientCert,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (_, e) = match authed_owner(&state, &headers, &cert, &id) {
        Ok(found) => found,
        Err(r) => return r,
    };
    if e.state() != TrustState::EvidenceRelayed || e.provisioning.swap(true, Ordering::SeqCst) {
        return error(
            StatusCode::CONFLICT,
            "the Keep must be challenged first, and provisioned once",
        );
    }
    let channel = match e.keep.lock().ok().map(|k| k.channel()) {
        Some(Ok(c)) => c,
        _ => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "launch channel unavailable",
            );
        }
    };
    tracing::info!(keep = %e.id, sealed_bytes = body.len(), "relaying the sealed payload");
    e.event(format!("sealed payload relayed ({} bytes)", body.len()));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(32);
    let st = state.clone();
    std::thread::spawn(move || {
        let sealed = body.to_vec();
        let mut send = |wire: Vec<u8>| tx.blocking_send(Ok(Bytes::from(wire))).is_ok();
        let end = relay::payload(&e, channel, sealed, &mut send, &st.metrics.relayed_bytes);
        let limit = e.keep.lock().ok().and_then(|mut k| {
            // Reaps the exec (killing it if the relay ended before it did).
            k.terminate("relay ended");
            k.limit_hit()
        });
        match (limit, end) {
            (Some((limit, detail)), _) => {
                tracing::info!(keep = %e.id, limit = limit.name(), "Keep stopped at a host limit");
                e.event(format!(
                    "stopped by the host at the {} limit: {detail}",
                    limit.name()
                ));
                send(relay::host_exit(Outcome::LimitExceeded { limit, detail }));
                Metrics::inc(&st.metrics.killed);
            }
            (None, End::Reported(outcome)) => {
                let kind = match &outcome {
                    Outcome::Exited { .. } => "exited",
                    Outcome::Trapped { .. } => "trapped",
                    Outcome::LimitExceeded { .. } => "limit",
                    Outcome::Failed { .. } => "failed",
                };
                tracing::info!(keep = %e.id, outcome = kind, "Keep ended");
                e.event(format!("the exec reported its end: {kind}"));
                if matches!(outcome, Outcome::Failed { .. }) {
                    Metrics::inc(&st.metrics.failed);
                } else {
                    Metrics::inc(&st.metrics.completed);
                }
            }
            (None, End::Lost(why)) => {
                tracing::info!(keep = %e.id, reason = %why, "Keep ended without a report");
                e.event(format!("ended without a report: {why}"));
                let message = match e.terminated.lock().ok().and_then(|t| t.clone()) {
                    Some(by) => format!("the Keep was terminated ({by})"),
                    None => format!("the Keep ended without a report ({why})"),
                };
                send(relay::host_exit(Outcome::Failed { message }));
                Metrics::inc(&st.metrics.failed);
            }
        }
        st.registry.remove(&e.id);
        e.set_state(TrustState::Ended);
    });
    // A quiet workload must not look like a dead host: with nothing to relay for
    // KEEPALIVE, the tenant gets an empty Keepalive frame.
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
            Ok(item) => item.map(|item| (item, rx)),
            Err(_) => Some((Ok(Bytes::from(relay::keepalive())), rx)),
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-keep-frames")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

/// The most input bytes relayed to one Keep.
const MAX_INPUT: u64 = 1 << 30;

/// Relays the tenant's sealed input (the workload's stdin) to the Keep: the request
/// body is a stream of `Input` frames, each written to the launch channel as it
/// arrives (the agent cannot read them). Once per Keep, after its receipt.
async fn stdin(
    State(state): S,
    headers: HeaderMap,
    cert: ClientCert,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_, e) = match authed_owner(&state, &headers, &cert, &id) {
        Ok(found) => found,
        Err(r) => return r,
    };
    if e.state() != TrustState::Provisioned || e.stdin_opened.swap(true, Ordering::SeqCst) {
        return error(
            StatusCode::CONFLICT,
            "stdin: the Keep must be provisioned (its receipt relayed), and its stdin opened once",
        );
    }
    let mut channel = match e.keep.lock().ok().map(|k| k.channel()) {
        Some(Ok(c)) => c,
        _ => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "launch channel unavailable",
            );
        }
    };
    // A blocking writer: the exec's stdin pipe pushes back through it to the tenant.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        while let Some(wire) = rx.blocking_recv() {
            if channel.write_all(&wire).is_err() {
                return false;
            }
        }
        true
    });
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let (mut frames, mut bytes) = (0u64, 0u64);
    use futures_util::StreamExt as _;
    let outcome: Result<(), (StatusCode, String)> = 'relay: loop {
        let chunk = match stream.next().await {
            Some(Ok(c)) => c,
            Some(Err(err)) => break Err((StatusCode::BAD_REQUEST, format!("stdin: {err}"))),
            None if buf.is_empty() => break Ok(()),
            None => break Err((StatusCode::BAD_REQUEST, "stdin: truncated frame".into())),
        };
        buf.extend_from_slice(&chunk);
        while buf.len() >= 8 {
            let word = |at: usize| {
                let mut w = [0u8; 4];
                w.copy_from_slice(&buf[at..at + 4]);
                u32::from_le_bytes(w)
            };
            let (kind, len) = (word(0), word(4));
            if kind != keep_wire::FrameKind::Input as u32 {
                break 'relay Err((
                    StatusCode::BAD_REQUEST,
                    format!("stdin: frame kind {kind}, expected Input (11)"),
                ));
            }
            if len > keep_wire::MAX_CONTROL_FRAME {
                break 'relay Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "stdin: frame too large".into(),
                ));
            }
            let total = 8 + len as usize;
            if buf.len() < total {
                break;
            }
            let wire: Vec<u8> = buf.drain(..total).collect();
            frames += 1;
            bytes += len as u64;
            if bytes > MAX_INPUT {
                break 'relay Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("stdin: more than {MAX_INPUT} bytes"),
                ));
            }
            if frames == 1 && relay::tampering("drop-input") {
                continue;
            }
            if tx.send(wire).await.is_err() {
                break 'relay Err((StatusCode::CONFLICT, "stdin: the Keep has ended".into()));
            }
        }
    };
    drop(tx);
    let delivered = tokio::task::spawn_blocking(move || writer.join().unwrap_or(false))
        .await
        .unwrap_or(false);
    e.event(format!(
        "sealed input relayed ({frames} records, {bytes} bytes)"
    ));
    tracing::info!(keep = %e.id, records = frames, bytes, "sealed input relayed");
    match outcome {
        Err((status, message)) => error(status, message),
        Ok(()) if !delivered => error(StatusCode::CONFLICT, "stdin: the Keep has ended"),
        Ok(()) => axum::Json(json!({ "id": id, "input_records": frames, "input_bytes": bytes }))
            .into_response(),
    }
}

async fn metrics(State(state): S) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.registry.count()),
    )
        .into_response()
}
