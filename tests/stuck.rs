//! A handler that blocks its thread (instead of awaiting) cannot be aborted. Its pool
//! must notice the stuck worker, fail the attempt and keep serving with a replacement.
//! This needs a real multi-thread runtime: the blocked thread is the fault under test.

mod common;

use std::sync::{mpsc, Mutex};
use std::time::Duration;

use common::unique_ns;
use taskmesh::{
    FailureKind, Handler, HandlerResult, NewTask, Outcome, QueueConfig, TaskContext, TaskState,
    TaskSystem,
};

/// Blocks its thread until the test sends on the channel.
struct Blocks(Mutex<mpsc::Receiver<()>>);

impl Handler for Blocks {
    const KIND: &'static str = "blocks";
    type Args = ();
    type Output = ();
    async fn perform(&self, _: TaskContext, _: ()) -> HandlerResult<()> {
        self.0.lock().unwrap().recv().ok();
        Ok(Outcome::Succeeded(()))
    }
    fn timeout(&self) -> Duration {
        Duration::from_millis(100)
    }
    fn max_attempts(&self) -> u32 {
        1
    }
}

struct Quick;

impl Handler for Quick {
    const KIND: &'static str = "quick";
    type Args = ();
    type Output = ();
    async fn perform(&self, _: TaskContext, _: ()) -> HandlerResult<()> {
        Ok(Outcome::Succeeded(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_blocked_by_its_handler_is_replaced_and_the_queue_keeps_serving() {
    blocked_worker_round(Duration::from_millis(20)).await;
}

/// The same, many times over with a fast pool tick. A runtime task woken on the worker
/// thread just before the handler blocked it (the pool's ticker, parked in that thread's
/// LIFO slot, which no other thread may steal) would never run again, and the stuck
/// worker would never be written off: the worker yields before each attempt so that its
/// thread's LIFO slot is empty when the handler starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_runtime_task_is_stranded_behind_a_blocked_worker_thread() {
    for _ in 0..10 {
        let done = watchdog(Duration::from_secs(60));
        blocked_worker_round(Duration::from_millis(1)).await;
        let _ = done.send(());
    }
}

/// Ends the test process if a round does not finish within `limit`. A stalled runtime
/// cannot fire its own timeouts (its timers are what stalled), so the watchdog is a plain
/// thread: the test fails with a message instead of hanging CI.
fn watchdog(limit: Duration) -> mpsc::Sender<()> {
    let (done, finished) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(limit) {
            eprintln!(
                "a round did not finish within {limit:?}: the runtime's timers stalled behind the blocked worker thread"
            );
            std::process::exit(101);
        }
    });
    done
}

async fn blocked_worker_round(tick: Duration) {
    let (release, blocked) = mpsc::channel();
    let queue = QueueConfig::new("default")
        .workers(1, 1)
        .tick(tick)
        .stuck_after(Duration::from_millis(100));
    let sys = TaskSystem::builder()
        .namespace(unique_ns("stuck"))
        .queue(queue)
        .cancel_grace(Duration::from_millis(50))
        .handler(Blocks(Mutex::new(blocked)))
        .handler(Quick)
        .start()
        .await
        .unwrap();
    let stuck = sys
        .submit(NewTask::new("blocks", serde_json::Value::Null))
        .await
        .unwrap()
        .id;
    let r = sys
        .wait_timeout(stuck, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Failed);
    let err = r.error.unwrap();
    assert_eq!(err.kind, FailureKind::TimedOut);
    assert!(err.message.contains("worker stuck"), "{}", err.message);

    let next = sys
        .submit(NewTask::new("quick", serde_json::Value::Null))
        .await
        .unwrap()
        .id;
    let r = sys
        .wait_timeout(next, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        r.state,
        TaskState::Succeeded,
        "the replacement worker serves the queue"
    );

    release.send(()).unwrap();
    assert_eq!(
        sys.status(stuck).unwrap().state,
        TaskState::Failed,
        "the late result is ignored"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}
