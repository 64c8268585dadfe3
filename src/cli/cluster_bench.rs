//! `taskmesh bench --cluster N --store postgres://…`: starts one node, then N nodes joined
//! in a cluster, each on a fresh database, as processes of this binary on 127.0.0.1, and
//! drives them over HTTP, open loop: producers submit `noop` tasks round-robin over the
//! nodes without waiting for them; the clock stops when the store counts the last one
//! succeeded. Reports both runs and the ratio.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Client;
use crate::bench::{BenchDb, BenchError, Latency};

/// One run of the cluster bench.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterRun {
    /// Nodes.
    pub nodes: usize,
    /// Tasks acknowledged.
    pub tasks: usize,
    /// Acknowledged submits per second.
    pub enqueue_per_s: f64,
    /// Tasks per second, from the first submit to the last success.
    pub end_to_end_per_s: f64,
    /// Submit round trips (POST /v1/tasks).
    pub ack_us: Latency,
    /// Submits refused or failed.
    pub failed: usize,
}

/// Both runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterBenchReport {
    /// One node.
    pub one: ClusterRun,
    /// The cluster.
    pub cluster: ClusterRun,
    /// End-to-end throughput of the cluster over one node's.
    pub ratio: f64,
}

impl std::fmt::Display for ClusterRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} node(s): {} tasks, enqueue {:.0}/s, end to end {:.0}/s, ack p50 {:.1} ms p99 {:.1} ms, {} failed",
            self.nodes,
            self.tasks,
            self.enqueue_per_s,
            self.end_to_end_per_s,
            self.ack_us.p50 / 1000.0,
            self.ack_us.p99 / 1000.0,
            self.failed
        )
    }
}

impl std::fmt::Display for ClusterBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.one)?;
        writeln!(f, "{}", self.cluster)?;
        write!(f, "cluster / one node: {:.2}", self.ratio)
    }
}

/// What a run needs.
#[derive(Clone, Debug)]
pub struct ClusterBench {
    /// The admin URL (`postgres://…/postgres`); each run gets a fresh database.
    pub store: String,
    /// Nodes of the cluster run.
    pub nodes: usize,
    /// Tasks per run.
    pub tasks: usize,
    /// Producers in all.
    pub concurrency: usize,
    /// Workers of each node's default queue.
    pub max_workers: usize,
}

/// A node process, killed when dropped.
pub(super) struct NodeProc {
    pub child: Child,
    pub url: String,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one node, then the cluster.
pub async fn bench_cluster(b: ClusterBench) -> Result<ClusterBenchReport, BenchError> {
    let one = run(&b, 1).await?;
    let cluster = run(&b, b.nodes).await?;
    Ok(ClusterBenchReport {
        ratio: cluster.end_to_end_per_s / one.end_to_end_per_s.max(f64::MIN_POSITIVE),
        one,
        cluster,
    })
}

pub(super) fn invalid(why: impl std::fmt::Display) -> BenchError {
    BenchError::Invalid(why.to_string())
}

async fn run(b: &ClusterBench, n: usize) -> Result<ClusterRun, BenchError> {
    let db = BenchDb::create(&b.store).await?;
    let dir =
        std::env::temp_dir().join(format!("taskmesh-cluster-bench-{}-{n}", std::process::id()));
    let result = async {
        let nodes = start_nodes(&dir, &db.url(), n, b.max_workers, "local")?;
        let clients = nodes
            .iter()
            .map(|p| Client::new(&p.url, None).map_err(invalid))
            .collect::<Result<Vec<_>, _>>()?;
        wait_mesh(&clients[0], n).await?;
        drive(b, n, &clients, &db).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    db.drop_db().await?;
    result
}

pub(super) fn start_nodes(
    dir: &Path,
    url: &str,
    n: usize,
    max_workers: usize,
    routing: &str,
) -> Result<Vec<NodeProc>, BenchError> {
    let exe = std::env::current_exe().map_err(invalid)?;
    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect::<Result<_, _>>()?;
    let mut procs = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let home = dir.join(format!("n{i}"));
        std::fs::create_dir_all(&home).map_err(invalid)?;
        let config = home.join("node.toml");
        // One node runs without a mesh: the baseline is a plain node.
        let mesh = match n {
            1 => String::new(),
            _ => format!(
                "[cluster]\nlisten = \"127.0.0.1:{port}\"\n[cluster.routing]\ndefault = \"{routing}\"\n"
            ),
        };
        let toml = format!(
            "[store]\npoll_ms = 100\n{mesh}\
             [[system.queues]]\nname = \"default\"\nmin_workers = {max_workers}\nmax_workers = {max_workers}\nbound = 10000000\n"
        );
        std::fs::write(&config, toml).map_err(invalid)?;
        procs.push(spawn(&exe, &home, &config, url, i)?);
    }
    Ok(procs)
}

fn spawn(
    exe: &PathBuf,
    home: &Path,
    config: &Path,
    url: &str,
    i: usize,
) -> Result<NodeProc, BenchError> {
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(home.join("data"))
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--log",
            "warn",
            "--store",
            url,
        ])
        .args(["--node-name", &format!("bench{i}")])
        .env(
            "TASKMESH_CLUSTER__COOKIE",
            format!("bench-{}", std::process::id()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().map_err(invalid)?;
    let mut line = String::new();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| invalid("node without stdout"))?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(invalid)?;
    let url = line
        .trim()
        .strip_prefix("taskmesh node listening on ")
        .ok_or_else(|| invalid(format!("node {i} did not start: {line:?}")))?
        .to_string();
    Ok(NodeProc { child, url })
}

fn free_port() -> Result<u16, BenchError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(invalid)?;
    Ok(l.local_addr().map_err(invalid)?.port())
}

/// Waits until the first node sees all `n` nodes up (bounded).
pub(super) async fn wait_mesh(client: &Client, n: usize) -> Result<(), BenchError> {
    if n == 1 {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(v) = client.get(&["v1", "cluster"]).await {
            let up = v["nodes"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|n| n["state"] == "up").count());
            if up == n {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(invalid(format!(
                "the {n} nodes did not all come up within 30 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn drive(
    b: &ClusterBench,
    n: usize,
    clients: &[Client],
    db: &BenchDb,
) -> Result<ClusterRun, BenchError> {
    let began = Instant::now();
    let per = b.tasks.div_ceil(b.concurrency.max(1));
    let producers: Vec<_> = (0..b.concurrency)
        .map(|p| {
            let client = clients[p % clients.len()].clone();
            let count = per.min(b.tasks.saturating_sub(p * per));
            tokio::spawn(async move { super::bench::submit_noops(&client, count).await })
        })
        .collect();
    let mut ack = super::bench::new_histogram();
    let mut failed = 0;
    for p in producers {
        let (h, f) = p.await.map_err(invalid)?;
        ack.add(h).map_err(invalid)?;
        failed += f;
    }
    let enqueued = began.elapsed();
    let acknowledged = b.tasks - failed;
    wait_done(db, acknowledged as u64).await?;
    let total = began.elapsed();
    Ok(ClusterRun {
        nodes: n,
        tasks: acknowledged,
        enqueue_per_s: acknowledged as f64 / enqueued.as_secs_f64(),
        end_to_end_per_s: acknowledged as f64 / total.as_secs_f64(),
        ack_us: Latency::of(&ack),
        failed,
    })
}

/// Waits until the store counts `n` successes; gives up after 30 s without progress.
async fn wait_done(db: &BenchDb, n: u64) -> Result<(), BenchError> {
    let client = db.connect_db().await?;
    let (mut last, mut since) = (0u64, Instant::now());
    loop {
        let row = client
            .query_one(
                "SELECT coalesce(sum(n), 0)::int8 FROM task_counts WHERE state = 'succeeded'",
                &[],
            )
            .await
            .map_err(invalid)?;
        let done = u64::try_from(row.get::<_, i64>(0)).unwrap_or_default();
        if done >= n {
            return Ok(());
        }
        if done > last {
            (last, since) = (done, Instant::now());
        } else if since.elapsed() > Duration::from_secs(30) {
            return Err(BenchError::Stalled {
                expected: n as usize,
                completed: done as usize,
                stalled_s: 30,
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
