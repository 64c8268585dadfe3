//! Open loop, the workload of most job-queue benchmarks: C producers submit N no-op tasks
//! without waiting for them (each waits only for its submit's acknowledgement), and the
//! clock stops at the N-th completion, counted by the handler itself (no per-task
//! waiting). With `nodes` above 1 (PostgreSQL), that many task systems share one
//! database, each with its own namespace, node name and store connection, and the
//! producers are split between them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Notify;

use super::error::BenchError;
use super::harness::{baseline, histogram, namespace, Recorder};
use super::open_report::OpenLoopReport;
use super::report::{proc_status_bytes, Latency};
use super::stores::{BenchStore, Opened};
use crate::handler::{Handler, HandlerResult, Outcome};
use crate::store::TaskFilter;
use crate::{NewTask, QueueConfig, TaskContext, TaskState, TaskSystem};

/// How long the bench waits without a single completion before it gives up.
const STALL: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Clone, Debug)]
pub struct OpenLoopConfig {
    /// Tasks in all.
    pub tasks: usize,
    /// Concurrent producers, each submitting its share one acknowledgement at a time.
    pub producers: usize,
    /// Minimum and maximum workers of each node's bench queue.
    pub workers: (usize, usize),
    /// The store.
    pub store: BenchStore,
    /// Task systems sharing the store (more than 1 needs PostgreSQL).
    pub nodes: usize,
}

/// Counts completions and notes when the last one happened.
struct Counter {
    epoch: Instant,
    done: AtomicUsize,
    last_ns: AtomicU64,
    target: usize,
    reached: Notify,
}

impl Counter {
    fn complete(&self) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.last_ns.fetch_max(now, Ordering::Relaxed);
        if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            self.reached.notify_one();
        }
    }

    /// Waits until `expected` tasks completed; fails if none completes for [`STALL`].
    async fn wait(&self, expected: usize) -> Result<(), BenchError> {
        let (mut seen, mut since) = (usize::MAX, Instant::now());
        loop {
            let done = self.done.load(Ordering::Acquire);
            if done >= expected {
                return Ok(());
            }
            if done != seen {
                (seen, since) = (done, Instant::now());
            } else if since.elapsed() > STALL {
                let stalled_s = STALL.as_secs();
                return Err(BenchError::Stalled {
                    expected,
                    completed: done,
                    stalled_s,
                });
            }
            // The notification covers the last completion; the tick covers failed submits.
            let _ = tokio::time::timeout(Duration::from_millis(100), self.reached.notified()).await;
        }
    }
}

/// The no-op handler of the open loop: counts its completion.
struct Count(Arc<Counter>);

impl Handler for Count {
    const KIND: &'static str = "noop";
    type Args = usize;
    type Output = ();

    async fn perform(&self, _ctx: TaskContext, _index: usize) -> HandlerResult<()> {
        self.0.complete();
        Ok(Outcome::Succeeded(()))
    }
}

/// Runs the open loop on a fresh store (a PostgreSQL database is dropped afterwards).
pub async fn run_open_loop(cfg: OpenLoopConfig) -> Result<OpenLoopReport, BenchError> {
    if cfg.tasks == 0 || cfg.producers == 0 || cfg.nodes == 0 || cfg.workers.1 == 0 {
        let why = format!(
            "expected tasks, producers, nodes and workers of at least 1, got {}, {}, {}, {}",
            cfg.tasks, cfg.producers, cfg.nodes, cfg.workers.1
        );
        return Err(BenchError::Invalid(why));
    }
    // How loaded the machine is, in the same run: raw tokio's usual rate here is 3-5 M/s.
    let (baseline_per_s, _) = baseline(cfg.tasks.min(1_000_000), cfg.producers).await;
    let opened = Opened::open(&cfg.store, cfg.nodes).await?;
    let report = measure(&cfg, &opened, baseline_per_s).await;
    let closed = opened.close().await;
    let report = report?;
    closed?;
    Ok(report)
}

async fn start(
    cfg: &OpenLoopConfig,
    opened: &Opened,
    counter: &Arc<Counter>,
) -> Result<Vec<TaskSystem>, BenchError> {
    let mut systems = Vec::with_capacity(cfg.nodes);
    for node in 0..cfg.nodes {
        let builder = TaskSystem::builder()
            .namespace(namespace("open"))
            .queue(
                QueueConfig::new("default")
                    .workers(cfg.workers.0, cfg.workers.1)
                    .bound(cfg.tasks + 1),
            )
            .retention(Duration::from_secs(1), 10_000)
            .handler(Count(counter.clone()));
        match opened.attach(node, builder).start().await {
            Ok(system) => systems.push(system),
            Err(e) => {
                stop(&systems).await;
                return Err(e.into());
            }
        }
    }
    Ok(systems)
}

async fn stop(systems: &[TaskSystem]) {
    for s in systems {
        s.shutdown(Duration::from_secs(5)).await;
    }
}

async fn measure(
    cfg: &OpenLoopConfig,
    opened: &Opened,
    baseline_per_s: f64,
) -> Result<OpenLoopReport, BenchError> {
    let epoch = Instant::now();
    let counter = Arc::new(Counter {
        epoch,
        done: AtomicUsize::new(0),
        last_ns: AtomicU64::new(0),
        target: cfg.tasks,
        reached: Notify::new(),
    });
    let systems = start(cfg, opened, &counter).await?;
    let rooms = rooms(cfg);
    let commits_before = opened.commits();
    let began = epoch.elapsed().as_nanos() as u64;
    let producers = produce(cfg, &systems, epoch, rooms).await;
    let failed: usize = producers.iter().map(|p| p.failed).sum();
    let acked = cfg.tasks - failed;
    let waited = counter.wait(acked).await;
    let produced = merge(producers);
    let end_ns = counter
        .last_ns
        .load(Ordering::Relaxed)
        .max(produced.last_ack_ns);
    let stored_ns = match waited {
        Ok(()) if opened.commits().is_some() => stored(&systems, acked, epoch).await,
        _ => None,
    };
    let commits = opened.commits().zip(commits_before).map(|(a, b)| a - b);
    stop(&systems).await;
    waited?;
    let rate = |ns: u64| acked as f64 / (ns.saturating_sub(began).max(1) as f64 / 1e9);
    Ok(OpenLoopReport {
        tasks: cfg.tasks,
        producers: cfg.producers,
        nodes: cfg.nodes,
        max_workers: cfg.workers.1,
        store: cfg.store.name().into(),
        enqueue_per_s: rate(produced.last_ack_ns),
        end_to_end_per_s: rate(end_ns),
        stored_per_s: stored_ns.map(rate),
        baseline_per_s,
        ack_latency_us: Latency::of(&produced.ack),
        commits,
        handler_runs: counter.done.load(Ordering::Acquire),
        failed: produced.failed,
        first_error: produced.first_error,
        peak_rss_bytes: proc_status_bytes("VmHWM:"),
    })
}

/// What the producers measured, merged.
struct Produced {
    ack: Histogram<u64>,
    failed: usize,
    first_error: Option<String>,
    last_ack_ns: u64,
}

/// What one producer measured.
struct Producer {
    ack: Recorder,
    failed: usize,
    first_error: Option<String>,
    last_ack_ns: u64,
}

/// Room for each producer's samples, made before the clock starts (see [`Recorder`]).
fn rooms(cfg: &OpenLoopConfig) -> Vec<Producer> {
    let per = cfg.tasks.div_ceil(cfg.producers);
    (0..cfg.producers)
        .map(|_| Producer {
            ack: Recorder::with_capacity(per),
            failed: 0,
            first_error: None,
            last_ack_ns: 0,
        })
        .collect()
}

/// Runs the producers, producer `p` on node `p % nodes`, until all have submitted.
async fn produce(
    cfg: &OpenLoopConfig,
    systems: &[TaskSystem],
    epoch: Instant,
    rooms: Vec<Producer>,
) -> Vec<Producer> {
    let per = cfg.tasks.div_ceil(cfg.producers);
    let joins: Vec<_> = rooms
        .into_iter()
        .enumerate()
        .map(|(p, out)| {
            let system = systems[p % systems.len()].clone();
            let range = (p * per).min(cfg.tasks)..((p + 1) * per).min(cfg.tasks);
            tokio::spawn(producer(system, range, epoch, out))
        })
        .collect();
    let mut done = Vec::with_capacity(joins.len());
    for j in joins {
        done.push(j.await.expect("a producer panicked"));
    }
    done
}

/// The producers' samples merged; after the clock stopped (merging is the bench's work).
fn merge(done: Vec<Producer>) -> Produced {
    let mut all = Produced {
        ack: histogram(),
        failed: 0,
        first_error: None,
        last_ack_ns: 0,
    };
    for one in done {
        one.ack.into(&mut all.ack);
        all.failed += one.failed;
        all.first_error = all.first_error.or(one.first_error);
        all.last_ack_ns = all.last_ack_ns.max(one.last_ack_ns);
    }
    all
}

async fn producer(
    system: TaskSystem,
    range: std::ops::Range<usize>,
    epoch: Instant,
    mut out: Producer,
) -> Producer {
    let ns = || epoch.elapsed().as_nanos() as u64;
    for i in range {
        let t0 = ns();
        match system.submit(NewTask::new("noop", i.into())).await {
            Ok(_) => {
                let t1 = ns();
                out.ack.record(t1 - t0);
                out.last_ack_ns = t1;
            }
            Err(e) => {
                out.failed += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    out
}

/// When every end was durable in the store: each node commits what it holds back, then
/// the store counts succeeded tasks, until `expected` (at most [`STALL`]).
async fn stored(systems: &[TaskSystem], expected: usize, epoch: Instant) -> Option<u64> {
    let filter = TaskFilter {
        state: Some(TaskState::Succeeded),
        ..TaskFilter::default()
    };
    let give_up = Instant::now() + STALL;
    while Instant::now() < give_up {
        let mut count = 0;
        for s in systems {
            count = s.count(filter.clone()).await.ok()?;
        }
        if count as usize >= expected {
            return Some(epoch.elapsed().as_nanos() as u64);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}
