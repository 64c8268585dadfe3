//! A task and its mutable status, shared between the table, the queue and the worker.

use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::store::{Life, TaskRecord};
use crate::task::{AttemptError, Priority, Progress, Task, TaskId, TaskState};

/// How a task ended, as delivered to `submit_and_wait`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task.
    pub id: TaskId,
    /// Its terminal state.
    pub state: TaskState,
    /// Attempts made.
    pub attempt: u32,
    /// The handler's value, when it succeeded.
    pub result: Option<serde_json::Value>,
    /// The last attempt's error, when one failed.
    pub error: Option<AttemptError>,
    /// Why it was cancelled, when it was.
    pub cancel_reason: Option<String>,
}

/// A snapshot of a task as a caller sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The task's id.
    pub id: TaskId,
    /// Its kind.
    pub kind: String,
    /// Its arguments.
    pub args: serde_json::Value,
    /// Its queue.
    pub queue: String,
    /// Its priority.
    pub priority: Priority,
    /// Its state now.
    pub state: TaskState,
    /// Attempts started so far.
    pub attempt: u32,
    /// Attempts allowed (a snooze adds one).
    pub max_attempts: u32,
    /// The handler's value, when it succeeded.
    pub result: Option<serde_json::Value>,
    /// The last attempt's error.
    pub error: Option<AttemptError>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// The last progress report.
    pub progress: Option<Progress>,
    /// Its title.
    pub title: Option<String>,
    /// Its unique key (for a cron task, `cron:{schedule}:{slot}`).
    pub unique_key: Option<String>,
    /// Its correlation id.
    pub correlation_id: Option<String>,
    /// Who created it.
    pub created_by: Option<String>,
    /// The workflow phase its handler last set.
    pub phase: Option<String>,
    /// The worker running it now (informational).
    pub worker: Option<String>,
    /// The node of its latest attempt, on a store several nodes share.
    pub node: Option<String>,
    /// Automatic restarts used after crashes.
    pub restarts: u32,
    /// When it was accepted.
    pub created_at: SystemTime,
    /// When its state last changed.
    pub updated_at: SystemTime,
}

/// The mutable part of a task: the persisted [`Life`] plus runtime-only fields.
pub(crate) struct Status {
    pub life: Life,
    /// When the task last became ready to run; the base of submit→start latency.
    pub ready_at: Instant,
    /// Fires to stop the running attempt.
    pub token: Option<CancellationToken>,
    /// The worker running it (its name is shared, not copied per attempt).
    pub worker: Option<Arc<str>>,
    /// Runs of the handler begun in this process. An attempt is a run that ended by its
    /// own outcome (a value, an error, a panic, a timeout, a crash); a run stopped by a
    /// pause, a restart or a graceful shutdown is not one and gives its attempt number
    /// back. Settles are fenced by the run, which never goes back.
    pub run: u64,
    /// Told the task's result once its end is durable.
    pub waiters: Vec<oneshot::Sender<Option<TaskResult>>>,
    /// The task ended but its end is not durable yet: a caller waiting now joins
    /// `waiters` instead of being answered at once.
    pub end_pending: bool,
    /// The task ended but the write of its end failed: it is not durable (waiters are
    /// told so), and the task runs again after a restart.
    pub end_lost: bool,
    /// While an operator command's write is in flight: the last durable [`Life`], which
    /// readers see until the write is durable, and which comes back if it fails.
    pub committed: Option<Box<Life>>,
    /// A stop request's write is in flight (see `ops`): other commands are refused as
    /// busy until it is durable or failed.
    pub requesting: bool,
    /// The queue let go of the task while a command's write was in flight (a worker
    /// found it not runnable); a failed command puts it back.
    pub released: bool,
    /// The store refused the claim of an attempt that had begun here (see
    /// `settle::begin_attempt`): the task is no longer this copy's to run. Its attempt
    /// stops, its outcome is dropped, and the copy is forgotten; the store's row is
    /// adopted again from the store if it is still held here.
    pub stale: bool,
}

impl std::ops::Deref for Status {
    type Target = Life;
    fn deref(&self) -> &Life {
        &self.life
    }
}

impl std::ops::DerefMut for Status {
    fn deref_mut(&mut self) -> &mut Life {
        &mut self.life
    }
}

/// A task and its status.
pub(crate) struct TaskCell {
    pub task: Task,
    pub status: Mutex<Status>,
}

impl TaskCell {
    pub fn new(task: Task, state: TaskState, max_attempts: u32) -> Self {
        let life = Life {
            state,
            attempt: 0,
            max_attempts,
            result: None,
            error: None,
            cancel_reason: None,
            progress: None,
            phase: None,
            due_at: None,
            restarts: 0,
            updated_at: task.created_at,
            intent: None,
            owner: None,
            ran_on: None,
        };
        Self::from_record(task, life)
    }

    /// A cell for a task loaded from a store.
    pub fn from_record(task: Task, life: Life) -> Self {
        Self {
            task,
            status: Mutex::new(Status {
                life,
                ready_at: Instant::now(),
                token: None,
                worker: None,
                run: 0,
                waiters: Vec::new(),
                end_pending: false,
                end_lost: false,
                committed: None,
                requesting: false,
                released: false,
                stale: false,
            }),
        }
    }

    pub fn snapshot(&self) -> TaskStatus {
        let s = self.status.lock();
        TaskStatus::of(
            &self.task,
            s.durable_life(),
            s.worker.as_deref().map(str::to_owned),
        )
    }

    pub fn record(&self) -> TaskRecord {
        TaskRecord {
            task: self.task.clone(),
            life: self.status.lock().durable_life().clone(),
        }
    }
}

impl TaskStatus {
    /// The status of a task from its record (and the worker running it, if live).
    pub fn of(task: &Task, life: &Life, worker: Option<String>) -> Self {
        TaskStatus {
            id: task.id,
            kind: task.kind.to_string(),
            args: task.args.clone(),
            queue: task.queue.to_string(),
            priority: task.priority,
            title: task.title.clone(),
            unique_key: task.unique_key.clone(),
            correlation_id: task.metadata.correlation_id.clone(),
            created_by: task.metadata.actor_id.clone(),
            state: life.state,
            attempt: life.attempt,
            max_attempts: life.max_attempts,
            result: life.result.clone(),
            error: life.error.clone(),
            cancel_reason: life.cancel_reason.clone(),
            progress: life.progress.clone(),
            phase: life.phase.clone(),
            worker,
            node: life.ran_on.clone(),
            restarts: life.restarts,
            created_at: task.created_at,
            updated_at: life.updated_at,
        }
    }
}

impl Status {
    /// What readers see: the last durable life while a command's write is in flight.
    pub fn durable_life(&self) -> &Life {
        self.committed.as_deref().unwrap_or(&self.life)
    }

    pub fn result_of(&self, id: TaskId) -> TaskResult {
        TaskResult {
            id,
            state: self.state,
            attempt: self.attempt,
            result: self.result.clone(),
            error: self.error.clone(),
            cancel_reason: self.cancel_reason.clone(),
        }
    }
}
