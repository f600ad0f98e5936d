//! `keep deploy`: the tenant's side of an attested deployment.
//!
//! **Trusts:** the workload, manifest, secrets and policy given on the command line,
//! and the verifier library. **Does not trust:** the host agent or anything it
//! relays. The workload and secrets leave this process only sealed (HPKE) to a key
//! that evidence, verified against the tenant's policy, binds to a fresh nonce
//! (state 2). Output comes back as records only the Keep could seal, checked in
//! sequence (a dropped, reordered or replayed record is an error).
//!
//! States: 0 initial (inputs read) -> 1 pre-attestation (an empty Keep exists) ->
//! 2 attested (evidence verified) -> 3 provisioned (the Keep's sealed receipt for
//! the payload). Each is reported as reached; a failure names its state, says why,
//! and destroys the Keep.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use keep_manifest::{Manifest, parse_duration_ms, parse_size};
use keep_seal::{Payload, RecordKind, RecordReader, SealedManifest, Secret, SecretDelivery};
use keep_verifier::policy::HexBytes;
use keep_verifier::{Claims, Policy, Verdict};
use keep_wire::{Evidence, ExitReport, FrameKind, Outcome};
use serde_json::json;

use crate::cli::DeployArgs;
use crate::remote::{KeepView, Remote};

/// Largest workload read.
const MAX_WORKLOAD: u64 = 1 << 30;
/// Largest secret file read.
const MAX_SECRET: u64 = 1 << 20;

/// Exit statuses for refused evidence (the same as `keep verify`).
const EXIT_NOT_GENUINE: u8 = 10;
const EXIT_REFUSED: u8 = 11;

const STATE_NAMES: [&str; 4] = ["initial", "pre-attestation", "attested", "provisioned"];

/// A failure in a named state.
struct Failure {
    state: usize,
    exit: u8,
    message: String,
}

fn fail(state: usize, message: impl Into<String>) -> Failure {
    Failure {
        state,
        exit: keep_host::EXIT_KEEP_ERROR,
        message: message.into(),
    }
}

/// A bad value on the command line: exit 2, before anything is sent.
fn usage(message: impl Into<String>) -> Failure {
    Failure {
        state: 0,
        exit: 2,
        message: message.into(),
    }
}

/// A size or duration flag: parsed, and more than zero.
fn flag_value(
    flag: &str,
    text: &str,
    parse: fn(&str) -> Result<u64, String>,
) -> Result<u64, Failure> {
    match parse(text) {
        Ok(0) => Err(usage(format!("{flag} {text}: must be greater than zero"))),
        Ok(n) => Ok(n),
        Err(e) => Err(usage(format!("{flag}: {e}"))),
    }
}

impl<E: std::fmt::Display> From<(usize, E)> for Failure {
    fn from((state, e): (usize, E)) -> Self {
        fail(state, e.to_string())
    }
}

/// Progress lines (or JSON events) on stderr.
struct Progress {
    json: bool,
    start: Instant,
}

impl Progress {
    fn event(&self, value: serde_json::Value, line: &str) {
        if self.json {
            let mut v = value;
            v["elapsed_ms"] = json!(self.start.elapsed().as_secs_f64() * 1000.0);
            eprintln!("{v}");
        } else {
            eprintln!("keep: {line}");
        }
    }

    fn state(&self, n: usize, keep: &str, detail: &str) {
        self.event(
            json!({"event": "state", "state": n, "name": STATE_NAMES[n], "keep": keep, "detail": detail}),
            &format!("state {n} {}: {detail}", STATE_NAMES[n]),
        );
    }
}

pub fn deploy(args: DeployArgs) -> Result<ExitCode> {
    let progress = Progress {
        json: args.remote.json,
        start: Instant::now(),
    };
    let remote = Remote::new(&args.remote)?;
    let mut keep_id: Option<String> = None;
    let result = flow(&args, &remote, &progress, &mut keep_id);
    match result {
        Ok(code) => Ok(code),
        Err(f) => {
            // Say only what is known: whether the host confirmed the Keep's end.
            let (destroyed, fate) = match &keep_id {
                Some(id) => remote.destroy(id).said(),
                None => (String::new(), "none"),
            };
            let name = STATE_NAMES.get(f.state).copied().unwrap_or("?");
            progress.event(
                json!({"event": "failed", "state": f.state, "name": name, "keep": keep_id, "error": f.message, "keep_fate": fate}),
                &format!("state {} ({name}) failed: {}{destroyed}", f.state, f.message),
            );
            Ok(ExitCode::from(f.exit))
        }
    }
}

fn flow(
    args: &DeployArgs,
    remote: &Remote,
    progress: &Progress,
    keep_id: &mut Option<String>,
) -> Result<ExitCode, Failure> {
    // State 0: everything the tenant owns, read locally.
    let workload = read_bounded(&args.workload, MAX_WORKLOAD).map_err(|e| fail(0, e))?;
    if workload.len() < 8 || &workload[..4] != b"\0asm" {
        return Err(fail(
            0,
            format!("{}: not a WebAssembly binary", args.workload.display()),
        ));
    }
    let manifest = sealed_manifest(args, &workload)?;
    let mut limits = serde_json::Map::new();
    if let Some(m) = manifest.memory_bytes {
        limits.insert("memory_bytes".into(), json!(m));
    }
    if let Some(c) = manifest.cpu_ms {
        limits.insert("cpu_ms".into(), json!(c));
    }
    if let Some(o) = &args.max_output {
        let bytes = flag_value("--max-output", o, parse_size)?;
        limits.insert("output_bytes".into(), json!(bytes));
    }
    let wall_ms = match &args.timeout {
        Some(t) => Some(flag_value("--timeout", t, parse_duration_ms)?),
        None => None,
    };
    if let Some(ms) = wall_ms {
        limits.insert("wall_ms".into(), json!(ms));
    }
    let mut policy = match &args.policy {
        Some(p) => {
            let bytes = read_bounded(p, MAX_POLICY).map_err(|e| fail(0, e))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| fail(0, format!("{}: not UTF-8", p.display())))?;
            Policy::from_toml(&text).map_err(|e| fail(0, format!("{}:{e}", p.display())))?
        }
        None => Policy::default(),
    };
    // By default the measurement must be what this `keep` would launch: set once
    // the backend is known (state 1).
    let pin_default = policy.insecure.measurement.is_none();
    progress.state(
        0,
        "",
        &format!(
            "workload sha384:{}.., {} secret(s), policy {}",
            &manifest
                .workload_sha384
                .get(..16)
                .unwrap_or(&manifest.workload_sha384),
            manifest.secrets.len(),
            args.policy.as_ref().map_or(
                "strict default (refuses the insecure attester)".into(),
                |p| p.display().to_string()
            )
        ),
    );

    // State 1: an empty Keep.
    let created_at = Instant::now();
    let mut request = json!({ "limits": limits });
    if let Some(b) = &args.backend {
        request["backend"] = json!(b);
    }
    let created: KeepView = remote
        .post_json("/v1/keeps", &request)
        .map_err(|e| fail(1, format!("{e:#}")))?;
    let id = created.id.clone();
    *keep_id = Some(id.clone());
    if let Some(b) = &args.backend
        && *b != created.backend
    {
        return Err(fail(
            1,
            format!(
                "asked for a Keep on the {b} backend, the host created one on {:?}",
                created.backend
            ),
        ));
    }
    if pin_default {
        policy.insecure.measurement = Some(HexBytes(
            expected_measurement(&created)
                .map_err(|e| fail(1, e))?
                .to_vec(),
        ));
    }
    progress.state(
        1,
        &id,
        &format!(
            "empty Keep {id} on {} ({} backend)",
            args.remote.host, created.backend
        ),
    );

    // State 2: a fresh nonce, evidence verified against the policy.
    let nonce = keep_seal::random::<32>().map_err(|e| fail(2, e.to_string()))?;
    let ev: Evidence = remote
        .post_json(
            &format!("/v1/keeps/{id}/challenge"),
            &json!({ "nonce": hex::encode(nonce) }),
        )
        .map_err(|e| fail(2, format!("{e:#}")))?;
    let attested = attest(&ev, &nonce, &mut policy)?;
    let public_key = attested.public_key;
    let report_data = keep_seal::report_data(&nonce, &public_key, &attested.measurement);
    progress.state(
        2,
        &id,
        &format!(
            "evidence from {} binds nonce {}.. and key {}..{}",
            attested.source,
            &hex::encode(nonce)[..8],
            &hex::encode(public_key)[..8],
            if created.backend == "kvm" {
                format!(
                    " and the KVM launch digest sha384:{}.. (as the host reports it)",
                    &hex::encode(attested.measurement)[..16]
                )
            } else {
                String::new()
            }
        ),
    );

    // State 3: seal and deliver; the Keep's receipt.
    let payload = Payload {
        manifest: manifest.clone(),
        workload,
    };
    let (sealed, session) =
        keep_seal::seal(&public_key, &report_data, &payload).map_err(|e| fail(3, e.to_string()))?;
    drop(payload);
    let payload_sha384 = hex::encode(keep_seal::sha384(&sealed));
    let mut stream = remote
        .post_stream(&format!("/v1/keeps/{id}/payload"), &sealed)
        .map_err(|e| fail(3, format!("{e:#}")))?;
    drop(sealed);
    let mut input = Some(session.input_sealer());
    // With --timeout the host must end the Keep by then (it enforces wall-clock time
    // from the Keep's creation); a host that keeps the stream alive past it, with
    // keepalives only, is not believed beyond one more idle timeout.
    let deadline =
        wall_ms.map(|ms| created_at + std::time::Duration::from_millis(ms) + remote.idle);
    let mut reader = RecordReader::new(session);
    let mut provisioned = false;
    let stderr = std::io::stderr();
    loop {
        let frame = match keep_wire::read_frame(&mut stream, keep_wire::MAX_CONTROL_FRAME) {
            Ok(f) => f,
            Err(keep_wire::WireError::Closed) => {
                return Err(fail(
                    3,
                    "the host ended the output stream before the Keep's authenticated exit report (truncated)",
                ));
            }
            Err(keep_wire::WireError::Io(e)) if crate::remote::is_idle_timeout(&e) => {
                return Err(fail(
                    3,
                    format!(
                        "the host sent nothing for {:?} (no output, no keepalive; --idle-timeout): it stopped responding",
                        remote.idle
                    ),
                ));
            }
            Err(e) => return Err(fail(3, format!("output stream: {e}"))),
        };
        if let Some(d) = deadline
            && Instant::now() > d
        {
            return Err(fail(
                3,
                format!(
                    "the host did not end the Keep within its wall-clock limit (--timeout {}) plus the idle timeout ({:?}): it is stalling",
                    args.timeout.as_deref().unwrap_or("?"),
                    remote.idle
                ),
            ));
        }
        match frame.kind {
            FrameKind::Started | FrameKind::Keepalive => {}
            FrameKind::Record => {
                let record = reader
                    .open(&frame.payload)
                    .map_err(|e| fail(3, e.to_string()))?;
                match record.kind {
                    RecordKind::Receipt => {
                        let receipt: keep_seal::Receipt = serde_json::from_slice(&record.data)
                            .map_err(|e| fail(3, format!("malformed receipt: {e}")))?;
                        if receipt.payload_sha384 != payload_sha384 {
                            return Err(fail(
                                3,
                                "the receipt names another sealed payload than the one sent",
                            ));
                        }
                        if receipt.workload_sha384 != manifest.workload_sha384 {
                            return Err(fail(3, "the receipt names another workload"));
                        }
                        provisioned = true;
                        // The Keep holds the workload: now its stdin may follow.
                        if let Some(sealer) = input.take() {
                            forward_stdin(remote, &id, sealer, args.no_stdin, progress.json);
                        }
                        progress.state(
                            3,
                            &id,
                            &format!(
                                "sealed receipt for payload sha384:{}..",
                                &payload_sha384[..16]
                            ),
                        );
                    }
                    RecordKind::Stdout => {
                        // A closed pipe drops the output and the Keep runs on; any
                        // other write error ends the deploy (status 125).
                        crate::output::write_bytes(&record.data)
                            .map_err(|e| fail(3, e.to_string()))?;
                    }
                    RecordKind::Stderr => {
                        let mut e = stderr.lock();
                        let _ = e.write_all(&record.data);
                        let _ = e.flush();
                    }
                    RecordKind::Refused => {
                        #[derive(serde::Deserialize)]
                        struct R {
                            message: String,
                        }
                        let m = serde_json::from_slice::<R>(&record.data)
                            .map(|r| r.message)
                            .unwrap_or_else(|_| "refused".into());
                        return Err(fail(3, m));
                    }
                    RecordKind::Exit => {
                        if !provisioned {
                            return Err(fail(3, "exit report before the receipt"));
                        }
                        let report: ExitReport = serde_json::from_slice(&record.data)
                            .map_err(|e| fail(3, format!("malformed exit report: {e}")))?;
                        if progress.json {
                            progress.event(
                                json!({"event": "exit", "keep": id, "outcome": report.outcome, "authenticated": true}),
                                "",
                            );
                        }
                        return Ok(finish(&report.outcome, progress.json, true));
                    }
                }
            }
            FrameKind::Exit => {
                // The host's own, unauthenticated report: the Keep never sent its sealed one.
                let report: ExitReport = frame
                    .expect_json(FrameKind::Exit)
                    .map_err(|e| fail(3, e.to_string()))?;
                if let Outcome::LimitExceeded { .. } = report.outcome {
                    return Ok(finish(&report.outcome, progress.json, false));
                }
                let msg = match report.outcome {
                    Outcome::Failed { message } => message,
                    other => format!("{other:?}"),
                };
                return Err(fail(
                    3,
                    format!(
                        "the Keep ended without an authenticated exit report; the host says: {msg}"
                    ),
                ));
            }
            other => return Err(fail(3, format!("unexpected {other:?} frame from the host"))),
        }
    }
}

/// The largest chunk of stdin per input record.
const INPUT_CHUNK: usize = 64 * 1024;

/// This process's stdin as a stream of `Input` frames, each a record sealed for the
/// Keep, ending with the end-of-input record (at EOF, or on a read error).
struct InputFrames<R> {
    src: Option<R>,
    sealer: keep_seal::InputSealer,
    out: Vec<u8>,
    pos: usize,
}

impl<R: std::io::Read> std::io::Read for InputFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.out.len() {
            let Some(src) = self.src.as_mut() else {
                return Ok(0);
            };
            let mut chunk = vec![0u8; INPUT_CHUNK];
            let record = match src.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    self.src = None;
                    self.sealer.end()
                }
                Ok(n) => self.sealer.data(&chunk[..n]),
            }
            .map_err(std::io::Error::other)?;
            self.out.clear();
            self.pos = 0;
            keep_wire::write_frame(&mut self.out, FrameKind::Input, &record)
                .map_err(std::io::Error::other)?;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Streams stdin (or, with `--no-stdin`, only the end of input) to the Keep in the
/// background. Its fate does not decide the deploy: a workload may end before
/// reading all of it.
fn forward_stdin(
    remote: &Remote,
    id: &str,
    sealer: keep_seal::InputSealer,
    none: bool,
    json: bool,
) {
    let (remote, path) = (remote.clone(), format!("/v1/keeps/{id}/stdin"));
    std::thread::spawn(move || {
        let src: Box<dyn std::io::Read + Send> = if none {
            Box::new(std::io::empty())
        } else {
            Box::new(std::io::stdin())
        };
        let frames = InputFrames {
            src: Some(src),
            sealer,
            out: Vec::new(),
            pos: 0,
        };
        // The Keep ending first (409) is normal: a workload need not read all of it.
        if let Err(e) = remote.post_reader(&path, frames) {
            let why = crate::one_line(&e);
            if !why.contains(" 409:") {
                if json {
                    eprintln!("{}", json!({"event": "stdin", "error": why}));
                } else {
                    eprintln!("keep: the workload's stdin was not fully delivered: {why}");
                }
            }
        }
    });
}

/// The runtime measurement this `keep` expects by default from a Keep: the exec
/// built into it (process backend), or the launch digest of the KVM Keep it would
/// launch with the Keep's memory limit (shim + that exec + boot parameters, as
/// `keep measure --memory M` prints). Both are only the host's claim without
/// SEV-SNP/TDX; pinning them checks that the host says it runs this code.
fn expected_measurement(view: &KeepView) -> Result<[u8; 48], String> {
    match view.backend.as_str() {
        "kvm" => keep_host::KvmBackend::measure(view.limits.memory_bytes)
            .map(|(digest, _)| digest)
            .map_err(|e| format!("cannot compute the KVM launch digest: {e}")),
        _ => hex::decode(keep_host::EXEC_SHA384)
            .ok()
            .and_then(|m| m.try_into().ok())
            .ok_or_else(|| "this keep has no exec measurement".into()),
    }
}

/// What verified evidence established.
struct Attested {
    public_key: [u8; 32],
    /// The measurement bound in report_data with the nonce and the key.
    measurement: [u8; 48],
    /// Who vouched for it, as shown to the tenant.
    source: String,
}

fn not_genuine(message: impl Into<String>) -> Failure {
    Failure {
        state: 2,
        exit: EXIT_NOT_GENUINE,
        message: format!("evidence is not genuine: {}", message.into()),
    }
}

/// Verifies the evidence against the policy, with report_data required to bind the
/// nonce and the Keep's public key.
///
/// `tee = "insecure"`: the software attester's JSON. `tee = "sev-snp"` or `"tdx"`: a
/// keep-verifier evidence bundle (CBOR, hex-encoded in the `evidence` string),
/// verified at the current time against the pinned vendor roots; its report_data must
/// be SHA-384(nonce || key || the exec measurement built into this `keep`), then
/// zeros. No attester in this repository produces such evidence yet (see
/// docs/attestation.md, "Evidence from a real TEE"); the verification is the
/// verifier's, tested on real vectors.
fn attest(ev: &Evidence, nonce: &[u8; 32], policy: &mut Policy) -> Result<Attested, Failure> {
    let public_key: [u8; 32] = hex::decode(&ev.public_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| fail(2, "the Keep's public key is not 32 bytes of hex"))?;
    let (v, m, source) = match ev.tee.as_str() {
        "insecure" => {
            let m = measurement(ev)?;
            policy.require_report_data(&keep_seal::report_data(nonce, &public_key, &m));
            let v = keep_verifier::insecure::verify(ev.evidence.as_bytes(), policy);
            (
                v,
                m,
                "the INSECURE software attester (no hardware root of trust; accepted only because the policy says allow_insecure = true)".to_string(),
            )
        }
        tee @ ("sev-snp" | "tdx") => {
            let bytes = hex::decode(ev.evidence.trim())
                .map_err(|_| not_genuine("the bundle is not hex"))?;
            let bundle = keep_verifier::bundle::Bundle::from_cbor(&bytes)
                .map_err(|e| not_genuine(e.to_string()))?;
            if bundle.tee != tee {
                return Err(not_genuine(format!(
                    "the Keep says {tee} but its bundle holds {}",
                    bundle.tee
                )));
            }
            let m: [u8; 48] = hex::decode(keep_host::EXEC_SHA384)
                .ok()
                .and_then(|m| m.try_into().ok())
                .ok_or_else(|| fail(2, "this keep has no exec measurement"))?;
            policy.require_report_data(&keep_seal::report_data(nonce, &public_key, &m));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let v = keep_verifier::bundle::verify_bundle(
                &bundle,
                policy,
                keep_verifier::UnixTime(now),
                keep_verifier::Options::default(),
            )
            .map_err(|e| not_genuine(e.to_string()))?;
            let unpinned = match tee {
                "sev-snp" => policy.snp.measurements.is_empty(),
                _ => policy.tdx.mrtd.is_empty(),
            };
            let source = format!(
                "{} (genuine hardware, verified against the pinned vendor roots{})",
                v.tee.name(),
                if unpinned {
                    "; the policy pins no launch measurement, so it does not prove what runs"
                } else {
                    ", launch measurement as the policy requires"
                }
            );
            (v, m, source)
        }
        other => {
            return Err(fail(
                2,
                format!("evidence of kind {other:?} is not supported by this client"),
            ));
        }
    };
    match v.verdict {
        Verdict::Accepted => Ok(Attested {
            public_key,
            measurement: m,
            source,
        }),
        Verdict::NotGenuine => {
            let why = v
                .evidence
                .failures()
                .next()
                .map(|c| format!("check {}: {}", c.name, c.detail));
            Err(Failure {
                state: 2,
                exit: EXIT_NOT_GENUINE,
                message: format!("evidence is not genuine: {}", why.unwrap_or_default()),
            })
        }
        Verdict::RefusedByPolicy => {
            let rules: Vec<String> = v
                .policy
                .failures()
                .map(|c| format!("policy rule {}: {}", c.name, c.detail))
                .collect();
            Err(Failure {
                state: 2,
                exit: EXIT_REFUSED,
                message: format!("evidence refused: {}", rules.join("; ")),
            })
        }
    }
}

/// The measurement the insecure evidence claims (checked against the policy later).
fn measurement(ev: &Evidence) -> Result<[u8; 48], Failure> {
    let v = keep_verifier::insecure::verify(ev.evidence.as_bytes(), &Policy::default());
    match v.claims {
        Claims::Insecure(c) => c
            .measurement
            .0
            .try_into()
            .map_err(|_| fail(2, "measurement is not 48 bytes")),
        _ => Err(Failure {
            state: 2,
            exit: EXIT_NOT_GENUINE,
            message: "evidence is not genuine: it does not parse".into(),
        }),
    }
}

/// Prints how the workload ended and returns the exit status.
fn finish(outcome: &Outcome, json: bool, authenticated: bool) -> ExitCode {
    let by = if authenticated {
        ""
    } else {
        " (reported by the host, unauthenticated)"
    };
    let (code, line) = match outcome {
        Outcome::Exited { code } => match u8::try_from(*code) {
            Ok(c) => (c, None),
            Err(_) => (
                1,
                Some(format!(
                    "the workload exited with code {code}, outside 0-255"
                )),
            ),
        },
        Outcome::Trapped { reason, .. } => (
            keep_host::EXIT_TRAP,
            Some(format!("the workload trapped: {reason}")),
        ),
        Outcome::LimitExceeded { limit, detail } => (
            keep_host::exit_code_for_limit(*limit),
            Some(format!(
                "workload stopped at the {} limit{by}: {detail}",
                limit.name()
            )),
        ),
        Outcome::Failed { message } => (
            keep_host::EXIT_KEEP_ERROR,
            Some(format!(
                "state 3 (provisioned): the Keep could not run the workload: {message}"
            )),
        ),
    };
    if let Some(l) = line
        && !json
    {
        eprintln!("keep: {l}");
    }
    ExitCode::from(code)
}

/// A tenant's input (workload, secret, policy, manifest), capped on the read.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    crate::input::read_bounded(path, max).map_err(|e| format!("{e:#}"))
}

/// The largest policy file read.
const MAX_POLICY: u64 = 1 << 20;

fn sealed_manifest(args: &DeployArgs, workload: &[u8]) -> Result<SealedManifest, Failure> {
    let manifest = match &args.manifest {
        Some(p) => Manifest::load(p).map_err(|e| fail(0, e.to_string()))?,
        None => Manifest::default(),
    };
    if !manifest.dirs.is_empty() || !manifest.sockets.is_empty() {
        return Err(fail(
            0,
            "the manifest preopens directories or sockets, which `keep deploy` does not support yet",
        ));
    }
    let mut env = manifest.env.clone();
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| usage(format!("--env {kv}: expected KEY=VALUE")))?;
        if k.is_empty() {
            return Err(usage(format!("--env {kv}: the key is empty")));
        }
        env.retain(|(name, _)| name != k);
        env.push((k.into(), v.into()));
    }
    let mut secrets = Vec::new();
    for (list, delivery) in [
        (&args.secret, SecretDelivery::File),
        (&args.secret_env, SecretDelivery::Env),
    ] {
        for s in list {
            let (name, value) = s.split_once('=').ok_or_else(|| {
                usage(format!(
                    "secret {name}: expected NAME=@FILE or NAME=VALUE",
                    name = s.split('=').next().unwrap_or("")
                ))
            })?;
            let bytes = match value.strip_prefix('@') {
                Some(file) => read_bounded(Path::new(file), MAX_SECRET)
                    .map_err(|e| fail(0, format!("secret {name}: {e}")))?,
                None => value.as_bytes().to_vec(),
            };
            secrets.push(Secret {
                name: name.into(),
                value_hex: hex::encode(bytes),
                delivery,
            });
        }
    }
    let memory = match &args.memory {
        Some(m) => Some(flag_value("--memory", m, parse_size)?),
        None => manifest.limits.memory_bytes,
    };
    let cpu = match &args.cpu {
        Some(c) => Some(flag_value("--cpu", c, parse_duration_ms)?),
        None => manifest.limits.cpu_ms,
    };
    let program_name = args
        .workload
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workload.wasm".into());
    Ok(SealedManifest {
        program_name,
        args: if args.args.is_empty() {
            manifest.args.clone()
        } else {
            args.args.clone()
        },
        env,
        workload_sha384: args
            .workload_sha384
            .clone()
            .map(|s| s.trim_start_matches("sha384:").to_ascii_lowercase())
            .unwrap_or_else(|| hex::encode(keep_seal::sha384(workload))),
        secrets,
        memory_bytes: memory,
        cpu_ms: cpu,
    })
}
