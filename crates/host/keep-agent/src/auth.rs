//! Bearer tokens: who is calling.

use axum::http::HeaderMap;

use crate::config::Config;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Tenant(usize),
    Admin,
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller named by `Authorization: Bearer <token>`, if any.
pub fn caller(config: &Config, headers: &HeaderMap) -> Option<Caller> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value.strip_prefix("Bearer ")?.trim().as_bytes();
    if token.is_empty() || token.len() > 512 {
        return None;
    }
    let mut found = None;
    for (i, t) in config.tenants.iter().enumerate() {
        if same(t.token.as_bytes(), token) {
            found = Some(Caller::Tenant(i));
        }
    }
    if let Some(a) = &config.admin_token
        && same(a.as_bytes(), token)
    {
        found = Some(Caller::Admin);
    }
    found
}
