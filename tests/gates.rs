//! Circuit breakers, rate limits, and bad handlers next to good traffic.

mod common;

use std::time::Duration;

use common::{next_start, task, unique_ns};
use taskmesh::breaker::BreakerConfig;
use taskmesh::ratelimit::RateLimit;
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{
    FailureKind, HandlerOptions, HealthStatus, NewTask, QueueConfig, TaskState, TaskSystem,
};

#[tokio::test(start_paused = true)]
async fn an_open_breaker_makes_tasks_wait_instead_of_failing_until_a_probe_succeeds() {
    let (h, mut rx) = ScriptHandler::new();
    let breaker = BreakerConfig {
        failure_threshold: 2,
        cooldown: Duration::from_secs(30),
        ..BreakerConfig::default()
    };
    let sys = TaskSystem::builder()
        .namespace(unique_ns("breaker"))
        .queue(QueueConfig::new("default").workers(1, 1))
        .handler_with(
            h.with_max_attempts(1),
            HandlerOptions::default().breaker(breaker),
        )
        .start()
        .await
        .unwrap();
    for _ in 0..2 {
        let r = sys
            .submit_and_wait(task(Script::Fail {
                message: "down".into(),
            }))
            .await
            .unwrap();
        assert_eq!(r.state, TaskState::Failed);
    }
    let health = sys.health().await;
    assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
    while rx.try_recv().is_ok() {}
    let t0 = tokio::time::Instant::now();
    let waiting = sys
        .submit(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap()
        .id;
    let start = next_start(&mut rx).await;
    assert_eq!(start.id, waiting);
    assert!(
        t0.elapsed() >= Duration::from_secs(29),
        "it waited out the cooldown: {:?}",
        t0.elapsed()
    );
    let r = sys.wait(waiting).await.unwrap();
    assert_eq!(
        (r.state, r.attempt),
        (TaskState::Succeeded, 1),
        "waiting used no attempt"
    );
    assert_eq!(
        sys.health().await.status,
        HealthStatus::Healthy,
        "the probe closed the breaker"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_kind_starts_no_more_than_its_rate() {
    let (h, mut rx) = ScriptHandler::new();
    let limit = RateLimit::per_second(std::num::NonZeroU32::new(2).unwrap());
    let sys = TaskSystem::builder()
        .namespace(unique_ns("rate"))
        .handler_with(h, HandlerOptions::default().rate_limit(limit))
        .start()
        .await
        .unwrap();
    let t0 = tokio::time::Instant::now();
    let ids: Vec<_> =
        futures::future::join_all((0..6).map(|_| sys.submit(task(Script::Ok { value: 0.into() }))))
            .await
            .into_iter()
            .map(|r| r.unwrap().id)
            .collect();
    let mut starts = vec![];
    for _ in 0..6 {
        next_start(&mut rx).await;
        starts.push(t0.elapsed());
    }
    // a burst of 2, then one every 500 ms
    assert!(starts[1] < Duration::from_millis(100), "{starts:?}");
    assert!(starts[5] >= Duration::from_millis(1900), "{starts:?}");
    for id in ids {
        assert_eq!(sys.wait(id).await.unwrap().state, TaskState::Succeeded);
    }
    sys.shutdown(Duration::from_secs(1)).await;
}

mod bad {
    use super::*;
    use taskmesh::{Backoff, Handler, HandlerResult, Outcome, TaskContext};

    pub struct Panics;
    impl Handler for Panics {
        const KIND: &'static str = "panics";
        type Args = ();
        type Output = ();
        async fn perform(&self, _: TaskContext, _: ()) -> HandlerResult<()> {
            panic!("always");
        }
        fn max_attempts(&self) -> u32 {
            3
        }
        fn backoff(&self) -> Backoff {
            Backoff::new(Duration::from_millis(10), Duration::from_millis(10))
        }
    }

    pub struct Hangs;
    impl Handler for Hangs {
        const KIND: &'static str = "hangs";
        type Args = ();
        type Output = ();
        async fn perform(&self, _: TaskContext, _: ()) -> HandlerResult<()> {
            std::future::pending().await
        }
        fn timeout(&self) -> Duration {
            Duration::from_millis(300)
        }
        fn max_attempts(&self) -> u32 {
            2
        }
    }

    pub struct FailsTwice;
    impl Handler for FailsTwice {
        const KIND: &'static str = "fails_twice";
        type Args = ();
        type Output = u32;
        async fn perform(&self, ctx: TaskContext, _: ()) -> HandlerResult<u32> {
            if ctx.attempt() <= 2 {
                return Err("not yet".into());
            }
            Ok(Outcome::Succeeded(ctx.attempt()))
        }
        fn backoff(&self) -> Backoff {
            Backoff::new(Duration::from_millis(10), Duration::from_millis(10))
        }
    }
}

#[tokio::test(start_paused = true)]
async fn panicking_hanging_and_flaky_handlers_end_right_while_other_tasks_keep_flowing() {
    let (h, _rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("mixed"))
        .queue(QueueConfig::new("default").workers(2, 8))
        .cancel_grace(Duration::from_millis(50))
        .handler(h)
        .handler(bad::Panics)
        .handler(bad::Hangs)
        .handler(bad::FailsTwice)
        .start()
        .await
        .unwrap();
    let bad: Vec<_> = futures::future::join_all(
        ["panics", "hangs", "fails_twice"]
            .map(|k| sys.submit(NewTask::new(k, serde_json::Value::Null))),
    )
    .await;
    let ok: Vec<_> = futures::future::join_all(
        (0..500).map(|i| sys.submit(task(Script::Ok { value: i.into() }))),
    )
    .await;
    for r in ok {
        let r = sys
            .wait_timeout(r.unwrap().id, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(r.state, TaskState::Succeeded);
    }
    let ids: Vec<_> = bad.into_iter().map(|r| r.unwrap().id).collect();
    let wait = |i: usize| sys.wait_timeout(ids[i], Duration::from_secs(20));
    let panics = wait(0).await.unwrap();
    assert_eq!((panics.state, panics.attempt), (TaskState::Failed, 3));
    assert_eq!(panics.error.unwrap().kind, FailureKind::Panicked);
    let hangs = wait(1).await.unwrap();
    assert_eq!((hangs.state, hangs.attempt), (TaskState::Failed, 2));
    assert_eq!(hangs.error.unwrap().kind, FailureKind::TimedOut);
    let flaky = wait(2).await.unwrap();
    assert_eq!(
        (flaky.state, flaky.attempt, flaky.result),
        (TaskState::Succeeded, 3, Some(3.into()))
    );
    assert_eq!(sys.health().await.status, HealthStatus::Healthy);
    sys.shutdown(Duration::from_secs(1)).await;
}
