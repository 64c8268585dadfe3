//! `taskmesh bench --cron SECS --schedules N --cluster 3 --store postgres://…`: three nodes
//! on a fresh database, joined in a cluster; `N` schedules firing every second for `SECS`
//! seconds; then the cron leader is killed (SIGKILL). Reports the lateness from each
//! slot to its task's start (from the database's `started` events) while one leader
//! fires, and the failover: from the kill to the first slot a new leader fired.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cluster_bench::{invalid, start_nodes, wait_mesh, NodeProc};
use super::Client;
use crate::bench::{BenchDb, BenchError};

/// What the run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterCronReport {
    /// Nodes.
    pub nodes: usize,
    /// Schedules, each firing every second.
    pub schedules: usize,
    /// Slots that started while one leader fired (after a second of warm-up).
    pub slots: u64,
    /// Slots due in that time, at one per schedule per second.
    pub expected: u64,
    /// Slot to start, in ms: median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The worst.
    pub max_ms: f64,
    /// Slot to the end of the task's attempt (a `noop`: an upper bound of the handler's
    /// start, which comes after the claim is won), in ms: median.
    pub end_p50_ms: f64,
    /// 99th percentile.
    pub end_p99_ms: f64,
    /// Workers per node.
    pub workers: usize,
    /// The routing policy of the run.
    pub routing: String,
    /// From the leader's kill to the first slot a new leader fired, in ms.
    pub failover_ms: f64,
    /// The slots fired twice (must be 0).
    pub duplicates: u64,
}

impl std::fmt::Display for ClusterCronReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} nodes of {} workers (routing {}), {} every-second schedules: {} of {} slots started; slot -> start p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; slot -> end p50 {:.2} ms, p99 {:.2} ms; leader killed: a new leader fired {:.0} ms later; {} slots fired twice",
            self.nodes, self.workers, self.routing, self.schedules, self.slots, self.expected, self.p50_ms, self.p99_ms, self.max_ms, self.end_p50_ms, self.end_p99_ms, self.failover_ms, self.duplicates
        )
    }
}

/// What the run needs.
#[derive(Clone, Debug)]
pub struct ClusterCronBench {
    /// The admin URL (`postgres://…/postgres`); the run gets a fresh database.
    pub store: String,
    /// Nodes.
    pub nodes: usize,
    /// Schedules.
    pub schedules: usize,
    /// Seconds of firing before the kill.
    pub secs: u64,
    /// Workers of each node's default queue.
    pub workers: usize,
    /// Where the leader's cron tasks start (`[cluster.routing] default`): `local` runs
    /// them on the leader, `round_robin` or `least_loaded` spreads them.
    pub routing: String,
}

/// Runs the bench on a fresh database, dropped afterwards.
pub async fn bench_cluster_cron(b: ClusterCronBench) -> Result<ClusterCronReport, BenchError> {
    let db = BenchDb::create(&b.store).await?;
    let dir = std::env::temp_dir().join(format!("taskmesh-cron-bench-{}", std::process::id()));
    let result = run(&b, &db, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    db.drop_db().await?;
    result
}

fn now_ns() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

async fn run(
    b: &ClusterCronBench,
    db: &BenchDb,
    dir: &Path,
) -> Result<ClusterCronReport, BenchError> {
    let mut nodes = start_nodes(dir, &db.url(), b.nodes, b.workers, &b.routing)?;
    let clients = nodes
        .iter()
        .map(|p| Client::new(&p.url, None).map_err(invalid))
        .collect::<Result<Vec<_>, _>>()?;
    wait_mesh(&clients[0], b.nodes).await?;
    for i in 0..b.schedules {
        let spec = json!({"cron": "* * * * * *", "task": {"kind": "noop"}});
        let url = clients[i % clients.len()]
            .url(&["v1", "schedules", &format!("s{i:04}")], &[])
            .map_err(invalid)?;
        clients[i % clients.len()]
            .call(Method::PUT, url, Some(&spec))
            .await
            .map_err(invalid)?;
    }
    let from = now_ns() + 1_000_000_000;
    tokio::time::sleep(Duration::from_secs(b.secs + 1)).await;
    let to = now_ns();
    let leader = leader(&clients[0]).await?;
    let killed = now_ns();
    kill(&mut nodes, leader);
    let failover_ms = failover(db, killed).await?;
    let mut report = lateness(db, from, to).await?;
    report.nodes = b.nodes;
    report.workers = b.workers;
    report.routing = b.routing.clone();
    report.schedules = b.schedules;
    report.expected = b.schedules as u64 * ((to - from) / 1_000_000_000) as u64;
    report.failover_ms = failover_ms;
    Ok(report)
}

/// The node index of the cron leader, from `/v1/cluster`.
async fn leader(client: &Client) -> Result<usize, BenchError> {
    let v = client.get(&["v1", "cluster"]).await.map_err(invalid)?;
    let name = v["cron_leader"]["node"]
        .as_str()
        .ok_or_else(|| invalid(format!("no cron leader in {v}")))?;
    name.strip_prefix("bench")
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| invalid(format!("unexpected leader {name:?}")))
}

fn kill(nodes: &mut [NodeProc], i: usize) {
    let _ = nodes[i].child.kill();
    let _ = nodes[i].child.wait();
}

/// Waits for the first task created after `killed` (ns), at most 60 s; its delay in ms.
async fn failover(db: &BenchDb, killed: i64) -> Result<f64, BenchError> {
    let client = db.connect_db().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let row = client
            .query_one(
                "SELECT min(at) FROM events WHERE type = 'created' AND at > $1",
                &[&killed],
            )
            .await
            .map_err(invalid)?;
        if let Some(at) = row.get::<_, Option<i64>>(0) {
            return Ok((at - killed) as f64 / 1e6);
        }
        if std::time::Instant::now() > deadline {
            return Err(invalid("no slot fired within 60 s of the leader's kill"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Percentiles (p50, p99, max) in ms of the time from each slot in `[from, to)` (ns)
/// to its task's first event of type `event`.
async fn late_to(
    client: &tokio_postgres::Client,
    event: &str,
    from: i64,
    to: i64,
) -> Result<(i64, f64, f64, f64), BenchError> {
    let sql = "WITH s AS ( \
          SELECT (extract(epoch FROM substring(t.unique_key FROM '^cron:s[0-9]+:(.*)$')::timestamptz) * 1e9)::int8 \
              AS slot, min(e.at) AS at FROM tasks t JOIN events e ON e.task = t.id AND e.type = $3 \
          WHERE t.unique_key LIKE 'cron:%' GROUP BY t.id), \
        w AS (SELECT (at - slot) / 1e6 AS late FROM s WHERE slot >= $1 AND slot < $2) \
        SELECT count(*), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY late), 0), \
               coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY late), 0), \
               coalesce(max(late), 0)::float8 FROM w";
    let row = client
        .query_one(sql, &[&from, &to, &event])
        .await
        .map_err(invalid)?;
    Ok((row.get(0), row.get(1), row.get(2), row.get(3)))
}

/// Slot-to-start and slot-to-end lateness of the slots in `[from, to)` (ns), and slots
/// fired twice.
async fn lateness(db: &BenchDb, from: i64, to: i64) -> Result<ClusterCronReport, BenchError> {
    let client = db.connect_db().await?;
    let (slots, p50_ms, p99_ms, max_ms) = late_to(&client, "started", from, to).await?;
    let (_, end_p50_ms, end_p99_ms, _) = late_to(&client, "succeeded", from, to).await?;
    let dup = client
        .query_one(
            "SELECT count(*) FROM (SELECT unique_key FROM tasks WHERE unique_key LIKE 'cron:%' \
             GROUP BY unique_key HAVING count(*) > 1) d",
            &[],
        )
        .await
        .map_err(invalid)?;
    Ok(ClusterCronReport {
        nodes: 0,
        schedules: 0,
        slots: slots as u64,
        expected: 0,
        p50_ms,
        p99_ms,
        max_ms,
        end_p50_ms,
        end_p99_ms,
        workers: 0,
        routing: String::new(),
        failover_ms: 0.0,
        duplicates: dup.get::<_, i64>(0) as u64,
    })
}
