//! taskmesh (crate docs are written at the end)
#![allow(missing_docs)]
pub mod error;
pub mod health;
pub mod task;
// pub mod supervisor;   // helper A
// pub mod queue;        // helper B (queue/priority.rs)
// pub mod breaker;      // helper B
// pub mod ratelimit;    // helper B
