//! The one extension point for user code: [`Handler`].
//!
//! A handler names its task kind, takes typed arguments and returns one of a closed set of
//! outcomes:
//!
//! | return | effect |
//! |---|---|
//! | `Ok(Outcome::Succeeded(v))` | the task succeeds with `v` |
//! | `Err(e)` (reached with `?`) | the attempt fails; retried with backoff until `max_attempts` |
//! | `Ok(Outcome::Cancel(reason))` | the task ends as cancelled, not retried |
//! | `Ok(Outcome::Snooze(d))` | the task runs again after `d`; a snooze does not use up an attempt |
//!
//! A panic is caught and becomes a failed attempt that carries the panic message. A hang is
//! cut off by the timeout.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::context::TaskContext;
use crate::task::Backoff;

/// What an attempt produced, other than a retryable error.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// The task is done; `T` is stored as its result.
    Succeeded(T),
    /// Stop for good, with a reason. The task ends as cancelled.
    Cancel(String),
    /// Run again after this delay, without using up an attempt.
    Snooze(Duration),
}

/// A retryable failure of an attempt. Any error converts into it, so `?` works in
/// [`Handler::perform`].
pub struct HandlerError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl HandlerError {
    /// A failure with a plain message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// The message, including the chain of sources.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The original error, if there was one.
    pub fn source(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl<E: Into<Box<dyn StdError + Send + Sync>>> From<E> for HandlerError {
    fn from(e: E) -> Self {
        let boxed: Box<dyn StdError + Send + Sync> = e.into();
        let mut message = boxed.to_string();
        let mut next = boxed.source();
        while let Some(cause) = next {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            next = cause.source();
        }
        Self {
            message,
            source: Some(boxed),
        }
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HandlerError").field(&self.message).finish()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What [`Handler::perform`] returns.
pub type HandlerResult<T> = Result<Outcome<T>, HandlerError>;

/// User code for one task kind.
///
/// ```
/// use taskmesh::{Handler, HandlerResult, Outcome, TaskContext};
///
/// struct Resize;
///
/// #[derive(serde::Deserialize)]
/// struct Args { width: u32 }
///
/// impl Handler for Resize {
///     const KIND: &'static str = "resize";
///     type Args = Args;
///     type Output = u32;
///
///     async fn perform(&self, ctx: TaskContext, args: Args) -> HandlerResult<u32> {
///         ctx.report_progress(50, "halfway");
///         if args.width == 0 {
///             return Err("width must be positive".into());
///         }
///         Ok(Outcome::Succeeded(args.width / 2))
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// The task kind this handler runs.
    const KIND: &'static str;
    /// The arguments, decoded from the task's JSON args.
    type Args: DeserializeOwned + Send + 'static;
    /// The result, encoded to JSON when the task succeeds.
    type Output: Serialize + Send + 'static;

    /// Runs one attempt.
    fn perform(
        &self,
        ctx: TaskContext,
        args: Self::Args,
    ) -> impl Future<Output = HandlerResult<Self::Output>> + Send;

    /// How long one attempt may run before it is cut off (default 30 s).
    fn timeout(&self) -> Duration {
        Duration::from_secs(30)
    }
    /// How many attempts a task gets (default 5).
    fn max_attempts(&self) -> u32 {
        5
    }
    /// The delay between attempts (default 100 ms doubling up to 60 s, full jitter).
    fn backoff(&self) -> Backoff {
        Backoff::default()
    }
    /// The queue tasks of this kind go to when the submit does not name one.
    fn queue(&self) -> &str {
        "default"
    }
}

/// The defaults a handler gives to tasks of its kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandlerDefaults {
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts before the task fails.
    pub max_attempts: u32,
    /// Retry backoff.
    pub backoff: Backoff,
    /// Default queue.
    pub queue: String,
}

/// An attempt's result with the types erased.
#[derive(Debug)]
pub(crate) enum RawOutcome {
    Succeeded(serde_json::Value),
    Retry(String),
    Cancel(String),
    Snooze(Duration),
    /// Will never succeed (the args do not decode): fail without retrying.
    Discard(String),
}

/// A handler behind a trait object, so handlers of different types share one registry.
pub(crate) trait ErasedHandler: Send + Sync {
    fn call(
        self: Arc<Self>,
        ctx: TaskContext,
        args: &serde_json::Value,
    ) -> BoxFuture<'static, RawOutcome>;
    fn defaults(&self) -> HandlerDefaults;
}

impl<H: Handler> ErasedHandler for H {
    fn call(
        self: Arc<Self>,
        ctx: TaskContext,
        args: &serde_json::Value,
    ) -> BoxFuture<'static, RawOutcome> {
        let decoded = H::Args::deserialize(args);
        Box::pin(async move {
            let args = match decoded {
                Ok(a) => a,
                Err(e) => {
                    return RawOutcome::Discard(format!(
                        "args do not match kind {:?}: {e}",
                        H::KIND
                    ))
                }
            };
            match self.perform(ctx, args).await {
                Ok(Outcome::Succeeded(v)) => match serde_json::to_value(v) {
                    Ok(v) => RawOutcome::Succeeded(v),
                    Err(e) => RawOutcome::Discard(format!("result could not be encoded: {e}")),
                },
                Ok(Outcome::Cancel(r)) => RawOutcome::Cancel(r),
                Ok(Outcome::Snooze(d)) => RawOutcome::Snooze(d),
                Err(e) => RawOutcome::Retry(e.message),
            }
        })
    }

    fn defaults(&self) -> HandlerDefaults {
        HandlerDefaults {
            timeout: self.timeout(),
            max_attempts: self.max_attempts(),
            backoff: self.backoff(),
            queue: self.queue().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_converts_errors_and_keeps_the_source_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        fn f() -> Result<(), HandlerError> {
            Err(Outer(std::io::Error::other("disk on fire")))?
        }
        let e = f().unwrap_err();
        assert_eq!(e.message(), "outer: disk on fire");
        assert!(e.source().is_some());
        assert_eq!(HandlerError::msg("plain").to_string(), "plain");
    }
}
