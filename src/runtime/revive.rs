//! An operator's retry and delete of ended tasks.
//!
//! A retry gives a failed or cancelled task one more attempt: its row goes back to
//! `pending` by a write fenced by the ended row as read (state, attempt, owner), so of two
//! retries (or a retry and a delete) racing on any process only one wins, and its
//! `restarted` event names who retried it. On a store one process uses, the task is then
//! taken into this process like a recovered one; on a store several processes share it
//! goes back to the shared pool, unheld, and the others are hinted.
//!
//! A delete removes ended tasks from the store ([`TaskStore::delete_ended`]) and from
//! memory; a task that has not ended is never deleted.
//!
//! [`TaskStore::delete_ended`]: crate::store::TaskStore::delete_ended

use std::time::SystemTime;

use super::adopt::adopt;
use super::journal::Journal;
use super::ops::Control;
use super::Shared;
use crate::error::TaskError;
use crate::store::{EventKind, Fence, States, TaskRecord, Write, WriteResult};
use crate::task::{Event, TaskId, TaskState, TransitionError};

/// Retries ended task `id` on behalf of `actor` (see the module docs).
pub(crate) async fn retry(
    shared: &Shared,
    id: TaskId,
    actor: Option<&str>,
) -> Result<Control, TaskError> {
    let record = read(shared, id).await?.ok_or(TaskError::NotFound(id))?;
    let was = record.life.clone();
    if !matches!(was.state, TaskState::Failed | TaskState::Cancelled) {
        let event = Event::Retry;
        return Err(TransitionError {
            from: was.state,
            event,
        }
        .into());
    }
    let mut life = was.clone();
    life.state = TaskState::Pending;
    life.max_attempts = life.max_attempts.max(life.attempt + 1);
    (life.result, life.cancel_reason, life.intent) = (None, None, None);
    (life.due_at, life.owner, life.progress) = (None, None, None);
    life.updated_at = SystemTime::now();
    let event = Journal::event(&record.task, EventKind::Restarted, actor);
    let fence = Fence::new(States::one(was.state), was.attempt, was.owner.clone());
    let write = Write::fenced(id, life.clone(), event, fence);
    let results = shared.journal.write_now(vec![write]).await;
    if results.map_err(TaskError::Store)?.first() == Some(&WriteResult::Fenced) {
        return Err(TaskError::Conflict(id));
    }
    let record = TaskRecord {
        task: record.task,
        life,
    };
    match shared.journal.store() {
        Some(store) if shared.journal.shared() => {
            // A hint only hurries the others: their polls find the task anyway.
            let _ = store.notify(vec![record.task.queue.to_string()]).await;
        }
        _ => {
            if let Some(old) = shared.table.get(&id) {
                shared.table.forget(&old);
            }
            adopt(shared, record, "retried");
        }
    }
    Ok(Control::Done)
}

/// Deletes the ended tasks among `ids` from the store and from memory; returns those
/// deleted. Without a store, the ended tasks this process holds in memory go.
pub(crate) async fn delete_ended(
    shared: &Shared,
    ids: Vec<TaskId>,
) -> Result<Vec<TaskId>, TaskError> {
    let gone = match shared.journal.store() {
        Some(store) => store.delete_ended(ids).await.map_err(TaskError::Store)?,
        None => ids
            .into_iter()
            .filter(|id| {
                let cell = shared.table.get(id);
                cell.is_some_and(|c| c.status.lock().state.is_terminal())
            })
            .collect(),
    };
    for id in &gone {
        if let Some(cell) = shared.table.get(id) {
            if cell.status.lock().state.is_terminal() {
                shared.table.forget(&cell);
            }
        }
    }
    Ok(gone)
}

/// The task's row: from the store, or from memory without one.
async fn read(shared: &Shared, id: TaskId) -> Result<Option<TaskRecord>, TaskError> {
    match shared.journal.store() {
        Some(store) => store.get(id).await.map_err(TaskError::Store),
        None => Ok(shared.table.get(&id).map(|c| c.record())),
    }
}
