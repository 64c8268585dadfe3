//! How attempts end: success, failure and retry, panics, timeouts, snoozes, cancels.

mod common;

use std::time::Duration;

use common::{builder, gate, next_start, task};
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{FailureKind, NewTask, SubmitError, TaskError, TaskState};

#[tokio::test(start_paused = true)]
async fn a_task_that_succeeds_keeps_its_result() {
    let (h, _rx) = ScriptHandler::new();
    let sys = builder("ok", h).start().await.unwrap();
    let r = sys
        .submit_and_wait(task(Script::Ok { value: 42.into() }))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Succeeded);
    assert_eq!(r.result, Some(42.into()));
    assert_eq!(r.attempt, 1);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_task_that_fails_n_times_then_succeeds_ends_succeeded() {
    let (h, _rx) = ScriptHandler::new();
    let sys = builder("failn", h.with_max_attempts(5))
        .start()
        .await
        .unwrap();
    let r = sys
        .submit_and_wait(task(Script::FailTimes { n: 3 }))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Succeeded);
    assert_eq!(r.attempt, 4);
    assert_eq!(r.result, Some(4.into()));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_task_that_always_fails_ends_failed_with_its_last_error() {
    let (h, _rx) = ScriptHandler::new();
    let sys = builder("fail", h.with_max_attempts(3))
        .start()
        .await
        .unwrap();
    let r = sys
        .submit_and_wait(task(Script::Fail {
            message: "boom".into(),
        }))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Failed);
    assert_eq!(r.attempt, 3);
    let err = r.error.unwrap();
    assert_eq!(
        (err.kind, err.attempt, err.message.as_str()),
        (FailureKind::Failed, 3, "boom")
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_becomes_a_failed_attempt_and_the_pool_keeps_serving() {
    let (h, _rx) = ScriptHandler::new();
    let sys = builder("panic", h.with_max_attempts(2))
        .start()
        .await
        .unwrap();
    let r = sys
        .submit_and_wait(task(Script::Panic {
            message: "kaboom".into(),
        }))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Failed);
    let err = r.error.unwrap();
    assert_eq!(err.kind, FailureKind::Panicked);
    assert!(err.message.contains("kaboom"), "{}", err.message);
    let after = sys
        .submit_and_wait(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap();
    assert_eq!(after.state, TaskState::Succeeded);
    assert_eq!(sys.queues()[0].workers, 2, "no worker died");
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_hanging_task_times_out_on_every_attempt_and_ends_failed() {
    let (h, _rx) = ScriptHandler::new();
    let h = h.with_timeout(Duration::from_secs(2)).with_max_attempts(2);
    let sys = builder("hang", h).start().await.unwrap();
    let r = sys.submit_and_wait(task(Script::Hang)).await.unwrap();
    assert_eq!(r.state, TaskState::Failed);
    assert_eq!(r.attempt, 2);
    let err = r.error.unwrap();
    assert_eq!(err.kind, FailureKind::TimedOut);
    assert!(err.message.contains("2000 ms"), "{}", err.message);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_timeout_fires_the_token_before_the_handler_is_aborted() {
    let (h, mut rx) = ScriptHandler::new();
    let h = h.with_timeout(Duration::from_secs(1)).with_max_attempts(1);
    let sys = builder("token", h).start().await.unwrap();
    // A gate task watches its token: it returns an error as soon as the token fires,
    // which shows the token fired before the abort.
    let id = sys.submit(gate("never")).await.unwrap().id;
    next_start(&mut rx).await;
    let r = sys.wait(id).await.unwrap();
    assert_eq!(r.error.unwrap().kind, FailureKind::TimedOut);
    let end = rx.recv().await.unwrap();
    assert!(
        !end.started,
        "the handler saw the token and returned within the grace period"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_snooze_reruns_the_task_later_without_using_an_attempt() {
    let (h, _rx) = ScriptHandler::new();
    let sys = builder("snooze", h.with_max_attempts(1))
        .start()
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let r = sys
        .submit_and_wait(task(Script::SnoozeOnce { ms: 5_000 }))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Succeeded);
    assert_eq!(r.attempt, 2);
    assert!(started.elapsed() >= Duration::from_secs(5));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_cancels_ends_cancelled_without_retry() {
    let (h, _rx) = ScriptHandler::new();
    let sys = builder("hcancel", h).start().await.unwrap();
    let r = sys
        .submit_and_wait(task(Script::Cancel {
            reason: "not needed".into(),
        }))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Cancelled);
    assert_eq!(r.attempt, 1);
    assert_eq!(r.cancel_reason.as_deref(), Some("not needed"));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn args_that_do_not_match_the_handler_fail_once_without_retry() {
    let (h, _rx) = ScriptHandler::new();
    let sys = builder("badargs", h).start().await.unwrap();
    let r = sys
        .submit_and_wait(NewTask::new("script", serde_json::json!({"do": "fly"})))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Failed);
    assert_eq!(r.attempt, 1);
    assert!(r
        .error
        .unwrap()
        .message
        .contains("args do not match kind \"script\""));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_attempt_waits_in_retrying_for_its_backoff() {
    let (h, mut rx) = ScriptHandler::new();
    let backoff = taskmesh::Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
    let sys = builder("backoff", h.with_max_attempts(2).with_backoff(backoff))
        .start()
        .await
        .unwrap();
    let id = sys
        .submit(task(Script::FailTimes { n: 1 }))
        .await
        .unwrap()
        .id;
    let first = next_start(&mut rx).await;
    assert_eq!(first.attempt, 1);
    let failed_at = loop {
        let e = rx.recv().await.unwrap();
        if !e.started {
            break tokio::time::Instant::now();
        }
    };
    tokio::task::yield_now().await;
    let s = sys.status(id).unwrap();
    assert_eq!(s.state, TaskState::Retrying);
    assert_eq!(s.error.unwrap().message, "planned failure 1 of 1");
    let second = next_start(&mut rx).await;
    assert_eq!(second.attempt, 2);
    assert!(
        failed_at.elapsed() <= Duration::from_secs(10),
        "full jitter stays under the ceiling"
    );
    assert_eq!(sys.wait(id).await.unwrap().state, TaskState::Succeeded);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn bad_submits_are_refused_with_an_error_that_names_the_problem() {
    let (h, _rx) = ScriptHandler::new();
    let sys = builder("refuse", h).start().await.unwrap();
    let unknown = sys
        .submit(NewTask::new("nope", serde_json::Value::Null))
        .await;
    assert!(matches!(unknown, Err(SubmitError::UnknownKind(k)) if k == "nope"));
    let empty = sys.submit(NewTask::new("", serde_json::Value::Null)).await;
    assert!(matches!(empty, Err(SubmitError::Invalid(e)) if e.field == "kind"));
    let zero = sys.submit(task(Script::Hang).max_attempts(0)).await;
    assert!(matches!(zero, Err(SubmitError::Invalid(e)) if e.field == "max_attempts"));
    let queue = sys.submit(task(Script::Hang).queue("missing")).await;
    assert!(matches!(queue, Err(SubmitError::UnknownQueue(q)) if q == "missing"));
    let missing = sys.status(taskmesh::TaskId::new());
    assert!(matches!(missing, Err(TaskError::NotFound(_))));
    sys.shutdown(Duration::from_secs(1)).await;
}
