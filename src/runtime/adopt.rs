//! Taking a task from the store into this process: at start (recovery), when a dead
//! process's tasks are rescued, and when waiting tasks are reserved from a shared store.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::{settle, AttemptOutcome, Shared, TaskCell};
use crate::store::TaskRecord;
use crate::task::{FailureKind, TaskState};

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
