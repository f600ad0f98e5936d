//! Attested launch: the Keep's key, evidence from the **insecure** software attester,
//! the sealed payload, and output sealed for the tenant.
//!
//! Trust states as the exec sees them: 1 (empty Keep, waiting for a challenge) ->
//! 2 (evidence sent: the key that opens the payload exists only here) -> 3 (payload
//! opened, workload digest checked, receipt sent). The host relays everything and can
//! read none of it: it sees the nonce, the public key, the evidence, ciphertext, and
//! the plain exit report at the end.
//!
//! The insecure attester has no hardware root: it writes the evidence itself. It binds
//! report_data = SHA-384(nonce || public key || measurement) and proves nothing; every
//! policy refuses it unless the tenant allows insecure evidence.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use keep_seal::{KeepKey, RecordKind, Session};
use keep_wire::{
    Challenge, Evidence, ExitReport, FrameKind, LaunchSpec, Limits, Outcome, RunStats, StdioTarget,
    read_frame, write_frame, write_json,
};

use crate::channel::Channel;

/// The attester name carried in evidence and refused by default policies.
const ATTESTER: &str = "keep-insecure-software";
const WARNING: &str = "INSECURE software attester: no hardware root of trust, it proves nothing";

/// Output captured from the workload: the write ends of two pipes inside the exec,
/// taken once by the WASI context builder.
static CAPTURE: Mutex<Option<(std::fs::File, std::fs::File)>> = Mutex::new(None);

/// The write ends for the workload's stdout and stderr, when output is captured.
pub fn take_capture() -> Option<(std::fs::File, std::fs::File)> {
    CAPTURE.lock().ok().and_then(|mut c| c.take())
}

/// The read end of the workload's stdin: the tenant's sealed input, opened here.
static STDIN: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// The workload's stdin, when it comes from the tenant (taken once).
pub fn take_stdin() -> Option<std::fs::File> {
    STDIN.lock().ok().and_then(|mut c| c.take())
}

/// The runtime measurement: the launcher's (as a TEE platform measures a guest at
/// launch), or else the SHA-384 of the exec's own image (`/proc/self/exe`).
fn measurement(challenge: &Challenge) -> Result<[u8; 48], String> {
    if let Some(m) = &challenge.measurement {
        return hex::decode(m)
            .ok()
            .and_then(|m| m.try_into().ok())
            .ok_or_else(|| "the launcher's measurement is not 48 bytes of hex".to_string());
    }
    let bytes = std::fs::read("/proc/self/exe")
        .map_err(|e| format!("cannot read the exec's own image: {e}"))?;
    Ok(keep_seal::sha384(&bytes))
}

fn failed(message: String) -> ExitReport {
    ExitReport {
        outcome: Outcome::Failed { message },
        stats: RunStats::default(),
    }
}

/// Runs an attested launch after the host's `Challenge` frame.
pub fn run(channel: &mut Channel, challenge: &Challenge) -> ExitReport {
    // State 1 -> 2: key, evidence.
    let nonce: [u8; 32] = match hex::decode(&challenge.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
    {
        Some(n) => n,
        None => return failed("state 2: the challenge's nonce is not 32 bytes of hex".into()),
    };
    let measurement = match measurement(challenge) {
        Ok(m) => m,
        Err(e) => return failed(format!("state 2: {e}")),
    };
    let key = match KeepKey::generate() {
        Ok(k) => k,
        Err(e) => return failed(format!("state 2: {e}")),
    };
    let public_key = key.public_key();
    let report_data = keep_seal::report_data(&nonce, &public_key, &measurement);
    let evidence = serde_json::json!({
        "attester": ATTESTER,
        "warning": WARNING,
        "report_data": hex::encode(report_data),
        "measurement": hex::encode(measurement),
    });
    let evidence = Evidence {
        tee: "insecure".into(),
        public_key: hex::encode(public_key),
        evidence: evidence.to_string(),
    };
    if let Err(e) = write_json(channel, FrameKind::Evidence, &evidence) {
        return failed(format!("state 2: {e}"));
    }

    // State 2 -> 3: the sealed payload.
    let sealed = match read_frame(channel, keep_wire::MAX_SEALED_FRAME)
        .and_then(|f| f.expect(FrameKind::Sealed))
    {
        Ok(s) => s,
        Err(e) => return failed(format!("state 3: {e}")),
    };
    let (payload, session) = match key.open(&sealed, &report_data) {
        Ok(p) => p,
        Err(e) => return failed(format!("state 3 refused by the Keep: {e}")),
    };
    let payload_sha384 = hex::encode(keep_seal::sha384(&sealed));
    drop(sealed);
    let mut session_input = Some(session.input_reader());
    let writer = match channel.try_clone() {
        Ok(w) => Arc::new(Mutex::new(Sender {
            channel: w,
            session,
            seq: 0,
        })),
        Err(e) => return failed(format!("state 3: {e}")),
    };
    let workload_sha384 = hex::encode(keep_seal::sha384(&payload.workload));
    if !workload_sha384.eq_ignore_ascii_case(&payload.manifest.workload_sha384) {
        let message = format!(
            "state 3 refused by the Keep: workload digest mismatch: the manifest names sha384:{}, the workload is sha384:{workload_sha384}",
            payload.manifest.workload_sha384
        );
        let json = serde_json::json!({ "message": message }).to_string();
        send(&writer, RecordKind::Refused, json.as_bytes());
        return failed("state 3 refused by the Keep (details sealed to the tenant)".into());
    }
    let receipt = keep_seal::Receipt {
        payload_sha384,
        workload_sha384,
    };
    let json = serde_json::to_vec(&receipt).unwrap_or_default();
    if !send(&writer, RecordKind::Receipt, &json) {
        return failed("state 3: cannot send the receipt".into());
    }

    // State 3: run, with output captured and sealed.
    let mut spec = spec_from(&payload.manifest, challenge);
    if let Err(e) = crate::secrets::deliver(&payload.manifest, &mut spec) {
        crate::secrets::remove();
        return sealed_end(&writer, failed(format!("state 3: secrets: {e}")));
    }
    let mut pumps = Vec::new();
    if crate::in_kvm_keep() {
        // One thread: the WASI streams seal and send in place (no pipes, no pumps).
        match (channel.try_clone(), session_input.take()) {
            (Ok(c), Some(input)) => crate::sealed_stdio::install(&writer, c, input),
            (Err(e), _) => return sealed_end(&writer, failed(format!("state 3: stdin: {e}"))),
            (_, None) => {}
        }
    } else {
        pumps = match capture(&writer) {
            Ok(p) => p,
            Err(e) => {
                return sealed_end(&writer, failed(format!("state 3: output capture: {e}")));
            }
        };
        let input = session_input.take();
        if let Err(e) = watch_host_and_input(channel, &writer, input) {
            return sealed_end(&writer, failed(format!("state 3: stdin: {e}")));
        }
    }
    let report = crate::outcome::run_workload(&spec, &payload.workload, channel);
    // The store (and with it the pipes' write ends) is gone: drain the pumps.
    let _ = take_capture();
    for p in pumps {
        let _ = p.join();
    }
    crate::secrets::remove();
    sealed_end(&writer, report)
}

/// Sends the exit report sealed for the tenant, and returns it for the host.
fn sealed_end(writer: &Arc<Mutex<Sender>>, report: ExitReport) -> ExitReport {
    let json = serde_json::to_vec(&report).unwrap_or_default();
    send(writer, RecordKind::Exit, &json);
    report
}

pub(crate) struct Sender {
    channel: Channel,
    session: Session,
    seq: u64,
}

/// Seals and sends one record; numbering and writing happen under one lock, so the
/// sequence on the wire is the sequence of the records.
pub(crate) fn send(writer: &Arc<Mutex<Sender>>, kind: RecordKind, data: &[u8]) -> bool {
    let Ok(mut s) = writer.lock() else {
        return false;
    };
    let Ok(record) = s.session.seal_record(s.seq, kind, data) else {
        return false;
    };
    s.seq += 1;
    write_frame(&mut s.channel, FrameKind::Record, &record).is_ok()
}

/// While the workload runs, the host may send only the tenant's sealed input
/// (`Input` frames): each opens here, in order, into the workload's stdin (a pipe
/// inside the exec); the end record closes it. Anything else from the host, or the
/// host going away, ends the Keep as `watch_host` does; input that does not open
/// (tampered, dropped, reordered, replayed by the host) is refused in a sealed
/// record, and the Keep ends.
fn watch_host_and_input(
    channel: &Channel,
    writer: &Arc<Mutex<Sender>>,
    input: Option<keep_seal::InputReader>,
) -> std::io::Result<()> {
    if crate::in_kvm_keep() {
        return Ok(());
    }
    let Some(mut input) = input else {
        return Ok(());
    };
    let (stdin_r, stdin_w) = std::io::pipe()?;
    if let Ok(mut s) = STDIN.lock() {
        *s = Some(std::fs::File::from(OwnedFd::from(stdin_r)));
    }
    let mut watch = channel.try_clone()?;
    let writer = writer.clone();
    std::thread::Builder::new().spawn(move || {
        use std::io::Write as _;
        let mut stdin = Some(stdin_w);
        loop {
            let frame = match read_frame(&mut watch, keep_wire::MAX_CONTROL_FRAME) {
                Ok(f) if f.kind == FrameKind::Input => f,
                _ => crate::host_gone(),
            };
            match input.open(&frame.payload) {
                Ok(keep_seal::Input::Data(d)) => {
                    // A workload that closed its stdin just does not get the rest.
                    if let Some(w) = stdin.as_mut()
                        && w.write_all(&d).is_err()
                    {
                        stdin = None;
                    }
                }
                Ok(keep_seal::Input::End) => stdin = None,
                Err(e) => {
                    let message = format!("the Keep refused the tenant's input: {e}");
                    let json = serde_json::json!({ "message": message }).to_string();
                    send(&writer, RecordKind::Refused, json.as_bytes());
                    crate::host_gone();
                }
            }
        }
    })?;
    Ok(())
}

/// The largest chunk of output per record.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Pipes for stdout and stderr inside the exec, each drained by a thread that seals
/// what the workload wrote into records.
fn capture(writer: &Arc<Mutex<Sender>>) -> std::io::Result<Vec<JoinHandle<()>>> {
    let (out_r, out_w) = std::io::pipe()?;
    let (err_r, err_w) = std::io::pipe()?;
    let file = |w: std::io::PipeWriter| std::fs::File::from(OwnedFd::from(w));
    if let Ok(mut c) = CAPTURE.lock() {
        *c = Some((file(out_w), file(err_w)));
    }
    let pump = |mut r: std::io::PipeReader, kind: RecordKind| {
        let writer = writer.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if !send(&writer, kind, &buf[..n]) {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        })
    };
    Ok(vec![
        pump(out_r, RecordKind::Stdout),
        pump(err_r, RecordKind::Stderr),
    ])
}

/// The launch spec from the tenant's sealed manifest and the host's limits (the
/// smaller of each).
fn spec_from(m: &keep_seal::SealedManifest, challenge: &Challenge) -> LaunchSpec {
    let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    LaunchSpec {
        program_name: m.program_name.clone(),
        args: m.args.clone(),
        env: m.env.clone(),
        stdio: [
            StdioTarget::Null,
            StdioTarget::Inherit,
            StdioTarget::Inherit,
        ],
        dirs: Vec::new(),
        sockets: Vec::new(),
        limits: Limits {
            memory_bytes: min(m.memory_bytes, challenge.limits.memory_bytes),
            // In a KVM Keep the VMM enforces CPU time on the vCPU thread (the
            // host's limit, which the tenant's request clamps); the exec's epoch
            // ticker would need a second thread.
            cpu_ms: if crate::in_kvm_keep() {
                None
            } else {
                min(m.cpu_ms, challenge.limits.cpu_ms)
            },
            open_files: challenge.limits.open_files,
        },
        workload_sha384: Some(m.workload_sha384.clone()),
        parallel_compilation: challenge.parallel_compilation,
        compile_cache_dir: None,
    }
}
