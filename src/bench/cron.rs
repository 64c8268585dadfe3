//! `taskmesh bench --cron SECONDS`: how late cron slots start, on the real clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::SystemError;
use crate::handler::{Handler, HandlerResult, Outcome};
use crate::scheduler::ScheduleSpec;
use crate::{NewTask, TaskContext, TaskSystem};

/// Schedules firing every second during the run.
const SCHEDULES: usize = 20;

/// Lateness of cron slots: from the slot's instant to the start of its task's handler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CronReport {
    /// Slots measured.
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
            "cron slot → handler start over {} slots: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.slots, self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms
        )
    }
}

/// Records how late each slot's handler starts.
struct Late(Arc<Mutex<Histogram<u64>>>);

impl Handler for Late {
    const KIND: &'static str = "late";
    type Args = serde_json::Value;
    type Output = ();
    async fn perform(&self, ctx: TaskContext, _: serde_json::Value) -> HandlerResult<()> {
        let now = Utc::now();
        if let Some(slot) = ctx.correlation_id().and_then(slot_of) {
            let late = (now - slot).num_microseconds().unwrap_or(0).max(1) as u64;
            self.0.lock().record(late).ok();
        }
        Ok(Outcome::Succeeded(()))
    }
}

/// The slot in `cron:{name}:{rfc3339}`.
fn slot_of(key: &str) -> Option<DateTime<Utc>> {
    let rfc = key.splitn(3, ':').nth(2)?;
    DateTime::parse_from_rfc3339(rfc).ok().map(|t| t.to_utc())
}

/// Runs 20 every-second schedules for `seconds` and reports the lateness.
pub async fn run_cron(seconds: u64) -> Result<CronReport, SystemError> {
    let hist = Arc::new(Mutex::new(
        Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
    ));
    let system = TaskSystem::builder()
        .namespace(format!("bench-cron-{}", std::process::id()))
        .handler(Late(hist.clone()))
        .start()
        .await?;
    for i in 0..SCHEDULES {
        let spec = ScheduleSpec::new(
            format!("s{i}"),
            "* * * * * *",
            NewTask::new("late", serde_json::Value::Null),
        );
        system
            .put_schedule(spec)
            .await
            .map_err(|e| SystemError::Unresponsive(e.to_string()))?;
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    system.shutdown(Duration::from_secs(5)).await;
    let h = hist.lock();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    Ok(CronReport {
        slots: h.len(),
        p50_ms: ms(0.5),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
        max_ms: h.max() as f64 / 1000.0,
    })
}
