//! Preopened directories served by the VMM's FileServer: the `files` fixture gives
//! the same output in a Keep (directory 0 named /.keep/dir/0) as natively, and a
//! hostile host's FILE replies out of range are refused by the shim.

mod common;

use common::{Hostile, assert_refused, config, fixture, have_kvm, run_native};
use keep_vmm::{Error, FileServer, HostCallServer, Keep, RawReply, StdioServer};

fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("a.txt"), "alpha\n").expect("write");
    std::os::unix::fs::symlink("/etc/passwd", d.path().join("out")).expect("symlink");
    d
}

fn server(dir: &std::path::Path, writable: bool) -> StdioServer {
    let mut s = StdioServer::capture(Vec::new());
    s.files = Some(FileServer::open(&[(dir, writable)]).expect("open preopen"));
    s
}

fn run(server: &mut dyn HostCallServer) -> Result<keep_vmm::Exit, Error> {
    let payload = std::fs::read(fixture("files")).expect("fixture");
    let keep = Keep::launch(config("files", &["/.keep/dir/0"]), &payload).expect("launch");
    keep.run(server)
}

#[test]
fn files_as_natively() {
    if !have_kvm() {
        return;
    }
    let (a, b) = (tree(), tree());
    let (native, code) = run_native("files", &[a.path().to_str().expect("utf-8")], b"");
    assert_eq!(code, Some(0));
    let mut s = server(b.path(), true);
    let exit = run(&mut s).expect("run");
    assert_eq!(exit.code, 0);
    assert_eq!(
        String::from_utf8_lossy(&s.stdout),
        String::from_utf8_lossy(&native)
    );
    assert!(String::from_utf8_lossy(&s.stdout).contains("dotdot 1 18"));
}

#[test]
fn read_only_preopen_refuses_changes() {
    if !have_kvm() {
        return;
    }
    let d = tree();
    let mut s = server(d.path(), false);
    let exit = run(&mut s).expect("run");
    assert_eq!(exit.code, 0);
    let out = String::from_utf8_lossy(&s.stdout);
    assert!(out.contains("read 6 alpha"), "{out}");
    assert!(out.contains("mkdirat -1"), "{out}");
    assert!(!d.path().join("made").exists());
}

fn refused(op: u64, what: &str, tamper: impl Fn(&mut RawReply)) {
    let d = tree();
    let mut s = Hostile {
        inner: server(d.path(), true),
        socket: false,
        op,
        tamper,
    };
    assert_refused(run(&mut s), op, what);
}

// Operation numbers (abi::fs).
const PREOPEN: u64 = 1;
const OPENAT: u64 = 2;
const READ: u64 = 4;
const WRITE: u64 = 5;
const STAT: u64 = 7;
const GETDENTS: u64 = 8;
const READLINK: u64 = 12;
const MKDIR: u64 = 9;

#[test]
fn hostile_file_replies_are_refused() {
    if !have_kvm() {
        return;
    }
    refused(PREOPEN, "file handle out of range", |r| r.ret = 4096);
    refused(OPENAT, "file handle out of range", |r| r.ret = i64::MIN);
    refused(READ, "file read count out of range", |r| r.ret += 1 << 20);
    refused(READ, "file data outside the call block", |r| {
        r.val[0] = u64::MAX - 2
    });
    refused(WRITE, "file write count out of range", |r| r.ret = 6);
    refused(STAT, "stat reply malformed", |r| r.val[1] = 4096);
    refused(STAT, "file data outside the call block", |r| {
        r.val[0] = 1 << 40
    });
    refused(GETDENTS, "directory listing out of range", |r| {
        r.ret = 1 << 30
    });
    refused(READLINK, "link target out of range", |r| r.ret = 4097);
    refused(MKDIR, "file status out of range", |r| r.ret = 1);
}
