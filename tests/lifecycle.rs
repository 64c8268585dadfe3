//! Starting, stopping and restarting systems; shutdown; isolation between systems.

mod common;

use std::time::{Duration, SystemTime};

use common::{builder, gate, next_start, task, unique_ns};
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{HealthStatus, SubmitError, TaskError, TaskState, TaskSystem};

#[tokio::test(start_paused = true)]
async fn a_system_starts_reports_healthy_stops_and_starts_again_under_the_same_namespace() {
    let ns = unique_ns("life");
    for round in 0..2 {
        let (h, _rx) = ScriptHandler::new();
        let sys = TaskSystem::builder()
            .namespace(&ns)
            .handler(h)
            .start()
            .await
            .unwrap();
        let health = sys.health().await;
        assert_eq!(
            health.status,
            HealthStatus::Healthy,
            "round {round}: {health:?}"
        );
        assert!(health.services.iter().any(|s| s.service == "pool:default"));
        let r = sys
            .submit_and_wait(task(Script::Ok {
                value: round.into(),
            }))
            .await
            .unwrap();
        assert_eq!(r.state, TaskState::Succeeded);
        sys.shutdown(Duration::from_secs(1)).await;
        assert_eq!(sys.health().await.status, HealthStatus::Down);
    }
}

#[tokio::test(start_paused = true)]
async fn no_actor_of_the_system_remains_after_shutdown() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = builder("noleak", h.clone()).start().await.unwrap();
    sys.submit(gate("g")).await.unwrap();
    next_start(&mut rx).await;
    let live = sys.live_actors();
    assert!(live.iter().any(|n| n.ends_with("/root")), "{live:?}");
    assert!(
        live.iter().any(|n| n.starts_with("workers/default:")),
        "{live:?}"
    );
    sys.shutdown(Duration::from_millis(50)).await;
    assert_eq!(sys.live_actors(), Vec::<String>::new());
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_running_tasks_finish_within_the_grace_period() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = builder("grace", h).start().await.unwrap();
    let id = sys
        .submit(task(Script::Sleep { ms: 500 }))
        .await
        .unwrap()
        .id;
    next_start(&mut rx).await;
    let report = sys.shutdown(Duration::from_secs(2)).await;
    assert!(report.interrupted.is_empty(), "{report:?}");
    assert_eq!(sys.status(id).unwrap().state, TaskState::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn shutdown_interrupts_what_outlives_the_grace_period_and_refuses_new_work() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("interrupt"))
        .queue(taskmesh::QueueConfig::new("default").workers(1, 1))
        .handler(h)
        .start()
        .await
        .unwrap();
    let hung = sys.submit(task(Script::Hang)).await.unwrap().id;
    next_start(&mut rx).await;
    let queued = sys
        .submit(task(Script::Ok { value: 0.into() }))
        .await
        .unwrap()
        .id;
    let waiter = {
        let sys = sys.clone();
        tokio::spawn(async move { sys.wait(hung).await })
    };
    let report = sys.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.interrupted, vec![hung]);
    assert_eq!(
        report.left_queued, 2,
        "the interrupted task and the one never started"
    );
    assert_eq!(sys.status(hung).unwrap().state, TaskState::Pending);
    assert_eq!(sys.status(queued).unwrap().state, TaskState::Pending);
    assert!(matches!(
        waiter.await.unwrap(),
        Err(TaskError::SystemStopped)
    ));
    let late = sys.submit(task(Script::Ok { value: 0.into() })).await;
    assert!(matches!(late, Err(SubmitError::ShuttingDown)));
}

#[tokio::test(start_paused = true)]
async fn two_systems_in_one_process_do_not_see_each_other() {
    let (h1, mut rx1) = ScriptHandler::new();
    let (h2, _rx2) = ScriptHandler::new();
    let a = builder("iso-a", h1).start().await.unwrap();
    let b = builder("iso-b", h2).start().await.unwrap();
    let id = a.submit(gate("g")).await.unwrap().id;
    next_start(&mut rx1).await;
    assert!(matches!(b.status(id), Err(TaskError::NotFound(_))));
    assert_eq!(b.queues()[0].running, 0);
    assert_eq!(a.queues()[0].running, 1);
    b.shutdown(Duration::from_secs(1)).await;
    assert!(b.live_actors().is_empty());
    assert!(!a.live_actors().is_empty(), "stopping b left a alone");
    assert_eq!(a.health().await.status, HealthStatus::Healthy);
    a.shutdown(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn a_second_system_with_a_taken_namespace_fails_to_start() {
    let ns = unique_ns("dup");
    let (h1, _r1) = ScriptHandler::new();
    let (h2, _r2) = ScriptHandler::new();
    let a = TaskSystem::builder()
        .namespace(&ns)
        .handler(h1)
        .start()
        .await
        .unwrap();
    let b = TaskSystem::builder()
        .namespace(&ns)
        .handler(h2)
        .start()
        .await;
    assert!(b.is_err());
    a.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_task_with_run_at_waits_scheduled_until_its_time() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = builder("runat", h).start().await.unwrap();
    let at = SystemTime::now() + Duration::from_secs(30);
    let t0 = tokio::time::Instant::now();
    let id = sys
        .submit(task(Script::Ok { value: 0.into() }).run_at(at))
        .await
        .unwrap()
        .id;
    assert_eq!(sys.status(id).unwrap().state, TaskState::Scheduled);
    next_start(&mut rx).await;
    assert!(
        t0.elapsed() >= Duration::from_secs(29),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(sys.wait(id).await.unwrap().state, TaskState::Succeeded);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_unique_key_returns_the_existing_task_as_a_duplicate() {
    let (h, _rx) = ScriptHandler::new();
    let sys = builder("unique", h).start().await.unwrap();
    let first = sys.submit(gate("g").unique_key("order-7")).await.unwrap();
    let second = sys.submit(gate("g").unique_key("order-7")).await.unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(first.id, second.id);
    assert_eq!(
        sys.queues()[0].depth + sys.queues()[0].running,
        1,
        "only one was enqueued"
    );
    sys.shutdown(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn tasks_of_varying_durations_all_complete() {
    let (h, _rx) = ScriptHandler::new();
    let sys = builder("vary", h).start().await.unwrap();
    let ms = [0u64, 5, 50, 500, 5_000, 1, 250, 2_000, 10, 100];
    let ids: Vec<_> =
        futures::future::join_all(ms.iter().map(|&ms| sys.submit(task(Script::Sleep { ms }))))
            .await
            .into_iter()
            .map(|r| r.unwrap().id)
            .collect();
    for (id, ms) in ids.into_iter().zip(ms) {
        let r = sys.wait(id).await.unwrap();
        assert_eq!((r.state, r.result), (TaskState::Succeeded, Some(ms.into())));
    }
    sys.shutdown(Duration::from_secs(1)).await;
}

/// Nothing supervises the root supervisor: if it stops on its own, no worker would run a
/// task, so the system must say so rather than accept work.
#[tokio::test(start_paused = true)]
async fn a_stopped_root_supervisor_makes_the_system_not_ready_and_refuse_submits() {
    let ns = unique_ns("rootdown");
    let (h, _rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(&ns)
        .handler(h)
        .start()
        .await
        .unwrap();
    assert!(sys.ready().await.ready);
    let root = ractor::registry::where_is(format!("{ns}/root")).expect("the root is registered");
    root.kill_and_wait(None).await.unwrap();

    let refused = sys.submit(task(Script::Ok { value: 1.into() })).await;
    assert!(matches!(refused, Err(SubmitError::TreeDown)), "{refused:?}");
    let message = refused.unwrap_err().to_string();
    assert!(
        message.contains("supervision tree has stopped"),
        "{message}"
    );
    let readiness = sys.ready().await;
    assert!(!readiness.ready);
    assert!(
        readiness
            .failing
            .iter()
            .any(|f| f.starts_with("supervisor:root")),
        "{readiness:?}"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}
