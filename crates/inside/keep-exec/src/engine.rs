//! The wasmtime engine as the exec configures it.

use keep_wire::LaunchSpec;
use sha2::{Digest, Sha384};
use wasmtime::Result;
use wasmtime::{Config, Engine};

/// Builds the engine for one launch. Epoch interruption is only compiled in when a
/// CPU budget is set, so unlimited runs pay nothing for it. `concurrent` turns on
/// the component-model async ABI and the concurrency behind it, which WASI 0.3
/// components need; everything else is compiled and run without them.
pub fn build(spec: &LaunchSpec, concurrent: bool) -> Result<Engine> {
    let mut config = Config::new();
    config.parallel_compilation(spec.parallel_compilation);
    config.epoch_interruption(spec.limits.cpu_ms.is_some());
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    // With wasmtime's `component-model-async` compiled in, concurrency (and with it
    // the async ABI) would be on for every engine: only WASI 0.3 gets it, so preview 1
    // modules and preview 2 components run exactly as they did before.
    config.concurrency_support(concurrent);
    if concurrent {
        // What `wasmtime run -W component-model-async` sets; the stackful, threading,
        // error-context and "more async builtins" parts stay off, as in wasmtime 48's CLI.
        config.wasm_component_model_async(true);
    }
    if crate::in_kvm_keep() {
        // Inside the KVM Keep: one thread, and no copy-on-write memory images (there
        // are no files to map). Traps are signal-based as on the process backend:
        // the shim delivers faults as signals and reserves PROT_NONE address space
        // without backing it, so linear memories get their usual 4 GiB reservation
        // and guard pages, and loads and stores need no explicit bounds checks.
        config.parallel_compilation(false);
        config.memory_init_cow(false);
        return Engine::new(&config);
    }
    if let Some(dir) = &spec.compile_cache_dir {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(wasmtime::Cache::new(cache)?));
    }
    Engine::new(&config)
}

/// What kind of binary the workload is, from its first eight bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// A core module: WASI preview 1.
    Module,
    /// A component: WASI preview 2 or 0.3 (`wasi:cli/command`).
    Component,
}

/// Detects the binary kind, or says why the bytes are not WebAssembly.
pub fn detect(bytes: &[u8]) -> Result<WorkloadKind, String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("not a WebAssembly binary (no \\0asm header)".into());
    }
    match &bytes[4..8] {
        [1, 0, 0, 0] => Ok(WorkloadKind::Module),
        [_, _, 1, 0] => Ok(WorkloadKind::Component),
        v => Err(format!("unsupported WebAssembly binary version {v:02x?}")),
    }
}

/// SHA-384 of some bytes, lowercase hex.
pub fn sha384_hex(bytes: &[u8]) -> String {
    hex::encode(Sha384::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_kinds() {
        assert_eq!(detect(b"\0asm\x01\0\0\0"), Ok(WorkloadKind::Module));
        assert_eq!(detect(b"\0asm\x0d\0\x01\0"), Ok(WorkloadKind::Component));
        assert!(detect(b"\0asm").is_err());
        assert!(detect(b"hello world").is_err());
        assert!(detect(b"\0asm\x02\0\0\0").is_err());
    }
}
