//! `taskmesh bench --store sqlite|postgres://… --list-page N`: fills a store with N tasks
//! and times a filtered page of 1,000 with the total count, and single-task reads.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::store::{
    EventKind, Life, Store, StoreError, TaskEvent, TaskFilter, TaskQuery, TaskRecord, Write,
};
use crate::task::{Backoff, Metadata, Priority, Task, TaskId, TaskState};

/// Timings of list queries over a large store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListReport {
    /// Tasks stored.
    pub stored: u64,
    /// The filter of the timed query.
    pub filter: String,
    /// Tasks matching it.
    pub total: u64,
    /// Tasks in the page.
    pub page: usize,
    /// Page query with total, milliseconds: median of the runs.
    pub p50_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Seconds spent filling the store.
    pub fill_s: f64,
    /// Reads of one task by id (1,000 stored tasks, spread over the store), milliseconds:
    /// median.
    pub get_p50_ms: f64,
    /// The same, 99th percentile.
    pub get_p99_ms: f64,
}

const STATES: [TaskState; 4] = [
    TaskState::Succeeded,
    TaskState::Failed,
    TaskState::Pending,
    TaskState::Cancelled,
];

fn record(i: u64) -> (TaskRecord, TaskEvent) {
    let now = SystemTime::now();
    let task = Task {
        id: TaskId::new(),
        kind: ["email", "resize", "report"][(i % 3) as usize].into(),
        args: serde_json::json!({ "n": i }),
        queue: format!("q{}", i % 4).into(),
        priority: Priority::Normal,
        timeout: Duration::from_secs(30),
        max_attempts: 5,
        backoff: Backoff::default(),
        unique_key: None,
        run_at: None,
        metadata: Metadata::default(),
        title: None,
        auto_restart: 0,
        created_at: now,
    };
    let life = Life {
        state: STATES[(i % 4) as usize],
        attempt: 1,
        max_attempts: 5,
        result: None,
        error: None,
        cancel_reason: None,
        progress: None,
        phase: None,
        due_at: None,
        restarts: 0,
        updated_at: now,
        intent: None,
        owner: None,
        ran_on: None,
    };
    let event = TaskEvent {
        task_id: task.id,
        at: now,
        kind: EventKind::Created,
        actor_id: None,
        correlation_id: None,
    };
    (TaskRecord { task, life }, event)
}

/// Adds `n` tasks to `store`: 4 states, 4 queues and 3 kinds, in batches of 10,000.
pub async fn fill_list_store<S: Store + ?Sized>(store: &S, n: u64) -> Result<(), StoreError> {
    fill(store, n).await.map(drop)
}

/// Like [`fill_list_store`]; returns the ids of up to 1,000 of the tasks, spread evenly.
async fn fill<S: Store + ?Sized>(store: &S, n: u64) -> Result<Vec<TaskId>, StoreError> {
    let every = (n / 1000).max(1);
    let mut sample = Vec::new();
    let mut i = 0;
    while i < n {
        let batch: Vec<Write> = (i..(i + 10_000).min(n))
            .map(|k| {
                let (r, e) = record(k);
                if k % every == 0 {
                    sample.push(r.task.id);
                }
                Write::Create(Box::new(r), e)
            })
            .collect();
        i += batch.len() as u64;
        store.write(batch).await?;
    }
    Ok(sample)
}

/// The filter of the timed page: a quarter of the states and a quarter of the queues.
pub fn list_page_filter() -> TaskFilter {
    TaskFilter {
        state: Some(TaskState::Succeeded),
        queue: Some("q0".into()),
        ..Default::default()
    }
}

/// Fills `store` with `n` tasks ([`fill_list_store`]), times 20 page queries and 1,000
/// reads of single tasks.
pub async fn run_list_page<S: Store + ?Sized>(store: &S, n: u64) -> Result<ListReport, StoreError> {
    run_list_page_with(store, n, async { Ok(()) }).await
}

/// [`run_list_page`], running `after_fill` between filling and timing.
async fn run_list_page_with<S: Store + ?Sized>(
    store: &S,
    n: u64,
    after_fill: impl std::future::Future<Output = Result<(), StoreError>>,
) -> Result<ListReport, StoreError> {
    let began = Instant::now();
    let sample = fill(store, n).await?;
    let fill_s = began.elapsed().as_secs_f64();
    after_fill.await?;
    let filter = list_page_filter();
    let mut times = vec![];
    let mut last = None;
    for _ in 0..20 {
        let t0 = Instant::now();
        let page = store
            .list(TaskQuery {
                filter: filter.clone(),
                limit: 1000,
                offset: 0,
            })
            .await?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        last = Some(page);
    }
    times.sort_by(f64::total_cmp);
    let page = last.unwrap_or_default();
    let mut gets = Vec::with_capacity(sample.len());
    for id in sample {
        let t0 = Instant::now();
        store.get(id).await?;
        gets.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    gets.sort_by(f64::total_cmp);
    let at =
        |q: f64| gets.get(((gets.len() as f64 * q) as usize).min(gets.len().saturating_sub(1)));
    Ok(ListReport {
        stored: n,
        filter: "state=succeeded, queue=q0".into(),
        total: page.total,
        page: page.tasks.len(),
        p50_ms: times[times.len() / 2],
        max_ms: times[times.len() - 1],
        fill_s,
        get_p50_ms: at(0.5).copied().unwrap_or_default(),
        get_p99_ms: at(0.99).copied().unwrap_or_default(),
    })
}

/// [`run_list_page`] on a fresh PostgreSQL database made through the admin `url`, dropped
/// afterwards (also when the run fails). The planner's statistics are gathered after the
/// fill, as autovacuum does once that many rows changed.
pub async fn run_list_page_pg(url: &str, n: u64) -> Result<ListReport, super::BenchError> {
    let db = super::pgdb::BenchDb::create(url).await?;
    let report = match crate::store::PgStore::connect_with(db.options()).await {
        Ok(store) => run_list_page_with(&store, n, store.analyze())
            .await
            .map_err(Into::into),
        Err(e) => Err(e.into()),
    };
    db.drop_db().await?;
    report
}

impl std::fmt::Display for ListReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "list page of {} (total {}) where {} out of {} stored: p50 {:.2} ms, max {:.2} ms (filled in {:.1} s); get p50 {:.3} ms, p99 {:.3} ms",
            self.page, self.total, self.filter, self.stored, self.p50_ms, self.max_ms, self.fill_s,
            self.get_p50_ms, self.get_p99_ms
        )
    }
}
