//! `keep init`: write a starter Keep.toml.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::InitArgs;

pub fn init(args: InitArgs) -> Result<ExitCode> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = match options.open(&args.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!(
                "{} already exists (use --force to overwrite)",
                args.path.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", args.path.display())),
    };
    file.write_all(keep_manifest::STARTER.as_bytes())
        .with_context(|| format!("cannot write {}", args.path.display()))?;
    eprintln!(
        "keep: wrote {}; run it with `keep run --manifest {} WORKLOAD`",
        args.path.display(),
        args.path.display()
    );
    Ok(ExitCode::SUCCESS)
}
