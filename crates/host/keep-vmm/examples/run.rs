//! Runs a static ELF in a KVM Keep: `cargo run -p keep-vmm --example run -- [--measure]
//! [--mem MiB] [--timeout secs] prog [args...]`. Prints the launch digest with
//! `--measure` (to stderr) and exits with the payload's code.

use std::time::Duration;

use anyhow::{Context, bail};
use keep_vmm::{Keep, KeepConfig, StdioServer};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let (mut measure, mut config) = (false, KeepConfig::default());
    while let Some(a) = args.peek() {
        match a.as_str() {
            "--measure" => measure = true,
            "--mem" => {
                args.next();
                config.mem_size = args.peek().context("--mem MiB")?.parse::<u64>()? << 20;
            }
            "--timeout" => {
                args.next();
                config.wall_limit = Some(Duration::from_secs_f64(
                    args.peek().context("--timeout secs")?.parse()?,
                ));
            }
            _ => break,
        }
        args.next();
    }
    let Some(prog) = args.next() else {
        bail!("usage: run [--measure] [--mem MiB] [--timeout secs] prog [args...]")
    };
    let payload = std::fs::read(&prog).with_context(|| format!("reading {prog}"))?;
    config.args = std::iter::once(prog.clone()).chain(args).collect();
    let keep = Keep::launch(config, &payload)?;
    if measure {
        eprintln!("launch digest (sha384): {}", hex::encode(keep.digest()));
    }
    let exit = keep.run(&mut StdioServer::inherit())?;
    eprintln!(
        "keep: exit {} ({} exits, {} host calls, first call after {:?}, {:?} in all)",
        exit.code,
        exit.stats.exits,
        exit.stats.host_calls,
        exit.stats.first_call.unwrap_or_default(),
        exit.stats.wall
    );
    std::process::exit(exit.code)
}
