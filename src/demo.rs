//! `taskmesh demo`: a few thousand tasks with a mix of outcomes, then a summary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use taskmesh::{
    Backoff, Control, Handler, HandlerResult, NewTask, Outcome, QueueConfig, TaskContext, TaskId,
    TaskSystem,
};

struct Noop;
impl Handler for Noop {
    const KIND: &'static str = "noop";
    type Args = serde_json::Value;
    type Output = ();
    async fn perform(&self, _: TaskContext, _: serde_json::Value) -> HandlerResult<()> {
        Ok(Outcome::Succeeded(()))
    }
}

/// Fails its first two attempts, then succeeds.
struct Flaky;
impl Handler for Flaky {
    const KIND: &'static str = "flaky";
    type Args = serde_json::Value;
    type Output = u32;
    async fn perform(&self, ctx: TaskContext, _: serde_json::Value) -> HandlerResult<u32> {
        if ctx.attempt() <= 2 {
            return Err(format!("transient error on attempt {}", ctx.attempt()).into());
        }
        Ok(Outcome::Succeeded(ctx.attempt()))
    }
    fn backoff(&self) -> Backoff {
        Backoff::new(Duration::from_millis(10), Duration::from_millis(100))
    }
}

/// Always fails.
struct Broken;
impl Handler for Broken {
    const KIND: &'static str = "broken";
    type Args = serde_json::Value;
    type Output = ();
    async fn perform(&self, _: TaskContext, _: serde_json::Value) -> HandlerResult<()> {
        Err("the upstream service said no".into())
    }
    fn max_attempts(&self) -> u32 {
        3
    }
    fn backoff(&self) -> Backoff {
        Backoff::new(Duration::from_millis(10), Duration::from_millis(50))
    }
}

/// Panics on every call.
struct Panics;
impl Handler for Panics {
    const KIND: &'static str = "panics";
    type Args = serde_json::Value;
    type Output = ();
    async fn perform(&self, _: TaskContext, _: serde_json::Value) -> HandlerResult<()> {
        panic!("demo: index out of range in user code");
    }
    fn max_attempts(&self) -> u32 {
        2
    }
    fn backoff(&self) -> Backoff {
        Backoff::new(Duration::from_millis(10), Duration::from_millis(50))
    }
}

/// Never finishes; cut off by its 200 ms timeout.
struct Hangs;
impl Handler for Hangs {
    const KIND: &'static str = "hangs";
    type Args = serde_json::Value;
    type Output = ();
    async fn perform(&self, _: TaskContext, _: serde_json::Value) -> HandlerResult<()> {
        std::future::pending().await
    }
    fn timeout(&self) -> Duration {
        Duration::from_millis(200)
    }
    fn max_attempts(&self) -> u32 {
        2
    }
    fn backoff(&self) -> Backoff {
        Backoff::none()
    }
}

/// Sleeps, watching its cancellation token.
struct Slow;
impl Handler for Slow {
    const KIND: &'static str = "slow";
    type Args = u64;
    type Output = ();
    async fn perform(&self, ctx: TaskContext, ms: u64) -> HandlerResult<()> {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(Outcome::Succeeded(())),
            _ = ctx.cancelled() => Err("stopped early".into()),
        }
    }
    fn queue(&self) -> &str {
        "slow"
    }
}

/// The kind of the i-th task: mostly no-ops, with every failure mode mixed in.
fn kind_of(i: usize) -> &'static str {
    match i % 100 {
        0..=69 => "noop",
        70..=79 => "flaky",
        80..=84 => "broken",
        85..=89 => "panics",
        90..=91 => "hangs",
        _ => "slow",
    }
}

pub async fn run(tasks: usize) -> Result<(), Box<dyn std::error::Error>> {
    quiet_demo_panics();
    let system = TaskSystem::builder()
        .namespace("demo")
        .queue(QueueConfig::new("default").workers(2, 20))
        .queue(QueueConfig::new("slow").workers(2, 8))
        .cancel_grace(Duration::from_millis(50))
        .handler(Noop)
        .handler(Flaky)
        .handler(Broken)
        .handler(Panics)
        .handler(Hangs)
        .handler(Slow)
        .start()
        .await?;
    let began = Instant::now();
    let mut ids: Vec<(TaskId, &str)> = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let kind = kind_of(i);
        let args = if kind == "slow" {
            serde_json::json!(100)
        } else {
            serde_json::json!(i)
        };
        ids.push((system.submit(NewTask::new(kind, args)).await?.id, kind));
    }
    let cancelled = cancel_every_other_slow(&system, &ids).await;
    let mut table: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut attempts = 0u64;
    for (id, kind) in &ids {
        let r = system.wait(*id).await?;
        attempts += u64::from(r.attempt);
        let how = match (&r.error, r.state) {
            (Some(e), taskmesh::TaskState::Failed) => format!("failed ({})", e.kind.as_str()),
            (_, s) if r.attempt > 1 && s == taskmesh::TaskState::Succeeded => {
                "succeeded after retry".into()
            }
            (_, s) => s.to_string(),
        };
        *table.entry((kind, how)).or_default() += 1;
    }
    let elapsed = began.elapsed();
    let health = system.health().await;
    print_summary(&table, tasks, attempts, cancelled, elapsed);
    println!("health while running: {:?}", health.status);
    let report = system.shutdown(Duration::from_secs(5)).await;
    println!(
        "shutdown: {} interrupted, {} left queued",
        report.interrupted.len(),
        report.left_queued
    );
    Ok(())
}

/// Cancels half of the slow tasks: some still queued, some already running. Returns how
/// many of each.
async fn cancel_every_other_slow(system: &TaskSystem, ids: &[(TaskId, &str)]) -> (usize, usize) {
    let mut counts = (0, 0);
    for (id, _) in ids.iter().filter(|(_, k)| *k == "slow").step_by(2) {
        match system.cancel(*id, "demo: no longer needed").await {
            Ok(Control::Done) => counts.0 += 1,
            Ok(Control::Requested) => counts.1 += 1,
            Err(_) => {}
        }
    }
    counts
}

fn print_summary(
    table: &BTreeMap<(&str, String), usize>,
    tasks: usize,
    attempts: u64,
    cancelled: (usize, usize),
    elapsed: Duration,
) {
    println!(
        "{tasks} tasks, {attempts} attempts in {:.2} s; cancelled {} while queued and {} while running",
        elapsed.as_secs_f64(),
        cancelled.0,
        cancelled.1
    );
    println!("{:<8} {:<24} {:>6}", "kind", "outcome", "tasks");
    for ((kind, how), n) in table {
        println!("{kind:<8} {how:<24} {n:>6}");
    }
}

/// The demo's panicking handler is expected to panic; keep those out of the terminal.
fn quiet_demo_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
        if !msg.starts_with("demo:") {
            default(info);
        }
    }));
}
