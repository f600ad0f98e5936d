//! Keep.toml: every field, and the errors it can give.

mod common;

use std::path::Path;

use common::{assert_error, error, keep};
use keep_manifest::{
    MAX_ENTRIES, Manifest, ManifestError, ManifestFormat, Position, RequestedLimits, STARTER,
};
use keep_wire::{DirSpec, FdSpec, SocketKind, StdioTarget};

const EXAMPLE: &str = include_str!("../../../../examples/Keep.toml");

#[test]
fn example_file_parses() {
    let m = Manifest::parse(EXAMPLE, Path::new("examples/Keep.toml")).expect("example parses");
    assert_eq!(m.format, ManifestFormat::Keep);
    assert_eq!(m.args, ["--verbose", "--greeting-from-env"]);
    assert_eq!(
        m.env,
        [
            ("GREETING".to_owned(), "hello".to_owned()),
            ("RUST_LOG".to_owned(), "info".to_owned())
        ]
    );
    assert_eq!(
        m.stdio,
        [
            StdioTarget::Null,
            StdioTarget::Inherit,
            StdioTarget::Inherit
        ]
    );
    assert_eq!(
        m.dirs,
        [
            DirSpec {
                source: "examples/data".into(),
                guest_path: "/data".into(),
                writable: false
            },
            DirSpec {
                source: "examples/scratch".into(),
                guest_path: "/tmp".into(),
                writable: true
            },
        ]
    );
    assert_eq!(
        m.sockets,
        [
            FdSpec {
                name: "web".into(),
                kind: SocketKind::Listen,
                host: "127.0.0.1".into(),
                port: 8080
            },
            FdSpec {
                name: "db".into(),
                kind: SocketKind::Connect,
                host: "db.example.com".into(),
                port: 5432
            },
        ]
    );
    assert_eq!(
        m.limits,
        RequestedLimits {
            memory_bytes: Some(256 << 20),
            cpu_ms: Some(10_000),
            wall_ms: Some(60_000),
            output_bytes: Some(1 << 30),
            open_files: Some(64),
        }
    );
    assert_eq!(
        m.fd_names().join(":"),
        "stdin:stdout:stderr:/data:/tmp:web:db"
    );
    assert!(m.warnings.is_empty());
}

#[test]
fn starter_parses() {
    let m = Manifest::parse(STARTER, Path::new("Keep.toml")).expect("STARTER parses");
    assert_eq!(m.format, ManifestFormat::Keep);
    assert_eq!(m.stdio, [StdioTarget::Inherit; 3]);
    assert!(m.args.is_empty() && m.env.is_empty() && m.dirs.is_empty());
    assert!(m.sockets.is_empty() && m.warnings.is_empty());
    assert_eq!(m.limits.memory_bytes, Some(256 << 20));
}

#[test]
fn empty_file_is_the_default() {
    let m = keep("").expect("empty parses");
    assert_eq!(m, Manifest::default());
    let m = keep("# only a comment\n\n").expect("comment parses");
    assert_eq!(m, Manifest::default());
}

#[test]
fn default_manifest() {
    let m = Manifest::default();
    assert_eq!(m.format, ManifestFormat::Keep);
    assert!(m.args.is_empty() && m.env.is_empty());
    assert_eq!(m.stdio, [StdioTarget::Inherit; 3]);
    assert!(m.dirs.is_empty() && m.sockets.is_empty() && m.warnings.is_empty());
    assert_eq!(m.limits, RequestedLimits::default());
    assert_eq!(m.fd_names(), ["stdin", "stdout", "stderr"]);
}

#[test]
fn args() {
    let m = keep(r#"args = ["a", "", "with space", "é"]"#).expect("parses");
    assert_eq!(m.args, ["a", "", "with space", "é"]);
}

#[test]
fn env_is_sorted_by_name() {
    let m = keep("[env]\nZED = \"z\"\nALPHA = \"a\"\n\"lower.case\" = \"\"\n").expect("parses");
    assert_eq!(
        m.env,
        [
            ("ALPHA".to_owned(), "a".to_owned()),
            ("ZED".to_owned(), "z".to_owned()),
            ("lower.case".to_owned(), String::new()),
        ]
    );
}

#[test]
fn stdio() {
    let m = keep("[stdio]\nstdout = \"null\"\n").expect("parses");
    assert_eq!(
        m.stdio,
        [
            StdioTarget::Inherit,
            StdioTarget::Null,
            StdioTarget::Inherit
        ]
    );
    let m =
        keep("[stdio]\nstdin = \"null\"\nstdout = \"null\"\nstderr = \"null\"\n").expect("parses");
    assert_eq!(m.stdio, [StdioTarget::Null; 3]);
    assert_error(
        &error(keep("[stdio]\nstderr = \"file\"\n")),
        "dir/Keep.toml:2:10: ",
        &[
            "stdio.stderr",
            "unknown variant `file`",
            "`inherit` or `null`",
        ],
    );
}

#[test]
fn dirs_resolve_against_the_manifest_directory() {
    let text = "[[dirs]]\nhost = \"./data\"\nguest = \"/data\"\n\
                [[dirs]]\nhost = \"/srv/abs\"\nguest = \"/abs\"\naccess = \"rw\"\n\
                [[dirs]]\nhost = \"../up/./x/\"\nguest = \"/\"\naccess = \"ro\"\n";
    let m = Manifest::parse(text, Path::new("/work/app/Keep.toml")).expect("parses");
    assert_eq!(
        m.dirs,
        [
            DirSpec {
                source: "/work/app/data".into(),
                guest_path: "/data".into(),
                writable: false
            },
            DirSpec {
                source: "/srv/abs".into(),
                guest_path: "/abs".into(),
                writable: true
            },
            DirSpec {
                source: "/work/app/../up/x".into(),
                guest_path: "/".into(),
                writable: false
            },
        ]
    );
    // A manifest named without a directory: relative to the current directory.
    let m = Manifest::parse(
        "[[dirs]]\nhost = \"data\"\nguest = \"/d\"\n",
        Path::new("Keep.toml"),
    )
    .expect("parses");
    assert_eq!(m.dirs[0].source, "data");
    let m = Manifest::parse(
        "[[dirs]]\nhost = \".\"\nguest = \"/d\"\n",
        Path::new("Keep.toml"),
    )
    .expect("parses");
    assert_eq!(m.dirs[0].source, ".");
}

#[test]
fn dir_errors() {
    let dir = |host: &str, guest: &str| format!("[[dirs]]\nhost = {host:?}\nguest = {guest:?}\n");
    let cases = [
        (
            dir("a", "data"),
            "dir/Keep.toml:3:9: ",
            "must be an absolute path",
        ),
        (
            dir("a", "/a/../b"),
            "dir/Keep.toml:3:9: ",
            "must not contain \"..\"",
        ),
        (
            dir("a", "/.."),
            "dir/Keep.toml:3:9: ",
            "must not contain \"..\"",
        ),
        (dir("a", "/a//b"), "dir/Keep.toml:3:9: ", "normal path"),
        (dir("a", "/a/"), "dir/Keep.toml:3:9: ", "normal path"),
        (dir("a", "/./a"), "dir/Keep.toml:3:9: ", "normal path"),
        (dir("a", "/a:b"), "dir/Keep.toml:3:9: ", "contains ':'"),
        (
            dir("a", "/a\tb"),
            "dir/Keep.toml:3:9: ",
            "control character",
        ),
        (
            dir("a", ""),
            "dir/Keep.toml:3:9: ",
            "must be an absolute path",
        ),
        (
            dir("", "/a"),
            "dir/Keep.toml:2:8: ",
            "dirs[0].host is empty",
        ),
        (
            "[[dirs]]\nhost = \"a\\u0000b\"\nguest = \"/a\"\n".to_owned(),
            "dir/Keep.toml:2:8: ",
            "dirs[0].host contains a NUL byte",
        ),
    ];
    for (text, prefix, part) in cases {
        assert_error(&error(keep(&text)), prefix, &[part]);
    }
    let long = format!("/{}", "a".repeat(5000));
    assert_error(
        &error(keep(&dir("a", &long))),
        "dir/Keep.toml:3:9: ",
        &["longer than 4096 bytes"],
    );
    assert_error(
        &error(keep(
            "[[dirs]]\nhost = \"a\"\nguest = \"/a\"\naccess = \"wo\"\n",
        )),
        "dir/Keep.toml:4:10: ",
        &["dirs.access", "unknown variant `wo`", "`ro` or `rw`"],
    );
    assert_error(
        &error(keep("[[dirs]]\nguest = \"/a\"\n")),
        "dir/Keep.toml:1:1: ",
        &["missing field `host`"],
    );
}

#[test]
fn duplicate_guest_paths() {
    let text = "[[dirs]]\nhost = \"a\"\nguest = \"/data\"\n\
                [[dirs]]\nhost = \"b\"\nguest = \"/data\"\n";
    assert_error(
        &error(keep(text)),
        "dir/Keep.toml:6:9: ",
        &[
            "duplicate guest path \"/data\"",
            "first at line 3, column 9",
        ],
    );
}

#[test]
fn sockets() {
    let text = "[[sockets]]\nname = \"any\"\nkind = \"listen\"\naddr = \"::\"\nport = 0\n\
                [[sockets]]\nname = \"v6\"\nkind = \"connect\"\nhost = \"::1\"\nport = 1\n";
    let m = keep(text).expect("parses");
    assert_eq!(
        m.sockets,
        [
            FdSpec {
                name: "any".into(),
                kind: SocketKind::Listen,
                host: "::".into(),
                port: 0
            },
            FdSpec {
                name: "v6".into(),
                kind: SocketKind::Connect,
                host: "::1".into(),
                port: 1
            },
        ]
    );
    assert_eq!(m.fd_names(), ["stdin", "stdout", "stderr", "any", "v6"]);
}

fn socket(fields: &str) -> String {
    format!("[[sockets]]\n{fields}")
}

#[test]
fn socket_errors() {
    let cases = [
        (
            socket("name = \"\"\nkind = \"listen\"\naddr = \"::\"\nport = 1\n"),
            "dir/Keep.toml:2:8: ",
            "sockets[0].name \"\" is empty",
        ),
        (
            socket("name = \"a:b\"\nkind = \"listen\"\naddr = \"::\"\nport = 1\n"),
            "dir/Keep.toml:2:8: ",
            "contains ':'",
        ),
        (
            socket("name = \"c\"\nkind = \"connect\"\nhost = \"example.com\"\nport = 0\n"),
            "dir/Keep.toml:5:8: ",
            "sockets[0].port must not be 0 for a connect socket",
        ),
        (
            socket("name = \"l\"\nkind = \"listen\"\nport = 80\n"),
            "dir/Keep.toml:1:1: ",
            "sockets[0] is a listen socket and needs `addr`",
        ),
        (
            socket("name = \"c\"\nkind = \"connect\"\nport = 80\n"),
            "dir/Keep.toml:1:1: ",
            "sockets[0] is a connect socket and needs `host`",
        ),
        (
            socket("name = \"l\"\nkind = \"listen\"\naddr = \"::\"\nhost = \"x\"\nport = 80\n"),
            "dir/Keep.toml:5:8: ",
            "sockets[0].host does not apply to a listen socket",
        ),
        (
            socket("name = \"c\"\nkind = \"connect\"\naddr = \"::\"\nhost = \"x\"\nport = 80\n"),
            "dir/Keep.toml:4:8: ",
            "sockets[0].addr does not apply to a connect socket",
        ),
        (
            socket("name = \"l\"\nkind = \"listen\"\naddr = \"localhost\"\nport = 80\n"),
            "dir/Keep.toml:4:8: ",
            "is not an IP address",
        ),
        (
            socket("name = \"c\"\nkind = \"connect\"\nhost = \"a b\"\nport = 80\n"),
            "dir/Keep.toml:4:8: ",
            "neither an IP address nor a host name",
        ),
        (
            socket("name = \"stdout\"\nkind = \"connect\"\nhost = \"a\"\nport = 80\n"),
            "dir/Keep.toml:2:8: ",
            "socket name \"stdout\" is reserved for fd 1",
        ),
        (
            socket("name = \"c\"\nkind = \"connect\"\nhost = \"a\"\n"),
            "dir/Keep.toml:1:1: ",
            "missing field `port`",
        ),
        (
            socket("name = \"c\"\nkind = \"connect\"\nhost = \"a\"\nport = 65536\n"),
            "dir/Keep.toml:5:8: ",
            "expected u16",
        ),
    ];
    for (text, prefix, part) in cases {
        assert_error(&error(keep(&text)), prefix, &[part]);
    }
}

#[test]
fn duplicate_socket_names() {
    let one = "[[sockets]]\nname = \"web\"\nkind = \"listen\"\naddr = \"::\"\nport = 1\n";
    let text = format!("{one}{one}");
    assert_error(
        &error(keep(&text)),
        "dir/Keep.toml:7:8: ",
        &["duplicate socket name \"web\"", "first at line 2, column 8"],
    );
    // A socket may not take a directory's name either: FD_NAMES would be ambiguous.
    let text = format!(
        "[[dirs]]\nhost = \"a\"\nguest = \"/web\"\n{}",
        one.replace("\"web\"", "\"/web\"")
    );
    assert_error(
        &error(keep(&text)),
        "dir/Keep.toml:5:8: ",
        &["socket name \"/web\" is already used as a guest path"],
    );
}

#[test]
fn limits() {
    let m = keep(
        "[limits]\nmemory = 1048576\ncpu = 3\nwall = \"2m\"\noutput = \"1 GB\"\nopen_files = 1\n",
    )
    .expect("parses");
    assert_eq!(
        m.limits,
        RequestedLimits {
            memory_bytes: Some(1 << 20),
            cpu_ms: Some(3_000),
            wall_ms: Some(120_000),
            output_bytes: Some(1_000_000_000),
            open_files: Some(1),
        }
    );
    let m =
        keep("[limits]\nmemory = \"512KiB\"\ncpu = \"500ms\"\nwall = \"1h\"\noutput = \"12B\"\n")
            .expect("parses");
    assert_eq!(m.limits.memory_bytes, Some(512 << 10));
    assert_eq!(m.limits.cpu_ms, Some(500));
    assert_eq!(m.limits.wall_ms, Some(3_600_000));
    assert_eq!(m.limits.output_bytes, Some(12));
    assert_eq!(m.limits.open_files, None);
}

#[test]
fn zero_limits() {
    for (field, value) in [
        ("memory", "0"),
        ("memory", "\"0MiB\""),
        ("cpu", "0"),
        ("cpu", "\"0ms\""),
        ("wall", "\"0s\""),
        ("output", "\"0 B\""),
        ("open_files", "0"),
    ] {
        let text = format!("[limits]\n{field} = {value}\n");
        let col = field.len() + 4;
        assert_eq!(
            error(keep(&text)),
            format!("dir/Keep.toml:2:{col}: limits.{field} must be greater than zero")
        );
    }
}

#[test]
fn bad_sizes_and_durations() {
    let cases = [
        ("memory = \"12XB\"", "invalid size \"12XB\""),
        ("memory = \"1.5GiB\"", "invalid size"),
        ("memory = -1", "-1 is negative"),
        ("memory = true", "expected a size"),
        ("memory = \"99999999TiB\"", "is too large"),
        ("output = \"lots\"", "invalid size"),
        ("cpu = \"10 sec\"", "invalid duration \"10 sec\""),
        ("cpu = -5", "-5 is negative"),
        ("wall = 1.5", "expected a duration"),
        ("wall = 9223372036854775807", "is too large"),
        ("open_files = \"64\"", "expected u32"),
        ("open_files = 4294967296", "expected u32"),
    ];
    for (line, part) in cases {
        let text = format!("[limits]\n{line}\n");
        let field = line.split(' ').next().unwrap_or_default();
        let col = field.len() + 4;
        assert_error(
            &error(keep(&text)),
            &format!("dir/Keep.toml:2:{col}: limits.{field}: "),
            &[part],
        );
    }
}

#[test]
fn unknown_field_at_top_level() {
    let message = error(keep("args = []\n\n  colour = \"blue\"\n"));
    assert_error(
        &message,
        "dir/Keep.toml:3:3: ",
        &["unknown field `colour`", "expected one of `args`"],
    );
}

#[test]
fn unknown_fields_nested() {
    assert_error(
        &error(keep("[stdio]\nstdin = \"null\"\n    stdot = \"null\"\n")),
        "dir/Keep.toml:3:5: ",
        &["stdio: unknown field `stdot`"],
    );
    assert_error(
        &error(keep("[limits]\nmemory = 1\nmem = 2\n")),
        "dir/Keep.toml:3:1: ",
        &["limits: unknown field `mem`"],
    );
    assert_error(
        &error(keep(
            "[[dirs]]\nhost = \"a\"\nguest = \"/a\"\n\n[[dirs]]\nhost = \"b\"\nguest = \"/b\"\n readonly = true\n",
        )),
        "dir/Keep.toml:8:2: ",
        &["dirs: unknown field `readonly`"],
    );
    assert_error(
        &error(keep(
            "[[sockets]]\nname = \"w\"\nkind = \"listen\"\naddr = \"::\"\nport = 1\nprot = \"tcp\"\n",
        )),
        "dir/Keep.toml:6:1: ",
        &["sockets: unknown field `prot`"],
    );
    // Columns count characters, not bytes.
    assert_error(
        &error(keep("[env]\nA = \"é\"   \n[stdio]\n\"é\" = 1\n")),
        "dir/Keep.toml:4:1: ",
        &["unknown field `é`"],
    );
}

#[test]
fn env_errors() {
    assert_error(
        &error(keep("[env]\nFD_NAMES = \"x\"\n")),
        "dir/Keep.toml:2:1: ",
        &["env.FD_NAMES is set by Keep"],
    );
    assert_error(
        &error(keep("[env]\n\"A=B\" = \"x\"\n")),
        "dir/Keep.toml:2:1: ",
        &["contains '='"],
    );
    assert_error(
        &error(keep("[env]\n\"\" = \"x\"\n")),
        "dir/Keep.toml:2:1: ",
        &["name is empty"],
    );
    assert_error(
        &error(keep("[env]\nA = \"x\\u0000y\"\n")),
        "dir/Keep.toml:2:5: ",
        &["env.A contains a NUL byte"],
    );
    assert_error(
        &error(keep("[env]\nA = 1\n")),
        "dir/Keep.toml:2:5: ",
        &["env.A: invalid type: integer `1`, expected a string"],
    );
}

#[test]
fn arg_errors() {
    assert_error(
        &error(keep("args = [\"ok\", \"a\\u0000\"]\n")),
        "dir/Keep.toml:1:15: ",
        &["args[1] contains a NUL byte"],
    );
    assert_error(
        &error(keep("args = \"--verbose\"\n")),
        "dir/Keep.toml:1:8: ",
        &["args: invalid type: string"],
    );
}

#[test]
fn counts_are_bounded() {
    let many = |n: usize| vec!["\"\""; n].join(",");
    assert!(keep(&format!("args = [{}]", many(MAX_ENTRIES))).is_ok());
    assert_error(
        &error(keep(&format!("args = [{}]", many(MAX_ENTRIES + 1)))),
        "dir/Keep.toml:1:8: ",
        &["args has 4097 entries; at most 4096"],
    );

    let env: String = (0..=MAX_ENTRIES)
        .map(|i| format!("V{i} = \"\"\n"))
        .collect();
    assert_error(
        &error(keep(&format!("[env]\n{env}"))),
        "dir/Keep.toml:",
        &["env has 4097 entries"],
    );

    let dirs: String = (0..=MAX_ENTRIES)
        .map(|i| format!("[[dirs]]\nhost = \"d\"\nguest = \"/{i}\"\n"))
        .collect();
    assert_error(
        &error(keep(&dirs)),
        "dir/Keep.toml:",
        &["dirs has 4097 entries"],
    );

    let dirs: String = (0..3000)
        .map(|i| format!("[[dirs]]\nhost = \"d\"\nguest = \"/{i}\"\n"))
        .collect();
    let sockets: String = (0..2000)
        .map(|i| {
            format!("[[sockets]]\nname = \"s{i}\"\nkind = \"listen\"\naddr = \"::\"\nport = 0\n")
        })
        .collect();
    assert_error(
        &error(keep(&format!("{dirs}{sockets}"))),
        "dir/Keep.toml:",
        &["dirs and sockets together has 5000 entries"],
    );
}

#[test]
fn error_values_expose_their_location() {
    let Err(e) = keep("[limits]\ncpu = 0\n") else {
        panic!("expected an error");
    };
    assert!(matches!(e, ManifestError::Invalid { .. }));
    assert_eq!(e.location().path, Path::new("dir/Keep.toml"));
    assert_eq!(e.location().position, Some(Position { line: 2, column: 7 }));
}
