//! A hostile guest: a payload that writes malformed requests into the call block
//! and rings the doorbell itself (on this PVM host the payload runs at the shim's
//! privilege, so it can). The VMM must stop the Keep with `Error::Protocol` and
//! never act on the request. And a guest that uses the file calls against the
//! host: a symlink it makes to a host file outside its preopen must not let it
//! change that file.

mod common;

use common::{config, fixture, have_kvm, run_in_keep};
use keep_vmm::{Error, FileServer, Keep, StdioServer};

fn protocol_error(mode: &str, what: &str) {
    if !have_kvm() {
        return;
    }
    let (result, server) = run_in_keep("badcall", &[mode], b"");
    match result {
        Err(Error::Protocol(msg)) => assert!(msg.contains(what), "{msg:?} should mention {what:?}"),
        other => panic!("expected a protocol error ({what}), got {other:?}"),
    }
    assert!(
        server.stdout.is_empty() && server.log.is_empty(),
        "nothing was served"
    );
}

#[test]
fn a_length_past_the_block() {
    protocol_error("range", "outside the call block");
}

#[test]
fn an_unknown_call() {
    protocol_error("number", "unknown host call 99");
}

#[test]
fn a_log_line_outside_the_block() {
    protocol_error("log", "outside the call block");
}

/// `utimes` makes `link` -> a host file outside the writable preopen and calls
/// utimensat on it with flags 0 (follow) and AT_SYMLINK_NOFOLLOW: the first is
/// refused (EXDEV) and the outside file keeps its times; the second sets the link's.
#[test]
fn utimes_through_a_symlink_out_of_the_preopen() {
    use std::os::unix::fs::MetadataExt;
    if !have_kvm() {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let root = t.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let secret = t.path().join("secret");
    std::fs::write(&secret, "outside").expect("write");
    let before = std::fs::metadata(&secret).expect("stat").mtime();
    let mut server = StdioServer::capture(Vec::new());
    server.files = Some(FileServer::open(&[(&root, true)]).expect("preopen"));
    let payload = std::fs::read(fixture("utimes")).expect("fixture");
    let target = secret.to_str().expect("utf-8");
    let keep = Keep::launch(config("utimes", &["/.keep/dir/0", target]), &payload).expect("launch");
    let exit = keep.run(&mut server).expect("run");
    assert_eq!(exit.code, 0);
    let out = String::from_utf8_lossy(&server.stdout);
    assert_eq!(out, "symlinkat 0\nfollow -1 18\nnofollow 0 0\n");
    assert_eq!(std::fs::metadata(&secret).expect("stat").mtime(), before);
    let link = std::fs::symlink_metadata(root.join("link")).expect("link");
    assert_eq!(link.mtime(), 1000);
}

/// `flood` logs 300 lines of 800,000 bytes (240 MB) by ringing the doorbell itself:
/// the VMM keeps 64 KiB of them and one line saying how much it dropped, and the
/// Keep exits normally.
#[test]
fn a_log_flood_is_kept_to_the_byte_cap() {
    if !have_kvm() {
        return;
    }
    let (result, server) = run_in_keep("badcall", &["flood"], b"");
    assert_eq!(result.expect("the Keep exits normally").code, 0);
    let kept: usize = server.log.iter().map(|l| l.len() + 1).sum();
    let last = server.log.last().expect("a summary line");
    assert!(
        kept <= keep_vmm::MAX_LOG_BYTES + last.len() + 1,
        "kept {kept} bytes of log"
    );
    let dropped = 300 * 800_000 - (keep_vmm::MAX_LOG_BYTES - 1);
    assert_eq!(
        *last,
        format!("log capped at 64 KiB per Keep: {dropped} more bytes dropped (299 more lines)")
    );
}
