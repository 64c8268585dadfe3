//! taskmesh (crate docs are written at the end)
#![allow(missing_docs)]
pub mod bench;
pub mod breaker;
pub mod context;
pub mod error;
pub mod handler;
pub mod health;
mod janitor;
mod pool;
pub mod queue;
pub mod ratelimit;
pub mod registry;
pub mod runtime;
pub mod supervisor;
pub mod system;
pub mod task;
pub mod telemetry;
pub mod testing;
mod worker;

pub use context::{Progress, TaskContext};
pub use error::{SubmitError, SystemError, TaskError, ValidationError};
pub use handler::{Handler, HandlerError, HandlerResult, Outcome};
pub use health::{HealthStatus, ServiceHealth, SystemHealth};
pub use queue::QueueConfig;
pub use runtime::{AttemptError, FailureKind, TaskResult, TaskStatus};
pub use system::{Cancellation, HandlerOptions, QueueStats, Receipt, ShutdownReport, TaskSystem, TaskSystemBuilder};
pub use task::{Backoff, NewTask, Priority, TaskId, TaskState};
