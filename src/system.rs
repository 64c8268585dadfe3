//! The task system: [`TaskSystem::builder`] configures it, [`TaskSystemBuilder::start`]
//! starts its supervision tree, and the [`TaskSystem`] handle submits and queries tasks.

mod builder;
mod by;
mod drain;
mod handle;
mod kinds;
mod manage;
mod recover;
mod schedules;
mod shutdown;
mod tree;

pub use crate::runtime::submit::Receipt;
pub use builder::{HandlerOptions, TaskSystemBuilder};
pub use drain::{NodeLoad, QueueLoad};
pub use handle::{QueueStats, TaskSystem};
pub use kinds::KindGates;
pub use manage::{Readiness, TaskPage, TaskView};
pub use recover::Recovery;
pub use shutdown::ShutdownReport;
