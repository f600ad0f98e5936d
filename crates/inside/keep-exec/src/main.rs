//! `keep-exec`: the WebAssembly runtime that runs inside a Keep.
//!
//! **Trusts:** its own code and what the tenant sealed to it (later: the manifest and
//! workload arrive sealed; on the process backend there is no seal yet).
//! **Does not trust:** the host. Everything on the launch channel is parsed as
//! untrusted input with bounded sizes; host-provided time and I/O are treated as
//! adversarial.
//!
//! The exec is one static executable (crt-static) that knows nothing about where it
//! runs: it reads a [`keep_wire::LaunchSpec`] and the workload bytes from the launch
//! channel on fd 3, compiles the workload inside (JIT happens here, never on the
//! host), runs it under WASI with the limits it was given, and reports how it ended
//! with an [`keep_wire::ExitReport`]. Its own exit status carries no meaning; the
//! report does.

mod attested;
mod channel;
mod engine;
mod entry;
mod harden;
mod limits;
mod outcome;
mod p1_extras;
mod p1_poll;
mod p1_run;
mod p2_run;
mod p3_run;
mod sealed_stdio;
mod seccomp;
mod secrets;
mod wasi;

use std::io::Write;
use std::process::ExitCode;

use keep_wire::{ExitReport, FrameKind, Outcome, RunStats, read_frame, write_json};

/// Whether the exec runs inside a KVM Keep: the VMM says so in the (measured)
/// boot environment, `KEEP_BACKEND=kvm`. On the process backend the environment is
/// empty. The binary is the same; only how wasmtime is configured differs (one
/// thread, no signals, no large virtual-memory reservations).
pub(crate) fn in_kvm_keep() -> bool {
    static KVM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KVM.get_or_init(|| std::env::var_os("KEEP_BACKEND").is_some_and(|v| v == "kvm"))
}

/// The KVM Keep's current-thread runtime (see `main`).
static KVM_RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();

/// The runtime a component runs on inside the KVM Keep: `p2_run` and `p3_run` drive
/// the whole run with its `block_on`, the only way a current-thread runtime polls sockets.
pub fn kvm_runtime() -> Option<&'static tokio::runtime::Runtime> {
    KVM_RUNTIME.get()
}

fn main() -> ExitCode {
    // Before anything else, on the process backend: drop what the host let through
    // (every descriptor but 0-3), and no core dumps, no dying after the host.
    if !in_kvm_keep() {
        if let Err(e) = channel::close_inherited().and_then(|()| harden::at_start()) {
            let _ = writeln!(std::io::stderr(), "keep-exec: {e}");
            return ExitCode::from(125);
        }
        // A panic on any thread leaves no secret file behind.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            secrets::remove();
            default_hook(info);
        }));
    }
    // wasmtime-wasi runs its host calls on an ambient tokio runtime, multi-threaded
    // unless one is already entered. A Keep has one thread: enter a current-thread
    // runtime for the whole run, with I/O (preview 2 sockets; the shim serves
    // epoll and eventfd). Its timers register (poll_oneoff with a clock
    // next to a ready descriptor); a lone sleep is slept on this thread
    // (`allow_blocking_current_thread`).
    let _entered = if in_kvm_keep() {
        match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .enable_io()
            .build()
        {
            Ok(rt) => Some(KVM_RUNTIME.get_or_init(|| rt).enter()),
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "keep-exec: cannot start the runtime: {e}"
                );
                return ExitCode::from(125);
            }
        }
    } else {
        None
    };
    let mut channel = match channel::adopt() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "keep-exec: {e}");
            return ExitCode::from(125);
        }
    };
    let report = run(&mut channel);
    // Make sure everything the workload wrote is out before the host hears the end.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    match write_json(&mut channel, FrameKind::Exit, &report) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(125),
    }
}

fn run(channel: &mut channel::Channel) -> ExitReport {
    let fail = |message: String| ExitReport {
        outcome: Outcome::Failed { message },
        stats: RunStats::default(),
    };
    if let Err(e) = channel::hello(channel) {
        return fail(e.to_string());
    }
    let first = match read_frame(channel, keep_wire::MAX_CONTROL_FRAME) {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    if first.kind == FrameKind::Challenge {
        return match first.expect_json::<keep_wire::Challenge>(FrameKind::Challenge) {
            Ok(c) => attested::run(channel, &c),
            Err(e) => fail(e.to_string()),
        };
    }
    let spec: keep_wire::LaunchSpec = match first.expect_json(FrameKind::Launch) {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let workload = match read_frame(channel, keep_wire::MAX_WORKLOAD_FRAME)
        .and_then(|f| f.expect(FrameKind::Workload))
    {
        Ok(w) => w,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(expected) = &spec.workload_sha384 {
        let actual = engine::sha384_hex(&workload);
        if !actual.eq_ignore_ascii_case(expected) {
            return fail(format!(
                "workload digest mismatch: expected sha384:{expected}, got sha384:{actual}"
            ));
        }
    }
    watch_host(channel);
    outcome::run_workload(&spec, &workload, channel)
}

/// Status the exec exits with when the host closes the channel mid-run.
const EXIT_HOST_GONE: i32 = 125;

/// Ends the exec because the host went away (or broke the protocol mid-run); the
/// secret files go first.
pub(crate) fn host_gone() -> ! {
    secrets::remove();
    std::process::exit(EXIT_HOST_GONE);
}

/// While the workload runs, anything more from the host (or the host going away)
/// ends the Keep: the host stays in control of its resources.
/// In a KVM Keep there is no second thread: the VMM stops the Keep itself.
pub(crate) fn watch_host(channel: &channel::Channel) {
    if in_kvm_keep() {
        return;
    }
    if let Ok(mut watch) = channel.try_clone() {
        let _ = std::thread::Builder::new().spawn(move || {
            let _ = read_frame(&mut watch, keep_wire::MAX_CONTROL_FRAME);
            host_gone();
        });
    }
}
