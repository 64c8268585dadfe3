//! Named queues: their configuration and their dispatch order.
//!
//! Submitters push straight into a queue's [`PriorityQueue`] under a short lock, and
//! workers pull from it; no central actor sits on the per-task path. An idle worker parks
//! itself in the queue, and a submit that finds one wakes it with a single message.
//!
//! This module is data only: the state a system keeps per queue (its tasks, idle workers
//! and counters, `QueueShared`) belongs to the runtime, and the timer that releases
//! delayed tasks is an actor of its own.

mod config;
mod priority;

pub use config::QueueConfig;
pub use priority::PriorityQueue;
