//! The task system: [`TaskSystem::builder`] configures it, [`TaskSystemBuilder::start`]
//! starts its supervision tree, and the [`TaskSystem`] handle submits and queries tasks.

mod builder;
mod handle;
mod shutdown;
mod tree;

pub use builder::{HandlerOptions, TaskSystemBuilder};
pub use handle::{Cancellation, QueueStats, Receipt, TaskSystem};
pub use shutdown::ShutdownReport;
