//! `keep measure`: the launch digest of a KVM Keep, offline.

use std::process::ExitCode;

use anyhow::{Result, bail};
use keep_host::{EXEC_SHA384, KVM_EXEC_ENV, KvmBackend, MemoryBudget};
use keep_manifest::parse_size;
use serde_json::json;

use crate::cli::MeasureArgs;
use crate::output::outln;
use crate::usage::usage;

pub fn measure(args: MeasureArgs) -> Result<ExitCode> {
    if args.backend != keep_host::BackendKind::Kvm {
        bail!(
            "backend {}: only the kvm backend has a launch digest today",
            args.backend
        );
    }
    let memory = match args.memory.as_deref() {
        None => None,
        Some(text) => match parse_size(text) {
            Ok(0) => usage!("--memory {text}: must be greater than zero"),
            Ok(n) => Some(n),
            Err(e) => usage!("--memory: {e}"),
        },
    };
    let module_bytes = match &args.workload {
        None => 0,
        Some(path) => std::fs::metadata(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
            .len(),
    };
    let budget = MemoryBudget::new(memory, module_bytes);
    let (digest, guest) =
        KvmBackend::measure_budget(&budget).map_err(|e| anyhow::anyhow!("{e}"))?;
    let digest = hex::encode(digest);
    let shim = KvmBackend::shim_sha384();
    if args.json {
        outln!(
            "{}",
            json!({
                "backend": "kvm",
                "launch_digest": digest,
                "shim_sha384": shim,
                "exec_sha384": EXEC_SHA384,
                "guest_memory_bytes": guest,
                "workload_memory_bytes": budget.workload,
                "runtime_memory_bytes": budget.runtime,
                "argv": ["keep-exec"],
                "env": [KVM_EXEC_ENV],
            })
        )?;
    } else {
        outln!("sha384:{digest}")?;
        outln!("  shim  sha384:{shim}")?;
        outln!("  exec  sha384:{EXEC_SHA384}")?;
        outln!(
            "  boot  guest memory {} MiB, argv [keep-exec], env [{KVM_EXEC_ENV}]",
            guest >> 20
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
