//! Pools: backpressure, scaling, priorities, cancellation, supervision and escalation.

mod common;

use std::time::Duration;

use common::{builder, gate, next_start, task, unique_ns};
use taskmesh::supervisor::SupervisorMsg;
use taskmesh::testing::{crash_worker, Script, ScriptHandler};
use taskmesh::{
    Control, HealthStatus, Priority, QueueConfig, SubmitError, TaskError, TaskState, TaskSystem,
};

#[tokio::test(start_paused = true)]
async fn a_submit_beyond_the_bound_is_refused_as_overloaded_and_nothing_is_dropped() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("bound"))
        .queue(QueueConfig::new("default").workers(1, 1).bound(3))
        .handler(h.clone())
        .start()
        .await
        .unwrap();
    let running = sys.submit(gate("g")).await.unwrap().id;
    next_start(&mut rx).await;
    let mut waiting = vec![];
    for _ in 0..3 {
        waiting.push(sys.submit(gate("g")).await.unwrap().id);
    }
    let refused = sys.submit(gate("g")).await;
    assert!(
        matches!(&refused, Err(SubmitError::Overloaded { queue, bound: 3 }) if queue == "default"),
        "{refused:?}"
    );
    h.open("g", 4);
    for id in std::iter::once(running).chain(waiting) {
        assert_eq!(sys.wait(id).await.unwrap().state, TaskState::Succeeded);
    }
    assert!(
        sys.submit(gate("g")).await.is_ok(),
        "room again once tasks ran"
    );
    h.open("g", 1);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn the_pool_grows_under_load_and_shrinks_back_after_the_idle_timeout() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("scale"))
        .queue(
            QueueConfig::new("default")
                .workers(2, 6)
                .idle_timeout(Duration::from_secs(5)),
        )
        .handler(h.clone())
        .start()
        .await
        .unwrap();
    assert_eq!(sys.queues()[0].workers, 2);
    let ids: Vec<_> = futures::future::join_all((0..10).map(|_| sys.submit(gate("load"))))
        .await
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect();
    for _ in 0..6 {
        next_start(&mut rx).await;
    }
    let q = &sys.queues()[0];
    assert_eq!(
        (q.workers, q.running, q.depth),
        (6, 6, 4),
        "grew to max, rest waits"
    );
    h.open("load", 10);
    for id in ids {
        sys.wait(id).await.unwrap();
    }
    common::advance_and_settle(&sys, Duration::from_secs(6)).await;
    assert_eq!(
        sys.queues()[0].workers,
        2,
        "idle workers retired down to min"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn higher_priorities_start_first_and_equal_priorities_in_order() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = common::one_worker("prio", h.clone()).start().await.unwrap();
    let blocker = sys.submit(gate("b")).await.unwrap().id;
    next_start(&mut rx).await;
    let plan = [
        Priority::Low,
        Priority::Critical,
        Priority::Normal,
        Priority::Critical,
        Priority::Background,
    ];
    let mut ids = vec![];
    for p in plan {
        ids.push(
            sys.submit(task(Script::Ok { value: 0.into() }).priority(p))
                .await
                .unwrap()
                .id,
        );
    }
    h.open("b", 1);
    let mut order = vec![];
    for _ in 0..plan.len() {
        order.push(next_start(&mut rx).await.id);
    }
    assert_eq!(order, vec![ids[1], ids[3], ids[2], ids[0], ids[4]]);
    sys.wait(blocker).await.unwrap();
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_queued_task_can_be_cancelled_and_never_runs() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = common::one_worker("cq", h.clone()).start().await.unwrap();
    let blocker = sys.submit(gate("b")).await.unwrap().id;
    next_start(&mut rx).await;
    let queued = sys
        .submit(task(Script::Ok { value: 0.into() }))
        .await
        .unwrap()
        .id;
    assert_eq!(
        sys.cancel(queued, "changed my mind").await.unwrap(),
        Control::Done
    );
    let r = sys.wait(queued).await.unwrap();
    assert_eq!((r.state, r.attempt), (TaskState::Cancelled, 0));
    assert!(matches!(
        sys.cancel(queued, "again").await,
        Err(TaskError::AlreadyTerminal { .. })
    ));
    assert_eq!(sys.queues()[0].depth, 0);
    h.open("b", 1);
    sys.wait(blocker).await.unwrap();
    let after = sys
        .submit(task(Script::Ok { value: 0.into() }))
        .await
        .unwrap()
        .id;
    assert_eq!(
        next_start(&mut rx).await.id,
        after,
        "the cancelled task never started"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_running_task_can_be_cancelled_through_its_token() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = builder("cr", h).start().await.unwrap();
    let id = sys.submit(gate("never")).await.unwrap().id;
    next_start(&mut rx).await;
    assert_eq!(sys.status(id).unwrap().state, TaskState::Running);
    assert_eq!(sys.cancel(id, "stop").await.unwrap(), Control::Requested);
    let r = sys.wait(id).await.unwrap();
    assert_eq!(r.state, TaskState::Cancelled);
    assert_eq!(r.cancel_reason.as_deref(), Some("stop"));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_running_task_that_ignores_its_token_is_aborted_after_the_grace_period() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = builder("abort", h).start().await.unwrap();
    let id = sys.submit(task(Script::Hang)).await.unwrap().id;
    next_start(&mut rx).await;
    let before = tokio::time::Instant::now();
    sys.cancel(id, "stop").await.unwrap();
    let r = sys.wait(id).await.unwrap();
    assert_eq!(r.state, TaskState::Cancelled);
    assert!(
        before.elapsed() >= Duration::from_millis(100),
        "waited the grace period"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn progress_and_status_are_visible_while_the_handler_runs() {
    use taskmesh::{Handler, HandlerResult, Outcome, TaskContext};
    struct Reporter(
        tokio::sync::mpsc::UnboundedSender<()>,
        std::sync::Arc<tokio::sync::Notify>,
    );
    impl Handler for Reporter {
        const KIND: &'static str = "reporter";
        type Args = ();
        type Output = ();
        async fn perform(&self, ctx: TaskContext, _: ()) -> HandlerResult<()> {
            ctx.report_progress(40, "resizing");
            self.0.send(()).unwrap();
            self.1.notified().await;
            Ok(Outcome::Succeeded(()))
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let go = std::sync::Arc::new(tokio::sync::Notify::new());
    let sys = TaskSystem::builder()
        .namespace(unique_ns("progress"))
        .handler(Reporter(tx, go.clone()))
        .start()
        .await
        .unwrap();
    let id = sys
        .submit(taskmesh::NewTask::new("reporter", serde_json::Value::Null))
        .await
        .unwrap()
        .id;
    rx.recv().await.unwrap();
    let p = sys.progress(id).unwrap().unwrap();
    assert_eq!((p.percent, p.message.as_str()), (40, "resizing"));
    let s = sys.status(id).unwrap();
    assert_eq!((s.state, s.attempt), (TaskState::Running, 1));
    go.notify_one();
    assert_eq!(sys.wait(id).await.unwrap().state, TaskState::Succeeded);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_crashed_worker_is_replaced_and_its_task_retried() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = common::one_worker("crash", h.clone())
        .start()
        .await
        .unwrap();
    let id = sys.submit(gate("g")).await.unwrap().id;
    next_start(&mut rx).await;
    assert!(crash_worker(&sys, "default"));
    let retry = next_start(&mut rx).await;
    assert_eq!(
        (retry.id, retry.attempt),
        (id, 2),
        "the replacement worker retried it"
    );
    let s = sys.status(id).unwrap();
    assert_eq!(s.error.unwrap().kind, taskmesh::FailureKind::Crashed);
    h.open("g", 1);
    assert_eq!(sys.wait(id).await.unwrap().state, TaskState::Succeeded);
    let health = sys.health().await;
    let pool = health
        .services
        .iter()
        .find(|s| s.service == "pool:default")
        .unwrap();
    assert_eq!(pool.status, HealthStatus::Degraded, "{pool:?}");
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn exceeding_the_restart_intensity_escalates_to_the_queue_supervisor() {
    let (h, _rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("escalate"))
        .queue(
            QueueConfig::new("default")
                .workers(1, 1)
                .restart_intensity(3, Duration::from_secs(60)),
        )
        .handler(h)
        .start()
        .await
        .unwrap();
    let qsup =
        ractor::ActorRef::<SupervisorMsg>::where_is(format!("{}/queue/default", sys.namespace()))
            .unwrap();
    let pool_restarts = || async {
        let children = ractor::call_t!(qsup, SupervisorMsg::Children, 1000).unwrap();
        children
            .into_iter()
            .find(|c| c.id == "pool:default")
            .unwrap()
            .restarts
    };
    assert_eq!(pool_restarts().await, 0);
    for _ in 0..4 {
        assert!(crash_worker(&sys, "default"), "a worker to crash");
        // The pool hears of the crash, then its respawn timer fires.
        common::advance_and_settle(&sys, Duration::ZERO).await;
        common::advance_and_settle(&sys, Duration::from_millis(200)).await;
    }
    assert_eq!(
        pool_restarts().await,
        1,
        "the fourth crash within 60 s escalated"
    );
    let r = sys
        .submit_and_wait(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap();
    assert_eq!(
        r.state,
        TaskState::Succeeded,
        "the restarted pool serves again"
    );
    let health = sys.health().await;
    let qs = health
        .services
        .iter()
        .find(|s| s.service == "supervisor:queue:default")
        .unwrap();
    assert_eq!(qs.status, HealthStatus::Degraded);
    sys.shutdown(Duration::from_secs(1)).await;
}
