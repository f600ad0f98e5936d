//! `keep`: run WebAssembly workloads in Keeps.
//!
//! The binary is a front end: `keep run` plays both the tenant (it holds the
//! workload and manifest) and the host (it launches the Keep and enforces limits),
//! which is what a developer wants on one machine. It links the host library, never
//! the runtime: the exec (wasmtime + WASI) is a separate static executable that only
//! ever receives the workload over the launch channel.

mod cli;
mod deploy;
mod init;
mod input;
mod measure;
mod output;
mod platform;
mod remote;
mod run;
mod usage;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // The VMM process of one KVM Keep (started by keep-host, never by hand: it
    // refuses to run without the descriptors it is given).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == keep_host::VMM_CHILD_ARG)
    {
        return ExitCode::from(u8::try_from(keep_host::vmm_child_main()).unwrap_or(1));
    }
    let version: &'static str = Box::leak(
        format!(
            "{}\nexec sha384:{}",
            env!("CARGO_PKG_VERSION"),
            keep_host::EXEC_SHA384
        )
        .into_boxed_str(),
    );
    let matches = match cli::Cli::command().version(version).try_get_matches() {
        Ok(m) => m,
        Err(e) => return clap_exit(&e),
    };
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return clap_exit(&e),
    };
    let result = match cli.command {
        cli::Command::Run(args) => run::run(*args),
        cli::Command::Init(args) => init::init(args),
        cli::Command::Platform(cli::PlatformCommand::Info(args)) => platform::info(args),
        cli::Command::Measure(args) => measure::measure(args),
        cli::Command::Verify(args) => verify::verify(*args),
        cli::Command::Deploy(args) => deploy::deploy(*args),
        cli::Command::Ps(args) => remote::ps(args),
        cli::Command::Kill(args) => remote::kill(args),
        cli::Command::Logs(args) => remote::logs(args),
        cli::Command::Host(cli::HostCommand::Serve(args)) => remote::serve(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keep: {}", one_line(&e));
            if usage::is_usage(&e) {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(keep_host::EXIT_KEEP_ERROR)
            }
        }
    }
}

/// Exit status for a bad command line (as clap's own refusals).
const EXIT_USAGE: u8 = 2;

/// Prints clap's message (help and version on stdout, usage errors on stderr) with
/// its exit status; a failed write other than a closed pipe is one line and 125.
fn clap_exit(e: &clap::Error) -> ExitCode {
    match e.print() {
        Err(io) if io.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("keep: writing to standard output: {io}");
            ExitCode::from(keep_host::EXIT_KEEP_ERROR)
        }
        _ => ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)),
    }
}

/// An error chain on one line.
fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}")
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}
