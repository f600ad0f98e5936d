//! `keep platform info`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::JsonArg;
use crate::output::outln;

pub fn info(args: JsonArg) -> Result<ExitCode> {
    let info = keep_host::probe();
    let jail = keep_host::jail_probe();
    if args.json {
        let mut value = serde_json::to_value(&info)?;
        value["jail"] = match &jail {
            Ok(layers) => serde_json::json!({
                "available": true,
                "layers": layers,
                "missing": keep_host::JAIL_NOT_YET,
            }),
            Err(e) => serde_json::json!({ "available": false, "error": e }),
        };
        outln!("{}", serde_json::to_string_pretty(&value)?)?;
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
    match &jail {
        Ok(layers) => {
            outln!("jail     on: {}", layers.join(", "))?;
            outln!("         {}", keep_host::JAIL_NOT_YET)?;
        }
        Err(e) => outln!("jail     unavailable: {e} (Keeps run without it)")?,
    }
    outln!("exec     sha384:{}", keep_host::EXEC_SHA384)?;
    Ok(ExitCode::SUCCESS)
}
