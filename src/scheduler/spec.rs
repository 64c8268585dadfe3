//! The errors of schedule operations (the schedule's data is [`crate::cron::schedule`]).

use crate::cron::schedule::SpecError;
use crate::cron::CronError;
use crate::error::ValidationError;
use crate::store::StoreError;

/// Why a schedule operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The expression or time zone is invalid.
    #[error(transparent)]
    Cron(#[from] CronError),
    /// No schedule has that name.
    #[error("schedule {0:?} not found")]
    NotFound(String),
    /// The store failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scheduler did not answer (stopped or overloaded).
    #[error("the scheduler is not running")]
    Unavailable,
}

impl From<SpecError> for ScheduleError {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::Invalid(v) => ScheduleError::Invalid(v),
            SpecError::Cron(c) => ScheduleError::Cron(c),
        }
    }
}
