//! Preopened directories: read-only, read-write, and no way out.

mod common;

use common::{fixture, run, stderr, stdout};

fn dir_with_file() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "inside\n").unwrap();
    dir
}

#[test]
fn read_only_dir_reads_but_refuses_writes() {
    let dir = dir_with_file();
    let map = format!("{}::/data", dir.path().display());
    let o = run(
        &[
            "run",
            "--ro-dir",
            &map,
            &fixture("files.wasm"),
            "--",
            "read",
            "/data/in.txt",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "inside\n");
    let o = run(
        &[
            "run",
            "--ro-dir",
            &map,
            &fixture("files.wasm"),
            "--",
            "write",
            "/data/new.txt",
            "x",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.path().join("new.txt").exists());
}

#[test]
fn read_write_dir_allows_writes() {
    let dir = dir_with_file();
    let map = format!("{}::/data", dir.path().display());
    let o = run(
        &[
            "run",
            "--dir",
            &map,
            &fixture("files.wasm"),
            "--",
            "write",
            "/data/new.txt",
            "hello",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.txt")).unwrap(),
        "hello"
    );
}

#[test]
fn paths_cannot_escape_a_preopen() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("secret.txt"), "host secret").unwrap();
    let inner = outer.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::os::unix::fs::symlink("../secret.txt", inner.join("link")).unwrap();
    let map = format!("{}::/data", inner.display());
    for path in [
        "/data/../secret.txt",
        "/data/link",
        "/etc/passwd",
        "../secret.txt",
    ] {
        let o = run(
            &[
                "run",
                "--dir",
                &map,
                &fixture("files.wasm"),
                "--",
                "read",
                path,
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(1), "{path}: {}", stdout(&o));
        assert!(!stdout(&o).contains("host secret"), "{path}");
    }
}

#[test]
fn bad_dir_flag_is_one_line() {
    let o = run(
        &["run", "--dir", "/nonexistent::/x", &fixture("hello.wasm")],
        None,
    );
    common::assert_one_line(&o, 125, &["/nonexistent"]);
}
