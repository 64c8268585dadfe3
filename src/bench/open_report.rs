//! Open-loop results and their printing.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::report::Latency;

/// One open-loop run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenLoopReport {
    /// Tasks submitted.
    pub tasks: usize,
    /// Concurrent producers.
    pub producers: usize,
    /// Task systems sharing the store.
    pub nodes: usize,
    /// Maximum workers of each node's queue.
    pub max_workers: usize,
    /// The store ("memory", "sqlite", "postgres").
    pub store: String,
    /// Acknowledged submits per second, until the last acknowledgement.
    pub enqueue_per_s: f64,
    /// Tasks per second, until the last completion (or acknowledgement, if later).
    pub end_to_end_per_s: f64,
    /// Tasks per second until the store had every task's end durable (each node
    /// committed what it held back, then a count of succeeded tasks matched); none
    /// without a store.
    pub stored_per_s: Option<f64>,
    /// Raw tokio units per second (spawn + oneshot, same producers) in the same run: how
    /// loaded the machine was.
    pub baseline_per_s: f64,
    /// Submit call → receipt.
    pub ack_latency_us: Latency,
    /// Store transactions committed during the run, over all nodes.
    pub commits: Option<u64>,
    /// Handler runs counted (equal to the acknowledged tasks when each ran once).
    pub handler_runs: usize,
    /// Submits that failed (should be 0).
    pub failed: usize,
    /// The first failed submit's error.
    pub first_error: Option<String>,
    /// The process's peak resident memory.
    pub peak_rss_bytes: u64,
}

impl fmt::Display for OpenLoopReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.ack_latency_us;
        writeln!(
            f,
            "open loop: {} tasks from {} producers on {} node(s), store {}, up to {} workers per node",
            self.tasks, self.producers, self.nodes, self.store, self.max_workers
        )?;
        writeln!(
            f,
            "  enqueue      {:>10.0} submits/s acknowledged",
            self.enqueue_per_s
        )?;
        writeln!(f, "  end to end   {:>10.0} tasks/s", self.end_to_end_per_s)?;
        if let Some(s) = self.stored_per_s {
            writeln!(f, "  all stored   {s:>10.0} tasks/s (every end durable)")?;
        }
        writeln!(
            f,
            "  raw tokio    {:>10.0} units/s (same run)",
            self.baseline_per_s
        )?;
        writeln!(
            f,
            "  submit→ack   p50 {:.1} µs, p95 {:.1} µs, p99 {:.1} µs",
            a.p50, a.p95, a.p99
        )?;
        if let Some(c) = self.commits {
            let per = c as f64 / self.tasks.max(1) as f64;
            writeln!(f, "  store commits {c} ({per:.3} per task)")?;
        }
        if let Some(e) = &self.first_error {
            writeln!(f, "  first failed submit: {e}")?;
        }
        write!(
            f,
            "  failed {}, handler runs {}, peak RSS {:.1} MiB",
            self.failed,
            self.handler_runs,
            self.peak_rss_bytes as f64 / 1048576.0
        )
    }
}

/// One node, then several on one store, in the same process run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodesReport {
    /// The run on one node.
    pub one: OpenLoopReport,
    /// The run on several nodes.
    pub many: OpenLoopReport,
    /// End-to-end rate of `many` over `one`.
    pub ratio: f64,
}

impl NodesReport {
    /// Pairs the runs.
    pub fn new(one: OpenLoopReport, many: OpenLoopReport) -> Self {
        let ratio = many.end_to_end_per_s / one.end_to_end_per_s.max(f64::MIN_POSITIVE);
        Self { one, many, ratio }
    }
}

impl fmt::Display for NodesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.one)?;
        writeln!(f, "{}", self.many)?;
        write!(
            f,
            "{} nodes / 1 node, end to end: {:.0} / {:.0} tasks/s = {:.2}x",
            self.many.nodes, self.many.end_to_end_per_s, self.one.end_to_end_per_s, self.ratio
        )
    }
}
