//! The task model: what a unit of work is, how it is validated, and the states it moves
//! through.
//!
//! A [`Task`] is plain, serialisable data: it can be persisted by a store or sent to a
//! worker on another node. Its id is ours (uuid v7, time-ordered), never an actor id.
//!
//! - [`TaskState`] and [`transition`] form the pure state machine.
//! - [`Backoff`] computes retry delays with full jitter.
//! - [`NewTask`] is the builder users submit; [`Limits`] bounds what is accepted.

mod backoff;
mod model;
mod outcome;
mod progress;
mod state;
mod validation;

pub use backoff::Backoff;
pub(crate) use model::millis;
pub use model::{
    check_time, latest_time, Limits, Metadata, NewTask, Priority, Task, TaskId, EARLIEST_TIME,
    MAX_METADATA_BYTES, MAX_TIMEOUT, RESERVED_PREFIXES,
};
pub use outcome::{AttemptError, FailureKind};
pub use progress::Progress;
pub use state::{transition, Event, TaskState, TransitionError};
pub use validation::ValidationError;

/// The actor id recorded for changes the runtime makes on its own.
pub const RUNTIME_ACTOR: &str = "taskmesh";
