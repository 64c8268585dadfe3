//! Starting an attempt and settling its outcome against the task's state. Both the worker
//! and the pool (after a worker crash) settle; a settle applies once per attempt.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{AttemptError, AttemptOutcome, FailureKind, Shared, Status, TaskCell};
use crate::queue::QueueShared;
use crate::task::{transition, Event, TaskState};

/// An attempt that has begun.
pub(crate) struct Started {
    pub attempt: u32,
    pub token: CancellationToken,
    /// How long the task waited since it became ready.
    pub waited: Duration,
}

/// Moves a queued task to running. `None` when it is no longer runnable (cancelled or
/// paused while it waited), in which case the queue's counters were already adjusted.
pub(crate) fn begin_attempt(cell: &TaskCell, queue: &QueueShared, now: Instant) -> Option<Started> {
    let mut s = cell.status.lock();
    if matches!(s.state, TaskState::Scheduled | TaskState::Retrying) {
        s.state = TaskState::Pending;
    }
    if !apply(&mut s, Event::Start) {
        return None;
    }
    s.attempt += 1;
    let token = CancellationToken::new();
    s.token = Some(token.clone());
    queue.started();
    Some(Started {
        attempt: s.attempt,
        token,
        waited: now.saturating_duration_since(s.ready_at),
    })
}

/// Applies `outcome` of `attempt` to the task, once: a second settle of the same attempt
/// (the worker and the pool racing after a crash) is ignored.
pub(crate) fn settle(
    shared: &Shared,
    queue: &QueueShared,
    cell: &Arc<TaskCell>,
    attempt: u32,
    outcome: AttemptOutcome,
) {
    let now = Instant::now();
    let mut s = cell.status.lock();
    if s.state != TaskState::Running || s.attempt != attempt {
        return;
    }
    s.token = None;
    s.updated_at = SystemTime::now();
    let outcome = match outcome {
        // A requested cancel wins over whatever the handler did on seeing its token,
        // unless it had already produced a value.
        AttemptOutcome::Succeeded(_) => outcome,
        _ if s.cancel_reason.is_some() => AttemptOutcome::Stopped,
        _ => outcome,
    };
    let requeue = match outcome {
        AttemptOutcome::Succeeded(v) => {
            s.result = Some(v);
            end(&mut s, Event::Succeed)
        }
        AttemptOutcome::Failed(kind, message) => fail(cell, &mut s, kind, message, now),
        AttemptOutcome::Discarded(message) => {
            s.error = Some(AttemptError {
                attempt,
                kind: FailureKind::Failed,
                message,
            });
            end(&mut s, Event::Fail)
        }
        AttemptOutcome::Cancelled(reason) => {
            s.cancel_reason = Some(reason);
            end(&mut s, Event::Cancel)
        }
        AttemptOutcome::Snoozed(d) => {
            apply(&mut s, Event::Snooze);
            s.max_attempts = s.max_attempts.saturating_add(1);
            Requeue::At(now + d)
        }
        AttemptOutcome::Stopped if s.cancel_reason.is_some() => end(&mut s, Event::Cancel),
        AttemptOutcome::Stopped => {
            apply(&mut s, Event::Interrupt);
            Requeue::Now
        }
    };
    let state = s.state;
    if state.is_terminal() {
        s.notify_waiters(cell.task.id);
    }
    if !matches!(requeue, Requeue::No) {
        s.ready_at = now;
    }
    drop(s);
    queue.finished(&cell.task.kind, state);
    tracing::debug!(task_id = %cell.task.id, state = state.as_str(), attempt, "task state changed");
    match requeue {
        Requeue::No => shared.table.ended(cell.task.id, now),
        Requeue::Now => queue.requeue(cell.clone(), None),
        Requeue::At(at) => queue.requeue(cell.clone(), Some(at)),
    }
}

enum Requeue {
    No,
    Now,
    At(Instant),
}

fn fail(
    cell: &TaskCell,
    s: &mut Status,
    kind: FailureKind,
    message: String,
    now: Instant,
) -> Requeue {
    let attempt = s.attempt;
    s.error = Some(AttemptError {
        attempt,
        kind,
        message,
    });
    if attempt >= s.max_attempts {
        return end(s, Event::Fail);
    }
    apply(s, Event::Retry);
    let delay = cell.task.backoff.delay(attempt, &mut rand::rng());
    Requeue::At(now + delay)
}

fn end(s: &mut Status, event: Event) -> Requeue {
    apply(s, event);
    Requeue::No
}

/// Applies a state-machine event; false (and no change) if it is not allowed.
pub(crate) fn apply(s: &mut Status, event: Event) -> bool {
    match transition(s.state, event) {
        Ok(next) => {
            s.state = next;
            true
        }
        Err(_) => false,
    }
}

/// Cancels a task: a waiting one ends now; a running one gets its token fired and is
/// settled as cancelled by its worker.
pub(crate) fn apply_cancel(
    shared: &Shared,
    queue: &QueueShared,
    cell: &Arc<TaskCell>,
    reason: String,
) -> Result<crate::system::Cancellation, crate::error::TaskError> {
    use crate::system::Cancellation;
    let id = cell.task.id;
    let mut s = cell.status.lock();
    match s.state {
        state if state.is_terminal() => Err(crate::error::TaskError::AlreadyTerminal { id, state }),
        TaskState::Running => {
            s.cancel_reason = Some(reason);
            if let Some(t) = &s.token {
                t.cancel();
            }
            Ok(Cancellation::Requested)
        }
        was => {
            apply(&mut s, Event::Cancel);
            s.cancel_reason = Some(reason);
            s.updated_at = SystemTime::now();
            s.notify_waiters(id);
            drop(s);
            if was != TaskState::Paused {
                queue.dequeued();
            }
            if let Some(m) = queue.kind_metrics(&cell.task.kind) {
                m.cancelled.increment(1);
            }
            shared.table.ended(id, Instant::now());
            Ok(Cancellation::Cancelled)
        }
    }
}
