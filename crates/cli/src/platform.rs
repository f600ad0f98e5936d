//! `keep platform info`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::JsonArg;

pub fn info(args: JsonArg) -> Result<ExitCode> {
    let info = keep_host::probe();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(ExitCode::SUCCESS);
    }
    for b in &info.backends {
        let state = match (b.available, b.implemented) {
            (true, true) => "works",
            (true, false) => "present, not implemented",
            (false, _) => "unavailable",
        };
        println!("{:<8} {:<26} {}", b.backend.name(), state, b.detail);
    }
    println!("exec     sha384:{}", keep_host::EXEC_SHA384);
    Ok(ExitCode::SUCCESS)
}
