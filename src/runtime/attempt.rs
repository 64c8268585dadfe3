//! Runs one attempt: catches panics, enforces the timeout, honours cancellation with a
//! grace period, and turns all of that into an [`AttemptOutcome`].

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::context::TaskContext;
use super::handler::{ErasedHandler, RawOutcome};
use super::FailureKind;

/// How an attempt ended, before it is settled against the task's state.
#[derive(Debug)]
pub(crate) enum AttemptOutcome {
    Succeeded(serde_json::Value),
    Failed(FailureKind, String),
    /// The handler asked to cancel the task.
    Cancelled(String),
    Snoozed(Duration),
    /// The attempt can never succeed: fail without retrying.
    Discarded(String),
    /// The token fired from outside (cancel or shutdown) and the handler did not finish
    /// with a value within the grace period.
    Stopped,
}

/// Runs the handler for one attempt.
///
/// On a timeout or when `token` fires, the token is cancelled first and the handler gets
/// `grace` to wind down; if it still returns a value in that time the value is kept,
/// otherwise its future is dropped (aborted).
pub(crate) async fn run_attempt(
    handler: Arc<dyn ErasedHandler>,
    ctx: TaskContext,
    args: &serde_json::Value,
    timeout: Duration,
    grace: Duration,
    token: &CancellationToken,
) -> AttemptOutcome {
    let mut fut = AssertUnwindSafe(handler.call(ctx, args)).catch_unwind();
    // Most attempts end at their first poll: no timer is made for them.
    if let Poll::Ready(done) = futures::poll!(&mut fut) {
        return outcome_of(done);
    }
    let cut_off = tokio::select! {
        biased;
        done = &mut fut => return outcome_of(done),
        _ = token.cancelled() => None,
        _ = tokio::time::sleep(timeout) => Some(timeout),
    };
    token.cancel();
    let late = tokio::time::timeout(grace, &mut fut).await;
    if let Ok(Ok(RawOutcome::Succeeded(v))) = late {
        return AttemptOutcome::Succeeded(v);
    }
    match cut_off {
        Some(t) => AttemptOutcome::Failed(
            FailureKind::TimedOut,
            format!("timed out after {} ms", t.as_millis()),
        ),
        None => AttemptOutcome::Stopped,
    }
}

fn outcome_of(done: Result<RawOutcome, Box<dyn Any + Send>>) -> AttemptOutcome {
    match done {
        Ok(RawOutcome::Succeeded(v)) => AttemptOutcome::Succeeded(v),
        Ok(RawOutcome::Retry(m)) => AttemptOutcome::Failed(FailureKind::Failed, m),
        Ok(RawOutcome::Cancel(r)) => AttemptOutcome::Cancelled(r),
        Ok(RawOutcome::Snooze(d)) => AttemptOutcome::Snoozed(d),
        Ok(RawOutcome::Discard(m)) => AttemptOutcome::Discarded(m),
        Err(panic) => AttemptOutcome::Failed(FailureKind::Panicked, panic_message(&*panic)),
    }
}

/// The message of a panic payload (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string());
    format!("panicked: {text}")
}
