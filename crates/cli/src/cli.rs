//! Command-line syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run WebAssembly workloads in Keeps: isolated, measured environments on hosts
/// you do not have to trust.
#[derive(Debug, Parser)]
#[command(name = "keep", version)]
#[command(
    after_help = "Start with `keep run examples/hello.wasm`, then `keep init` to write a Keep.toml.\n\
Exit statuses of `keep run`: the workload's own code (0-255); 125 keep could not run it;\n\
134 trap; 151 memory, 152 cpu, 153 wall-clock, 154 output, 155 open-files limit."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a WASI workload (preview 1 module or preview 2 component) in a Keep.
    Run(Box<RunArgs>),
    /// Write a starter Keep.toml.
    Init(InitArgs),
    /// Facts about this machine.
    #[command(subcommand)]
    Platform(PlatformCommand),
}

#[derive(Debug, Subcommand)]
pub enum PlatformCommand {
    /// Which backends work here, and why the others do not.
    Info(JsonArg),
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// A child process: no isolation from the host, for development.
    Process,
    /// A KVM virtual machine with Keep's microkernel (not implemented yet).
    Kvm,
    /// AMD SEV-SNP (not implemented yet).
    SevSnp,
    /// Intel TDX (not implemented yet).
    Tdx,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  keep run examples/hello.wasm\n  \
keep run --dir ./data::/data --env NAME=world app.wasm -- --verbose\n  \
keep run --manifest Keep.toml --memory 256MiB --cpu 10s --timeout 1m app.wasm\n  \
keep run --stats --json app.wasm")]
pub struct RunArgs {
    /// The workload: a .wasm core module (WASI preview 1) or component (preview 2).
    pub workload: PathBuf,
    /// Arguments for the workload (after `--`); they replace the manifest's `args`.
    #[arg(last = true)]
    pub args: Vec<String>,
    /// Keep.toml or Enarx.toml describing args, env, stdio, dirs, sockets and limits.
    #[arg(long, short = 'm', value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Where the Keep runs.
    #[arg(long, value_enum, default_value = "process")]
    pub backend: Backend,
    /// Set an environment variable of the workload (the host's are never passed).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Preopen a host directory read-write: HOST::GUEST (or HOST, seen as the same path).
    #[arg(long = "dir", value_name = "HOST::GUEST")]
    pub dirs: Vec<String>,
    /// Preopen a host directory read-only: HOST::GUEST.
    #[arg(long = "ro-dir", value_name = "HOST::GUEST")]
    pub ro_dirs: Vec<String>,
    /// Cap on the workload's linear memory and tables, e.g. 256MiB.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU time budget, e.g. 10s or 500ms.
    #[arg(long, value_name = "DURATION")]
    pub cpu: Option<String>,
    /// Wall-clock time limit, e.g. 30s or 2m.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Cap on bytes written to stdout and stderr together, e.g. 1GiB.
    #[arg(long, value_name = "SIZE")]
    pub max_output: Option<String>,
    /// Cap on files and sockets the workload may hold open at once.
    #[arg(long, value_name = "N")]
    pub max_files: Option<u32>,
    /// Compile the workload afresh instead of reusing compiled code cached on this
    /// host (the cache is keyed by the workload's digest and the engine's settings).
    #[arg(long)]
    pub no_cache: bool,
    /// Print peak memory, CPU time and wall time on stderr when the workload ends.
    #[arg(long)]
    pub stats: bool,
    /// Report the outcome (and stats) as one JSON object on stderr instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write it.
    #[arg(default_value = "Keep.toml")]
    pub path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}
