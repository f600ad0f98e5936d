//! Running a component under WASI 0.3 (`wasi:cli/run@0.3.x`), whose `run` is an
//! `async func`: the component-model async ABI, driven by `Store::run_concurrent`.
//!
//! Always async. On the process backend the future runs in wasmtime-wasi's own
//! multi-threaded runtime (`runtime::in_tokio`, the one the sync preview 2 path
//! uses), whose worker threads drive its I/O and timers. In the KVM Keep it runs
//! inside the current-thread runtime's `block_on`, which is what polls sockets
//! (epoll in the shim) and timers while the component waits; file I/O and stdio
//! are done in place there (`allow_blocking_current_thread`, see `wasi`).

use keep_wire::LaunchSpec;
use wasmtime::Result;
use wasmtime::component::{Component, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Engine, Store};
use wasmtime_wasi::p3::bindings::Command;

use crate::limits::{CpuBudget, install_cpu_budget};
use crate::outcome::Measured;
use crate::p2_run::{State, install_open_files_limit};

/// Streams, futures, subtasks and waitables a component may hold at once in the
/// store's concurrent-state table (host memory outside the memory limit).
const MAX_CONCURRENT_HANDLES: usize = 1 << 20;

/// Instantiates the WASI 0.3 command and calls `wasi:cli/run@0.3`; returns the exit code.
pub fn run(
    engine: &Engine,
    component: &Component,
    spec: &LaunchSpec,
    cpu_budget: Option<CpuBudget>,
    measured: &mut Measured,
) -> Result<i32> {
    if let Some(name) = unprovided_import(engine, component) {
        return Err(wasmtime::Error::msg(format!(
            "the component imports {name}, which keep does not provide (WASI 0.3 here is wasi:cli, clocks, filesystem, random and sockets)"
        )));
    }
    let mut store = Store::new(engine, State::new(spec)?);
    store.limiter(|s| &mut s.limiter);
    if let Some(budget) = cpu_budget {
        install_cpu_budget(&mut store, budget);
    }
    if let Some(limit) = spec.limits.open_files {
        install_open_files_limit(&mut store, limit, spec.dirs.len());
    }
    if let Some(table) = store.concurrent_resource_table() {
        table.set_max_capacity(MAX_CONCURRENT_HANDLES);
    }
    let mut linker: Linker<State> = Linker::new(engine);
    // WASI 0.3 programs built through the preview 1 adapter import wasi:*@0.2 as well
    // (all of wasi-testsuite's wasm32-wasip3 ones do), as `wasmtime run` links both.
    // Preview 2 in its async form: the sync one blocks on the ambient runtime from
    // inside the host call, i.e. inside the `block_on` driving `run_concurrent`.
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker).context("cannot provide wasi:*@0.3.0")?;
    let result = match crate::kvm_runtime() {
        Some(rt) => rt.block_on(instantiate_and_run(&mut store, component, &linker)),
        None => {
            wasmtime_wasi::runtime::in_tokio(instantiate_and_run(&mut store, component, &linker))
        }
    };
    measured.peak_memory_bytes = store.data().limiter.peak();
    match result? {
        Ok(()) => Ok(0),
        Err(()) => Ok(1),
    }
}

/// WASI packages this exec links (`wasi:io` for the preview 2 imports).
const PROVIDED: &[&str] = &["cli", "clocks", "filesystem", "io", "random", "sockets"];

/// The first `wasi:` import from a package keep does not link, such as
/// `wasi:http/types@0.3.0`: instantiating would fail on it with a linker message.
fn unprovided_import(engine: &Engine, component: &Component) -> Option<String> {
    let ty = component.component_type();
    ty.imports(engine)
        .map(|(name, _)| name)
        .find(|name| {
            name.strip_prefix("wasi:")
                .and_then(|rest| rest.split('/').next())
                .is_some_and(|package| !PROVIDED.contains(&package))
        })
        .map(|name| {
            name.chars()
                .take(80)
                .flat_map(char::escape_default)
                .collect()
        })
}

async fn instantiate_and_run(
    store: &mut Store<State>,
    component: &Component,
    linker: &Linker<State>,
) -> Result<Result<(), ()>> {
    let command = Command::instantiate_async(&mut *store, component, linker)
        .await
        .context("cannot instantiate the WASI 0.3 command")?;
    // The outer result is the event loop's (a trap in any task, a deadlock), the
    // inner one `run`'s: a trap in it, or an exit through wasi:cli/exit, is an error
    // that `outcome::classify` sorts out (`I32Exit` included).
    store
        .run_concurrent(async move |accessor| command.wasi_cli_run().call_run(accessor).await)
        .await?
}
