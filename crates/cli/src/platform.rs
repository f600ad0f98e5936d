//! `keep platform info`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{JailProbeArgs, JsonArg};
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

pub fn jail_probe(args: JailProbeArgs) -> Result<ExitCode> {
    let marker = format!("keep-jail-probe-{}", std::process::id());
    let report = keep_host::jail_probe_run(args.backend, &marker)
        .map_err(|e| anyhow::anyhow!("cannot build the jail: {e}"))?;
    // The probe wrote this name in its /tmp: it must not be in the host's.
    let leaked = std::path::Path::new("/tmp").join(&marker);
    let escaped_tmp = leaked.exists();
    let _ = std::fs::remove_file(&leaked);
    let mut checks = report.checks.clone();
    if let Some(c) = checks.iter_mut().find(|c| c.check.contains("/tmp")) {
        c.stopped = !escaped_tmp;
        if escaped_tmp {
            c.how = format!("{} appeared in the host's /tmp", leaked.display());
        }
    }
    let all_stopped = checks.iter().all(|c| c.stopped);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "backend": report.backend,
                "layers": report.layers,
                "checks": checks,
                "all_stopped": all_stopped,
            }))?
        )?;
    } else {
        outln!(
            "jail of a {} Keep: {}",
            report.backend,
            report.layers.join(", ")
        )?;
        for c in &checks {
            let state = if c.stopped { "stopped" } else { "NOT STOPPED" };
            outln!("{state:<12} {:<48} {}", c.check, c.how)?;
        }
    }
    Ok(if all_stopped {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
