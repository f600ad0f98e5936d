//! What a workload offers to run, read from its bytes before anything is compiled.
//!
//! Compiling a large module takes seconds to a minute; a module with no `_start`
//! (a reactor or a library) or a component without `wasi:cli/run` would be refused
//! only after that. Their exports are in the bytes: this reads the export section
//! of a core module, or the top-level exports of a component, without validating
//! or compiling (wasmparser's streaming parser; function bodies are stepped over),
//! and says in one line what is missing.
//!
//! **Trusts:** nothing. The bytes are the tenant's (untrusted by the host's
//! runtime only as far as they may be malformed); a parse error is the refusal.

use wasmparser::{ComponentExternalKind, ExternalKind, Parser, Payload};

use crate::engine::WorkloadKind;

/// How the workload is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A core module exporting `_start`: a WASI preview 1 command.
    Start,
    /// A component exporting `wasi:cli/run@0.2.*`: a WASI 0.2 command.
    CliRunP2,
    /// A component exporting `wasi:cli/run@0.3.*` (component-model async): WASI 0.3.
    CliRunP3 {
        /// The version in the export's name, such as `0.3.0-rc-2025-09-16`.
        version: String,
    },
}

/// Names shown at most when saying what a workload exports instead.
const MAX_NAMES_SHOWN: usize = 6;

/// Reads the entry point from the bytes, or says why there is nothing to run.
pub fn find(kind: WorkloadKind, bytes: &[u8]) -> Result<Entry, String> {
    let mut depth = 0usize;
    let mut funcs = Vec::new();
    let mut instances = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            Payload::ExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    if export.kind == ExternalKind::Func {
                        funcs.push(export.name.to_string());
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    let instance = export.kind == ComponentExternalKind::Instance;
                    instances.push((export.name.name.to_string(), instance));
                }
            }
            _ => {}
        }
    }
    match kind {
        WorkloadKind::Module => module_entry(&funcs),
        WorkloadKind::Component => component_entry(&instances),
    }
}

/// A parse error on one line (some of wasmparser's span several).
fn invalid(e: wasmparser::BinaryReaderError) -> String {
    let text = e.to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    format!("invalid WebAssembly: {}", words.join(" "))
}

fn module_entry(funcs: &[String]) -> Result<Entry, String> {
    if funcs.iter().any(|f| f == "_start") {
        return Ok(Entry::Start);
    }
    let what = if funcs.iter().any(|f| f == "_initialize") {
        "a reactor (it exports `_initialize`), not a WASI command"
    } else {
        "not a WASI command"
    };
    Err(format!(
        "the module exports no `_start` function, so there is nothing to run: it is {what}{}",
        listed("functions", funcs)
    ))
}

fn component_entry(exports: &[(String, bool)]) -> Result<Entry, String> {
    let versions: Vec<&str> = exports
        .iter()
        .filter(|(_, instance)| *instance)
        .filter_map(|(n, _)| n.strip_prefix("wasi:cli/run@"))
        .collect();
    // A WASI 0.3 command built through the preview 1 adapter exports both
    // @0.2 (the adapter's, not meant to be called) and @0.3: 0.3 is the one to run.
    if let Some(version) = versions.iter().find(|v| v.starts_with("0.3.")) {
        return Ok(Entry::CliRunP3 {
            version: version.to_string(),
        });
    }
    if versions.iter().any(|v| v.starts_with("0.2.")) {
        return Ok(Entry::CliRunP2);
    }
    if let Some(version) = versions.first() {
        return Err(format!(
            "the component exports wasi:cli/run@{}: keep runs wasi:cli/run@0.2 and @0.3",
            version
                .chars()
                .take(80)
                .flat_map(char::escape_default)
                .collect::<String>()
        ));
    }
    Err(format!(
        "the component exports no `wasi:cli/run` interface, so there is nothing to run: it is not a WASI command{}",
        listed(
            "interfaces or functions",
            &exports.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
        )
    ))
}

/// ` (it exports the functions a, b, ...)`, or ` (it exports no functions)`.
/// Names are the workload's: cut to 80 characters, control characters escaped.
fn listed(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        return format!(" (it exports no {what})");
    }
    let shown: Vec<String> = names
        .iter()
        .take(MAX_NAMES_SHOWN)
        .map(|n| n.chars().take(80).flat_map(char::escape_default).collect())
        .collect();
    let more = names.len().saturating_sub(MAX_NAMES_SHOWN);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(" (it exports the {what} {}{more})", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"\0asm\x01\0\0\0";

    /// A module of one function `() -> ()` exported under each name.
    fn module(names: &[&str]) -> Vec<u8> {
        let mut m = HEADER.to_vec();
        m.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]); // type section
        m.extend_from_slice(&[3, 2, 1, 0]); // one function of type 0
        let mut exports = vec![names.len() as u8];
        for n in names {
            exports.push(n.len() as u8);
            exports.extend_from_slice(n.as_bytes());
            exports.extend_from_slice(&[0, 0]); // func 0
        }
        m.push(7);
        m.push(exports.len() as u8);
        m.extend_from_slice(&exports);
        m.extend_from_slice(&[10, 4, 1, 2, 0, 0x0b]); // code: one empty body
        m
    }

    #[test]
    fn a_command_has_start() {
        assert_eq!(
            find(WorkloadKind::Module, &module(&["_start", "memory"])),
            Ok(Entry::Start)
        );
    }

    #[test]
    fn a_reactor_is_named_as_such() {
        let err = find(WorkloadKind::Module, &module(&["_initialize", "add"])).unwrap_err();
        assert!(err.contains("no `_start`"), "{err}");
        assert!(err.contains("a reactor"), "{err}");
        assert!(err.contains("_initialize, add"), "{err}");
    }

    #[test]
    fn long_lists_are_cut() {
        let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let err = find(WorkloadKind::Module, &module(&refs)).unwrap_err();
        assert!(err.contains("and 14 more"), "{err}");
    }

    #[test]
    fn components_are_sorted_by_their_run_interface() {
        let cli = |v: &str| vec![(format!("wasi:cli/run@{v}"), true)];
        assert_eq!(component_entry(&cli("0.2.6")), Ok(Entry::CliRunP2));
        assert_eq!(
            component_entry(&cli("0.3.0-rc-2025-09-16")),
            Ok(Entry::CliRunP3 {
                version: "0.3.0-rc-2025-09-16".into()
            })
        );
        assert!(
            component_entry(&cli("1.0.0"))
                .unwrap_err()
                .contains("@1.0.0")
        );
        let both = [
            ("wasi:cli/run@0.2.0".to_string(), true),
            ("wasi:cli/run@0.3.0".to_string(), true),
        ];
        assert_eq!(
            component_entry(&both),
            Ok(Entry::CliRunP3 {
                version: "0.3.0".into()
            })
        );
        let err = component_entry(&[
            ("wasi:http/incoming-handler@0.2.0".into(), true),
            ("wasi:cli/run@0.2.0".into(), false),
        ])
        .unwrap_err();
        assert!(err.contains("no `wasi:cli/run`"), "{err}");
        assert!(err.contains("wasi:http/incoming-handler"), "{err}");
    }

    #[test]
    fn parse_errors_are_one_line() {
        // wasmparser spreads this one over several lines (found by fuzzing).
        let err = find(WorkloadKind::Module, b"this is not wasm").unwrap_err();
        assert!(err.starts_with("invalid WebAssembly: "), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn malformed_bytes_are_refused_not_panicked_on() {
        let mut m = module(&["_start"]);
        m.truncate(m.len() - 3);
        assert!(find(WorkloadKind::Module, &m).is_err());
        for len in 0..m.len() {
            let _ = find(WorkloadKind::Module, &m[..len]);
        }
    }
}
