//! The task manager: events, queries, pause/resume/restart/complete, crash history,
//! auto-restart, recovery from a store, and store failures.

mod common;

use std::time::Duration;
use taskmesh::store::prelude::*;

use common::{gate, next_start, task, unique_ns};
use taskmesh::store::{EventKind, MemoryStore, TaskFilter};
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{
    Control, NewTask, QueueConfig, TaskError, TaskState, TaskSystem, TaskSystemBuilder,
};

fn with_store(prefix: &str, h: ScriptHandler, store: MemoryStore) -> TaskSystemBuilder {
    TaskSystem::builder()
        .namespace(unique_ns(prefix))
        .queue(QueueConfig::new("default").workers(1, 1))
        .cancel_grace(Duration::from_millis(50))
        .store(store)
        .handler(h)
}

fn names(events: &[taskmesh::store::StoredEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event.kind.name()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_retried_task_has_its_whole_history_as_events() {
    let (h, _rx) = ScriptHandler::new();
    let sys = with_store("history", h, MemoryStore::new())
        .start()
        .await
        .unwrap();
    let id = sys
        .submit(task(Script::FailTimes { n: 1 }).correlation_id("req-9"))
        .await
        .unwrap()
        .id;
    sys.wait(id).await.unwrap();
    let view = sys.get(id).await.unwrap();
    assert_eq!(view.status.state, TaskState::Succeeded);
    assert_eq!(
        names(&view.events),
        [
            "created",
            "started",
            "attempt_failed",
            "retry_scheduled",
            "started",
            "succeeded"
        ]
    );
    assert!(view.events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(view
        .events
        .iter()
        .all(|e| e.event.correlation_id.as_deref() == Some("req-9")));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn list_filters_paginates_newest_first_and_counts() {
    let (h, _rx) = ScriptHandler::new();
    let sys = with_store("list", h, MemoryStore::new())
        .start()
        .await
        .unwrap();
    let mut ids = vec![];
    for i in 0..5 {
        let t =
            task(Script::Ok { value: i.into() }).actor_id(if i % 2 == 0 { "alice" } else { "bob" });
        ids.push(sys.submit(t).await.unwrap().id);
    }
    for id in &ids {
        sys.wait(*id).await.unwrap();
    }
    let alice = TaskFilter {
        created_by: Some("alice".into()),
        ..Default::default()
    };
    let page = sys.list(alice.clone(), 2, 0).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(
        page.tasks.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ids[4], ids[2]]
    );
    let rest = sys.list(alice.clone(), 2, 2).await.unwrap();
    assert_eq!(
        rest.tasks.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
    assert_eq!(sys.count(alice).await.unwrap(), 3);
    let succeeded = TaskFilter {
        state: Some(TaskState::Succeeded),
        ..Default::default()
    };
    assert_eq!(sys.count(succeeded).await.unwrap(), 5);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_paused_waiting_task_does_not_run_until_resumed() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = with_store("pausew", h.clone(), MemoryStore::new())
        .start()
        .await
        .unwrap();
    let blocker = sys.submit(gate("b")).await.unwrap().id;
    next_start(&mut rx).await;
    let id = sys
        .submit(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap()
        .id;
    assert_eq!(sys.pause(id).await.unwrap(), Control::Done);
    let after = sys
        .submit(task(Script::Ok { value: 2.into() }))
        .await
        .unwrap()
        .id;
    h.open("b", 1);
    sys.wait(blocker).await.unwrap();
    // The one worker takes tasks in queue order: had the paused task been runnable, it
    // would have started before the one queued after it.
    assert_eq!(next_start(&mut rx).await.id, after);
    sys.wait(after).await.unwrap();
    assert_eq!(sys.status(id).unwrap().state, TaskState::Paused);
    assert!(matches!(sys.pause(id).await, Err(TaskError::Transition(_))));
    assert_eq!(sys.resume(id).await.unwrap(), Control::Done);
    assert_eq!(sys.wait(id).await.unwrap().state, TaskState::Succeeded);
    let events = sys.events(id).await.unwrap();
    assert_eq!(
        names(&events),
        ["created", "paused", "resumed", "started", "succeeded"]
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn pausing_a_running_task_stops_it_without_failing_it_and_resume_runs_it_again() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = with_store("pauser", h.clone(), MemoryStore::new())
        .start()
        .await
        .unwrap();
    let id = sys.submit(gate("g")).await.unwrap().id;
    next_start(&mut rx).await;
    assert_eq!(sys.pause(id).await.unwrap(), Control::Requested);
    common::next_end(&mut rx).await;
    let s = sys.status(id).unwrap();
    assert_eq!((s.state, s.error), (TaskState::Paused, None));
    sys.resume(id).await.unwrap();
    let again = next_start(&mut rx).await;
    assert_eq!(
        (again.id, again.attempt),
        (id, 1),
        "a paused run is not an attempt"
    );
    h.open("g", 1);
    assert_eq!(sys.wait(id).await.unwrap().state, TaskState::Succeeded);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn concurrent_resumes_run_a_task_once() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = with_store("resume2", h, MemoryStore::new())
        .start()
        .await
        .unwrap();
    let id = sys
        .submit(task(Script::Ok { value: 1.into() }).auto_start(false))
        .await
        .unwrap()
        .id;
    assert_eq!(sys.status(id).unwrap().state, TaskState::Paused);
    let results = futures::future::join_all((0..8).map(|_| sys.resume(id))).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(sys.wait(id).await.unwrap().attempt, 1);
    assert_eq!(next_start(&mut rx).await.id, id);
    assert!(
        rx.try_recv().map_or(true, |e| !e.started),
        "a second start happened"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn restart_stops_the_running_attempt_and_runs_the_task_again() {
    let (h, mut rx) = ScriptHandler::new();
    let sys = with_store("restart", h.clone(), MemoryStore::new())
        .start()
        .await
        .unwrap();
    let id = sys.submit(gate("g")).await.unwrap().id;
    next_start(&mut rx).await;
    assert_eq!(sys.restart(id).await.unwrap(), Control::Requested);
    let again = next_start(&mut rx).await;
    assert_eq!(
        (again.id, again.attempt),
        (id, 1),
        "a restarted run is not an attempt"
    );
    h.open("g", 1);
    sys.wait(id).await.unwrap();
    assert!(names(&sys.events(id).await.unwrap()).contains(&"restarted"));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn complete_ends_a_task_with_a_result_and_refuses_an_ended_one() {
    let (h, _rx) = ScriptHandler::new();
    let sys = with_store("complete", h, MemoryStore::new())
        .start()
        .await
        .unwrap();
    let id = sys
        .submit(task(Script::Ok { value: 1.into() }).auto_start(false))
        .await
        .unwrap()
        .id;
    assert_eq!(
        sys.complete(id, "by hand".into()).await.unwrap(),
        Control::Done
    );
    let r = sys.wait(id).await.unwrap();
    assert_eq!(
        (r.state, r.result),
        (TaskState::Succeeded, Some("by hand".into()))
    );
    let again = sys.complete(id, 1.into()).await;
    assert!(matches!(
        again,
        Err(TaskError::AlreadyTerminal {
            state: TaskState::Succeeded,
            ..
        })
    ));
    assert!(matches!(
        sys.cancel(id, "late").await,
        Err(TaskError::AlreadyTerminal { .. })
    ));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn crashes_go_to_the_history_and_auto_restart_is_bounded() {
    let (h, _rx) = ScriptHandler::new();
    let sys = with_store("crashes", h.with_max_attempts(1), MemoryStore::new())
        .start()
        .await
        .unwrap();
    let panics = || {
        task(Script::Panic {
            message: "bug".into(),
        })
    };
    let id = sys.submit(panics().auto_restart(2)).await.unwrap().id;
    let r = sys.wait(id).await.unwrap();
    assert_eq!(
        (r.state, r.attempt),
        (TaskState::Failed, 3),
        "two restarts, then failed"
    );
    let view = sys.get(id).await.unwrap();
    assert_eq!(view.crashes.len(), 3);
    assert_eq!(view.status.restarts, 2);
    assert_eq!(
        names(&view.events)
            .iter()
            .filter(|n| **n == "restarted")
            .count(),
        2
    );

    let off = sys.submit(panics()).await.unwrap().id;
    let r = sys.wait(off).await.unwrap();
    assert_eq!(
        (r.state, r.attempt),
        (TaskState::Failed, 1),
        "auto-restart is off by default"
    );
    assert_eq!(sys.get(off).await.unwrap().crashes.len(), 1);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_new_system_on_the_same_store_resumes_what_was_left() {
    let store = MemoryStore::new();
    let (h, mut rx) = ScriptHandler::new();
    let ns = unique_ns("reopen");
    let first = TaskSystem::builder()
        .namespace(&ns)
        .queue(QueueConfig::new("default").workers(1, 1))
        .store(store.clone())
        .handler(h.clone())
        .start()
        .await
        .unwrap();
    let done = first
        .submit(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap()
        .id;
    first.wait(done).await.unwrap();
    while rx.try_recv().is_ok() {}
    let running = first.submit(gate("g")).await.unwrap().id;
    next_start(&mut rx).await;
    let pending = first
        .submit(task(Script::Ok { value: 2.into() }))
        .await
        .unwrap()
        .id;
    let paused = first
        .submit(task(Script::Ok { value: 3.into() }).auto_start(false))
        .await
        .unwrap()
        .id;
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    let scheduled = first
        .submit(task(Script::Ok { value: 4.into() }).run_at(later))
        .await
        .unwrap()
        .id;
    let report = first.shutdown(Duration::from_millis(10)).await;
    assert_eq!(report.interrupted, vec![running]);

    let (h2, _rx2) = ScriptHandler::new();
    h2.open("g", 1);
    let second = TaskSystem::builder()
        .namespace(&ns)
        .store(store)
        .handler(h2)
        .start()
        .await
        .unwrap();
    assert_eq!(second.recovery().loaded, 4);
    for id in [running, pending] {
        assert_eq!(second.wait(id).await.unwrap().state, TaskState::Succeeded);
    }
    assert_eq!(second.status(paused).unwrap().state, TaskState::Paused);
    assert_eq!(
        second.status(scheduled).unwrap().state,
        TaskState::Scheduled
    );
    assert_eq!(second.wait(done).await.unwrap().state, TaskState::Succeeded);
    let s = second.wait(scheduled).await.unwrap();
    assert_eq!(s.state, TaskState::Succeeded);
    second.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_unique_key_held_in_the_store_is_a_duplicate_after_a_restart() {
    let store = MemoryStore::new();
    let (h, _rx) = ScriptHandler::new();
    let ns = unique_ns("ukey");
    let first = TaskSystem::builder()
        .namespace(&ns)
        .store(store.clone())
        .handler(h.clone())
        .start()
        .await
        .unwrap();
    let a = first
        .submit(task(Script::Ok { value: 1.into() }).unique_key("k"))
        .await
        .unwrap();
    first.wait(a.id).await.unwrap();
    first.shutdown(Duration::from_secs(1)).await;
    let second = TaskSystem::builder()
        .namespace(&ns)
        .store(store)
        .handler(h)
        .start()
        .await
        .unwrap();
    let b = second
        .submit(task(Script::Ok { value: 2.into() }).unique_key("k"))
        .await
        .unwrap();
    assert!(b.duplicate);
    assert_eq!(b.id, a.id);
    second.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn events_carry_who_created_the_task() {
    let (h, _rx) = ScriptHandler::new();
    let sys = with_store("actor", h, MemoryStore::new())
        .start()
        .await
        .unwrap();
    let id = sys
        .submit(NewTask::new("script", serde_json::json!({"do": "ok"})).actor_id("ops-bot"))
        .await
        .unwrap()
        .id;
    sys.wait(id).await.unwrap();
    let events = sys.events(id).await.unwrap();
    assert_eq!(events[0].event.kind, EventKind::Created);
    assert_eq!(events[0].event.actor_id.as_deref(), Some("ops-bot"));
    assert_eq!(events[1].event.actor_id.as_deref(), Some("taskmesh"));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn the_janitor_sweeps_old_crash_history_and_prunes_old_ended_tasks() {
    let (h, _rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("janitor"))
        .store(MemoryStore::new())
        .retention(Duration::ZERO, 0)
        .crash_history(Duration::ZERO, Duration::from_secs(3600))
        .store_retention(Duration::from_secs(7 * 24 * 3600))
        .handler(h.with_max_attempts(2))
        .start()
        .await
        .unwrap();
    let id = sys
        .submit(task(Script::Panic {
            message: "bug".into(),
        }))
        .await
        .unwrap()
        .id;
    sys.wait(id).await.unwrap();
    assert_eq!(sys.get(id).await.unwrap().crashes.len(), 2);
    common::advance_and_settle(&sys, Duration::from_secs(3601)).await;
    let view = sys.get(id).await.unwrap();
    assert!(
        view.crashes.is_empty(),
        "crash history past its age was swept"
    );
    assert_eq!(
        view.status.state,
        TaskState::Failed,
        "the task itself is kept"
    );
    assert_eq!(
        names(&view.events)
            .iter()
            .filter(|n| **n == "crashed")
            .count(),
        2,
        "events stay"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn ended_tasks_past_the_store_retention_are_pruned() {
    let (h, _rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("prune"))
        .store(MemoryStore::new())
        .retention(Duration::ZERO, 0)
        .store_retention(Duration::ZERO)
        .crash_history(Duration::from_secs(3600), Duration::from_secs(60))
        .handler(h)
        .start()
        .await
        .unwrap();
    let done = sys
        .submit_and_wait(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap()
        .id;
    let paused = sys
        .submit(task(Script::Ok { value: 2.into() }).auto_start(false))
        .await
        .unwrap()
        .id;
    common::advance_and_settle(&sys, Duration::from_secs(61)).await;
    assert!(
        matches!(sys.get(done).await, Err(TaskError::NotFound(_))),
        "the ended task was pruned"
    );
    assert_eq!(
        sys.get(paused).await.unwrap().status.state,
        TaskState::Paused,
        "open tasks stay"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

/// An attempt is a run that ends by its own outcome. Pause, resume, restart and a
/// graceful shutdown stop runs without using attempts, so a task allowed one attempt
/// keeps its count at one however often an operator stops it.
#[tokio::test(start_paused = true)]
async fn operator_stops_and_shutdown_do_not_use_up_attempts() {
    let (h, mut rx) = ScriptHandler::new();
    let store = MemoryStore::new();
    let sys = with_store("attempts", h.clone(), store.clone())
        .start()
        .await
        .unwrap();
    let id = sys.submit(gate("g").max_attempts(1)).await.unwrap().id;
    assert_eq!(next_start(&mut rx).await.attempt, 1);
    sys.pause(id).await.unwrap();
    common::next_end(&mut rx).await;
    sys.resume(id).await.unwrap();
    assert_eq!(next_start(&mut rx).await.attempt, 1);
    sys.restart(id).await.unwrap();
    assert_eq!(next_start(&mut rx).await.attempt, 1);
    let s = sys.status(id).unwrap();
    assert_eq!((s.attempt, s.max_attempts), (1, 1));
    let report = sys.shutdown(Duration::from_millis(10)).await;
    assert_eq!(report.interrupted, vec![id]);
    let stored = store.get(id).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.life.state,
            stored.life.attempt,
            stored.life.max_attempts
        ),
        (TaskState::Pending, 0, 1),
        "the run cut off by shutdown gave its attempt back"
    );
}
