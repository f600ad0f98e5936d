//! Running a core module under WASI preview 1.

use keep_wire::LaunchSpec;
use wasmtime::error::Context as _;
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime::{Result, bail};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::limits::{CpuBudget, MemoryLimiter, install_cpu_budget};
use crate::outcome::Measured;
use crate::p1_extras::{self, P1Host, Sockets};
use crate::wasi;

struct State {
    wasi: WasiP1Ctx,
    sockets: Sockets,
    limiter: MemoryLimiter,
}

impl P1Host for State {
    fn wasi(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }
    fn sockets(&mut self) -> &mut Sockets {
        &mut self.sockets
    }
}

/// Instantiates the module and calls `_start`; returns the exit code.
pub fn run(
    engine: &Engine,
    module: &Module,
    spec: &LaunchSpec,
    cpu_budget: Option<CpuBudget>,
    measured: &mut Measured,
) -> Result<i32> {
    if module.get_export("_start").is_none() {
        bail!("the workload exports no `_start` function: it is not a WASI command");
    }
    // Sockets follow stdio and the directories in the descriptor table.
    // In a KVM Keep there is no file system to make it in: the host serves an
    // empty read-only directory as the preopen after the declared ones.
    let kvm_holder = (!spec.sockets.is_empty() && crate::in_kvm_keep())
        .then(|| std::path::PathBuf::from(format!("/.keep/dir/{}", spec.dirs.len())));
    let holder = match spec.sockets.is_empty() || kvm_holder.is_some() {
        true => None,
        false => Some(tempfile::tempdir().context("cannot create the socket holder directory")?),
    };
    let first_socket_fd = 3 + u32::try_from(spec.dirs.len()).unwrap_or(u32::MAX - 3);
    let sockets = Sockets::open(&spec.sockets, first_socket_fd, spec.limits.open_files)?;
    let holder_path = kvm_holder
        .as_deref()
        .or_else(|| holder.as_ref().map(|d| d.path()));
    let wasi = wasi::builder(spec, holder_path)?.build_p1();
    let mut store = Store::new(
        engine,
        State {
            wasi,
            sockets,
            limiter: MemoryLimiter::new(spec.limits.memory_bytes),
        },
    );
    store.limiter(|s| &mut s.limiter);
    if let Some(budget) = cpu_budget {
        install_cpu_budget(&mut store, budget);
    }
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s| &mut s.wasi)?;
    let descriptors = !spec.sockets.is_empty() || spec.limits.open_files.is_some();
    p1_extras::add_to_linker(&mut linker, descriptors)?;
    let result = linker
        .instantiate(&mut store, module)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|start| start.call(&mut store, ()));
    measured.peak_memory_bytes = store.data().limiter.peak();
    result.map(|()| 0)
}
