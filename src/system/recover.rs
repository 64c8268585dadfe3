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
    let open = store.open_tasks().await.map_err(SystemError::Store)?;
    for record in open {
        let (task, life) = (record.task, record.life);
        let Some(queue) = shared.queues.get(&*task.queue).cloned() else {
            tracing::warn!(task_id = %task.id, queue = %task.queue, "recovered task's queue is not configured; left in the store");
            report.orphaned += 1;
            continue;
        };
        if !shared.handlers.contains_key(&*task.kind) {
            tracing::warn!(task_id = %task.id, kind = %task.kind, "recovered task's kind has no handler; left in the store");
            report.orphaned += 1;
            continue;
        }
        if let Some(key) = &task.unique_key {
            shared.table.hold_unique(key, task.id);
        }
        let (state, due) = (life.state, life.due_at);
        let cell = Arc::new(TaskCell::from_record(task, life));
        shared.table.insert(cell.clone());
        report.loaded += 1;
        match state {
            TaskState::Running => {
                report.interrupted += 1;
                queue.adopt_running();
                let why = "the process stopped while the attempt ran".to_string();
                settle(
                    shared,
                    &queue,
                    &cell,
                    0,
                    AttemptOutcome::Failed(FailureKind::Crashed, why),
                );
            }
            TaskState::Pending => queue.requeue(cell, None),
            TaskState::Scheduled | TaskState::Retrying => queue.requeue(cell, due.map(instant_of)),
            _ => {}
        }
    }
    Ok(report)
}

/// The tokio instant of a wall-clock time (now if it has passed).
fn instant_of(at: SystemTime) -> Instant {
    Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default()
}
