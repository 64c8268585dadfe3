//! Submitting a task: validation, routing, unique keys, admission, durability, enqueue.
//! Shared by the handle and the cron scheduler.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::handle::Receipt;
use crate::error::SubmitError;
use crate::queue::QueueShared;
use crate::runtime::journal::Journal;
use crate::runtime::{HandlerEntry, Shared, TaskCell};
use crate::store::{EventKind, Write, WriteResult};
use crate::task::{NewTask, Task, TaskId, TaskState};

/// Validates and enqueues a task. With a store, returns only once the task is
/// durable. A full queue refuses at once with [`SubmitError::Overloaded`]; a unique key
/// held by another task returns that task with `duplicate: true`.
pub(crate) async fn submit(shared: &Shared, new: NewTask) -> Result<Receipt, SubmitError> {
    let (queue, entry) = route(shared, &new)?;
    let id = TaskId::new();
    let key = new.unique_key.clone();
    if let Some(existing) = claim(shared, key.as_deref(), id).await? {
        return Ok(Receipt {
            id: existing,
            duplicate: true,
        });
    }
    let release = || {
        if let Some(k) = &key {
            shared.table.release_unique(k);
        }
    };
    if let Err(e) = queue.admit() {
        release();
        return Err(e);
    }
    let (cell, delay) = new_cell(queue, entry, id, new);
    match persist(shared, &cell).await {
        Ok(None) => {}
        Ok(Some(existing)) => {
            queue.dequeued();
            release();
            return Ok(Receipt {
                id: existing,
                duplicate: true,
            });
        }
        Err(e) => {
            queue.dequeued();
            release();
            return Err(e);
        }
    }
    enqueue(shared, queue, cell, delay);
    Ok(Receipt {
        id,
        duplicate: false,
    })
}

fn route<'a>(
    shared: &'a Shared,
    new: &NewTask,
) -> Result<(&'a Arc<QueueShared>, &'a HandlerEntry), SubmitError> {
    if !shared.accepting() {
        return Err(SubmitError::ShuttingDown);
    }
    new.validate(&shared.limits)?;
    let entry = shared
        .handlers
        .get(&new.kind)
        .ok_or_else(|| SubmitError::UnknownKind(new.kind.clone()))?;
    let queue_name = new.queue.as_deref().unwrap_or(&entry.defaults.queue);
    let queue = shared
        .queues
        .get(queue_name)
        .ok_or_else(|| SubmitError::UnknownQueue(queue_name.to_string()))?;
    Ok((queue, entry))
}

/// Claims the unique key for `id`; returns the task that already holds it, here or in
/// the store.
async fn claim(
    shared: &Shared,
    key: Option<&str>,
    id: TaskId,
) -> Result<Option<TaskId>, SubmitError> {
    let Some(key) = key else { return Ok(None) };
    if let Some(existing) = shared.table.claim_unique(key, id) {
        return Ok(Some(existing));
    }
    let Some(store) = shared.journal.store() else {
        return Ok(None);
    };
    let found = store.find_unique(key.to_string()).await;
    if !matches!(found, Ok(None)) {
        shared.table.release_unique(key);
    }
    found.map_err(SubmitError::Store)
}

/// Makes the new task durable. `Some(existing)` when the store refused it as a
/// duplicate of another task.
async fn persist(shared: &Shared, cell: &TaskCell) -> Result<Option<TaskId>, SubmitError> {
    if shared.journal.store().is_none() {
        return Ok(None);
    }
    let actor = cell.task.metadata.actor_id.as_deref();
    let created = Journal::event(&cell.task, EventKind::Created, actor);
    let write = Write::Create(Box::new(cell.record()), created);
    match shared.journal.write_now(vec![write]).await?.first() {
        Some(WriteResult::Duplicate(existing)) => Ok(Some(*existing)),
        _ => Ok(None),
    }
}

/// The cell of a new task, and how long its first attempt waits.
fn new_cell(
    queue: &QueueShared,
    entry: &HandlerEntry,
    id: TaskId,
    new: NewTask,
) -> (Arc<TaskCell>, Option<Duration>) {
    let d = &entry.defaults;
    let max_attempts = new.max_attempts.unwrap_or(d.max_attempts);
    let created_at = SystemTime::now();
    let delay = new
        .run_at
        .and_then(|at| at.duration_since(created_at).ok())
        .filter(|d| !d.is_zero());
    let state = match (new.auto_start, delay) {
        (false, _) => TaskState::Paused,
        (true, Some(_)) => TaskState::Scheduled,
        (true, None) => TaskState::Pending,
    };
    let task = Task {
        id,
        kind: entry.kind.clone(),
        args: new.args,
        queue: queue.name.clone(),
        priority: new.priority.unwrap_or_default(),
        timeout: new.timeout.unwrap_or(d.timeout),
        max_attempts,
        backoff: new.backoff.unwrap_or(d.backoff),
        unique_key: new.unique_key,
        run_at: new.run_at,
        metadata: new.metadata,
        title: new.title,
        auto_restart: new.auto_restart,
        created_at,
    };
    let cell = TaskCell::new(task, state, max_attempts);
    if state == TaskState::Scheduled {
        cell.status.lock().due_at = cell.task.run_at;
    }
    (Arc::new(cell), delay)
}

/// Makes an accepted task visible and queues it (a paused one waits for `resume`).
fn enqueue(
    shared: &Shared,
    queue: &Arc<QueueShared>,
    cell: Arc<TaskCell>,
    delay: Option<Duration>,
) {
    shared.table.insert(cell.clone());
    queue.metrics.submitted.increment(1);
    tracing::debug!(task_id = %cell.task.id, kind = %cell.task.kind, queue = %queue.name, "task submitted");
    if cell.status.lock().state == TaskState::Paused {
        queue.dequeued();
        return;
    }
    queue.push(cell, delay.map(|d| Instant::now() + d));
}
