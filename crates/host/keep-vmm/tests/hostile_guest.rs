//! A hostile guest: a payload that writes malformed requests into the call block
//! and rings the doorbell itself (on this PVM host the payload runs at the shim's
//! privilege, so it can). The VMM must stop the Keep with `Error::Protocol` and
//! never act on the request.

mod common;

use common::{have_kvm, run_in_keep};
use keep_vmm::Error;

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
