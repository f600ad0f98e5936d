//! Preopened directories: read-only, read-write, and no way out.

mod common;

use std::path::Path;
use std::process::Output;

use common::{fixture, run, stderr, stdout};

fn dir_with_file() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "inside\n").unwrap();
    dir
}

/// Runs files.wasm with `host` preopened as /data through `flag`.
fn files(flag: &str, host: &Path, args: &[&str]) -> Output {
    let map = format!("{}::/data", host.display());
    let wasm = fixture("files.wasm");
    let mut all = vec!["run", flag, &map, &wasm, "--"];
    all.extend_from_slice(args);
    run(&all, None)
}

#[test]
fn read_only_dir_reads_but_refuses_writes() {
    let dir = dir_with_file();
    let o = files("--ro-dir", dir.path(), &["read", "/data/in.txt"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "inside\n");
    let o = files("--ro-dir", dir.path(), &["write", "/data/new.txt", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!dir.path().join("new.txt").exists());
    let o = files("--ro-dir", dir.path(), &["rm", "/data/in.txt"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(dir.path().join("in.txt").exists());
}

#[test]
fn read_write_dir_allows_writes() {
    let dir = dir_with_file();
    let o = files("--dir", dir.path(), &["write", "/data/new.txt", "hello"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.txt")).unwrap(),
        "hello"
    );
    let o = files("--dir", dir.path(), &["list", "/data"]);
    assert_eq!(stdout(&o), "in.txt\nnew.txt\n");
}

#[test]
fn paths_cannot_escape_a_preopen() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("secret.txt"), "host secret").unwrap();
    let inner = outer.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::os::unix::fs::symlink("../secret.txt", inner.join("link")).unwrap();
    for path in [
        "/data/../secret.txt",
        "/data/link",
        "/etc/passwd",
        "../secret.txt",
    ] {
        let o = files("--dir", &inner, &["read", path]);
        assert_eq!(o.status.code(), Some(1), "{path}: {}", stdout(&o));
        assert!(!stdout(&o).contains("host secret"), "{path}");
    }
    // Nor can a write create anything outside.
    let o = files("--dir", &inner, &["write", "/data/../escaped.txt", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!outer.path().join("escaped.txt").exists());
}

#[test]
fn bad_dir_flag_is_one_line() {
    let o = run(
        &["run", "--dir", "/nonexistent::/x", &fixture("hello.wasm")],
        None,
    );
    common::assert_one_line(&o, 2, &["/nonexistent"]);
}
