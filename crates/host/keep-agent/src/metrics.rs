//! Counters and gauges, served as Prometheus text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub created: AtomicU64,
    pub failed: AtomicU64,
    pub killed: AtomicU64,
    pub completed: AtomicU64,
    pub refused: AtomicU64,
    pub relayed_bytes: AtomicU64,
    /// Connections closed at accept: over the global or per-peer cap.
    pub connections_refused: AtomicU64,
    /// Keeps ended by the agent: their exec had ended, or a deadline passed.
    pub reaped: AtomicU64,
}

impl Metrics {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text; `running` is the current number of Keeps, `connections`
    /// the number of open connections.
    pub fn render(&self, running: usize, connections: usize) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            "keep_agent_keeps_created_total",
            "Keeps created (state 1).",
            &self.created,
        );
        counter(
            "keep_agent_keeps_failed_total",
            "Keeps that could not be created or failed before their workload ended.",
            &self.failed,
        );
        counter(
            "keep_agent_keeps_killed_total",
            "Keeps terminated by a tenant, the admin, a limit or shutdown.",
            &self.killed,
        );
        counter(
            "keep_agent_keeps_completed_total",
            "Keeps whose workload ran to its end.",
            &self.completed,
        );
        counter(
            "keep_agent_requests_refused_total",
            "Requests refused (authentication, ownership, limits).",
            &self.refused,
        );
        counter(
            "keep_agent_relayed_bytes_total",
            "Sealed bytes relayed from Keeps to tenants.",
            &self.relayed_bytes,
        );
        counter(
            "keep_agent_connections_refused_total",
            "Connections closed at accept, over the global or per-peer connection cap.",
            &self.connections_refused,
        );
        counter(
            "keep_agent_keeps_reaped_total",
            "Keeps the agent ended because their exec had ended or a deadline passed (no challenge, no payload).",
            &self.reaped,
        );
        let _ = writeln!(
            out,
            "# HELP keep_agent_keeps_running Keeps that exist now.\n# TYPE keep_agent_keeps_running gauge\nkeep_agent_keeps_running {running}"
        );
        let _ = writeln!(
            out,
            "# HELP keep_agent_connections_open Connections open now.\n# TYPE keep_agent_connections_open gauge\nkeep_agent_connections_open {connections}"
        );
        out
    }
}

/// Per-Keep gauges, labelled by Keep id and backend (no tenant names): what the
/// host measures of each running Keep.
pub fn per_keep(views: &[crate::registry::KeepView]) -> String {
    let mut out = String::new();
    type Pick = fn(&keep_host::KeepFigures) -> Option<u64>;
    let gauges: [(&str, &str, Pick); 5] = [
        (
            "keep_agent_keep_cpu_milliseconds",
            "CPU time of the Keep's program (the exec, or the VMM with its guest).",
            |f| f.cpu_ms,
        ),
        (
            "keep_agent_keep_peak_memory_bytes",
            "Most private resident memory the host saw the Keep's program use.",
            |f| Some(f.peak_memory_bytes),
        ),
        (
            "keep_agent_keep_output_bytes",
            "Output relayed for the Keep (sealed records).",
            |f| Some(f.output_bytes),
        ),
        (
            "keep_agent_keep_open_files",
            "Descriptors the Keep's program holds.",
            |f| f.open_files,
        ),
        (
            "keep_agent_keep_host_calls",
            "Host calls of a KVM Keep's guest (known at its end).",
            |f| f.host_calls,
        ),
    ];
    for (name, help, pick) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for v in views {
            if let Some(value) = v.figures.as_ref().and_then(pick) {
                let _ = writeln!(
                    out,
                    "{name}{{keep=\"{}\",backend=\"{}\"}} {value}",
                    v.id, v.backend
                );
            }
        }
    }
    out
}
