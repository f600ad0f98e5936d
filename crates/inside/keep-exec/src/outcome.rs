//! Runs one workload and turns however it ended into an [`Outcome`].

use std::time::{Duration, Instant};

use keep_wire::{ExitReport, FrameKind, LaunchSpec, Outcome, RunStats, write_frame};
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::channel::Channel;
use crate::engine::{self, WorkloadKind};
use crate::limits::{EpochTicker, LimitHit};
use crate::{p1_run, p2_run};

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
    let engine = match engine::build(spec) {
        Ok(e) => e,
        Err(e) => return failed(format!("cannot configure the runtime: {e:#}"), stats),
    };
    let compile_start = Instant::now();
    let compiled = match kind {
        WorkloadKind::Module => wasmtime::Module::new(&engine, workload).map(Compiled::Module),
        WorkloadKind::Component => {
            wasmtime::component::Component::new(&engine, workload).map(Compiled::Component)
        }
    };
    stats.compile_us = micros(compile_start.elapsed());
    let compiled = match compiled {
        Ok(c) => c,
        Err(e) => return failed(format!("invalid WebAssembly: {}", one_line(&e)), stats),
    };
    if let Err(e) = write_frame(channel, FrameKind::Started, b"{}") {
        return failed(e.to_string(), stats);
    }
    let _ticker = spec.limits.cpu_ms.map(|_| EpochTicker::start(&engine));
    let cpu_budget = spec.limits.cpu_ms.map(Duration::from_millis);
    let mut measured = Measured { peak_memory_bytes: 0 };
    let result = match compiled {
        Compiled::Module(m) => p1_run::run(&engine, &m, spec, cpu_budget, &mut measured),
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

fn failed(message: String, stats: RunStats) -> ExitReport {
    ExitReport { outcome: Outcome::Failed { message }, stats }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Sorts an error from running the workload into exit, limit, trap or failure.
pub fn classify(err: anyhow::Error) -> Outcome {
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Outcome::Exited { code: exit.0 };
    }
    if let Some(hit) = err.downcast_ref::<LimitHit>() {
        return Outcome::LimitExceeded { limit: hit.limit, detail: hit.detail.clone() };
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        let backtrace = err
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
        return Outcome::Trapped { reason: trap.to_string(), backtrace };
    }
    Outcome::Failed { message: one_line(&err) }
}

/// An error chain on one line.
pub fn one_line(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}
