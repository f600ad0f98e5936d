//! `keep platform info`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::JsonArg;
use crate::output::outln;

pub fn info(args: JsonArg) -> Result<ExitCode> {
    let info = keep_host::probe();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&info)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for b in &info.backends {
        let state = match (b.available, b.implemented) {
            (true, true) => "works",
            (true, false) => "present, not implemented",
            (false, _) => "unavailable",
        };
        outln!("{:<8} {:<26} {}", b.backend.name(), state, b.detail)?;
    }
    outln!("exec     sha384:{}", keep_host::EXEC_SHA384)?;
    Ok(ExitCode::SUCCESS)
}
