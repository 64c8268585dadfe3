//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use taskmesh::testing::{script, Script, ScriptEvent, ScriptHandler};
use taskmesh::{NewTask, QueueConfig, TaskSystem, TaskSystemBuilder};
use tokio::sync::mpsc::UnboundedReceiver;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A namespace no other test uses.
pub fn unique_ns(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A builder with a scripted handler and a small default queue.
pub fn builder(prefix: &str, handler: ScriptHandler) -> TaskSystemBuilder {
    TaskSystem::builder()
        .namespace(unique_ns(prefix))
        .queue(QueueConfig::new("default").workers(2, 4))
        .cancel_grace(Duration::from_millis(100))
        .handler(handler)
}

pub fn task(s: Script) -> NewTask {
    NewTask::new("script", script(s))
}

pub fn gate(name: &str) -> NewTask {
    task(Script::Gate { gate: name.into() })
}

/// Waits for the next start event.
pub async fn next_start(rx: &mut UnboundedReceiver<ScriptEvent>) -> ScriptEvent {
    loop {
        let e = rx.recv().await.expect("handler dropped");
        if e.started {
            return e;
        }
    }
}

/// Waits for the next end of an attempt, then lets the worker settle it: the worker
/// settles right after its handler returns, without waiting on anything, so one yield
/// of this (current-thread) runtime lets it finish.
pub async fn next_end(rx: &mut UnboundedReceiver<ScriptEvent>) -> ScriptEvent {
    loop {
        let e = rx.recv().await.expect("handler dropped");
        if !e.started {
            tokio::task::yield_now().await;
            return e;
        }
    }
}

/// Moves paused time forward by `d`, in steps of at most a second (so timers that re-arm
/// from one another, like cron slots, each fire at their time), and after each step
/// waits until every service of `sys` has handled what the timers sent it: a health
/// check asks each service in turn, and a service answers only after the messages
/// queued before it. Only for `start_paused` tests: virtual time, never a real sleep.
pub async fn advance_and_settle(sys: &TaskSystem, d: Duration) {
    let mut left = d;
    loop {
        let step = left.min(Duration::from_secs(1));
        tokio::time::advance(step).await;
        tokio::task::yield_now().await;
        sys.health().await;
        left -= step;
        if left.is_zero() {
            return;
        }
    }
}

/// Like [`builder`], but the default queue has exactly one worker, so tasks run one at a
/// time in queue order.
pub fn one_worker(prefix: &str, handler: ScriptHandler) -> TaskSystemBuilder {
    TaskSystem::builder()
        .namespace(unique_ns(prefix))
        .queue(QueueConfig::new("default").workers(1, 1))
        .cancel_grace(Duration::from_millis(100))
        .handler(handler)
}
