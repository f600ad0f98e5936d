//! The blocking half: frames to and from one Keep's launch channel. The agent reads
//! only the frame headers and the JSON the exec addresses to the host (Evidence,
//! Started, Exit); sealed frames pass through unread.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use keep_wire::{
    Challenge, Evidence, ExitReport, FrameKind, Limits, Outcome, RunStats, WireError, read_frame,
    write_frame, write_json,
};

use crate::registry::{Entry, TrustState};

/// How long the exec has to answer a challenge.
const EVIDENCE_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest attester evidence relayed (a TDX bundle with its collateral, hex,
/// needs ~100 KiB).
const MAX_EVIDENCE: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the Keep's launch channel: {0}")]
    Wire(#[from] WireError),
    #[error("the Keep's launch channel: {0}")]
    Io(#[from] std::io::Error),
    #[error("the Keep sent malformed evidence: {0}")]
    Evidence(String),
}

/// Test-only hooks that make the agent act as a hostile host (debug builds only;
/// release builds ignore the variable). Values: `nonce` (send the Keep another
/// nonce), `replay-evidence` (answer every challenge with the first evidence seen),
/// `public-key` (swap the Keep's public key), `truncate-payload` (drop the sealed
/// payload's last 16 bytes), `drop-record` (drop the second sealed record),
/// `reorder-records` (swap the second and third records), `drop-input` (drop the
/// tenant's first input record), `evidence=TEE:FILE` (relay FILE as the evidence),
/// `stall` (relay the receipt, then nothing but keepalives for two minutes).
pub fn tamper() -> Option<String> {
    #[cfg(debug_assertions)]
    {
        std::env::var("KEEP_AGENT_TEST_TAMPER").ok()
    }
    #[cfg(not(debug_assertions))]
    {
        None
    }
}

/// Test hook `evidence=TEE:FILE`: relay the evidence bundle in FILE (hex) as the
/// Keep's evidence of kind TEE (e.g. a real SEV-SNP report from the verifier's test
/// vectors), to exercise the client's verification of real-TEE evidence.
fn substitute_evidence() -> Option<(String, String)> {
    let spec = tamper()?;
    let (tee, path) = spec.strip_prefix("evidence=")?.split_once(':')?;
    let bytes = std::fs::read(path).ok()?;
    Some((tee.to_string(), hex::encode(bytes)))
}

pub(crate) fn tampering(what: &str) -> bool {
    tamper().is_some_and(|t| t == what)
}

static REPLAY: std::sync::Mutex<Option<Evidence>> = std::sync::Mutex::new(None);

/// Relays the tenant's nonce and returns the Keep's evidence.
pub fn challenge(
    channel: &mut UnixStream,
    nonce: &str,
    limits: Limits,
    measurement: String,
) -> Result<Evidence, RelayError> {
    let mut nonce = nonce.to_string();
    if tampering("nonce") {
        nonce = hex::encode([0x5au8; 32]);
    }
    channel.set_read_timeout(Some(EVIDENCE_TIMEOUT))?;
    write_json(
        channel,
        FrameKind::Challenge,
        &Challenge {
            nonce,
            limits,
            parallel_compilation: false,
            // What this host launched: the exec's SHA-384 (process backend, measured
            // when the exec was built into this binary) or the KVM launch digest.
            // Only the host's word without SEV-SNP/TDX.
            measurement: Some(measurement),
        },
    )?;
    let mut ev: Evidence =
        read_frame(channel, keep_wire::MAX_CONTROL_FRAME)?.expect_json(FrameKind::Evidence)?;
    channel.set_read_timeout(None)?;
    if ev.public_key.len() != 64 || ev.tee.len() > 32 || ev.evidence.len() > MAX_EVIDENCE {
        return Err(RelayError::Evidence("field sizes out of bounds".into()));
    }
    if let Some((tee, evidence)) = substitute_evidence() {
        ev.tee = tee;
        ev.evidence = evidence;
    }
    if tampering("public-key") {
        ev.public_key = hex::encode([0x42u8; 32]);
    }
    if tampering("replay-evidence")
        && let Ok(mut r) = REPLAY.lock()
    {
        match &*r {
            Some(old) => ev = old.clone(),
            None => *r = Some(ev.clone()),
        }
    }
    Ok(ev)
}

/// What ended a relay.
pub enum End {
    /// The exec reported its end (the host's copy of the outcome).
    Reported(Outcome),
    /// The exec went away without a report (killed, crashed, limit).
    Lost(String),
}

/// Writes a `Sealed` frame of `len` bytes whose payload arrives in pieces on `rx`
/// (the tenant's request body, streamed); the caller checks that the pieces add up
/// to `len`. Returns the channel for the relay of the Keep's answer.
pub fn write_sealed(
    mut channel: UnixStream,
    len: u32,
    mut rx: tokio::sync::mpsc::Receiver<axum::body::Bytes>,
) -> std::io::Result<UnixStream> {
    use std::io::Write as _;
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&(FrameKind::Sealed as u32).to_le_bytes());
    header[4..].copy_from_slice(&len.to_le_bytes());
    channel.write_all(&header)?;
    while let Some(piece) = rx.blocking_recv() {
        channel.write_all(&piece)?;
    }
    Ok(channel)
}

/// Relays every frame from the Keep to `out` as keep-wire frames, until the exec's
/// exit report or the end of the channel. Sealed records are counted against the
/// output limit.
pub fn relay_output(
    entry: &Arc<Entry>,
    mut channel: UnixStream,
    out: &mut dyn FnMut(Vec<u8>) -> bool,
    relayed: &std::sync::atomic::AtomicU64,
) -> End {
    let mut records = 0u64;
    let mut held: Option<Vec<u8>> = None;
    loop {
        let frame = match read_frame(&mut channel, keep_wire::MAX_CONTROL_FRAME) {
            Ok(f) => f,
            Err(e) => return End::Lost(e.to_string()),
        };
        let kind = frame.kind;
        let mut wire = Vec::with_capacity(frame.payload.len() + 8);
        if write_frame(&mut wire, kind, &frame.payload).is_err() {
            return End::Lost("oversized frame".into());
        }
        match kind {
            FrameKind::Record => {
                records += 1;
                if records == 1 {
                    entry.set_state(TrustState::Provisioned);
                }
                let len = frame.payload.len() as u64;
                relayed.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
                let within = entry
                    .keep
                    .lock()
                    .map(|k| k.count_output(len))
                    .unwrap_or(false);
                if !within {
                    return End::Lost("output limit".into());
                }
                if records == 2 && tampering("drop-record") {
                    continue;
                }
                if records >= 2 && tampering("stall") {
                    continue;
                }
                if records == 2 && tampering("reorder-records") {
                    held = Some(wire);
                    continue;
                }
                if !out(wire) {
                    return End::Lost("the tenant went away".into());
                }
                if let Some(h) = held.take()
                    && !out(h)
                {
                    return End::Lost("the tenant went away".into());
                }
            }
            FrameKind::Started => {
                if !out(wire) {
                    return End::Lost("the tenant went away".into());
                }
            }
            FrameKind::Exit => {
                let outcome = match frame.expect_json::<ExitReport>(FrameKind::Exit) {
                    Ok(r) => r.outcome,
                    Err(e) => Outcome::Failed {
                        message: format!("malformed exit report: {e}"),
                    },
                };
                if tampering("stall") {
                    // Hold the stream open: only keepalives reach the tenant.
                    std::thread::sleep(Duration::from_secs(120));
                }
                let _ = out(wire);
                return End::Reported(outcome);
            }
            other => return End::Lost(format!("unexpected {other:?} frame from the Keep")),
        }
    }
}

/// An empty Keepalive frame (agent -> tenant).
pub fn keepalive() -> Vec<u8> {
    let mut wire = Vec::with_capacity(8);
    let _ = write_frame(&mut wire, FrameKind::Keepalive, &[]);
    wire
}

/// A plain exit frame written by the host (unauthenticated: the tenant is told so).
pub fn host_exit(outcome: Outcome) -> Vec<u8> {
    let mut wire = Vec::new();
    let _ = write_json(
        &mut wire,
        FrameKind::Exit,
        &ExitReport {
            outcome,
            stats: RunStats::default(),
        },
    );
    wire
}
