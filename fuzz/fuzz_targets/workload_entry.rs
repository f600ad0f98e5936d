//! The exec's reading of a workload's exports before compiling (keep-exec's
//! `entry.rs`, included by path: the exec is a binary): any bytes, either kind,
//! must give an entry or a refusal line, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// What entry.rs needs from the exec's `engine` module.
mod engine {
    #[allow(dead_code)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum WorkloadKind {
        Module,
        Component,
    }
}

#[allow(dead_code)]
#[path = "../../crates/inside/keep-exec/src/entry.rs"]
mod entry;

fuzz_target!(|data: &[u8]| {
    use engine::WorkloadKind;
    for kind in [WorkloadKind::Module, WorkloadKind::Component] {
        if let Err(line) = entry::find(kind, data) {
            assert!(!line.contains('\n'), "a refusal is one line: {line:?}");
        }
    }
});
