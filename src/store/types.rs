//! The data a store keeps: events, task records, crashes, queries.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Fence, Owner};
use crate::task::{AttemptError, FailureKind, Progress, Task, TaskId, TaskState};

/// What happened to a task. Stored as JSON with a `type` tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The task was accepted.
    Created,
    /// An attempt started.
    Started {
        /// Its number.
        attempt: u32,
        /// The worker running it (informational; actor ids are never used as keys).
        worker: Option<String>,
    },
    /// The handler reported progress (and possibly a phase).
    Progress {
        /// 0 to 100.
        percent: u8,
        /// What it is doing.
        message: String,
        /// The workflow phase, if the handler set one.
        phase: Option<String>,
    },
    /// An attempt failed.
    AttemptFailed {
        /// The attempt's error.
        error: AttemptError,
    },
    /// The next attempt is due at `at`.
    RetryScheduled {
        /// The attempt that will run.
        attempt: u32,
        /// When.
        at: SystemTime,
    },
    /// The handler asked to run again at `until`.
    Snoozed {
        /// When.
        until: SystemTime,
    },
    /// Held by an operator (or created without auto-start).
    Paused,
    /// Released by an operator.
    Resumed,
    /// Ended with a value.
    Succeeded {
        /// The handler's value.
        result: serde_json::Value,
    },
    /// Ended after its last attempt failed.
    Failed {
        /// The last error.
        error: AttemptError,
    },
    /// Ended by a cancel.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// An attempt crashed (panic, dead worker, process killed).
    Crashed {
        /// The crash.
        crash: Crash,
    },
    /// The execution was restarted (by an operator or by auto-restart after a crash).
    Restarted,
    /// An operator asked the running attempt to stop; the request is applied when it stops.
    StopRequested {
        /// What was asked.
        intent: Intent,
    },
}

impl EventKind {
    /// The snake_case type name, as stored.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Started { .. } => "started",
            Self::Progress { .. } => "progress",
            Self::AttemptFailed { .. } => "attempt_failed",
            Self::RetryScheduled { .. } => "retry_scheduled",
            Self::Snoozed { .. } => "snoozed",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::Succeeded { .. } => "succeeded",
            Self::Failed { .. } => "failed",
            Self::Cancelled { .. } => "cancelled",
            Self::Crashed { .. } => "crashed",
            Self::Restarted => "restarted",
            Self::StopRequested { .. } => "stop_requested",
        }
    }
}

/// One event of a task's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// The task.
    pub task_id: TaskId,
    /// When it happened.
    pub at: SystemTime,
    /// What happened.
    pub kind: EventKind,
    /// Who caused it (a user, a service, or `taskmesh` for the runtime itself).
    pub actor_id: Option<String>,
    /// The flow it belongs to (the task's correlation id unless the caller gave another).
    pub correlation_id: Option<String>,
}

/// An event as stored, with its position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Increasing across the store: with a task's events in the order they were
    /// written, and with writes that were acknowledged before the next one was made.
    /// (Events of different tasks in one write may be numbered in either order: the
    /// PostgreSQL store commits a write's tasks on their own connections.)
    pub seq: u64,
    /// The event.
    pub event: TaskEvent,
}

/// A crash of an attempt, kept in the crash history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crash {
    /// The task.
    pub task_id: TaskId,
    /// When.
    pub at: SystemTime,
    /// The attempt that crashed.
    pub attempt: u32,
    /// How it crashed (panicked or crashed).
    pub kind: FailureKind,
    /// Why.
    pub reason: String,
}

/// What an operator asked of a running attempt. It is stored with the task before the
/// attempt is asked to stop, and applied when the attempt stops (or, if the process died
/// first, when the task is recovered), so an acknowledged request is never lost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Intent {
    /// End the task as cancelled.
    Cancel {
        /// Why.
        reason: String,
    },
    /// Pause the task (it keeps its place and does not fail).
    Pause,
    /// Run the task again from the start.
    Restart,
    /// End the task as succeeded with this result.
    Complete {
        /// The result.
        result: serde_json::Value,
    },
    /// The system is shutting down: the task goes back to pending for the next start.
    Shutdown,
}

impl Intent {
    /// The command's name, as in `stop_requested` events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Cancel { .. } => "cancel",
            Self::Pause => "pause",
            Self::Restart => "restart",
            Self::Complete { .. } => "complete",
            Self::Shutdown => "shutdown",
        }
    }
}

/// The mutable part of a task's metadata row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Life {
    /// The state now.
    pub state: TaskState,
    /// Attempts started.
    pub attempt: u32,
    /// Attempts allowed (snoozes and auto-restarts add one each).
    pub max_attempts: u32,
    /// The result, once succeeded.
    pub result: Option<serde_json::Value>,
    /// The last attempt's error.
    pub error: Option<AttemptError>,
    /// Why it was cancelled.
    pub cancel_reason: Option<String>,
    /// The last progress report.
    pub progress: Option<Progress>,
    /// The workflow phase the handler last set.
    pub phase: Option<String>,
    /// When a scheduled, retrying or snoozed task is next due.
    pub due_at: Option<SystemTime>,
    /// Auto-restarts used after crashes.
    pub restarts: u32,
    /// When the row last changed.
    pub updated_at: SystemTime,
    /// What an operator asked of the running attempt, not yet applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    /// The process holding the task (running it, or holding it to run), on a store that
    /// several processes share; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// The node of the latest attempt (it ran there, or runs there now), on a store
    /// several processes share; kept after the task ends. `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ran_on: Option<String>,
}

/// A task's metadata row: the immutable task and its life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task as submitted (after defaults).
    pub task: Task,
    /// Where it is now.
    pub life: Life,
}

/// One change in a write batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Inserts a new task with its `created` event. Refused as a duplicate if its unique
    /// key is held.
    Create(Box<TaskRecord>, TaskEvent),
    /// Replaces the task's life and appends its events, if the row passes the fence.
    Update(Box<Transition>),
    /// Appends an event without changing the row (e.g. attempt_failed before retry).
    Event(TaskEvent),
    /// Adds to the crash history.
    Crash(Crash),
}

/// A change of a task's row with its events: one transition of the state machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The task.
    pub id: TaskId,
    /// Its life after the change.
    pub life: Life,
    /// The events appended, in order (the last one is the transition's own).
    pub events: Vec<TaskEvent>,
    /// A crash added to the crash history with the change.
    pub crash: Option<Crash>,
    /// The row the change expects; `None` applies it whatever the row is.
    pub fence: Option<Fence>,
}

impl Write {
    /// An unconditional update of `id`'s life with one event.
    pub fn update(id: TaskId, life: Life, event: TaskEvent) -> Write {
        Write::Update(Box::new(Transition {
            id,
            life,
            events: vec![event],
            crash: None,
            fence: None,
        }))
    }

    /// A conditional update: applied only if the row passes `fence`.
    pub fn fenced(id: TaskId, life: Life, event: TaskEvent, fence: Fence) -> Write {
        Write::Update(Box::new(Transition {
            id,
            life,
            events: vec![event],
            crash: None,
            fence: Some(fence),
        }))
    }
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteResult {
    /// Applied.
    Done,
    /// A create whose unique key another task holds; nothing was written.
    Duplicate(TaskId),
    /// An update whose row did not pass its fence (another process or a newer attempt
    /// changed it first); nothing of it was written.
    Fenced,
}

/// Which tasks a list or count selects. Unset fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskFilter {
    /// In this state.
    pub state: Option<TaskState>,
    /// In this queue.
    pub queue: Option<String>,
    /// Of this kind.
    pub kind: Option<String>,
    /// In this phase.
    pub phase: Option<String>,
    /// Created by this actor (the task's `metadata.actor_id`).
    pub created_by: Option<String>,
    /// Created at or after.
    pub created_after: Option<SystemTime>,
    /// Created before.
    pub created_before: Option<SystemTime>,
    /// Whose latest attempt ran (or runs) on this node ([`Life::ran_on`]).
    pub node: Option<String>,
}

/// A filtered page, newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskQuery {
    /// Which tasks.
    pub filter: TaskFilter,
    /// At most this many (the caller caps it).
    pub limit: u32,
    /// Skip this many.
    pub offset: u64,
}

/// A page of tasks and the total that matched.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The tasks, newest first.
    pub tasks: Vec<TaskRecord>,
    /// How many matched in all.
    pub total: u64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is not a database this build can use; it was left untouched.
    #[error("cannot use {path}: {reason}; the file was left untouched")]
    Unusable {
        /// The database file.
        path: PathBuf,
        /// Not a taskmesh database, corrupt, or from a newer schema.
        reason: String,
    },
    /// Another process (or another store in this one) has the database open: two
    /// writers would each run the other's tasks. Nothing was read or written.
    #[error("cannot use {}: it is open in another process{}; one process per database file", path.display(), holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
    InUse {
        /// The database file.
        path: PathBuf,
        /// The pid of the process holding it, when known.
        holder: Option<u32>,
    },
    /// A write could not be made durable (disk full, read-only, I/O error). Nothing of the
    /// batch was applied.
    #[error("write failed: {0}")]
    WriteFailed(String),
    /// A read failed.
    #[error("read failed: {0}")]
    ReadFailed(String),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// The store cannot be reached (connection refused or lost); worth retrying later.
    /// Nothing of the operation is known to have applied.
    #[error("the store is unavailable: {source}")]
    Unavailable {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A transaction lost a race in the store (serialization failure, deadlock) and
    /// was not applied; worth retrying.
    #[error("the store refused a conflicting transaction: {source}")]
    Conflict {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A write made under a lease found the lease changed: another process holds it,
    /// under a newer epoch, or its time ran out. Nothing was written.
    #[error(
        "the lease {name:?} (epoch {epoch}) is no longer held by {holder}; nothing was written"
    )]
    LeaseLost {
        /// The lease.
        name: String,
        /// The holder the writer believed in.
        holder: Owner,
        /// The epoch the writer believed in.
        epoch: u64,
    },
    /// This process's registration is gone: another process declared it dead and may be
    /// running its tasks. It must stop running tasks and register again.
    #[error("{owner} is no longer registered: it was declared dead")]
    Fenced {
        /// The incarnation that was fenced out.
        owner: Owner,
    },
}

impl StoreError {
    /// True if the same operation may succeed when tried again (the store was
    /// unreachable, or a transaction conflicted).
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Conflict { .. })
    }
}

impl TaskFilter {
    /// True if the task matches every set field.
    pub fn matches(&self, task: &Task, life: &Life) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        self.state.is_none_or(|s| s == life.state)
            && eq(&self.queue, Some(&task.queue))
            && eq(&self.kind, Some(&task.kind))
            && eq(&self.phase, life.phase.as_deref())
            && eq(&self.created_by, task.metadata.actor_id.as_deref())
            && eq(&self.node, life.ran_on.as_deref())
            && self.created_after.is_none_or(|t| task.created_at >= t)
            && self.created_before.is_none_or(|t| task.created_at < t)
    }
}
