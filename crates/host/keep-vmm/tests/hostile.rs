//! A hostile host: the host-call server is replaced by one that corrupts its
//! replies. The shim must refuse each one and stop the Keep with a message saying
//! what it refused; the VMM returns `Error::ShimAbort`. Nothing the host sends may
//! be used by the shim or crash it.

mod common;

use common::{config, fixture, have_kvm};
use keep_vmm::{Error, HostCall, HostCallServer, Keep, RawReply, StdioServer};

/// Serves honestly through a StdioServer, then lets `tamper` change the reply.
struct Hostile<F: FnMut(&HostCall, &mut RawReply)> {
    inner: StdioServer,
    tamper: F,
}

impl<F: FnMut(&HostCall, &mut RawReply)> HostCallServer for Hostile<F> {
    fn serve(&mut self, call: &HostCall, data: &mut [u8]) -> RawReply {
        let mut reply = self.inner.serve(call, data);
        (self.tamper)(call, &mut reply);
        reply
    }
}

fn run_hostile(
    name: &str,
    input: &[u8],
    tamper: impl FnMut(&HostCall, &mut RawReply),
) -> Result<keep_vmm::Exit, Error> {
    let payload = std::fs::read(fixture(name)).expect("fixture");
    let keep = Keep::launch(config(name, &[]), &payload).expect("launch");
    keep.run(&mut Hostile {
        inner: StdioServer::capture(input.to_vec()),
        tamper,
    })
}

fn refused(r: Result<keep_vmm::Exit, Error>, what: &str) {
    match r {
        Err(Error::ShimAbort(msg)) => assert!(
            msg.contains(what),
            "refusal {msg:?} should mention {what:?}"
        ),
        other => panic!("expected the shim to refuse ({what}), got {other:?}"),
    }
}

#[test]
fn write_count_larger_than_asked() {
    if !have_kvm() {
        return;
    }
    let r = run_hostile("hello", b"", |call, reply| {
        if let HostCall::Write { len, .. } = call {
            reply.ret = *len as i64 + 1;
        }
    });
    refused(r, "write count out of range");
}

#[test]
fn write_returns_an_absurd_error() {
    if !have_kvm() {
        return;
    }
    let r = run_hostile("hello", b"", |call, reply| {
        if matches!(call, HostCall::Write { .. }) {
            reply.ret = i64::MIN;
        }
    });
    refused(r, "write count out of range");
}

#[test]
fn read_count_larger_than_asked() {
    if !have_kvm() {
        return;
    }
    let r = run_hostile("echo", b"abc", |call, reply| {
        if let HostCall::Read { max, .. } = call {
            reply.ret = *max as i64 + 4096;
        }
    });
    refused(r, "read count out of range");
}

#[test]
fn read_data_outside_the_block() {
    if !have_kvm() {
        return;
    }
    for offset in [keep_vmm::CALL_DATA_CAPACITY as u64 - 1, 1 << 40, u64::MAX] {
        let r = run_hostile("echo", b"abc", |call, reply| {
            if matches!(call, HostCall::Read { .. }) {
                reply.val[0] = offset;
            }
        });
        refused(r, "read data outside the call block");
    }
}

#[test]
fn clock_nanoseconds_out_of_range() {
    if !have_kvm() {
        return;
    }
    let r = run_hostile("clock", b"", |call, reply| {
        if matches!(call, HostCall::Clock { .. }) {
            reply.val[1] = 1_000_000_000;
        }
    });
    refused(r, "clock value out of range");
}

#[test]
fn clock_seconds_out_of_range() {
    if !have_kvm() {
        return;
    }
    let r = run_hostile("clock", b"", |call, reply| {
        if matches!(call, HostCall::Clock { .. }) {
            reply.val[0] = u64::MAX;
        }
    });
    refused(r, "clock value out of range");
}

#[test]
fn clock_positive_return_value() {
    if !have_kvm() {
        return;
    }
    let r = run_hostile("clock", b"", |call, reply| {
        if matches!(call, HostCall::Clock { .. }) {
            reply.ret = 7;
        }
    });
    refused(r, "clock return value out of range");
}

#[test]
fn honest_errors_pass_through() {
    if !have_kvm() {
        return;
    }
    // A short write and an in-range errno are legal replies: no refusal.
    let mut first = true;
    let r = run_hostile("hello", b"", |call, reply| {
        if matches!(call, HostCall::Write { .. }) && first {
            first = false;
            reply.ret = -5; // EIO
        }
    });
    assert!(r.is_ok(), "{r:?}");
}
