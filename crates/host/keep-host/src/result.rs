//! How a run ended, as the host saw it, and the exit status `keep` gives it.

use std::time::Duration;

use keep_wire::{ExitReport, Limit, Outcome};
use serde::Serialize;

/// `keep` itself could not run the workload: bad input, invalid wasm, missing import.
pub const EXIT_KEEP_ERROR: u8 = 125;
/// The workload trapped.
pub const EXIT_TRAP: u8 = 134;

/// Exit status for a workload stopped at a limit.
pub fn exit_code_for_limit(limit: Limit) -> u8 {
    match limit {
        Limit::Memory => 151,
        Limit::Cpu => 152,
        Limit::WallClock => 153,
        Limit::Output => 154,
        Limit::OpenFiles => 155,
    }
}

/// Resource use measured by the host from outside the Keep.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct HostStats {
    /// Peak resident memory of the whole Keep (runtime included), bytes.
    pub peak_rss_bytes: u64,
    /// User + system CPU time of the Keep.
    pub cpu_time: Duration,
    /// Wall-clock time from launch to exit.
    pub wall_time: Duration,
    /// Bytes relayed from the workload's stdout and stderr (counted only when an
    /// output cap is set: otherwise the Keep writes to them directly).
    pub output_bytes: Option<u64>,
    /// KVM Keep only: VM exits and host calls of the run, and the guest memory the
    /// shim allocated at its peak (it reports this at exit; the guest's word).
    pub vm_exits: Option<u64>,
    pub host_calls: Option<u64>,
    pub guest_used_bytes: Option<u64>,
    /// KVM Keep only: the VM's guest memory (its size, not what was used).
    pub vm_memory_bytes: Option<u64>,
    /// KVM Keep only: the SHA-384 launch digest the VMM computed.
    #[serde(skip)]
    pub launch_digest: Option<[u8; 48]>,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// How the workload ended. Host-enforced limits override what the exec said.
    pub outcome: Outcome,
    /// What the exec reported (linear memory peak, compile time), if it reported.
    pub report: Option<ExitReport>,
    pub host: HostStats,
    /// What the exec said the tenant should know (at most a few short lines).
    pub warnings: Vec<String>,
}

impl RunResult {
    /// The exit status `keep run` uses, and a one-line message for anything but a
    /// normal exit.
    pub fn exit_status(&self) -> (u8, Option<String>) {
        match &self.outcome {
            Outcome::Exited { code } => match u8::try_from(*code) {
                Ok(c) => (c, None),
                Err(_) => (
                    1,
                    Some(format!(
                        "keep: the workload exited with code {code}, outside 0-255; exit status 1"
                    )),
                ),
            },
            Outcome::Trapped { reason, backtrace } => {
                let mut line = format!("keep: workload trapped: {}", reason.trim());
                if !backtrace.is_empty() {
                    line.push_str("; wasm backtrace: ");
                    line.push_str(&backtrace.join(" <- "));
                }
                (EXIT_TRAP, Some(line))
            }
            Outcome::LimitExceeded { limit, detail } => (
                exit_code_for_limit(*limit),
                Some(format!(
                    "keep: workload stopped at the {} limit: {detail}",
                    limit.name()
                )),
            ),
            Outcome::Failed { message } => (
                EXIT_KEEP_ERROR,
                Some(format!("keep: cannot run the workload: {message}")),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: Outcome) -> RunResult {
        RunResult {
            outcome,
            report: None,
            host: HostStats::default(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn exit_statuses_are_distinct_and_documented() {
        assert_eq!(result(Outcome::Exited { code: 7 }).exit_status(), (7, None));
        assert_eq!(result(Outcome::Exited { code: 300 }).exit_status().0, 1);
        let trap = result(Outcome::Trapped {
            reason: "wasm `unreachable` instruction executed".into(),
            backtrace: vec!["h".into(), "g".into()],
        })
        .exit_status();
        assert_eq!(trap.0, EXIT_TRAP);
        assert!(trap.1.unwrap().ends_with("wasm backtrace: h <- g"));
        let codes: Vec<u8> = [
            Limit::Memory,
            Limit::Cpu,
            Limit::WallClock,
            Limit::Output,
            Limit::OpenFiles,
        ]
        .into_iter()
        .map(exit_code_for_limit)
        .collect();
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
        assert!(!codes.contains(&EXIT_TRAP) && !codes.contains(&EXIT_KEEP_ERROR));
    }
}
