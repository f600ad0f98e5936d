//! The HTTP API (axum), documented in `docs/agent-api.md`.

// Handlers return axum's `Response` as their error: the idiomatic early return.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use keep_host::{AttestedKeep, HostLimits, KvmBackend, ProcessBackend};
use keep_wire::{Limits, Outcome};
use serde::Deserialize;
use serde_json::json;

use crate::AgentError;
use crate::auth::{Caller, ClientCert, caller};
use crate::config::{Backend, Config, LimitsConfig};
use crate::listener::{self, Connections};
use crate::metrics::Metrics;
use crate::quota::CreateRate;
use crate::registry::{Entry, Registry, TrustState};
use crate::relay::{self, End};

struct AppState {
    config: Arc<Config>,
    backend: ProcessBackend,
    registry: Registry,
    metrics: Arc<Metrics>,
    connections: Arc<Connections>,
    create_rate: CreateRate,
}

/// The largest body of a JSON request (create, challenge).
const MAX_JSON_BODY: usize = 64 * 1024;
/// How often the reaper looks for ended Keeps and passed deadlines.
const REAP_EVERY: Duration = Duration::from_millis(250);
/// How long open streams get to deliver their last frames at shutdown.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);

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
    let fd_limit = listener::raise_fd_limit();
    let backend = ProcessBackend::new(&config.data_dir)?.with_jail(config.jail);
    if config.jail != keep_host::JailMode::Off {
        match keep_host::jail_probe() {
            Ok(layers) => {
                tracing::info!(layers = %layers.join(", "), "every Keep runs in its jail")
            }
            Err(e) if config.jail == keep_host::JailMode::Required => {
                return Err(AgentError::Backend(keep_host::LaunchError::Jail(format!(
                    "{e} (jail = \"required\" in the config)"
                ))));
            }
            Err(e) => {
                tracing::warn!(error = %e, "this host cannot jail Keeps: they run without the jail")
            }
        }
    } else {
        tracing::warn!("jail = \"off\": Keeps run with the host user's rights");
    }
    if config.backends.contains(&Backend::Kvm) && !keep_vmm_available() {
        tracing::warn!(
            "the config allows the kvm backend but /dev/kvm cannot be opened here: kvm Keeps will be refused"
        );
    }
    let door = config.front_door;
    let state = Arc::new(AppState {
        config: config.clone(),
        backend,
        registry: Registry::default(),
        metrics: Arc::new(Metrics::default()),
        connections: Arc::new(Connections::default()),
        create_rate: CreateRate::new(
            config.tenants.len(),
            door.creates_per_minute,
            door.create_burst,
        ),
    });
    // Every handler reads its own body, after authentication, with its own cap.
    let app = Router::new()
        .route("/v1/keeps", post(create).get(list))
        .route("/v1/keeps/{id}", get(show).delete(kill))
        .route("/v1/keeps/{id}/challenge", post(challenge))
        .route("/v1/keeps/{id}/events", get(events))
        .route("/v1/keeps/{id}/payload", post(payload))
        .route("/v1/keeps/{id}/stdin", post(stdin))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    let tls = match &config.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(cert, key, config.client_ca.as_deref())
                .map_err(AgentError::Tls)?,
        )),
        None => None,
    };
    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = tcp.local_addr().map_err(AgentError::Serve)?;
    if let Some(t) = relay::tamper() {
        tracing::warn!(tamper = %t, "TEST HOOK: this debug build acts as a hostile host");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        %addr, scheme, tenants = config.tenants.len(), max_keeps = config.max_keeps,
        max_connections = door.max_connections, per_peer = door.max_connections_per_peer,
        header_timeout_ms = door.header_timeout.as_millis() as u64, open_files = ?fd_limit,
        "listening"
    );
    if tls.is_some() {
        let mtls = if config.client_ca.is_some() {
            ", client certificates accepted"
        } else {
            ""
        };
        eprintln!("keep host: listening on https://{addr} (TLS{mtls})");
    } else {
        eprintln!("keep host: listening on http://{addr} (plain HTTP, loopback only)");
    }
    let reaper = tokio::spawn(reap_forever(state.clone()));
    listener::accept_until(
        tcp,
        tls,
        app,
        door,
        state.connections.clone(),
        state.metrics.clone(),
        shutdown_signal(),
    )
    .await;
    reaper.abort();
    shutdown(state.clone()).await;
    // The payload streams deliver the host's exit frames, then end.
    let drained = tokio::time::Instant::now() + SHUTDOWN_DRAIN;
    while state.connections.count() > 0 && tokio::time::Instant::now() < drained {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// On a signal: terminate every Keep and say so.
async fn shutdown(state: Arc<AppState>) {
    let st = state.clone();
    let n = tokio::task::spawn_blocking(move || {
        let keeps = st.registry.all();
        for e in &keeps {
            terminate(&st, e, "host shutdown");
        }
        keeps.len()
    })
    .await
    .unwrap_or(0);
    tracing::info!(terminated = n, "shutting down: terminated every Keep");
    eprintln!("keep host: shutting down; terminated {n} Keep(s)");
}

/// Ends Keeps nobody will finish: an exec that ended before its payload arrived (a
/// crash, or the wall-clock limit of a Keep left waiting), a Keep not challenged
/// within `challenge_timeout`, or not provisioned within `payload_timeout` of its
/// evidence. A Keep being provisioned is ended by its relay.
async fn reap_forever(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let st = state.clone();
        let _ = tokio::task::spawn_blocking(move || reap(&st)).await;
    }
}

fn reap(state: &AppState) {
    let door = &state.config.front_door;
    for e in state.registry.all() {
        if e.provisioning.load(Ordering::SeqCst) {
            continue;
        }
        let why = match e.state() {
            TrustState::PreAttestation
                if !e.challenged.load(Ordering::SeqCst)
                    && e.created_at.elapsed() > door.challenge_timeout =>
            {
                Some(format!(
                    "not challenged within {} of its creation (challenge_timeout)",
                    shown(door.challenge_timeout)
                ))
            }
            TrustState::EvidenceRelayed
                if e.evidence_at
                    .lock()
                    .ok()
                    .and_then(|t| *t)
                    .is_some_and(|t| t.elapsed() > door.payload_timeout) =>
            {
                Some(format!(
                    "no sealed payload within {} of its evidence (payload_timeout)",
                    shown(door.payload_timeout)
                ))
            }
            _ => None,
        };
        // A challenge in flight holds the lock briefly; look again next time.
        let why = why.or_else(|| {
            let mut keep = e.keep.try_lock().ok()?;
            if !keep.has_ended() {
                return None;
            }
            Some(match keep.limit_hit() {
                Some((limit, detail)) => format!(
                    "its exec ended before it was provisioned: stopped at the {} limit ({detail})",
                    limit.name()
                ),
                None => "its exec ended before it was provisioned".to_string(),
            })
        });
        if let Some(why) = why {
            Metrics::inc(&state.metrics.reaped);
            tracing::info!(keep = %e.id, reason = %why, "Keep reaped");
            terminate(state, &e, &why);
        }
    }
}

/// A duration as the config spells it.
fn shown(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
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

/// The Keep `id`, if the caller is its tenant. The admin lists, inspects and kills
/// Keeps; it never drives a tenant's trust states (challenge, payload, stdin).
fn tenant_owned(
    state: &AppState,
    headers: &HeaderMap,
    cert: &ClientCert,
    id: &str,
) -> Result<Arc<Entry>, Response> {
    let (who, e) = authed_owner(state, headers, cert, id)?;
    if who == Caller::Admin {
        Metrics::inc(&state.metrics.refused);
        return Err(error(
            StatusCode::FORBIDDEN,
            "the host admin may list, inspect and kill Keeps, but only their tenant challenges, provisions or feeds them",
        ));
    }
    Ok(e)
}

/// The value of a request's Content-Length, if it has a valid one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads a small request body (after authentication): at most `MAX_JSON_BODY`
/// bytes, within the body timeout.
async fn small_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over {MAX_JSON_BODY} bytes"),
        )
    };
    if content_length(headers).is_some_and(|n| n > MAX_JSON_BODY as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + state.config.front_door.body_timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                return Err(error(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time (body_timeout)",
                ));
            }
            Ok(None) => return Ok(Bytes::from(buf)),
            Ok(Some(Err(e))) => {
                return Err(error(StatusCode::BAD_REQUEST, format!("request body: {e}")));
            }
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > MAX_JSON_BODY {
                    return Err(too_large());
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
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

async fn create(State(state): S, headers: HeaderMap, cert: ClientCert, body: Body) -> Response {
    let who = match authed(&state, &headers, &cert) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Caller::Tenant(owner) = who else {
        return error(StatusCode::FORBIDDEN, "the admin token cannot create Keeps");
    };
    let body = match small_body(&state, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
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
        Some(name) => match Backend::from_name(name).filter(|b| allowed.contains(b)) {
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
    let mut limits = req.limits.clamp_to(tenant.limits);
    // The workload's memory share defaults as for keep run, on every backend: the
    // exec's limiter holds it there (it would otherwise eat the runtime's share).
    limits.memory_bytes = Some(
        limits
            .memory_bytes
            .unwrap_or(keep_host::DEFAULT_WORKLOAD_MEMORY),
    );
    let host_limits = HostLimits {
        wall: limits.wall_ms.map(Duration::from_millis),
        output_bytes: limits.output_bytes,
        memory_bytes: limits.memory_bytes,
        cpu: limits.cpu_ms.map(Duration::from_millis),
    };
    if state.registry.count_owned(owner) >= tenant.max_keeps {
        Metrics::inc(&state.metrics.refused);
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the tenant has its maximum of {} Keeps (max_keeps)",
                tenant.max_keeps
            ),
        );
    }
    if state.registry.count() >= state.config.max_keeps {
        Metrics::inc(&state.metrics.refused);
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the host runs its maximum of {} Keeps",
                state.config.max_keeps
            ),
        );
    }
    if let Err(wait) = state.create_rate.take(owner, std::time::Instant::now()) {
        Metrics::inc(&state.metrics.refused);
        let secs = wait.as_secs() + 1;
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the tenant creates Keeps faster than this host allows ({} a minute, {} at once): retry in {secs}s",
                state.config.front_door.creates_per_minute, state.config.front_door.create_burst
            ),
        );
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let st = state.clone();
    let started = tokio::task::spawn_blocking(move || match backend {
        Backend::Kvm => KvmBackend::new().and_then(|k| AttestedKeep::start(&k, host_limits)),
        _ => AttestedKeep::start(&st.backend, host_limits),
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
        created_at: std::time::Instant::now(),
        evidence_at: std::sync::Mutex::new(None),
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
    body: Body,
) -> Response {
    let e = match tenant_owned(&state, &headers, &cert, &id) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let body = match small_body(&state, &headers, body).await {
        Ok(b) => b,
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
            if let Ok(mut at) = e.evidence_at.lock() {
                *at = Some(std::time::Instant::now());
            }
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
            let st = state.clone();
            let _ = tokio::task::spawn_blocking(move || terminate(&st, &e, "no evidence")).await;
            error(StatusCode::BAD_GATEWAY, format!("state 2: {err}"))
        }
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

/// Streams the tenant's sealed payload to the Keep as it arrives (the agent never
/// holds more than a few chunks of it), then relays the Keep's frames back.
async fn payload(
    State(state): S,
    headers: HeaderMap,
    cert: ClientCert,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let e = match tenant_owned(&state, &headers, &cert, &id) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let Some(len) = content_length(&headers) else {
        return error(
            StatusCode::LENGTH_REQUIRED,
            "the sealed payload needs a Content-Length",
        );
    };
    if len > u64::from(keep_wire::MAX_SEALED_FRAME) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the sealed payload is {len} bytes, over {} bytes",
                keep_wire::MAX_SEALED_FRAME
            ),
        );
    }
    if e.state() != TrustState::EvidenceRelayed || e.provisioning.swap(true, Ordering::SeqCst) {
        return error(
            StatusCode::CONFLICT,
            "the Keep must be challenged first, and provisioned once",
        );
    }
    // The workload is at most the sealed payload's size: the Keep's memory
    // budget lets the runtime compile a module that large.
    let channel = match e.keep.lock().ok().map(|k| {
        k.expect_workload(len);
        k.channel()
    }) {
        Some(Ok(c)) => c,
        _ => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "launch channel unavailable",
            );
        }
    };
    tracing::info!(keep = %e.id, sealed_bytes = len, "relaying the sealed payload");
    let channel = match upload(&state, len, body, channel).await {
        Ok(c) => c,
        Err((status, message)) => {
            e.event(format!("sealed payload not relayed: {message}"));
            let st = state.clone();
            let _ = tokio::task::spawn_blocking(move || {
                terminate(&st, &e, "its sealed payload did not arrive whole")
            })
            .await;
            return error(status, message);
        }
    };
    e.event(format!("sealed payload relayed ({len} bytes)"));
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(32);
    let st = state.clone();
    let entry = e.clone();
    std::thread::spawn(move || {
        let e = entry;
        let mut send = |wire: Vec<u8>| tx.blocking_send(Ok(Bytes::from(wire))).is_ok();
        let end = relay::relay_output(&e, channel, &mut send, &st.metrics.relayed_bytes);
        let limit = e.keep.lock().ok().and_then(|mut k| {
            // Reaps the Keep (killing it if it does not end by itself soon).
            k.finish();
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
    // KEEPALIVE, the tenant gets an empty Keepalive frame. The stream's end of the
    // relay is the tenant's presence: when the tenant goes away (its connection
    // closes, e.g. `keep deploy` was killed), hyper drops the stream and the Keep
    // ends with it.
    let tenant = TenantPresent {
        state: state.clone(),
        entry: e,
    };
    let stream = futures_util::stream::unfold((rx, tenant), |(mut rx, tenant)| async move {
        match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
            Ok(item) => item.map(|item| (item, (rx, tenant))),
            Err(_) => Some((Ok(Bytes::from(relay::keepalive())), (rx, tenant))),
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-keep-frames")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

/// How long a Keep whose tenant went away may take to end by itself before it is
/// ended: the tenant may close as soon as it has the sealed record that tells it
/// the workload's end, a moment before the exec's plain Exit frame reaches the
/// agent (ending it then counted a completed Keep as killed and failed).
const TENANT_GONE_GRACE: Duration = Duration::from_millis(500);

/// While a payload stream exists, its tenant is there; dropping it (the stream
/// ended or the tenant's connection closed) ends a Keep that is still running
/// [`TENANT_GONE_GRACE`] later.
struct TenantPresent {
    state: Arc<AppState>,
    entry: Arc<Entry>,
}

impl Drop for TenantPresent {
    fn drop(&mut self) {
        if self.entry.state() == TrustState::Ended {
            return;
        }
        let (st, e) = (self.state.clone(), self.entry.clone());
        let end = move || {
            let deadline = std::time::Instant::now() + TENANT_GONE_GRACE;
            while e.state() != TrustState::Ended && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if e.state() == TrustState::Ended {
                return;
            }
            tracing::info!(keep = %e.id, "the tenant's output stream closed: ending its Keep");
            terminate(&st, &e, "its tenant went away (the output stream closed)");
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(end);
            }
            Err(_) => end(),
        }
    }
}

/// Writes the sealed payload frame to the launch channel as its body arrives: the
/// header with the declared length, then each chunk (a few at most held at once).
/// Any pause longer than `body_timeout`, in the body or in the Keep's reading, and
/// a body that ends short or runs long, fail the upload. Returns the channel.
async fn upload(
    state: &AppState,
    len: u64,
    body: Body,
    channel: std::os::unix::net::UnixStream,
) -> Result<std::os::unix::net::UnixStream, (StatusCode, String)> {
    // Test hook: the host drops the payload's last 16 bytes.
    let forward = if relay::tampering("truncate-payload") {
        len.saturating_sub(16)
    } else {
        len
    };
    let frame_len = u32::try_from(forward).map_err(|_| {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload too large".to_string(),
        )
    })?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let writer = std::thread::spawn(move || relay::write_sealed(channel, frame_len, rx));
    let idle = state.config.front_door.body_timeout;
    let mut stream = body.into_data_stream();
    let mut got = 0u64;
    let read: Result<(), (StatusCode, String)> = loop {
        let chunk = match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => {
                break Err((
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the sealed payload paused for over {} after {got} of {len} bytes (body_timeout)",
                        shown(idle)
                    ),
                ));
            }
            Ok(None) if got == len => break Ok(()),
            Ok(None) => {
                break Err((
                    StatusCode::BAD_REQUEST,
                    format!("the sealed payload ended after {got} of {len} bytes"),
                ));
            }
            Ok(Some(Err(e))) => {
                break Err((StatusCode::BAD_REQUEST, format!("sealed payload: {e}")));
            }
            Ok(Some(Ok(c))) => c,
        };
        let before = got;
        got += chunk.len() as u64;
        if got > len {
            break Err((
                StatusCode::BAD_REQUEST,
                format!("the sealed payload is longer than its Content-Length ({len})"),
            ));
        }
        let keep = forward.saturating_sub(before).min(chunk.len() as u64) as usize;
        if keep == 0 {
            continue;
        }
        match tokio::time::timeout(idle, tx.send(chunk.slice(..keep))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                break Err((
                    StatusCode::BAD_GATEWAY,
                    "the Keep's launch channel closed while its payload was relayed".into(),
                ));
            }
            Err(_) => {
                break Err((
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("the Keep took none of its payload for {}", shown(idle)),
                ));
            }
        }
    };
    drop(tx);
    let written = tokio::task::spawn_blocking(move || writer.join())
        .await
        .ok()
        .and_then(|j| j.ok());
    read?;
    match written {
        Some(Ok(channel)) => Ok(channel),
        Some(Err(e)) => Err((
            StatusCode::BAD_GATEWAY,
            format!("the Keep's launch channel: {e}"),
        )),
        None => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "the payload writer failed".into(),
        )),
    }
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
    let e = match tenant_owned(&state, &headers, &cert, &id) {
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
    // No body timeout here: a tenant's stdin may rightly stay quiet; the request
    // ends with the Keep (the writer fails) or with the tenant.
    let mut stream = body.into_data_stream();
    let mut frames_in = keep_wire::FrameSplitter::new(keep_wire::FrameKind::Input);
    let (mut frames, mut bytes) = (0u64, 0u64);
    let outcome: Result<(), (StatusCode, String)> = 'relay: loop {
        let chunk = match stream.next().await {
            Some(Ok(c)) => c,
            Some(Err(err)) => break Err((StatusCode::BAD_REQUEST, format!("stdin: {err}"))),
            None if frames_in.is_empty() => break Ok(()),
            None => break Err((StatusCode::BAD_REQUEST, "stdin: truncated frame".into())),
        };
        frames_in.push(&chunk);
        loop {
            let wire = match frames_in.next_frame() {
                Ok(Some(w)) => w,
                Ok(None) => break,
                Err(e) => break 'relay Err((StatusCode::BAD_REQUEST, format!("stdin: {e}"))),
            };
            frames += 1;
            bytes += (wire.len() - 8) as u64;
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

async fn metrics(State(state): S, headers: HeaderMap, cert: ClientCert) -> Response {
    let mut text = state
        .metrics
        .render(state.registry.count(), state.connections.count());
    // Per-Keep figures (how much each Keep computes and writes, over time) are
    // the owner's: only for the admin; anyone else gets the host's totals.
    if caller(&state.config, &headers, cert.0.as_deref()).is_ok_and(|c| c == Caller::Admin) {
        let views: Vec<_> = state.registry.all().iter().map(|e| e.view()).collect();
        text.push_str(&crate::metrics::per_keep(&views));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
