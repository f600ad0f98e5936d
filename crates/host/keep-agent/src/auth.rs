//! Who is calling: a bearer token from the config, or (over TLS with `client_ca`) a
//! verified client certificate whose identity the config maps to a tenant.

use axum::extract::FromRequestParts;
use axum::extract::connect_info::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::sync::Arc;

use crate::config::Config;
use crate::tls::{ClientIdentity, Peer};

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Tenant(usize),
    Admin,
}

/// The connection's verified client certificate, if any (an extractor that never
/// fails: plain HTTP and TLS without a client certificate give `None`).
pub struct ClientCert(pub Option<Arc<ClientIdentity>>);

impl<S: Send + Sync> FromRequestParts<S> for ClientCert {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientCert(
            parts
                .extensions
                .get::<ConnectInfo<Peer>>()
                .and_then(|c| c.0.cert.clone()),
        ))
    }
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller named by `Authorization: Bearer <token>`: `Ok(None)` without the
/// header, an error for an unknown or malformed token.
fn by_token(config: &Config, headers: &HeaderMap) -> Result<Option<Caller>, &'static str> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().as_bytes())
        .ok_or("malformed Authorization header (expected Bearer)")?;
    if token.is_empty() || token.len() > 512 {
        return Err("unknown bearer token");
    }
    let mut found = None;
    for (i, t) in config.tenants.iter().enumerate() {
        if let Some(t) = &t.token
            && same(t.as_bytes(), token)
        {
            found = Some(Caller::Tenant(i));
        }
    }
    if let Some(a) = &config.admin_token
        && same(a.as_bytes(), token)
    {
        found = Some(Caller::Admin);
    }
    found.map(Some).ok_or("unknown bearer token")
}

/// The tenant a verified client certificate names. The config forbids one identity
/// for two tenants; a certificate carrying identities of two tenants names none.
fn by_cert(config: &Config, cert: &ClientIdentity) -> Result<Option<Caller>, &'static str> {
    let mut found = None;
    for (i, t) in config.tenants.iter().enumerate() {
        if t.client_certs.iter().any(|want| cert.matches(want)) {
            if found.is_some() {
                return Err("the client certificate names more than one tenant");
            }
            found = Some(Caller::Tenant(i));
        }
    }
    Ok(found)
}

/// The caller, from its certificate and/or bearer token; when both are given they
/// must name the same caller. The error is a one-line reason for a 401.
pub fn caller(
    config: &Config,
    headers: &HeaderMap,
    cert: Option<&ClientIdentity>,
) -> Result<Caller, &'static str> {
    let token = by_token(config, headers)?;
    let by_cert = match cert {
        Some(c) => by_cert(config, c)?,
        None => None,
    };
    match (by_cert, token) {
        (Some(c), Some(t)) if c != t => {
            Err("the client certificate and the bearer token name different callers")
        }
        (Some(c), _) => Ok(c),
        (None, Some(t)) => Ok(t),
        (None, None) if cert.is_some() => {
            Err("the client certificate is not mapped to a tenant, and no bearer token was given")
        }
        (None, None) => Err("missing bearer token (or client certificate)"),
    }
}
