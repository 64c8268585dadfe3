//! Named queues: their configuration, their shared dispatch state, and the timer that
//! releases delayed tasks.
//!
//! Submitters push straight into a queue's [`PriorityQueue`] under a short lock, and
//! workers pull from it; no central actor sits on the per-task path. An idle worker parks
//! itself in the queue, and a submit that finds one wakes it with a single message.

mod config;
mod priority;
mod shared;
pub(crate) mod timer;

pub use config::QueueConfig;
pub use priority::PriorityQueue;
pub(crate) use shared::QueueShared;
