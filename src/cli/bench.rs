//! `taskmesh bench --node URL`: drives a running node over HTTP.

use std::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Client, ClientError};
use crate::bench::Latency;

/// Submits over HTTP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeBenchReport {
    /// Tasks submitted.
    pub tasks: usize,
    /// Concurrent HTTP clients.
    pub concurrency: usize,
    /// Acknowledged submits per second.
    pub submits_per_s: f64,
    /// POST /v1/tasks round trip.
    pub submit_latency_us: Latency,
    /// Submits that failed.
    pub failed: usize,
}

impl std::fmt::Display for NodeBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.submit_latency_us;
        write!(
            f,
            "{} noop submits over HTTP from {} clients: {:.0}/s; latency p50 {:.0} µs, p95 {:.0} µs, p99 {:.0} µs; {} failed",
            self.tasks, self.concurrency, self.submits_per_s, l.p50, l.p95, l.p99, self.failed
        )
    }
}

/// Submits `tasks` `noop` tasks from `concurrency` clients.
pub async fn bench_node(
    client: &Client,
    tasks: usize,
    concurrency: usize,
) -> Result<NodeBenchReport, ClientError> {
    client.get(&["v1", "queues"]).await?;
    let began = Instant::now();
    let per = tasks.div_ceil(concurrency.max(1));
    let joins: Vec<_> = (0..concurrency)
        .map(|c| {
            let client = client.clone();
            let n = per.min(tasks.saturating_sub(c * per));
            tokio::spawn(async move { submit_noops(&client, n).await })
        })
        .collect();
    let mut all = new_histogram();
    let mut failed = 0;
    for j in joins {
        let (h, f) = j.await.expect("a bench client panicked");
        all.add(h).expect("same bounds");
        failed += f;
    }
    Ok(NodeBenchReport {
        tasks,
        concurrency,
        submits_per_s: tasks as f64 / began.elapsed().as_secs_f64(),
        submit_latency_us: Latency::of(&all),
        failed,
    })
}

/// A histogram of nanoseconds up to a minute.
pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// Submits `n` `noop` tasks one after another through `client`: the round trips, and
/// how many failed.
pub(super) async fn submit_noops(client: &Client, n: usize) -> (Histogram<u64>, usize) {
    let mut h = new_histogram();
    let mut failed = 0;
    for i in 0..n {
        let t0 = Instant::now();
        let ok = client
            .post(&["v1", "tasks"], &json!({"kind": "noop", "args": i}))
            .await
            .is_ok();
        failed += usize::from(!ok);
        h.record((t0.elapsed().as_nanos() as u64).max(1)).ok();
    }
    (h, failed)
}
