//! Running a component under WASI preview 2 (`wasi:cli/command`).

use keep_wire::LaunchSpec;
use wasmtime::Result;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{CallHook, Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::limits::{CpuBudget, LimitHit, MemoryLimiter, install_cpu_budget};
use crate::outcome::Measured;
use crate::wasi;

/// A component's store data, for WASI preview 2 and 0.3 alike (`p3_run`).
pub(crate) struct State {
    ctx: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
}

impl State {
    pub(crate) fn new(spec: &LaunchSpec) -> Result<Self> {
        Ok(State {
            ctx: wasi::builder(spec, None)?.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(spec.limits.memory_bytes),
        })
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Instantiates the command component and calls `wasi:cli/run`; returns the exit code.
pub fn run(
    engine: &Engine,
    component: &Component,
    spec: &LaunchSpec,
    cpu_budget: Option<CpuBudget>,
    measured: &mut Measured,
) -> Result<i32> {
    let mut store = Store::new(engine, State::new(spec)?);
    store.limiter(|s| &mut s.limiter);
    if let Some(budget) = cpu_budget {
        install_cpu_budget(&mut store, budget);
    }
    if let Some(limit) = spec.limits.open_files {
        install_open_files_limit(&mut store, limit, spec.dirs.len());
    }
    let mut linker: Linker<State> = Linker::new(engine);
    let result = if let Some(rt) = crate::kvm_runtime() {
        // In the KVM Keep: async, inside the current-thread runtime's block_on,
        // which is what polls the sockets' readiness (epoll in the shim) while
        // the component waits. (A sync call would wait in Handle::block_on, which
        // on a current-thread runtime drives neither I/O nor timers.)
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        rt.block_on(async {
            let command = wasmtime_wasi::p2::bindings::Command::instantiate_async(
                &mut store, component, &linker,
            )
            .await
            .context("the workload is not a wasi:cli/command component")?;
            command.wasi_cli_run().call_run(&mut store).await
        })
    } else {
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Command::instantiate(&mut store, component, &linker)
            .context("the workload is not a wasi:cli/command component")
            .and_then(|command| command.wasi_cli_run().call_run(&mut store))
    };
    measured.peak_memory_bytes = store.data().limiter.peak();
    match result? {
        Ok(()) => Ok(0),
        Err(()) => Ok(1),
    }
}

/// Holds a component to at most `limit` open files and sockets. After every call into
/// the host, the exec counts the filesystem descriptors and TCP sockets in the
/// component's resource table; the preopened directories (handed out once by
/// `get-directories`) are not counted, as in preview 1. Over the limit, the component
/// is stopped. The hook is installed only when a limit is set. (For WASI 0.3, whose
/// host calls may finish after they return, such as `open-at`, the count catches up
/// at the next call into the host.)
pub(crate) fn install_open_files_limit(store: &mut Store<State>, limit: u32, preopens: usize) {
    let allowed = (limit as usize).saturating_add(preopens);
    store.call_hook(move |mut ctx, hook| {
        if !matches!(hook, CallHook::ReturningFromHost) {
            return Ok(());
        }
        let held = ctx
            .data_mut()
            .table
            .iter_mut()
            .filter(|e| {
                e.is::<wasmtime_wasi::filesystem::Descriptor>()
                    || e.is::<wasmtime_wasi::p2::TcpSocket>()
                    || e.is::<wasmtime_wasi::sockets::TcpSocket>()
            })
            .count();
        if held > allowed {
            return Err(wasmtime::Error::new(LimitHit {
                limit: keep_wire::Limit::OpenFiles,
                detail: format!("held more than {limit} files and sockets at once"),
            }));
        }
        Ok(())
    });
}
