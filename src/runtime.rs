//! The live state of tasks inside one system: task cells, the task table, each queue's
//! dispatch state (with the messages it sends the queue's actors and the workers' slots),
//! submitting a task, running an attempt and settling its outcome. Everything here is
//! shared by the actors through `Shared`; nothing is global.

pub(crate) mod adopt;
mod attempt;
mod cell;
pub(crate) mod context;
mod dispatch;
pub(crate) mod gates;
pub(crate) mod handler;
pub(crate) mod journal;
mod messages;
pub(crate) mod ops;
pub mod peers;
mod remote;
pub(crate) mod revive;
pub(crate) mod settle;
mod shared;
mod slot;
pub(crate) mod submit;
mod table;

pub use crate::task::{AttemptError, FailureKind};
pub(crate) use attempt::{run_attempt, AttemptOutcome};
pub(crate) use cell::{Status, TaskCell};
pub use cell::{TaskResult, TaskStatus};
pub(crate) use dispatch::QueueShared;
pub(crate) use messages::{PoolMsg, TimerMsg, WorkerMsg};
pub(crate) use ops::apply_held;
pub use ops::Control;
pub use peers::{Peers, Placement};
pub(crate) use settle::{begin_attempt, claim, claim_behind, settle, StartClaim};
pub(crate) use shared::{CoordConfig, HandlerEntry, Housekeeping, Shared};
pub(crate) use slot::{Current, WorkerSlot};
pub(crate) use table::{Claim, KeyGuard, TaskTable};
