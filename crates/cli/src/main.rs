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

/// A hidden first argument and the `main` it starts.
type HiddenMain = (&'static str, fn() -> i32);

fn main() -> ExitCode {
    // The stages of a Keep's jail, and the VMM process of one KVM Keep: started
    // by keep-host, never by hand (each refuses to run without what it is given).
    let hidden: [HiddenMain; 4] = [
        (keep_host::JAIL_PROBE_ARG, keep_host::jail_probe_main),
        (keep_host::VMM_CHILD_ARG, keep_host::vmm_child_main),
        (keep_host::JAIL_OUTER_ARG, keep_host::jail_outer_main),
        (keep_host::JAIL_INNER_ARG, keep_host::jail_inner_main),
    ];
    if let Some(first) = std::env::args_os().nth(1)
        && let Some((_, main)) = hidden.iter().find(|(arg, _)| first == *arg)
    {
        return ExitCode::from(u8::try_from(main()).unwrap_or(1));
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
        cli::Command::Platform(cli::PlatformCommand::JailProbe(args)) => platform::jail_probe(args),
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
