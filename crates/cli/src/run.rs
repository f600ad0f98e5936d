//! `keep run`: one workload, one Keep, on this machine.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use keep_host::{
    Backend, BackendKind, HostLimits, JailMode, ProcessBackend, RunRequest, RunResult,
};
use keep_manifest::{Manifest, parse_duration_ms, parse_size};
use keep_wire::{DirSpec, LaunchSpec, Limits};
use serde_json::json;

use crate::cli::RunArgs;
use crate::usage::usage;

/// Largest workload `keep run` reads.
const MAX_WORKLOAD_BYTES: u64 = 1 << 30;

pub fn run(args: RunArgs) -> Result<ExitCode> {
    if !args.backend.implemented() {
        bail!(
            "backend {}: not implemented yet, and this machine has no such hardware (see `keep platform info`)",
            args.backend
        );
    }
    let workload = read_workload(&args.workload)?;
    let manifest = match &args.manifest {
        Some(path) => Manifest::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Manifest::default(),
    };
    for w in &manifest.warnings {
        eprintln!("keep: warning: {w}");
    }
    let (mut spec, host_limits) = launch_spec(&args, &manifest)?;
    let jail = if args.no_jail {
        JailMode::Off
    } else {
        JailMode::On
    };
    let backend: Box<dyn Backend> = if args.backend == BackendKind::Kvm {
        Box::new(keep_host::KvmBackend::new().map(|k| k.with_jail(jail)).map_err(|_| {
            anyhow::anyhow!(
                "backend kvm: /dev/kvm is not available on this machine (see `keep platform info`); use --backend process"
            )
        })?)
    } else {
        // The cache directory (the exec, compiled code) is used only if no other
        // user can write it; without a home there is none, and the exec runs from
        // memory. A KVM Keep has no host directory to cache in.
        let cache_dir = keep_host::default_cache_dir();
        let backend = match &cache_dir {
            Some(dir) => ProcessBackend::cached(dir)?,
            None => ProcessBackend::embedded()?,
        };
        if let (false, Some(dir)) = (args.no_cache, &cache_dir) {
            let modules = dir.join("modules");
            keep_host::ensure_private_dir(&modules)?;
            spec.compile_cache_dir = Some(modules.display().to_string());
        }
        Box::new(backend.with_jail(jail))
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let out = std::fs::File::from(std::os::fd::AsFd::as_fd(&stdout).try_clone_to_owned()?);
    let err = std::fs::File::from(std::os::fd::AsFd::as_fd(&stderr).try_clone_to_owned()?);
    let request = RunRequest {
        spec,
        workload,
        limits: host_limits,
    };
    let result = keep_host::run(&*backend, request, out, err)
        .map_err(|e| anyhow::anyhow!("backend {}: {e}", backend.kind().name()))?;
    Ok(report(&args, &result))
}

fn read_workload(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read the workload", path.display()))?;
    if !meta.is_file() {
        bail!("{}: not a file", path.display());
    }
    if meta.len() > MAX_WORKLOAD_BYTES {
        bail!(
            "{}: {} bytes is more than the {} a workload may have",
            path.display(),
            meta.len(),
            MAX_WORKLOAD_BYTES
        );
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("{}: cannot read the workload", path.display()))?;
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        bail!(
            "{}: not a WebAssembly binary (it does not start with \\0asm)",
            path.display()
        );
    }
    Ok(bytes)
}

/// Merges the manifest with the command line: flags add env and dirs, replace args,
/// and limits take the stricter of host flag and manifest request.
fn launch_spec(args: &RunArgs, manifest: &Manifest) -> Result<(LaunchSpec, HostLimits)> {
    let mut env = manifest.env.clone();
    for kv in &args.env {
        let Some((k, v)) = kv.split_once('=') else {
            usage!("--env {kv}: expected KEY=VALUE");
        };
        if k.is_empty() {
            usage!("--env {kv}: the key is empty");
        }
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    let mut dirs = manifest.dirs.clone();
    for (flag, list, writable) in [
        ("--dir", &args.dirs, true),
        ("--ro-dir", &args.ro_dirs, false),
    ] {
        for d in list {
            dirs.push(parse_dir(flag, d, writable)?);
        }
    }
    // Arguments on the command line replace the manifest's.
    let workload_args = if args.args.is_empty() {
        manifest.args.clone()
    } else {
        args.args.clone()
    };
    if args.manifest.is_some() {
        let names = manifest.fd_names();
        env.push(("FD_COUNT".into(), names.len().to_string()));
        env.push(("FD_NAMES".into(), names.join(":")));
    }

    let flag_size = |flag: &str, v: &Option<String>| positive(flag, v, parse_size);
    let flag_ms = |flag: &str, v: &Option<String>| positive(flag, v, parse_duration_ms);
    let m = &manifest.limits;
    let memory = stricter(flag_size("--memory", &args.memory)?, m.memory_bytes);
    let cpu = stricter(flag_ms("--cpu", &args.cpu)?, m.cpu_ms);
    let wall = stricter(flag_ms("--timeout", &args.timeout)?, m.wall_ms);
    let output = stricter(flag_size("--max-output", &args.max_output)?, m.output_bytes);
    if args.max_files == Some(0) {
        usage!("--max-files 0: must be greater than zero");
    }
    let open_files = stricter(args.max_files, m.open_files);

    let spec = LaunchSpec {
        program_name: args.workload.display().to_string(),
        args: workload_args,
        env,
        stdio: manifest.stdio,
        dirs,
        sockets: manifest.sockets.clone(),
        limits: Limits {
            memory_bytes: memory,
            cpu_ms: cpu,
            open_files,
        },
        workload_sha384: None,
        parallel_compilation: true,
        compile_cache_dir: None,
    };
    let host = HostLimits {
        wall: wall.map(Duration::from_millis),
        output_bytes: output,
        memory_bytes: memory,
        cpu: cpu.map(Duration::from_millis),
    };
    Ok((spec, host))
}

/// Parses a limit flag; zero is refused (a limit of zero would stop everything).
fn positive(
    flag: &str,
    value: &Option<String>,
    parse: fn(&str) -> Result<u64, String>,
) -> Result<Option<u64>> {
    let Some(text) = value.as_deref() else {
        return Ok(None);
    };
    match parse(text) {
        Ok(0) => usage!("{flag} {text}: must be greater than zero"),
        Ok(n) => Ok(Some(n)),
        Err(e) => usage!("{flag}: {e}"),
    }
}

fn stricter<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `HOST::GUEST`, or `HOST` alone (seen under the same path).
fn parse_dir(flag: &str, value: &str, writable: bool) -> Result<DirSpec> {
    let (host, guest) = match value.split_once("::") {
        Some((h, g)) => (h, g),
        None => (value, value),
    };
    if host.is_empty() || guest.is_empty() {
        usage!("{flag} {value:?}: expected HOST::GUEST");
    }
    let host_path = PathBuf::from(host);
    if !host_path.is_dir() {
        usage!("{flag} {value}: {host} is not a directory");
    }
    Ok(DirSpec {
        source: host.to_string(),
        guest_path: guest.to_string(),
        writable,
    })
}

/// Prints the outcome line and stats, returns the exit status.
fn report(args: &RunArgs, result: &RunResult) -> ExitCode {
    let (status, message) = result.exit_status();
    let _ = std::io::stdout().flush();
    let mut err = std::io::stderr().lock();
    if args.json {
        let stats = stats_json(result);
        let value = json!({
            "outcome": result.outcome,
            "exit_status": status,
            "message": message,
            "stats": if args.stats { stats } else { serde_json::Value::Null },
        });
        let _ = writeln!(err, "{value}");
    } else {
        for w in &result.warnings {
            let _ = writeln!(err, "keep: warning: {w}");
        }
        if let Some(line) = &message {
            let _ = writeln!(err, "{line}");
        }
        if args.stats {
            let h = &result.host;
            let linear = result
                .report
                .as_ref()
                .map(|r| r.stats.peak_memory_bytes)
                .unwrap_or(0);
            let _ = writeln!(
                err,
                "keep: stats: peak memory {:.1} MiB (linear memory {:.1} MiB{}), cpu {:.3} s, wall {:.3} s{}",
                h.peak_rss_bytes as f64 / 1048576.0,
                linear as f64 / 1048576.0,
                h.vm_memory_bytes
                    .map(|b| format!(", in a VM of {} MiB", b >> 20))
                    .unwrap_or_default(),
                h.cpu_time.as_secs_f64(),
                h.wall_time.as_secs_f64(),
                h.output_bytes
                    .map(|b| format!(", output {b} bytes"))
                    .unwrap_or_default()
            );
        }
    }
    ExitCode::from(status)
}

fn stats_json(result: &RunResult) -> serde_json::Value {
    let h = &result.host;
    let r = result.report.as_ref().map(|r| r.stats).unwrap_or_default();
    json!({
        "peak_memory_bytes": h.peak_rss_bytes,
        "peak_linear_memory_bytes": r.peak_memory_bytes,
        "cpu_time_ms": h.cpu_time.as_secs_f64() * 1000.0,
        "wall_time_ms": h.wall_time.as_secs_f64() * 1000.0,
        "compile_time_ms": r.compile_us as f64 / 1000.0,
        "output_bytes": h.output_bytes,
        "vm_exits": h.vm_exits,
        "host_calls": h.host_calls,
        "guest_used_bytes": h.guest_used_bytes,
        "vm_memory_bytes": h.vm_memory_bytes,
        "launch_digest": h.launch_digest.map(hex::encode),
    })
}
