//! Runs one workload and turns however it ended into an [`Outcome`].

use std::sync::mpsc;
use std::time::{Duration, Instant};

use keep_wire::{ExitReport, FrameKind, LaunchSpec, Outcome, RunStats, Started, write_json};
use wasmtime::{Engine, Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::channel::Channel;
use crate::engine::{self, WorkloadKind};
use crate::entry::{self, Entry};
use crate::limits::{CpuBudget, EPOCH_TICK, EpochTicker, LimitHit};
use crate::{p1_run, p2_run, p3_run};

/// What a run reports besides its result.
pub struct Measured {
    pub peak_memory_bytes: u64,
}

/// Compiles and runs the workload, reporting `Started` on the channel once it compiled.
pub fn run_workload(spec: &LaunchSpec, workload: &[u8], channel: &mut Channel) -> ExitReport {
    let mut stats = RunStats::default();
    let kind = match engine::detect(workload) {
        Ok(k) => k,
        Err(message) => return failed(message, stats),
    };
    // Nothing to run is refused from the bytes, before a compile that can take a minute.
    let entry = match entry::find(kind, workload) {
        Ok(e) => e,
        Err(message) => return failed(message, stats),
    };
    // WASI 0.3: wasmtime 48 provides wasi:*@0.3.0, which semver-matches later 0.3
    // releases but no release candidate (`0.3.0-rc-…`): its imports would be missing.
    let p3 = match &entry {
        Entry::CliRunP3 { version } if version.contains('-') => {
            return failed(
                format!(
                    "the component is a WASI 0.3 prerelease command (wasi:cli/run@{}): this exec (wasmtime 48) runs wasi:cli/run@0.3.0 and later 0.3 releases, not release candidates",
                    version
                        .chars()
                        .take(80)
                        .flat_map(char::escape_default)
                        .collect::<String>()
                ),
                stats,
            );
        }
        Entry::CliRunP3 { .. } => true,
        Entry::Start | Entry::CliRunP2 => false,
    };
    let engine = match engine::build(spec, p3) {
        Ok(e) => e,
        Err(e) => return failed(format!("cannot configure the runtime: {e:#}"), stats),
    };
    let cpu_budget = spec
        .limits
        .cpu_ms
        .map(|ms| CpuBudget::starting_now(Duration::from_millis(ms)));
    let compile_start = Instant::now();
    let compiled = compile(&engine, kind, workload, cpu_budget);
    stats.compile_us = micros(compile_start.elapsed());
    let compiled = match compiled {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return failed(format!("invalid WebAssembly: {}", one_line(&e)), stats),
        Err(hit) => {
            return ExitReport {
                outcome: Outcome::LimitExceeded {
                    limit: hit.limit,
                    detail: hit.detail,
                },
                stats,
            };
        }
    };
    let mut started = Started {
        kind: "module".into(),
        warnings: Vec::new(),
    };
    if kind == WorkloadKind::Component {
        started.kind = "component".into();
    }
    if let Err(e) = write_json(channel, FrameKind::Started, &started) {
        return failed(e.to_string(), stats);
    }
    // Compiled (and cached): from here the exec makes only the calls running the
    // workload needs, in a jail that asks for it.
    if let Err(e) = crate::seccomp::install_if_asked() {
        return failed(format!("cannot install the seccomp allow-list: {e}"), stats);
    }
    let _ticker = spec.limits.cpu_ms.map(|_| EpochTicker::start(&engine));
    let mut measured = Measured {
        peak_memory_bytes: 0,
    };
    let result = match compiled {
        Compiled::Module(m) => p1_run::run(&engine, &m, spec, cpu_budget, &mut measured),
        Compiled::Component(c) if p3 => p3_run::run(&engine, &c, spec, cpu_budget, &mut measured),
        Compiled::Component(c) => p2_run::run(&engine, &c, spec, cpu_budget, &mut measured),
    };
    stats.peak_memory_bytes = measured.peak_memory_bytes;
    let outcome = match result {
        Ok(code) => Outcome::Exited { code },
        Err(e) => classify(e),
    };
    ExitReport { outcome, stats }
}

enum Compiled {
    Module(wasmtime::Module),
    Component(wasmtime::component::Component),
}

fn compile_now(engine: &Engine, kind: WorkloadKind, bytes: &[u8]) -> wasmtime::Result<Compiled> {
    match kind {
        WorkloadKind::Module => wasmtime::Module::new(engine, bytes).map(Compiled::Module),
        WorkloadKind::Component => {
            wasmtime::component::Component::new(engine, bytes).map(Compiled::Component)
        }
    }
}

/// Stack of the compiling thread (as the main thread's: cranelift recurses).
const COMPILE_STACK: usize = 8 << 20;

/// Compiles the workload. With a CPU budget on the process backend, compilation
/// runs on a thread of its own (with a copy of the bytes) while this one watches
/// the process's CPU time every epoch tick: past the budget, the CPU limit is the
/// outcome, and the compiling thread, which cannot be interrupted, ends with the
/// process once the report is out. In a KVM Keep (one thread) the VMM counts
/// compilation against the budget itself; there is none here.
fn compile(
    engine: &Engine,
    kind: WorkloadKind,
    workload: &[u8],
    budget: Option<CpuBudget>,
) -> Result<wasmtime::Result<Compiled>, LimitHit> {
    let Some(budget) = budget.filter(|_| !crate::in_kvm_keep()) else {
        return Ok(compile_now(engine, kind, workload));
    };
    let (tx, rx) = mpsc::channel();
    let (engine2, bytes) = (engine.clone(), workload.to_vec());
    let spawned = std::thread::Builder::new()
        .name("compile".into())
        .stack_size(COMPILE_STACK)
        .spawn(move || {
            let _ = tx.send(compile_now(&engine2, kind, &bytes));
        });
    if spawned.is_err() {
        return Ok(compile_now(engine, kind, workload));
    }
    loop {
        match rx.recv_timeout(EPOCH_TICK) {
            Ok(result) => return Ok(result),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(hit) = budget.check(" while compiling") {
                    return Err(hit);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Ok(Err(wasmtime::Error::msg(
                    "the compiler stopped without a result",
                )));
            }
        }
    }
}

fn failed(message: String, stats: RunStats) -> ExitReport {
    ExitReport {
        outcome: Outcome::Failed { message },
        stats,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Sorts an error from running the workload into exit, limit, trap or failure.
pub fn classify(err: wasmtime::Error) -> Outcome {
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Outcome::Exited { code: exit.0 };
    }
    if let Some(hit) = err.downcast_ref::<LimitHit>() {
        return Outcome::LimitExceeded {
            limit: hit.limit,
            detail: hit.detail.clone(),
        };
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        let frames: Vec<String> = err
            .downcast_ref::<WasmBacktrace>()
            .map(|bt| {
                bt.frames()
                    .iter()
                    .map(|f| match f.func_name() {
                        Some(name) => name.to_string(),
                        None => format!("<wasm function {}>", f.func_index()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let backtrace = compress_backtrace(&frames);
        let reason = trap.to_string();
        let reason = reason
            .strip_prefix("wasm trap: ")
            .unwrap_or(&reason)
            .to_string();
        return Outcome::Trapped { reason, backtrace };
    }
    Outcome::Failed {
        message: one_line(&err),
    }
}

/// Frames shown at most; deep recursion would otherwise make a huge line.
const MAX_FRAMES: usize = 16;

/// Folds runs of the same function (`recurse x1000`) and keeps the innermost
/// frames, so the report stays one readable line and a small frame.
pub fn compress_backtrace(frames: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < frames.len() && out.len() < MAX_FRAMES {
        let run = frames[i..].iter().take_while(|f| **f == frames[i]).count();
        let name: String = frames[i].chars().take(200).collect();
        out.push(if run > 1 {
            format!("{name} x{run}")
        } else {
            name
        });
        i += run;
    }
    if i < frames.len() {
        out.push(format!("... {} more frames", frames.len() - i));
    }
    out
}

/// An error chain on one line.
pub fn one_line(err: &wasmtime::Error) -> String {
    let text = format!("{err:#}");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::compress_backtrace;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn backtraces_fold_repeats_and_stay_short() {
        assert_eq!(
            compress_backtrace(&names(&["h", "g", "f"])),
            names(&["h", "g", "f"])
        );
        let mut deep = vec!["recurse".to_string(); 5000];
        deep.push("_start".into());
        assert_eq!(
            compress_backtrace(&deep),
            names(&["recurse x5000", "_start"])
        );
        let many: Vec<String> = (0..100).map(|i| format!("f{i}")).collect();
        let short = compress_backtrace(&many);
        assert_eq!(short.len(), 17);
        assert_eq!(short[16], "... 84 more frames");
    }
}
