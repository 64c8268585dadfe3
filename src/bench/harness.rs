//! Running the benchmark.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::error::BenchError;
use super::report::{proc_status_bytes, BenchReport, Latency, QueuedReport};
use super::stores::{BenchStore, Opened};
use crate::error::SystemError;
use crate::handler::{Handler, HandlerResult, Outcome};
use crate::store::TaskFilter;
use crate::{NewTask, QueueConfig, TaskContext, TaskState, TaskSystem};

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Tasks in all.
    pub tasks: usize,
    /// Concurrent submitters, each submitting and awaiting one task at a time.
    pub concurrency: usize,
    /// Minimum and maximum workers of the bench queue.
    pub workers: (usize, usize),
    /// The store.
    pub store: BenchStore,
    /// Submitters only wait for the acknowledgement, not for the task to end: measures
    /// durable submits (one fsync each when alone).
    pub submit_only: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            tasks: 1_000_000,
            concurrency: 256,
            workers: (2, 20),
            store: BenchStore::Memory,
            submit_only: false,
        }
    }
}

/// The no-op handler: records when its attempt started, by task index.
struct Noop {
    epoch: Instant,
    starts: Arc<Vec<AtomicU64>>,
}

impl Handler for Noop {
    const KIND: &'static str = "noop";
    type Args = usize;
    type Output = ();

    async fn perform(&self, _ctx: TaskContext, index: usize) -> HandlerResult<()> {
        if let Some(slot) = self.starts.get(index) {
            slot.store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        Ok(Outcome::Succeeded(()))
    }
}

/// A namespace no other bench run of this process uses (tests run several at once).
pub(crate) fn namespace(mode: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("bench-{mode}-{}-{n}", std::process::id())
}

/// A latency histogram in nanoseconds, up to a minute.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Samples in nanoseconds, kept raw while the clock runs and put in a histogram after it
/// stops. Room for all of them is made before the clock starts: a histogram per
/// submitter (about 240 KB each at this precision) would be zeroed inside the measured
/// window and every record would miss the cache, the bench's cost counted as the
/// system's.
pub(crate) struct Recorder(Vec<u64>);

impl Recorder {
    /// Room for `n` samples.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Notes one sample (at least 1 ns: the histogram's lowest value).
    pub(crate) fn record(&mut self, ns: u64) {
        self.0.push(ns.max(1));
    }

    /// Adds the samples to `h`.
    pub(crate) fn into(self, h: &mut Histogram<u64>) {
        for ns in self.0 {
            h.record(ns).ok();
        }
    }
}

/// Runs the baseline and then taskmesh, in this process, and reports both. A PostgreSQL
/// store gets a fresh database, dropped afterwards.
pub async fn run(cfg: BenchConfig) -> Result<BenchReport, BenchError> {
    let baseline = baseline(cfg.tasks, cfg.concurrency).await;
    let opened = Opened::open(&cfg.store, 1).await?;
    let report = measure(&cfg, &opened, baseline).await;
    let closed = opened.close().await;
    let report = report?;
    closed?;
    Ok(report)
}

async fn measure(
    cfg: &BenchConfig,
    opened: &Opened,
    (baseline_per_s, baseline_latency): (f64, Histogram<u64>),
) -> Result<BenchReport, BenchError> {
    let epoch = Instant::now();
    let starts: Arc<Vec<AtomicU64>> = Arc::new((0..cfg.tasks).map(|_| AtomicU64::new(0)).collect());
    let builder = TaskSystem::builder()
        .namespace(namespace("closed"))
        .queue(
            QueueConfig::new("default")
                .workers(cfg.workers.0, cfg.workers.1)
                .bound(cfg.tasks + 1),
        )
        .retention(Duration::from_secs(1), 10_000)
        .handler(Noop {
            epoch,
            starts: starts.clone(),
        });
    let system = opened.attach(0, builder).start().await?;
    let per = cfg.tasks.div_ceil(cfg.concurrency);
    let mut rooms: Vec<_> = (0..cfg.concurrency)
        .map(|_| Samples::with_capacity(per))
        .collect();
    let commits_before = opened.commits();
    let began = Instant::now();
    let mut joins = Vec::with_capacity(cfg.concurrency);
    for s in 0..cfg.concurrency {
        let (system, starts) = (system.clone(), starts.clone());
        let range = (s * per).min(cfg.tasks)..((s + 1) * per).min(cfg.tasks);
        let submit_only = cfg.submit_only;
        let out = rooms.pop().expect("one room per submitter");
        joins.push(tokio::spawn(async move {
            submitter(system, range, epoch, starts, submit_only, out).await
        }));
    }
    let mut samples = Vec::with_capacity(joins.len());
    for j in joins {
        samples.push(j.await.expect("submitter panicked"));
    }
    let throughput = cfg.tasks as f64 / began.elapsed().as_secs_f64();
    let commits = opened.commits().zip(commits_before).map(|(a, b)| a - b);
    // Merged after the clock stops: merging is the bench's work, not the system's.
    let all = Merged::of(samples);
    let get_latency_us = time_gets(&system).await;
    system.shutdown(Duration::from_secs(5)).await;
    Ok(BenchReport {
        tasks: cfg.tasks,
        concurrency: cfg.concurrency,
        store: cfg.store.name().into(),
        throughput_per_s: throughput,
        baseline_per_s,
        ratio: throughput / baseline_per_s,
        latency_us: Latency::of(&all.done),
        start_latency_us: Latency::of(&all.start),
        ack_latency_us: Latency::of(&all.ack),
        get_latency_us,
        baseline_latency_us: Latency::of(&baseline_latency),
        commits,
        failed: all.failed,
        peak_rss_bytes: proc_status_bytes("VmHWM:"),
    })
}

/// What one submitter measured.
struct Samples {
    done: Recorder,
    start: Recorder,
    ack: Recorder,
    failed: usize,
}

impl Samples {
    fn with_capacity(n: usize) -> Self {
        Self {
            done: Recorder::with_capacity(n),
            start: Recorder::with_capacity(n),
            ack: Recorder::with_capacity(n),
            failed: 0,
        }
    }
}

/// Every submitter's samples, merged.
struct Merged {
    done: Histogram<u64>,
    start: Histogram<u64>,
    ack: Histogram<u64>,
    failed: usize,
}

impl Merged {
    fn of(samples: Vec<Samples>) -> Self {
        let mut all = Self {
            done: histogram(),
            start: histogram(),
            ack: histogram(),
            failed: 0,
        };
        for s in samples {
            s.done.into(&mut all.done);
            s.start.into(&mut all.start);
            s.ack.into(&mut all.ack);
            all.failed += s.failed;
        }
        all
    }
}

async fn submitter(
    system: TaskSystem,
    range: std::ops::Range<usize>,
    epoch: Instant,
    starts: Arc<Vec<AtomicU64>>,
    submit_only: bool,
    mut out: Samples,
) -> Samples {
    let ns = |epoch: Instant| epoch.elapsed().as_nanos() as u64;
    for i in range {
        let t0 = ns(epoch);
        let ok = match system.submit(NewTask::new("noop", i.into())).await {
            Ok(_) if submit_only => {
                out.ack.record(ns(epoch) - t0);
                true
            }
            Ok(receipt) => {
                out.ack.record(ns(epoch) - t0);
                matches!(system.wait(receipt.id).await, Ok(r) if r.state == TaskState::Succeeded)
            }
            Err(_) => false,
        };
        let t1 = ns(epoch);
        out.failed += usize::from(!ok);
        out.done.record(t1 - t0);
        let s = starts[i].load(Ordering::Relaxed);
        if s > 0 {
            out.start.record(s.saturating_sub(t0));
        }
    }
    out
}

/// Times `get` (status, events and crash history) of up to 1,000 recent tasks.
async fn time_gets(system: &TaskSystem) -> Latency {
    let page = system
        .list(TaskFilter::default(), 1000, 0)
        .await
        .unwrap_or_default();
    let mut h = histogram();
    for t in page.tasks {
        let t0 = Instant::now();
        if system.get(t.id).await.is_ok() {
            h.record((t0.elapsed().as_nanos() as u64).max(1)).ok();
        }
    }
    Latency::of(&h)
}

/// The raw-tokio floor: spawn + oneshot per unit, same submitters.
pub(crate) async fn baseline(tasks: usize, concurrency: usize) -> (f64, Histogram<u64>) {
    let per = tasks.div_ceil(concurrency);
    let rooms: Vec<_> = (0..concurrency)
        .map(|_| Recorder::with_capacity(per))
        .collect();
    let began = Instant::now();
    let joins: Vec<_> = rooms
        .into_iter()
        .enumerate()
        .map(|(s, mut h)| {
            let n = per.min(tasks.saturating_sub(s * per));
            tokio::spawn(async move {
                for _ in 0..n {
                    let t0 = Instant::now();
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    tokio::spawn(async move {
                        let _ = tx.send(());
                    });
                    let _ = rx.await;
                    h.record(t0.elapsed().as_nanos() as u64);
                }
                h
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(joins.len());
    for j in joins {
        samples.push(j.await.expect("baseline submitter panicked"));
    }
    let per_s = tasks as f64 / began.elapsed().as_secs_f64();
    let mut all = histogram();
    for s in samples {
        s.into(&mut all);
    }
    (per_s, all)
}

/// Enqueues `tasks` small tasks in a paused queue and reports the memory per task.
pub async fn run_queued(tasks: usize) -> Result<QueuedReport, SystemError> {
    let system = TaskSystem::builder()
        .namespace(format!("bench-queued-{}", std::process::id()))
        .queue(QueueConfig::new("default").bound(tasks + 1))
        .handler(Noop {
            epoch: Instant::now(),
            starts: Arc::new(Vec::new()),
        })
        .start()
        .await?;
    system
        .pause_queue("default")
        .expect("the default queue exists");
    let before = proc_status_bytes("VmRSS:");
    for i in 0..tasks {
        let task = NewTask::new("noop", serde_json::json!(i));
        system.submit(task).await.expect("the bound leaves room");
    }
    let after = proc_status_bytes("VmRSS:");
    system.shutdown(Duration::from_secs(1)).await;
    Ok(QueuedReport {
        tasks,
        bytes_per_task: after.saturating_sub(before) as f64 / tasks.max(1) as f64,
        rss_before_bytes: before,
        rss_after_bytes: after,
    })
}
