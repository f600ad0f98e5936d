//! Enarx.toml: Enarx's format, its fd layout and what Keep refuses in it.

mod common;

use std::path::Path;

use common::{assert_error, enarx, error, keep};
use keep_manifest::{Manifest, ManifestError, ManifestFormat, RequestedLimits};
use keep_wire::{FdSpec, SocketKind, StdioTarget};

/// A typical Enarx.toml, as Enarx's documentation writes it.
const TYPICAL: &str = r#"
# Arguments
args = [
     "--argument1",
     "--argument2=foo"
]

# Environment variables
[env]
VAR1 = "var1"
VAR2 = "var2"

# Pre-opened file descriptors
[[files]]
kind = "stdin"

[[files]]
kind = "stdout"

[[files]]
kind = "stderr"

# A listen socket
[[files]]
name = "LISTEN"
kind = "listen"
prot = "tcp"
port = 8080

# An outgoing connected socket
[[files]]
name = "CONNECT"
kind = "connect"
prot = "tcp"
host = "127.0.0.1"
port = 23456
"#;

#[test]
fn typical_file() {
    let m = enarx(TYPICAL).expect("parses");
    assert_eq!(m.format, ManifestFormat::Enarx);
    assert_eq!(m.args, ["--argument1", "--argument2=foo"]);
    assert_eq!(
        m.env,
        [
            ("VAR1".to_owned(), "var1".to_owned()),
            ("VAR2".to_owned(), "var2".to_owned())
        ]
    );
    assert_eq!(m.stdio, [StdioTarget::Inherit; 3]);
    assert!(m.dirs.is_empty());
    assert_eq!(
        m.sockets,
        [
            FdSpec {
                name: "LISTEN".into(),
                kind: SocketKind::Listen,
                host: "::".into(),
                port: 8080
            },
            FdSpec {
                name: "CONNECT".into(),
                kind: SocketKind::Connect,
                host: "127.0.0.1".into(),
                port: 23456
            },
        ]
    );
    assert_eq!(m.limits, RequestedLimits::default());
    assert_eq!(m.fd_names().join(":"), "stdin:stdout:stderr:LISTEN:CONNECT");
    assert!(m.warnings.is_empty());
}

#[test]
fn detected_by_content_whatever_the_name() {
    let m = keep(TYPICAL).expect("parses");
    assert_eq!(m.format, ManifestFormat::Enarx);
    let m = Manifest::parse(
        "steward = \"https://steward.example.com\"\n",
        Path::new("app.toml"),
    )
    .expect("parses");
    assert_eq!(m.format, ManifestFormat::Enarx);
}

#[test]
fn detected_by_name() {
    let m = enarx("args = [\"x\"]\n").expect("parses");
    assert_eq!(m.format, ManifestFormat::Enarx);
    assert_eq!(m.args, ["x"]);
    // No files at all: every standard stream is null, as in Enarx.
    assert_eq!(m.stdio, [StdioTarget::Null; 3]);
    assert_eq!(m.fd_names(), ["stdin", "stdout", "stderr"]);
    // The same text named otherwise is a Keep.toml.
    assert_eq!(
        keep("args = [\"x\"]\n").map(|m| m.format).ok(),
        Some(ManifestFormat::Keep)
    );
}

#[test]
fn missing_stdio_fds_are_null() {
    let m = enarx("[[files]]\nkind = \"stdin\"\n").expect("parses");
    assert_eq!(
        m.stdio,
        [StdioTarget::Inherit, StdioTarget::Null, StdioTarget::Null]
    );
    let m = enarx("[[files]]\nkind = \"null\"\n[[files]]\nkind = \"stdout\"\n").expect("parses");
    assert_eq!(
        m.stdio,
        [StdioTarget::Null, StdioTarget::Inherit, StdioTarget::Null]
    );
}

#[test]
fn null_streams() {
    let m = enarx(
        "[[files]]\nkind = \"null\"\n[[files]]\nkind = \"null\"\n[[files]]\nkind = \"stderr\"\n",
    )
    .expect("parses");
    assert_eq!(
        m.stdio,
        [StdioTarget::Null, StdioTarget::Null, StdioTarget::Inherit]
    );
}

#[test]
fn enarx_defaults() {
    let text = "[[files]]\nkind = \"null\"\n[[files]]\nkind = \"null\"\n[[files]]\nkind = \"null\"\n\
                [[files]]\nname = \"L\"\nkind = \"listen\"\nprot = \"tcp\"\n\
                [[files]]\nkind = \"connect\"\nprot = \"tcp\"\nhost = \"example.com\"\n";
    let m = enarx(text).expect("parses");
    assert_eq!(
        m.sockets,
        [
            FdSpec {
                name: "L".into(),
                kind: SocketKind::Listen,
                host: "::".into(),
                port: 443
            },
            FdSpec {
                name: "example.com".into(),
                kind: SocketKind::Connect,
                host: "example.com".into(),
                port: 443
            },
        ]
    );
    assert_eq!(m.fd_names()[3..], ["L", "example.com"]);
}

const STDIO: &str =
    "[[files]]\nkind = \"stdin\"\n[[files]]\nkind = \"stdout\"\n[[files]]\nkind = \"stderr\"\n";

#[test]
fn tls_is_refused() {
    let text =
        format!("{STDIO}[[files]]\nname = \"L\"\nkind = \"listen\"\nprot = \"tls\"\nport = 1\n");
    let result = enarx(&text);
    assert!(matches!(result, Err(ManifestError::Unsupported { .. })));
    assert_error(
        &error(result),
        "dir/Enarx.toml:10:8: ",
        &[
            "files[3].prot \"tls\"",
            "TLS sockets are not supported yet",
            "prot = \"tcp\"",
        ],
    );
    // Enarx's default protocol is TLS: leaving it out is refused the same way.
    let text = format!("{STDIO}[[files]]\nkind = \"connect\"\nhost = \"a\"\n");
    assert_error(
        &error(enarx(&text)),
        "dir/Enarx.toml:8:8: ",
        &[
            "files[3] has no `prot`",
            "means \"tls\"",
            "not supported yet",
        ],
    );
}

#[test]
fn stdio_in_the_wrong_place() {
    assert_error(
        &error(enarx("[[files]]\nkind = \"stdout\"\n")),
        "dir/Enarx.toml:2:8: ",
        &[
            "files[0] is kind \"stdout\" at fd 0",
            "fd 0 must be \"stdin\" or \"null\"",
        ],
    );
    assert_error(
        &error(enarx(
            "[[files]]\nkind = \"stdin\"\n[[files]]\nkind = \"stderr\"\n",
        )),
        "dir/Enarx.toml:4:8: ",
        &["fd 1 must be \"stdout\" or \"null\""],
    );
    let text = format!("{STDIO}[[files]]\nkind = \"stdout\"\n");
    assert_error(
        &error(enarx(&text)),
        "dir/Enarx.toml:8:8: ",
        &["files[3] is kind \"stdout\" at fd 3"],
    );
    let text = format!("{STDIO}[[files]]\nkind = \"null\"\n");
    assert_error(
        &error(enarx(&text)),
        "dir/Enarx.toml:8:8: ",
        &["files[3] is kind \"null\" at fd 3"],
    );
}

#[test]
fn sockets_in_the_stdio_fds() {
    assert_error(
        &error(enarx(
            "[[files]]\nkind = \"stdin\"\n[[files]]\nname = \"L\"\nkind = \"listen\"\nprot = \"tcp\"\n",
        )),
        "dir/Enarx.toml:5:8: ",
        &["files[1] is a listen socket at fd 1"],
    );
}

#[test]
fn stream_names() {
    let m = enarx("[[files]]\nkind = \"stdin\"\nname = \"stdin\"\n[[files]]\nkind = \"null\"\nname = \"out\"\n")
        .expect("parses");
    assert_eq!(m.fd_names(), ["stdin", "stdout", "stderr"]);
    assert_eq!(
        m.warnings,
        [
            "dir/Enarx.toml:6:8: files[1].name \"out\" is ignored: fd 1 is always named \"stdout\" in FD_NAMES"
        ]
    );
    assert_error(
        &error(enarx("[[files]]\nkind = \"stdin\"\nname = \"a:b\"\n")),
        "dir/Enarx.toml:3:8: ",
        &["contains ':'"],
    );
}

#[test]
fn steward_is_ignored_with_a_warning() {
    let m = enarx("args = []\nsteward = \"https://attest.example.com\"\n").expect("parses");
    assert_eq!(
        m.warnings,
        ["dir/Enarx.toml:2:11: steward is ignored: Keep does not ask a Steward for a certificate"]
    );
}

#[test]
fn socket_errors() {
    let cases = [
        (
            "[[files]]\nkind = \"listen\"\nprot = \"tcp\"\n",
            "dir/Enarx.toml:7:1: ",
            "files[3] is a listen socket and needs a `name`",
        ),
        (
            "[[files]]\nkind = \"connect\"\nprot = \"tcp\"\n",
            "dir/Enarx.toml:7:1: ",
            "files[3] is a connect socket and needs a `host`",
        ),
        (
            "[[files]]\nkind = \"connect\"\nprot = \"tcp\"\nhost = \"::1\"\n",
            "dir/Enarx.toml:7:1: ",
            "files[3] needs a `name`: its default name is its host \"::1\"",
        ),
        (
            "[[files]]\nkind = \"connect\"\nprot = \"tcp\"\nhost = \"a\"\nport = 0\n",
            "dir/Enarx.toml:11:8: ",
            "files[3].port must not be 0",
        ),
        (
            "[[files]]\nname = \"x\"\nkind = \"listen\"\nprot = \"tcp\"\nhost = \"a\"\n",
            "dir/Enarx.toml:11:8: ",
            "files[3].host does not apply to a listen socket",
        ),
        (
            "[[files]]\nkind = \"connect\"\nprot = \"tcp\"\nhost = \"a\"\naddr = \"::\"\n",
            "dir/Enarx.toml:11:8: ",
            "files[3].addr does not apply to a connect socket",
        ),
        (
            "[[files]]\nname = \"x:y\"\nkind = \"listen\"\nprot = \"tcp\"\n",
            "dir/Enarx.toml:8:8: ",
            "files[3].name \"x:y\" contains ':'",
        ),
        (
            "[[files]]\nname = \"x\"\nkind = \"listen\"\nprot = \"udp\"\n",
            "dir/Enarx.toml:10:8: ",
            "unknown variant `udp`",
        ),
        (
            "[[files]]\nkind = \"pipe\"\n",
            "dir/Enarx.toml:8:8: ",
            "unknown variant `pipe`",
        ),
        (
            "[[files]]\nkind = \"connect\"\nprot = \"tcp\"\nhost = \"a\"\n\
             [[files]]\nkind = \"connect\"\nprot = \"tcp\"\nhost = \"a\"\n",
            "dir/Enarx.toml:14:8: ",
            "duplicate socket name \"a\"",
        ),
    ];
    for (files, prefix, part) in cases {
        let text = format!("{STDIO}{files}");
        assert_error(&error(enarx(&text)), prefix, &[part]);
    }
    assert_error(
        &error(enarx("[[files]]\nkind = \"stdin\"\nport = 1\n")),
        "dir/Enarx.toml:3:8: ",
        &["files[0].port does not apply to kind \"stdin\""],
    );
}

#[test]
fn keep_fields_are_unknown_in_enarx_toml() {
    assert_error(
        &error(enarx("[[dirs]]\nhost = \"a\"\nguest = \"/a\"\n")),
        "dir/Enarx.toml:1:3: ",
        &[
            "unknown field `dirs`",
            "expected one of `args`, `env`, `steward`, `files`",
        ],
    );
    assert_error(
        &error(enarx("[[files]]\nkind = \"stdin\"\nmode = \"r\"\n")),
        "dir/Enarx.toml:3:1: ",
        &["files: unknown field `mode`"],
    );
}

#[test]
fn too_many_files() {
    let sockets: String = (0..=4096)
        .map(|i| format!("[[files]]\nkind = \"connect\"\nprot = \"tcp\"\nhost = \"h{i}\"\n"))
        .collect();
    assert_error(
        &error(enarx(&format!("{STDIO}{sockets}"))),
        "dir/Enarx.toml:",
        &["files has 4100 entries; at most 4099"],
    );
}
