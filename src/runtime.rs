//! The live state of tasks inside one system: task cells, the task table, running an
//! attempt and settling its outcome. Everything here is shared by the actors through
//! `Shared`; nothing is global.

mod attempt;
mod cell;
pub(crate) mod journal;
pub(crate) mod ops;
mod remote;
pub(crate) mod settle;
mod shared;
mod table;

pub(crate) use attempt::{run_attempt, AttemptOutcome};
pub use cell::{AttemptError, FailureKind, TaskResult, TaskStatus};
pub(crate) use cell::{Status, TaskCell};
pub use ops::Control;
pub(crate) use settle::{begin_attempt, claim, settle};
pub(crate) use shared::{CoordConfig, HandlerEntry, Housekeeping, Shared};
pub(crate) use table::{Claim, KeyGuard, TaskTable};
