//! Built-in task kinds, so a node is useful without writing Rust:
//!
//! | kind | args | result |
//! |---|---|---|
//! | `noop` | anything | `null` |
//! | `sleep` | `{"ms": 250}` | `null` after the delay (stops early on cancel) |
//! | `echo` | anything | the args |
//! | `fail` | `{"message": "…"}` | fails the attempt with the message (retried like any failure) |
//! | `exec` | `{"command": "…", "args": ["…"]}` | `{"status", "stdout", "stderr", "truncated"}`; only commands in the allowlist run, in a clean environment and a process group of their own (see [`ExecConfig`]) |

mod exec;

use std::time::Duration;

use serde::Deserialize;

pub use exec::{Exec, ExecConfig, DEFAULT_PATH, PASSED_THROUGH};

use crate::handler::{Handler, HandlerResult, Outcome};
use crate::system::TaskSystemBuilder;
use crate::TaskContext;

/// Registers every built-in kind on `builder`.
pub fn register(builder: TaskSystemBuilder, exec: ExecConfig) -> TaskSystemBuilder {
    builder
        .handler(Noop)
        .handler(Sleep)
        .handler(Echo)
        .handler(Fail)
        .handler(Exec::new(exec))
}

/// `noop`: does nothing.
pub struct Noop;

impl Handler for Noop {
    const KIND: &'static str = "noop";
    type Args = serde_json::Value;
    type Output = ();
    async fn perform(&self, _: TaskContext, _: serde_json::Value) -> HandlerResult<()> {
        Ok(Outcome::Succeeded(()))
    }
}

/// The args of `sleep`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepArgs {
    /// Milliseconds.
    pub ms: u64,
}

/// `sleep`: waits, watching its cancellation token.
pub struct Sleep;

impl Handler for Sleep {
    const KIND: &'static str = "sleep";
    type Args = SleepArgs;
    type Output = ();
    async fn perform(&self, ctx: TaskContext, args: SleepArgs) -> HandlerResult<()> {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(args.ms)) => Ok(Outcome::Succeeded(())),
            _ = ctx.cancelled() => Err("stopped before the sleep ended".into()),
        }
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(3600)
    }
}

/// `echo`: returns its args.
pub struct Echo;

impl Handler for Echo {
    const KIND: &'static str = "echo";
    type Args = serde_json::Value;
    type Output = serde_json::Value;
    async fn perform(
        &self,
        _: TaskContext,
        args: serde_json::Value,
    ) -> HandlerResult<serde_json::Value> {
        Ok(Outcome::Succeeded(args))
    }
}

/// The args of `fail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailArgs {
    /// The error message.
    pub message: String,
}

/// `fail`: fails every attempt with the given message.
pub struct Fail;

impl Handler for Fail {
    const KIND: &'static str = "fail";
    type Args = FailArgs;
    type Output = ();
    async fn perform(&self, _: TaskContext, args: FailArgs) -> HandlerResult<()> {
        Err(args.message.into())
    }
}
