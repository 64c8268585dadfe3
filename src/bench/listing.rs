//! `taskmesh bench --store sqlite --list-page N`: fills a store with N tasks and times a
//! filtered page of 1,000, with the total count.

use crate::store::prelude::*;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::store::{
    EventKind, Life, SqliteStore, StoreError, TaskEvent, TaskFilter, TaskQuery, TaskRecord, Write,
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
pub async fn fill_list_store(store: &SqliteStore, n: u64) -> Result<(), StoreError> {
    let mut i = 0;
    while i < n {
        let batch: Vec<Write> = (i..(i + 10_000).min(n))
            .map(|k| {
                let (r, e) = record(k);
                Write::Create(Box::new(r), e)
            })
            .collect();
        i += batch.len() as u64;
        store.write(batch).await?;
    }
    Ok(())
}

/// The filter of the timed page: a quarter of the states and a quarter of the queues.
pub fn list_page_filter() -> TaskFilter {
    TaskFilter {
        state: Some(TaskState::Succeeded),
        queue: Some("q0".into()),
        ..Default::default()
    }
}

/// Fills `path` with `n` tasks ([`fill_list_store`]) and times 20 page queries.
pub async fn run_list_page(path: &Path, n: u64) -> Result<ListReport, StoreError> {
    let store = SqliteStore::open(path)?;
    let began = Instant::now();
    fill_list_store(&store, n).await?;
    let fill_s = began.elapsed().as_secs_f64();
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
    Ok(ListReport {
        stored: n,
        filter: "state=succeeded, queue=q0".into(),
        total: page.total,
        page: page.tasks.len(),
        p50_ms: times[times.len() / 2],
        max_ms: times[times.len() - 1],
        fill_s,
    })
}

impl std::fmt::Display for ListReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "list page of {} (total {}) where {} out of {} stored: p50 {:.2} ms, max {:.2} ms (filled in {:.1} s)",
            self.page, self.total, self.filter, self.stored, self.p50_ms, self.max_ms, self.fill_s
        )
    }
}
