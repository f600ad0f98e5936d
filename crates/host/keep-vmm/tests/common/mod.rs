//! Shared helpers: fixture paths, the /dev/kvm skip, native runs.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use keep_vmm::{Error, Exit, HostCall, HostCallServer, Keep, KeepConfig, RawReply, StdioServer};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/kvm/bin")
        .join(name)
}

/// False (with a message) when /dev/kvm is missing: the caller returns early.
pub fn have_kvm() -> bool {
    if keep_vmm::kvm_available() {
        return true;
    }
    eprintln!("skipped: /dev/kvm is not available on this machine");
    false
}

pub fn config(name: &str, args: &[&str]) -> KeepConfig {
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.insert(0, name.to_string());
    KeepConfig {
        args,
        ..KeepConfig::default()
    }
}

/// Runs a fixture in a Keep with captured stdio.
pub fn run_in_keep(name: &str, args: &[&str], input: &[u8]) -> (Result<Exit, Error>, StdioServer) {
    let payload = std::fs::read(fixture(name)).expect("fixture");
    let keep = Keep::launch(config(name, args), &payload).expect("launch");
    let mut server = StdioServer::capture(input.to_vec());
    let result = keep.run(&mut server);
    (result, server)
}

/// Runs a fixture natively: (stdout, exit code).
pub fn run_native(name: &str, args: &[&str], input: &[u8]) -> (Vec<u8>, Option<i32>) {
    use std::io::Write;
    let mut child = Command::new(fixture(name))
        .arg0(name)
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run fixture natively");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (out.stdout, out.status.code())
}

trait Arg0 {
    fn arg0(&mut self, name: &str) -> &mut Self;
}

impl Arg0 for Command {
    fn arg0(&mut self, name: &str) -> &mut Self {
        std::os::unix::process::CommandExt::arg0(self, name)
    }
}

/// A hostile host: serves like `inner`, then lets `tamper` change its reply to
/// FILE operation `op` (SOCKET operation `op` with `socket`).
pub struct Hostile<F: Fn(&mut RawReply)> {
    pub inner: StdioServer,
    pub socket: bool,
    pub op: u64,
    pub tamper: F,
}

impl<F: Fn(&mut RawReply)> HostCallServer for Hostile<F> {
    fn serve(&mut self, call: &HostCall, data: &mut [u8]) -> RawReply {
        let mut reply = self.inner.serve(call, data);
        let op = match call {
            HostCall::File { op, .. } if !self.socket => Some(*op),
            HostCall::Socket { op, .. } if self.socket => Some(*op),
            _ => None,
        };
        if op == Some(self.op) {
            (self.tamper)(&mut reply);
        }
        reply
    }
}

/// The shim stopped the Keep, saying `what` about operation `op`'s reply.
pub fn assert_refused(result: Result<Exit, Error>, op: u64, what: &str) {
    match result {
        Err(Error::ShimAbort(msg)) => assert!(msg.contains(what), "{msg:?} should say {what:?}"),
        other => panic!("expected a refusal ({what}) for op {op}, got {other:?}"),
    }
}
