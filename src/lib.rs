//! taskmesh: supervised, observable task processing on the [`ractor`] actor framework.
//!
//! You register a [`Handler`] per task kind, start a [`TaskSystem`], and submit tasks. Each
//! named queue has a pool of worker actors under an OTP-style supervision tree; a task
//! that fails, panics or hangs becomes a failed attempt that is retried with backoff, and
//! never takes the system down.
//!
//! ```
//! use std::time::Duration;
//! use taskmesh::{Handler, HandlerResult, NewTask, Outcome, TaskContext, TaskState, TaskSystem};
//!
//! struct Greet;
//!
//! impl Handler for Greet {
//!     const KIND: &'static str = "greet";
//!     type Args = String;
//!     type Output = String;
//!
//!     async fn perform(&self, ctx: TaskContext, name: String) -> HandlerResult<String> {
//!         ctx.report_progress(100, "greeted");
//!         Ok(Outcome::Succeeded(format!("hello, {name}")))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = TaskSystem::builder().namespace("doc").handler(Greet).start().await?;
//!
//! let receipt = system.submit(NewTask::new("greet", "ada".into())).await?;
//! let done = system.wait(receipt.id).await?;
//! assert_eq!(done.state, TaskState::Succeeded);
//! assert_eq!(done.result, Some("hello, ada".into()));
//!
//! let report = system.shutdown(Duration::from_secs(5)).await;
//! assert!(report.interrupted.is_empty());
//! assert!(system.live_actors().is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! | module | what it holds |
//! |---|---|
//! | [`task`] | the task model, validation, the state machine, backoff |
//! | [`handler`], [`context`] | the extension point for user code and what it receives |
//! | [`system`] | the builder, the handle, graceful shutdown |
//! | [`queue`] | queue settings and the priority queue; workers pull from it directly |
//! | [`supervisor`] | OTP restart strategies for ractor (one_for_one, one_for_all, rest_for_one) |
//! | [`breaker`], [`ratelimit`], [`scope`] | per-kind and per-queue gates, on a node or across the cluster; gated tasks wait, they do not fail |
//! | [`registry`] | namespaced names, so several systems share one process |
//! | [`health`], [`telemetry`] | health checks, spans, events and metrics |
//! | [`runtime`] | task status snapshots and attempt errors |
//! | [`store`] | the `Store` trait, event-sourced SQLite (group commit) and memory stores |
//! | [`cron`], [`scheduler`] | cron expressions, time zones and DST policy; the persisted scheduler |
//! | [`node`], [`http`], [`cli`] | the node binary's runtime, its HTTP API, the CLI client |
//! | [`dashboard`] | the web UI at `/ui`: server-rendered pages, live updates, actions |
//! | [`builtin`] | built-in task kinds (noop, sleep, echo, fail, exec) |
//! | [`config`], [`secret`] | settings as data; secrets that never print |
//! | [`lockfile`] | exclusive lock files: one process per data directory and database |
//! | [`testing`] | a scripted handler and fault injection for tests |
//! | [`bench`](mod@bench) | the `taskmesh bench` harness |
//!
//! See `docs/ARCHITECTURE.md` for the supervision tree and the path a task takes.
#[cfg(feature = "node")]
pub mod bench;
pub mod breaker;
pub mod builtin;
#[cfg(feature = "node")]
pub mod cli;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod config;
pub mod context;
mod coordinator;
pub mod cron;
#[cfg(feature = "node")]
pub mod dashboard;
pub mod error;
pub mod handler;
pub mod health;
#[cfg(feature = "node")]
pub mod http;
mod janitor;
pub mod lockfile;
#[cfg(feature = "node")]
pub mod node;
mod pool;
pub mod queue;
pub mod ratelimit;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod scope;
pub mod secret;
pub mod store;
pub mod supervisor;
pub mod system;
pub mod task;
pub mod telemetry;
pub mod testing;
mod timer;
mod worker;

pub use context::{Progress, TaskContext};
pub use error::{SubmitError, SystemError, TaskError, ValidationError};
pub use handler::{Handler, HandlerError, HandlerResult, Outcome};
pub use health::{HealthStatus, ServiceHealth, SystemHealth};
pub use queue::QueueConfig;
pub use runtime::{AttemptError, Control, FailureKind, TaskResult, TaskStatus};
pub use system::{
    HandlerOptions, QueueStats, Readiness, Receipt, Recovery, ShutdownReport, TaskPage, TaskSystem,
    TaskSystemBuilder, TaskView,
};
pub use task::{Backoff, NewTask, Priority, TaskId, TaskState};
