//! Bench results and their printing.

use std::fmt;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Latency {
    /// Percentiles of a histogram recorded in nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Self {
            p50: us(0.50),
            p95: us(0.95),
            p99: us(0.99),
        }
    }
}

/// One end-to-end run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Tasks run.
    pub tasks: usize,
    /// Concurrent submitters.
    pub concurrency: usize,
    /// The store ("memory").
    pub store: String,
    /// taskmesh tasks per second, end to end.
    pub throughput_per_s: f64,
    /// Raw tokio units per second in the same run.
    pub baseline_per_s: f64,
    /// throughput / baseline.
    pub ratio: f64,
    /// Submit → complete.
    pub latency_us: Latency,
    /// Submit → start of the attempt.
    pub start_latency_us: Latency,
    /// Submit → acknowledged (durable, with a store).
    pub ack_latency_us: Latency,
    /// `get` of a task (status, events, crash history), sampled over 1,000 tasks.
    pub get_latency_us: Latency,
    /// Store transactions committed (group commit: fewer than writes).
    pub commits: Option<u64>,
    /// Submit → complete of the baseline.
    pub baseline_latency_us: Latency,
    /// Tasks that did not succeed (should be 0).
    pub failed: usize,
    /// The process's peak resident memory.
    pub peak_rss_bytes: u64,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = |x: &Latency| {
            format!(
                "p50 {:.1} µs, p95 {:.1} µs, p99 {:.1} µs",
                x.p50, x.p95, x.p99
            )
        };
        writeln!(
            f,
            "tasks {} from {} submitters, store {}",
            self.tasks, self.concurrency, self.store
        )?;
        writeln!(f, "  taskmesh   {:>12.0} tasks/s", self.throughput_per_s)?;
        writeln!(
            f,
            "  raw tokio  {:>12.0} units/s   (ratio {:.3})",
            self.baseline_per_s, self.ratio
        )?;
        writeln!(f, "  submit→ack       {}", l(&self.ack_latency_us))?;
        writeln!(f, "  submit→start     {}", l(&self.start_latency_us))?;
        writeln!(f, "  submit→complete  {}", l(&self.latency_us))?;
        writeln!(f, "  baseline         {}", l(&self.baseline_latency_us))?;
        writeln!(f, "  get              {}", l(&self.get_latency_us))?;
        if let Some(c) = self.commits {
            writeln!(
                f,
                "  store commits    {c} ({:.1} tasks per commit)",
                self.tasks as f64 / c.max(1) as f64
            )?;
        }
        write!(
            f,
            "  failed {}, peak RSS {:.1} MiB",
            self.failed,
            self.peak_rss_bytes as f64 / 1048576.0
        )
    }
}

/// Memory taken by tasks that wait in a queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueuedReport {
    /// Tasks enqueued.
    pub tasks: usize,
    /// Resident memory growth divided by the tasks.
    pub bytes_per_task: f64,
    /// Resident memory before enqueuing.
    pub rss_before_bytes: u64,
    /// Resident memory after.
    pub rss_after_bytes: u64,
}

impl fmt::Display for QueuedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "queued {} tasks: {:.0} bytes per queued task (RSS {:.1} → {:.1} MiB)",
            self.tasks,
            self.bytes_per_task,
            self.rss_before_bytes as f64 / 1048576.0,
            self.rss_after_bytes as f64 / 1048576.0
        )
    }
}

/// A field of /proc/self/status in bytes (Linux); 0 elsewhere.
pub(crate) fn proc_status_bytes(field: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}
