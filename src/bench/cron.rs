//! `taskmesh bench --cron SECONDS [--schedules N] [--store sqlite]`: whether every cron
//! slot fires, and how late, on the real clock.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::error::BenchError;
use super::stores::Opened;
use super::BenchStore;
use crate::error::SystemError;
use crate::handler::{Handler, HandlerResult, Outcome};
use crate::scheduler::ScheduleSpec;
use crate::{NewTask, QueueConfig, TaskContext, TaskSystem};

/// What `taskmesh bench --cron` runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronBench {
    /// Whole seconds measured (after the schedules are added).
    pub seconds: u64,
    /// Schedules firing every second.
    pub schedules: usize,
    /// Where the tasks are stored.
    pub store: BenchStore,
}

/// Lateness of cron slots: from the slot's instant to the start of its task's handler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CronReport {
    /// Schedules firing every second.
    pub schedules: usize,
    /// Slots due in the measured seconds: schedules × seconds.
    pub expected: u64,
    /// Slots measured: those whose handler started.
    pub slots: u64,
    /// Median lateness, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Worst, ms.
    pub max_ms: f64,
}

impl std::fmt::Display for CronReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} every-second schedules: {} of {} slots started; slot → handler start p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.schedules, self.slots, self.expected, self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms
        )
    }
}

/// The slots measured (from, to], and what was seen of them.
struct Seen {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    hist: Histogram<u64>,
    slots: HashSet<String>,
}

/// Records how late each slot's handler starts.
struct Late(Arc<Mutex<Seen>>);

impl Handler for Late {
    const KIND: &'static str = "late";
    type Args = serde_json::Value;
    type Output = ();
    async fn perform(&self, ctx: TaskContext, _: serde_json::Value) -> HandlerResult<()> {
        let now = Utc::now();
        let Some(key) = ctx.correlation_id() else {
            return Ok(Outcome::Succeeded(()));
        };
        let mut seen = self.0.lock();
        match slot_of(key) {
            Some(slot) if slot > seen.from && slot <= seen.to => {
                let late = (now - slot).num_microseconds().unwrap_or(0).max(1) as u64;
                seen.hist.record(late).ok();
                seen.slots.insert(key.to_string());
            }
            _ => {}
        }
        Ok(Outcome::Succeeded(()))
    }
}

/// The slot in `cron:{name}:{rfc3339}`.
fn slot_of(key: &str) -> Option<DateTime<Utc>> {
    let rfc = key.splitn(3, ':').nth(2)?;
    DateTime::parse_from_rfc3339(rfc).ok().map(|t| t.to_utc())
}

/// Adds `schedules` every-second schedules, measures the slots of the next `seconds`
/// whole seconds, and reports how many started and how late. A PostgreSQL store gets a
/// fresh database, dropped afterwards.
pub async fn run_cron(cfg: CronBench) -> Result<CronReport, BenchError> {
    let opened = Opened::open(&cfg.store, 1).await?;
    let measured = measure(&cfg, &opened).await;
    let closed = opened.close().await;
    let report = measured?;
    closed?;
    Ok(report)
}

async fn measure(cfg: &CronBench, opened: &Opened) -> Result<CronReport, BenchError> {
    let hist = Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let seen = Arc::new(Mutex::new(Seen {
        from: DateTime::<Utc>::MAX_UTC,
        to: DateTime::<Utc>::MAX_UTC,
        hist,
        slots: HashSet::new(),
    }));
    let builder = TaskSystem::builder()
        .namespace(format!("bench-cron-{}", std::process::id()))
        .queue(QueueConfig::new("default").workers(4, 20))
        .handler(Late(seen.clone()));
    let system = opened.attach(0, builder).start().await?;
    for i in 0..cfg.schedules {
        let task = NewTask::new("late", serde_json::Value::Null);
        let spec = ScheduleSpec::new(format!("s{i}"), "* * * * * *", task);
        system
            .put_schedule(spec)
            .await
            .map_err(|e| SystemError::Unresponsive(e.to_string()))?;
    }
    let from = Utc::now()
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap_or_else(|_| Utc::now())
        + chrono::Duration::seconds(1);
    let to = from + chrono::Duration::seconds(cfg.seconds as i64);
    {
        let mut seen = seen.lock();
        (seen.from, seen.to) = (from, to);
    }
    let end = to + chrono::Duration::seconds(1);
    tokio::time::sleep((end - Utc::now()).to_std().unwrap_or_default()).await;
    system.shutdown(Duration::from_secs(5)).await;
    let report = report(cfg, &seen.lock());
    Ok(report)
}

fn report(cfg: &CronBench, seen: &Seen) -> CronReport {
    let h = &seen.hist;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    CronReport {
        schedules: cfg.schedules,
        expected: cfg.schedules as u64 * cfg.seconds,
        slots: seen.slots.len() as u64,
        p50_ms: ms(0.5),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        max_ms: h.max() as f64 / 1000.0,
    }
}
