//! Enarx.toml: Enarx's manifest format, read as Enarx writes it.
//!
//! `[[files]]` entry `i` is fd `i`. fds 0 to 2 are the standard streams (kind
//! `stdin`, `stdout`, `stderr` at their own fd, or `null`); a stream with no entry
//! is `null`. Later entries are `listen` or `connect` TCP sockets. Where Enarx has
//! defaults they are kept: a listen socket binds `::` port 443, a connect socket
//! uses port 443 and is named after its host, and `prot` defaults to `tls`, which
//! Keep does not support yet.

use keep_wire::{SocketKind, StdioTarget};
use serde::Deserialize;
use toml::Spanned;

use crate::MAX_ENTRIES;
use crate::argv_env::{ArgsField, EnvField, lower_args, lower_env};
use crate::check::{FdNames, at_most};
use crate::error::ManifestError;
use crate::manifest::{Manifest, ManifestFormat, RequestedLimits};
use crate::sockets::{SocketDraft, lower_socket};
use crate::source::{Source, Span};

/// Enarx's default port for both socket kinds.
const DEFAULT_PORT: u16 = 443;

/// Enarx's default listen address.
const DEFAULT_ADDR: &str = "::";

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnarxFile {
    args: ArgsField,
    env: EnvField,
    steward: Option<Spanned<String>>,
    files: Option<Spanned<Vec<Spanned<FileEntry>>>>,
}

/// One `[[files]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    kind: Spanned<Kind>,
    name: Option<Spanned<String>>,
    prot: Option<Spanned<Protocol>>,
    addr: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    port: Option<Spanned<u16>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Null,
    Stdin,
    Stdout,
    Stderr,
    Listen,
    Connect,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Stdin => "stdin",
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::Listen => "listen",
            Self::Connect => "connect",
        }
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Protocol {
    Tcp,
    Tls,
}

/// The standard stream kinds, by fd.
const STREAMS: [Kind; 3] = [Kind::Stdin, Kind::Stdout, Kind::Stderr];

/// Reads and checks an Enarx.toml document.
pub(crate) fn parse(
    src: &Source<'_>,
    document: toml::de::Deserializer<'_>,
) -> Result<Manifest, ManifestError> {
    let file = EnarxFile::deserialize(document).map_err(|e| src.toml_error(&e))?;

    let args = lower_args(src, file.args)?;
    let env = lower_env(src, file.env)?;
    let mut warnings = Vec::new();
    if let Some(steward) = &file.steward {
        warnings.push(src.warning(
            &steward.span(),
            "steward is ignored: Keep does not ask a Steward for a certificate",
        ));
    }

    let mut stdio = [StdioTarget::Null; 3];
    let mut sockets = Vec::new();
    let mut names = FdNames::new();
    if let Some(files) = file.files {
        let span = files.span();
        let files = files.into_inner();
        at_most(
            src,
            &span,
            "files",
            files.len(),
            MAX_ENTRIES + STREAMS.len(),
        )?;
        for (fd, entry) in files.into_iter().enumerate() {
            let span = entry.span();
            let entry = entry.into_inner();
            match (STREAMS.get(fd), *entry.kind.get_ref()) {
                (
                    Some(&stream),
                    kind @ (Kind::Null | Kind::Stdin | Kind::Stdout | Kind::Stderr),
                ) => {
                    let target = lower_stream(src, fd, stream, kind, &entry, &mut warnings)?;
                    if let Some(slot) = stdio.get_mut(fd) {
                        *slot = target;
                    }
                }
                (Some(_), kind) => {
                    return Err(src.invalid(
                        &entry.kind.span(),
                        format!(
                            "files[{fd}] is a {} socket at fd {fd}; fds 0, 1 and 2 are the \
                             standard streams: kind \"stdin\", \"stdout\", \"stderr\" or \"null\"",
                            kind.name()
                        ),
                    ));
                }
                (None, Kind::Listen) => {
                    sockets.push(lower_socket(
                        src,
                        &mut names,
                        listen(src, fd, span, entry)?,
                    )?);
                }
                (None, Kind::Connect) => {
                    sockets.push(lower_socket(
                        src,
                        &mut names,
                        connect(src, fd, span, entry)?,
                    )?);
                }
                (None, kind) => {
                    return Err(src.invalid(
                        &entry.kind.span(),
                        format!(
                            "files[{fd}] is kind \"{}\" at fd {fd}; only fds 0, 1 and 2 can be \
                             standard streams or null, later fds are listen or connect sockets",
                            kind.name()
                        ),
                    ));
                }
            }
        }
    }

    Ok(Manifest {
        format: ManifestFormat::Enarx,
        args,
        env,
        stdio,
        dirs: Vec::new(),
        sockets,
        limits: RequestedLimits::default(),
        warnings,
    })
}

/// fd 0, 1 or 2: its own stream (inherited) or `null`.
fn lower_stream(
    src: &Source<'_>,
    fd: usize,
    stream: Kind,
    kind: Kind,
    entry: &FileEntry,
    warnings: &mut Vec<String>,
) -> Result<StdioTarget, ManifestError> {
    if kind != Kind::Null && kind != stream {
        return Err(src.invalid(
            &entry.kind.span(),
            format!(
                "files[{fd}] is kind \"{}\" at fd {fd}; fd {fd} must be \"{}\" or \"null\"",
                kind.name(),
                stream.name()
            ),
        ));
    }
    let extra = [
        ("prot", entry.prot.as_ref().map(Spanned::span)),
        ("addr", entry.addr.as_ref().map(Spanned::span)),
        ("host", entry.host.as_ref().map(Spanned::span)),
        ("port", entry.port.as_ref().map(Spanned::span)),
    ];
    if let Some((field, Some(span))) = extra.into_iter().find(|(_, span)| span.is_some()) {
        return Err(src.invalid(
            &span,
            format!(
                "files[{fd}].{field} does not apply to kind \"{}\"",
                kind.name()
            ),
        ));
    }
    if let Some(name) = &entry.name {
        if name.get_ref().contains(':') {
            return Err(src.invalid(
                &name.span(),
                format!("files[{fd}].name {:?} contains ':'", name.get_ref()),
            ));
        }
        if name.get_ref() != stream.name() {
            warnings.push(src.warning(
                &name.span(),
                format!(
                    "files[{fd}].name {:?} is ignored: fd {fd} is always named \"{}\" in FD_NAMES",
                    name.get_ref(),
                    stream.name()
                ),
            ));
        }
    }
    Ok(match kind {
        Kind::Null => StdioTarget::Null,
        _ => StdioTarget::Inherit,
    })
}

/// A listen socket: `name` is required, `addr` defaults to `::`, `port` to 443.
fn listen(
    src: &Source<'_>,
    fd: usize,
    span: Span,
    entry: FileEntry,
) -> Result<SocketDraft, ManifestError> {
    if let Some(host) = &entry.host {
        return Err(src.invalid(
            &host.span(),
            format!("files[{fd}].host does not apply to a listen socket; use `addr`"),
        ));
    }
    require_tcp(src, fd, &entry)?;
    let Some(name) = entry.name else {
        return Err(src.invalid(
            &span,
            format!("files[{fd}] is a listen socket and needs a `name`"),
        ));
    };
    Ok(SocketDraft {
        label: format!("files[{fd}]"),
        name,
        kind: SocketKind::Listen,
        host: entry
            .addr
            .unwrap_or_else(|| Spanned::new(span.clone(), DEFAULT_ADDR.to_owned())),
        port: entry
            .port
            .unwrap_or_else(|| Spanned::new(span, DEFAULT_PORT)),
    })
}

/// A connect socket: `host` is required, `name` defaults to it, `port` to 443.
fn connect(
    src: &Source<'_>,
    fd: usize,
    span: Span,
    entry: FileEntry,
) -> Result<SocketDraft, ManifestError> {
    if let Some(addr) = &entry.addr {
        return Err(src.invalid(
            &addr.span(),
            format!("files[{fd}].addr does not apply to a connect socket; use `host`"),
        ));
    }
    require_tcp(src, fd, &entry)?;
    let Some(host) = entry.host else {
        return Err(src.invalid(
            &span,
            format!("files[{fd}] is a connect socket and needs a `host`"),
        ));
    };
    let name = match entry.name {
        Some(name) => name,
        None if host.get_ref().contains(':') => {
            return Err(src.invalid(
                &span,
                format!(
                    "files[{fd}] needs a `name`: its default name is its host {:?}, \
                     which contains ':', the separator of FD_NAMES",
                    host.get_ref()
                ),
            ));
        }
        None => host.clone(),
    };
    Ok(SocketDraft {
        label: format!("files[{fd}]"),
        name,
        kind: SocketKind::Connect,
        host,
        port: entry
            .port
            .unwrap_or_else(|| Spanned::new(span, DEFAULT_PORT)),
    })
}

/// `prot = "tcp"` is required: Enarx's default, `tls`, is not supported yet.
fn require_tcp(src: &Source<'_>, fd: usize, entry: &FileEntry) -> Result<(), ManifestError> {
    match &entry.prot {
        Some(prot) if matches!(prot.get_ref(), Protocol::Tcp) => Ok(()),
        Some(prot) => Err(src.unsupported(
            &prot.span(),
            format!(
                "files[{fd}].prot \"tls\": TLS sockets are not supported yet; \
                 use prot = \"tcp\""
            ),
        )),
        None => Err(src.unsupported(
            &entry.kind.span(),
            format!(
                "files[{fd}] has no `prot`, which in Enarx.toml means \"tls\"; TLS sockets \
                 are not supported yet: add prot = \"tcp\""
            ),
        )),
    }
}
