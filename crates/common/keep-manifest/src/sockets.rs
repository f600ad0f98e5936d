//! Preopened TCP sockets: `[[sockets]]` of Keep.toml, and the checks shared with
//! the socket entries of Enarx.toml.

use std::net::IpAddr;

use keep_wire::{FdSpec, SocketKind};
use serde::Deserialize;
use toml::Spanned;

use crate::check::{FdNames, find_control};
use crate::error::ManifestError;
use crate::source::Source;

/// The longest socket name accepted, in bytes.
const MAX_NAME: usize = 255;

/// One `[[sockets]]` table of Keep.toml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SocketEntry {
    name: Spanned<String>,
    kind: Spanned<KindField>,
    addr: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    port: Spanned<u16>,
}

/// `kind = "listen" | "connect"`.
#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum KindField {
    Listen,
    Connect,
}

/// A socket from either format, before its checks.
pub(crate) struct SocketDraft {
    /// How messages name the entry: `sockets[1]`, `files[4]`.
    pub label: String,
    pub name: Spanned<String>,
    pub kind: SocketKind,
    /// The address to bind (listen) or the host to connect to.
    pub host: Spanned<String>,
    pub port: Spanned<u16>,
}

/// Checks `sockets[index]` of Keep.toml: listen needs `addr`, connect needs `host`.
pub(crate) fn lower_keep_socket(
    src: &Source<'_>,
    names: &mut FdNames,
    index: usize,
    entry: Spanned<SocketEntry>,
) -> Result<FdSpec, ManifestError> {
    let label = format!("sockets[{index}]");
    let span = entry.span();
    let entry = entry.into_inner();
    let (kind, host, extra) = match *entry.kind.get_ref() {
        KindField::Listen => (
            SocketKind::Listen,
            entry.addr,
            entry.host.map(|h| ("host", h)),
        ),
        KindField::Connect => (
            SocketKind::Connect,
            entry.host,
            entry.addr.map(|a| ("addr", a)),
        ),
    };
    let (wanted, kind_name) = match kind {
        SocketKind::Listen => ("addr", "listen"),
        SocketKind::Connect => ("host", "connect"),
    };
    if let Some((field, value)) = extra {
        return Err(src.invalid(
            &value.span(),
            format!("{label}.{field} does not apply to a {kind_name} socket; use `{wanted}`"),
        ));
    }
    let Some(host) = host else {
        return Err(src.invalid(
            &span,
            format!("{label} is a {kind_name} socket and needs `{wanted}`"),
        ));
    };
    lower_socket(
        src,
        names,
        SocketDraft {
            label,
            name: entry.name,
            kind,
            host,
            port: entry.port,
        },
    )
}

/// Checks a socket of either format and records its name.
pub(crate) fn lower_socket(
    src: &Source<'_>,
    names: &mut FdNames,
    draft: SocketDraft,
) -> Result<FdSpec, ManifestError> {
    let SocketDraft {
        label,
        name,
        kind,
        host,
        port,
    } = draft;
    check_name(src, &label, &name)?;
    names.insert(src, &name.span(), "socket name", name.get_ref())?;
    match kind {
        SocketKind::Listen => check_listen_addr(src, &label, &host)?,
        SocketKind::Connect => {
            check_connect_host(src, &label, &host)?;
            if *port.get_ref() == 0 {
                return Err(src.invalid(
                    &port.span(),
                    format!("{label}.port must not be 0 for a connect socket"),
                ));
            }
        }
    }
    Ok(FdSpec {
        name: name.into_inner(),
        kind,
        host: host.into_inner(),
        port: port.into_inner(),
    })
}

/// A name is published in `FD_NAMES`: not empty, no `:`, no control characters.
fn check_name(src: &Source<'_>, label: &str, name: &Spanned<String>) -> Result<(), ManifestError> {
    let text = name.get_ref();
    let why = if text.is_empty() {
        Some("is empty".to_owned())
    } else if text.len() > MAX_NAME {
        Some(format!("is longer than {MAX_NAME} bytes"))
    } else if text.contains(':') {
        Some("contains ':', which separates the names in FD_NAMES".to_owned())
    } else {
        find_control(text).map(|c| format!("contains the control character {c:?}"))
    };
    match why {
        Some(why) => Err(src.invalid(&name.span(), format!("{label}.name {text:?} {why}"))),
        None => Ok(()),
    }
}

/// A listen socket binds an IP address literal; names are not resolved.
fn check_listen_addr(
    src: &Source<'_>,
    label: &str,
    addr: &Spanned<String>,
) -> Result<(), ManifestError> {
    if addr.get_ref().parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    Err(src.invalid(
        &addr.span(),
        format!(
            "{label}.addr {:?} is not an IP address; a listen socket binds an address \
             such as \"127.0.0.1\" or \"::\"",
            addr.get_ref()
        ),
    ))
}

/// A connect socket names an IP address or a DNS host name.
fn check_connect_host(
    src: &Source<'_>,
    label: &str,
    host: &Spanned<String>,
) -> Result<(), ManifestError> {
    let text = host.get_ref();
    if text.parse::<IpAddr>().is_ok() || is_dns_name(text) {
        return Ok(());
    }
    Err(src.invalid(
        &host.span(),
        format!(
            "{label}.host {text:?} is neither an IP address nor a host name \
             (letters, digits, '-', '_' and '.', at most 253 bytes)"
        ),
    ))
}

/// `example.com`, `db-1.internal.`: labels of 1 to 63 letters, digits, `-` or `_`.
fn is_dns_name(text: &str) -> bool {
    let text = text.strip_suffix('.').unwrap_or(text);
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::is_dns_name;

    #[test]
    fn dns_names() {
        assert!(is_dns_name("example.com"));
        assert!(is_dns_name("example.com."));
        assert!(is_dns_name("db_1-a"));
        assert!(!is_dns_name(""));
        assert!(!is_dns_name("."));
        assert!(!is_dns_name("a..b"));
        assert!(!is_dns_name("[::1]"));
        assert!(!is_dns_name("a b"));
        assert!(!is_dns_name(&"a".repeat(64)));
    }
}
