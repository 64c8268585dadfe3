//! Rebuilding a system's state from its store at start.
//!
//! - A task that was running when the process died is settled as a crashed attempt, so
//!   it runs again (at-least-once) unless that was its last attempt, and the crash goes
//!   into its history (auto-restart applies).
//! - Pending tasks are queued; scheduled and retrying tasks are queued for their time;
//!   paused tasks stay paused.
//! - Tasks whose queue or kind is no longer configured stay in the store, untouched, and
//!   are counted in the report.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use crate::error::SystemError;
use crate::runtime::{settle, AttemptOutcome, FailureKind, Shared, TaskCell};
use crate::store::TaskRecord;
use crate::task::TaskState;

/// What recovery found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Open tasks loaded.
    pub loaded: usize,
    /// Tasks that were running when the process stopped.
    pub interrupted: usize,
    /// Tasks left in the store because their queue or kind is not configured.
    pub orphaned: usize,
}

pub(super) async fn recover(shared: &Arc<Shared>) -> Result<Recovery, SystemError> {
    let mut report = Recovery::default();
    let Some(store) = shared.journal.store() else {
        return Ok(report);
    };
    if store.shared() {
        // Other processes' open tasks are theirs. This process's earlier incarnations
        // are dead: the coordinator rescues their tasks with the others' at its first
        // tick, and reserves waiting tasks as workers are free.
        return Ok(report);
    }
    let open = store.open_tasks().await.map_err(SystemError::Store)?;
    for record in open {
        match adopt(shared, record, "the process stopped while the attempt ran") {
            Adopted::Orphan => report.orphaned += 1,
            Adopted::Interrupted => {
                report.loaded += 1;
                report.interrupted += 1;
            }
            Adopted::Queued | Adopted::Held => report.loaded += 1,
        }
    }
    Ok(report)
}

/// What became of a task taken from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Adopted {
    /// Its queue or kind is not configured here: left in the store.
    Orphan,
    /// It was running: settled as a crashed attempt.
    Interrupted,
    /// Queued (now or for its due time).
    Queued,
    /// Kept as it is (paused).
    Held,
}

/// Takes a task from the store into this process: a running one (its process died) is
/// settled as a crashed attempt with `why`, fenced by its stored attempt and owner, so
/// it retries, auto-restarts or fails; a waiting one is queued for its time.
pub(crate) fn adopt(shared: &Shared, record: TaskRecord, why: &str) -> Adopted {
    let (task, life) = (record.task, record.life);
    let Some(queue) = shared.queues.get(&*task.queue).cloned() else {
        tracing::warn!(task_id = %task.id, queue = %task.queue, "task's queue is not configured here; left in the store");
        return Adopted::Orphan;
    };
    if !shared.handlers.contains_key(&*task.kind) {
        tracing::warn!(task_id = %task.id, kind = %task.kind, "task's kind has no handler here; left in the store");
        return Adopted::Orphan;
    }
    if let Some(key) = &task.unique_key {
        shared.table.hold_unique(key, task.id);
    }
    let (state, due) = (life.state, life.due_at);
    let cell = Arc::new(TaskCell::from_record(task, life));
    shared.table.insert(cell.clone());
    match state {
        TaskState::Running => {
            queue.adopt_running();
            let outcome = AttemptOutcome::Failed(FailureKind::Crashed, why.to_string());
            settle(shared, &queue, &cell, 0, outcome);
            Adopted::Interrupted
        }
        TaskState::Pending => {
            queue.requeue(cell, None);
            Adopted::Queued
        }
        TaskState::Scheduled | TaskState::Retrying => {
            queue.requeue(cell, due.map(instant_of));
            Adopted::Queued
        }
        _ => Adopted::Held,
    }
}

/// The tokio instant of a wall-clock time (now if it has passed).
fn instant_of(at: SystemTime) -> Instant {
    Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default()
}
