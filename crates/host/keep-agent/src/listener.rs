//! The accept loop: every connection, plain or TLS, passes here before any request
//! is read. Unauthenticated strangers reach this far, so everything is bounded:
//!
//! - open connections in all and per peer IP address (over a cap, a connection is
//!   closed at once, before its handshake or first byte is read);
//! - the time to finish a TLS handshake, and to send a request's headers (hyper's
//!   header read timeout, which also ends idle keep-alive connections);
//! - the size of a request head (hyper's read buffer).
//!
//! Request bodies are read by the handlers, after authentication, with their own
//! caps and timeouts (`api.rs`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::config::FrontDoor;
use crate::metrics::Metrics;
use crate::tls::{ClientIdentity, Peer};

/// The time a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's read buffer: the largest request head (line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Open connections, in all and per peer.
#[derive(Default)]
pub struct Connections {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; dropping it frees its place.
pub struct Admitted {
    conns: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    /// A place for a connection from `ip`, or `None` over either cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, caps: &FrontDoor) -> Option<Admitted> {
        let mut open = self.open.lock().ok()?;
        let (total, per_peer) = &mut *open;
        let from_peer = per_peer.get(&ip).copied().unwrap_or(0);
        if *total >= caps.max_connections || from_peer >= caps.max_connections_per_peer {
            return None;
        }
        *total += 1;
        per_peer.insert(ip, from_peer + 1);
        Some(Admitted {
            conns: self.clone(),
            ip,
        })
    }

    /// Open connections now.
    pub fn count(&self) -> usize {
        self.open.lock().map(|o| o.0).unwrap_or(0)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut open) = self.conns.open.lock() {
            let (total, per_peer) = &mut *open;
            *total = total.saturating_sub(1);
            if let Some(n) = per_peer.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    per_peer.remove(&self.ip);
                }
            }
        }
    }
}

/// Raises the soft limit on open files to the hard one, so that the connection cap,
/// not the descriptor table, is what refuses connections. Returns the soft limit now.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            return getrlimit(Resource::Nofile).current;
        }
    }
    limit.current
}

/// Accepts connections until `stop` resolves. Each admitted connection is served in
/// its own task; the place it holds is freed when it ends.
pub async fn accept_until(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    caps: FrontDoor,
    conns: Arc<Connections>,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept:
                    // back off briefly instead of spinning.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Some(place) = conns.admit(addr.ip(), &caps) else {
            Metrics::inc(&metrics.connections_refused);
            tracing::debug!(peer = %addr, "connection refused: over the connection cap");
            drop(tcp);
            continue;
        };
        // Small frames (evidence, records) must not wait for delayed ACKs.
        let _ = tcp.set_nodelay(true);
        let (app, tls) = (app.clone(), tls.clone());
        tokio::spawn(async move {
            let _place = place;
            match tls {
                None => serve_connection(tcp, Peer { addr, cert: None }, app, caps).await,
                Some(acceptor) => {
                    if let Some((stream, peer)) = handshake(acceptor, tcp, addr).await {
                        serve_connection(stream, peer, app, caps).await;
                    }
                }
            }
        });
    }
}

/// A TLS handshake within its time, and the client certificate it verified.
async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    addr: SocketAddr,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Peer)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => {
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| Arc::new(ClientIdentity::from_der(c)));
            if let Some(c) = &cert {
                tracing::debug!(peer = %addr, cn = ?c.common_name, sha256 = %c.sha256, "client certificate verified");
            }
            Some((tls, Peer { addr, cert }))
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(peer = %addr, "TLS handshake timed out");
            None
        }
    }
}

/// Serves HTTP/1.1 requests on one connection with the router; the peer (address
/// and verified certificate) travels with each request.
async fn serve_connection<I>(io: I, peer: Peer, app: Router, caps: FrontDoor)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer.clone()));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(caps.header_timeout)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = connection.await {
        tracing::debug!(peer = %addr, error = %e, "connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_in_all_and_per_peer_and_freed_on_drop() {
        let caps = FrontDoor {
            max_connections: 3,
            max_connections_per_peer: 2,
            ..FrontDoor::default()
        };
        let conns = Arc::new(Connections::default());
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let a1 = conns.admit(a, &caps).unwrap();
        let _a2 = conns.admit(a, &caps).unwrap();
        assert!(conns.admit(a, &caps).is_none(), "per-peer cap");
        let _b1 = conns.admit(b, &caps).unwrap();
        assert!(conns.admit(b, &caps).is_none(), "global cap");
        assert_eq!(conns.count(), 3);
        drop(a1);
        assert_eq!(conns.count(), 2);
        assert!(conns.admit(a, &caps).is_some());
    }
}
