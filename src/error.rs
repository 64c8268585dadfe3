//! Error types, one enum per boundary. Messages are lowercase and name the offending value.

use std::time::Duration;

pub use crate::task::ValidationError;
use crate::task::{TaskId, TaskState, TransitionError};

/// Why a submit was refused. Nothing is enqueued when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// A field was invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No handler is registered for the kind.
    #[error("unknown task kind {0:?}: no handler is registered for it")]
    UnknownKind(String),
    /// The queue does not exist.
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    /// The queue is at its bound; retry later.
    #[error("queue {queue:?} is full ({bound} tasks waiting); retry later")]
    Overloaded {
        /// The full queue.
        queue: String,
        /// Its bound.
        bound: usize,
    },
    /// The system is shutting down and takes no new tasks.
    #[error("the task system is shutting down")]
    ShuttingDown,
    /// The system's supervision tree stopped (its root gave up after repeated failures),
    /// so no worker would run the task; it was not accepted.
    #[error("the task system's supervision tree has stopped; no worker would run the task")]
    TreeDown,
    /// The task could not be made durable; it was not accepted.
    #[error("the task could not be stored: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Errors of the task handle's queries and commands.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The submit itself was refused.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// No task with that id is known (never existed, or pruned after retention).
    #[error("task {0} not found")]
    NotFound(TaskId),
    /// The task has already ended.
    #[error("task {id} is already {state}")]
    AlreadyTerminal {
        /// The task.
        id: TaskId,
        /// Its terminal state.
        state: TaskState,
    },
    /// The requested change is not allowed from the task's state.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The task ended, but the store failed to write its end: it is not durable, and after
    /// a restart the task runs again (delivery is at-least-once).
    #[error("task {0} ended, but its end could not be stored; it may run again after a restart")]
    EndNotStored(TaskId),
    /// Another command's change to the task is being written; try again.
    #[error("another command on task {0} is being stored; try again")]
    Busy(TaskId),
    /// The task changed in the store while the command was decided (another process
    /// or the task's own attempt got there first); nothing was changed. Try again.
    #[error("task {0} changed while the command was being stored; nothing was changed; try again")]
    Conflict(TaskId),
    /// Waiting for the task took longer than allowed.
    #[error("timed out after {0:?} waiting for the task")]
    WaitTimeout(Duration),
    /// The system stopped before the task ended.
    #[error("the task system stopped before the task ended")]
    SystemStopped,
    /// The store failed; the change is not durable.
    #[error(transparent)]
    Store(crate::store::StoreError),
}

/// Errors starting or stopping a task system.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The configuration was rejected.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// An actor failed to start.
    #[error("failed to start {what}: {source}")]
    Spawn {
        /// Which actor.
        what: String,
        /// Why.
        #[source]
        source: ractor::SpawnErr,
    },
    /// The store could not be opened or read at start.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A service did not answer in time.
    #[error("{0} did not answer within the deadline")]
    Unresponsive(String),
}
