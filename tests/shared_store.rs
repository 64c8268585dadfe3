//! Several task systems on one store that several processes share: each task runs once,
//! the store arbitrates every claim, and a system's tasks are visible from the others.
//! The store is a `MemoryStore::shared()`, whose clones behave as one database used by
//! several processes; the PostgreSQL versions of these checks run the same systems on a
//! real database.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{task, unique_ns};
use taskmesh::store::prelude::*;
use taskmesh::store::{EventKind, MemoryStore};
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{QueueConfig, TaskId, TaskState, TaskSystem};

async fn node(store: &MemoryStore, name: &str) -> (TaskSystem, ScriptHandler) {
    let (handler, _events) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns(name))
        .node_name(name)
        .queue(QueueConfig::new("default").workers(2, 8))
        .handler(handler.clone())
        .store(store.clone())
        .start()
        .await
        .unwrap();
    (sys, handler)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_systems_on_one_shared_store_run_every_task_once() {
    let store = MemoryStore::shared();
    let (a, _) = node(&store, "a").await;
    let (b, _) = node(&store, "b").await;
    let mut ids: Vec<(TaskId, bool)> = Vec::new();
    for i in 0..2_000 {
        let sys = if i % 2 == 0 { &a } else { &b };
        let receipt = sys
            .submit(task(Script::Ok { value: i.into() }))
            .await
            .unwrap();
        ids.push((receipt.id, i % 2 == 0));
    }
    for (id, on_a) in &ids {
        // Waited on through the other system: its status comes from the store.
        let other = if *on_a { &b } else { &a };
        let done = tokio::time::timeout(Duration::from_secs(30), other.wait(*id))
            .await
            .expect("every task ends")
            .unwrap();
        assert_eq!(done.state, TaskState::Succeeded, "{id}");
    }
    for (id, _) in &ids {
        let events = store.events(*id).await.unwrap();
        let mut by_type: HashMap<&str, usize> = HashMap::new();
        for e in &events {
            *by_type.entry(e.event.kind.name()).or_default() += 1;
        }
        assert_eq!(by_type.get("started"), Some(&1), "{id}: {events:?}");
        assert_eq!(by_type.get("succeeded"), Some(&1), "{id}: {events:?}");
        assert!(
            !events
                .iter()
                .any(|e| matches!(e.event.kind, EventKind::Crashed { .. })),
            "{id}"
        );
        let record = store.get(*id).await.unwrap().unwrap();
        assert_eq!(record.life.owner, None, "an ended task is held by nobody");
    }
    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_accepted_by_a_node_that_stopped_is_run_by_another() {
    let store = MemoryStore::shared();
    let (a, _) = node(&store, "a").await;
    a.pause_queue("default").unwrap();
    let held = a
        .submit(task(Script::Ok { value: 7.into() }))
        .await
        .unwrap();
    let record = store.get(held.id).await.unwrap().unwrap();
    assert_eq!(
        record.life.owner.as_ref().map(|o| o.node.as_str()),
        Some("a"),
        "accepted by a, held by a"
    );
    a.shutdown(Duration::from_secs(5)).await;
    let record = store.get(held.id).await.unwrap().unwrap();
    assert_eq!(record.life.owner, None, "given back at shutdown");
    let (b, _) = node(&store, "b").await;
    let done = tokio::time::timeout(Duration::from_secs(10), b.wait(held.id))
        .await
        .expect("b reserves and runs it")
        .unwrap();
    assert_eq!(done.state, TaskState::Succeeded);
    assert_eq!(done.result, Some(7.into()));
    b.shutdown(Duration::from_secs(5)).await;
}

/// A node with short liveness intervals, so that requests stored through another node
/// arrive within a few heartbeats.
async fn quick_node(store: &MemoryStore, name: &str) -> (TaskSystem, ScriptHandler, Events) {
    let (handler, events) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns(name))
        .node_name(name)
        .queue(QueueConfig::new("default").workers(1, 4))
        .cancel_grace(Duration::from_millis(50))
        .liveness(
            Duration::from_secs(5),
            Duration::from_millis(50),
            Duration::from_millis(50),
        )
        .handler(handler.clone())
        .store(store.clone())
        .start()
        .await
        .unwrap();
    (sys, handler, events)
}

type Events = tokio::sync::mpsc::UnboundedReceiver<taskmesh::testing::ScriptEvent>;

/// A node holding a waiting task may start it without waiting for the store, so a
/// cancel through another node is a request stored with the task, which the holder
/// applies (here at its next heartbeat: a memory store has no mesh) before it starts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_task_held_by_one_node_is_cancelled_through_another_by_its_holder_and_never_runs()
{
    let store = MemoryStore::shared();
    let (a, _, mut a_events) = quick_node(&store, "a").await;
    let (b, _, _) = quick_node(&store, "b").await;
    a.pause_queue("default").unwrap();
    let id = a
        .submit(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap()
        .id;
    let waiting = {
        let a = a.clone();
        tokio::spawn(async move { a.wait(id).await })
    };
    cancel_through_b_applied_by_a(&b, id).await;
    assert_eq!(a.get(id).await.unwrap().status.state, TaskState::Cancelled);
    a.resume_queue("default").unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("a's waiter learns the end")
        .unwrap()
        .unwrap();
    assert_eq!(ended.state, TaskState::Cancelled);
    assert!(a_events.try_recv().is_err(), "the handler never ran");
    let names = event_names(&store, id).await;
    assert_eq!(names, ["created", "stop_requested", "cancelled"]);
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
}

/// The names of the task's stored events, oldest first.
async fn event_names(store: &MemoryStore, id: taskmesh::TaskId) -> Vec<&'static str> {
    let events = store.events(id).await.unwrap();
    events.iter().map(|e| e.event.kind.name()).collect()
}

/// Cancels through `b` a task another node holds: a request, stored for that node.
async fn cancel_through_b(b: &TaskSystem, id: taskmesh::TaskId) {
    let control = b.cancel(id, "through b").await.unwrap();
    assert_eq!(control, taskmesh::Control::Requested);
}

/// Waits through `b`, within `limit`, for the task to end cancelled by the cancel
/// through `b`.
/// A cancel through `b` of a task `a` holds, stored as a request that `a` applies at its
/// next heartbeat; waits (10 s at most) until `b` sees it cancelled.
async fn cancel_through_b_applied_by_a(b: &TaskSystem, id: taskmesh::TaskId) {
    cancel_through_b(b, id).await;
    cancelled_through_b(
        b,
        id,
        Duration::from_secs(10),
        "a applies the stored request at its next heartbeat",
    )
    .await;
}

async fn cancelled_through_b(b: &TaskSystem, id: taskmesh::TaskId, limit: Duration, what: &str) {
    let ended = tokio::time::timeout(limit, b.wait(id))
        .await
        .expect(what)
        .unwrap();
    assert_eq!(ended.state, TaskState::Cancelled);
    assert_eq!(ended.cancel_reason.as_deref(), Some("through b"));
}

/// Node `a`, renewing its heartbeat once an hour (so it looks for stored requests and
/// strays only at its start) and dead to itself only after three: a process that is
/// paused, or cut off from the others, as they see it. It polls the pool every `poll`.
async fn hourly_node(
    store: &MemoryStore,
    poll: Duration,
    grace: Option<Duration>,
) -> (TaskSystem, ScriptHandler, Events) {
    let hour = Duration::from_secs(3600);
    let (handler, events) = ScriptHandler::new();
    let mut builder = TaskSystem::builder()
        .namespace(unique_ns("a"))
        .node_name("a")
        .queue(QueueConfig::new("default").workers(1, 2))
        .liveness(hour * 3, hour, poll)
        .handler(handler.clone())
        .store(store.clone());
    if let Some(grace) = grace {
        builder = builder.cancel_grace(grace);
    }
    (builder.start().await.unwrap(), handler, events)
}

/// Returns once `node`'s first heartbeat (the one at its start) is over, so that a
/// node whose next one is an hour away has looked for requests for the last time.
async fn first_heartbeat(store: &MemoryStore, node: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let nodes = store.nodes().await.unwrap();
            if nodes
                .iter()
                .any(|n| n.owner.node == node && n.heartbeat_at > n.started_at)
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a node renews its heartbeat once at start");
}

/// A request stored on a waiting task whose holder then dies is applied by whoever
/// takes the task over, instead of running it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stored_for_a_dead_holder_is_applied_by_the_node_that_takes_the_task_over() {
    let store = MemoryStore::shared();
    // `a` renews (and so looks for requests) once an hour: it never applies this one.
    let (a, _, mut a_events) = hourly_node(&store, Duration::from_millis(50), None).await;
    a.pause_queue("default").unwrap();
    let id = a
        .submit(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap()
        .id;
    first_heartbeat(&store, "a").await;
    let (b, _, mut b_events) = quick_node(&store, "b").await;
    cancel_through_b(&b, id).await;
    cancelled_through_b(
        &b,
        id,
        Duration::from_secs(20),
        "b finds a dead, takes the task and applies the request",
    )
    .await;
    assert!(b_events.try_recv().is_err(), "b never ran it");
    assert!(a_events.try_recv().is_err(), "a never ran it");
    let names = event_names(&store, id).await;
    assert_eq!(names, ["created", "stop_requested", "cancelled"]);
    b.shutdown(Duration::from_secs(5)).await;
    a.shutdown(Duration::from_secs(5)).await;
}

/// A holder that starts a task without having seen a request stored on it meanwhile
/// (its heartbeat is an hour away, and a memory store has no mesh) finds its claim,
/// written behind the attempt, refused: the attempt stops, its outcome is dropped, and
/// the row keeps the request, which whoever takes the task applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_behind_an_attempt_that_a_stored_request_fences_out_stops_the_attempt() {
    let store = MemoryStore::shared();
    // A grace long enough that the gate, which returns as soon as its token fires, is
    // never cut off (its end is what the test waits for), however busy the machine.
    let grace = Some(Duration::from_secs(30));
    let (a, _, mut a_events) = hourly_node(&store, Duration::from_secs(3600), grace).await;
    a.pause_queue("default").unwrap();
    let id = a.submit(common::gate("g")).await.unwrap().id;
    first_heartbeat(&store, "a").await;
    let (b, _, mut b_events) = quick_node(&store, "b").await;
    cancel_through_b(&b, id).await;
    a.resume_queue("default").unwrap();
    let started = tokio::time::timeout(Duration::from_secs(10), common::next_start(&mut a_events))
        .await
        .expect("a starts the task, not knowing of the request");
    assert_eq!(started.id, id);
    let stopped = tokio::time::timeout(Duration::from_secs(10), common::next_end(&mut a_events))
        .await
        .expect("the attempt stops");
    assert_eq!(
        stopped.id, id,
        "the attempt stops once its claim is refused"
    );
    let row = store.get(id).await.unwrap().unwrap();
    assert_eq!(
        row.life.state,
        TaskState::Pending,
        "the store never saw it run"
    );
    assert!(row.life.intent.is_some(), "the request is still there");
    // `a` gives the task back as it stops; `b` takes it and applies the request.
    a.shutdown(Duration::from_secs(5)).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), b.wait(id))
        .await
        .expect("b takes the task and applies the request")
        .unwrap();
    assert_eq!(ended.state, TaskState::Cancelled);
    assert!(b_events.try_recv().is_err(), "b never ran it");
    let names = event_names(&store, id).await;
    assert_eq!(names, ["created", "stop_requested", "cancelled"]);
    b.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_through_another_node_stops_the_attempt_where_it_runs() {
    let store = MemoryStore::shared();
    let (a, _, mut a_events) = quick_node(&store, "a").await;
    let (b, _, _) = quick_node(&store, "b").await;
    let id = a.submit(common::gate("never")).await.unwrap().id;
    let started = common::next_start(&mut a_events).await;
    assert_eq!(started.id, id);
    cancel_through_b_applied_by_a(&b, id).await;
    let names = event_names(&store, id).await;
    assert_eq!(names, ["created", "started", "stop_requested", "cancelled"]);
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
}

/// `a` stops renewing its heartbeat (its interval is an hour) but does not know it is
/// dead (its own `dead_after` is longer still): a process that was paused or cut off.
/// `b` finds it dead, rescues its running task as a crashed attempt and runs it again;
/// when `a`'s attempt finally returns, its result is fenced out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_running_task_is_rescued_and_its_late_result_fenced_out() {
    let store = MemoryStore::shared();
    let (a, a_handler, mut a_events) = hourly_node(&store, Duration::from_millis(50), None).await;
    let id = a.submit(common::gate("g")).await.unwrap().id;
    assert_eq!(common::next_start(&mut a_events).await.id, id);

    let (b_handler, mut b_events) = ScriptHandler::new();
    let b = TaskSystem::builder()
        .namespace(unique_ns("b"))
        .node_name("b")
        .queue(QueueConfig::new("default").workers(1, 2))
        .liveness(
            Duration::from_millis(400),
            Duration::from_millis(50),
            Duration::from_millis(50),
        )
        .handler(b_handler.clone())
        .store(store.clone())
        .start()
        .await
        .unwrap();
    let rerun = tokio::time::timeout(Duration::from_secs(10), common::next_start(&mut b_events))
        .await
        .expect("b rescues the task once a's heartbeat is older than dead_after");
    assert_eq!((rerun.id, rerun.attempt), (id, 2));
    b_handler.open("g", 1);
    let done = tokio::time::timeout(Duration::from_secs(10), b.wait(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, TaskState::Succeeded);

    // a's attempt returns late: its settle must change nothing.
    a_handler.open("g", 1);
    let late = common::next_end(&mut a_events).await;
    assert_eq!(late.id, id);
    a.shutdown(Duration::from_secs(5)).await;
    let names = event_names(&store, id).await;
    let terminal = names.iter().filter(|n| **n == "succeeded").count();
    assert_eq!(terminal, 1, "{names:?}");
    assert!(names.contains(&"crashed"), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| **n == "started").count(),
        2,
        "{names:?}"
    );
    let record = store.get(id).await.unwrap().unwrap();
    assert_eq!(record.life.attempt, 2);
    assert_eq!(record.life.state, TaskState::Succeeded);
    b.shutdown(Duration::from_secs(5)).await;
}

/// A node that looks for waiting tasks in the shared pool only once an hour, unless a
/// hint wakes it.
async fn sleepy_node(store: &MemoryStore, name: &str) -> TaskSystem {
    let hour = Duration::from_secs(3600);
    let (handler, _events) = ScriptHandler::new();
    TaskSystem::builder()
        .namespace(unique_ns(name))
        .node_name(name)
        .queue(QueueConfig::new("default").workers(1, 4))
        .liveness(hour * 3, hour, hour)
        .handler(handler)
        .store(store.clone())
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_given_back_at_shutdown_are_taken_at_once_by_a_node_the_hint_wakes() {
    let store = MemoryStore::shared();
    let a = sleepy_node(&store, "a").await;
    let b = sleepy_node(&store, "b").await;
    a.pause_queue("default").unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            a.submit(task(Script::Ok { value: i.into() }))
                .await
                .unwrap()
                .id,
        );
    }
    a.shutdown(Duration::from_secs(5)).await;
    for id in ids {
        // b polls once an hour: only the hint sent with the release brings it here.
        let done = tokio::time::timeout(Duration::from_secs(10), b.wait(id))
            .await
            .expect("the hint wakes b, which reserves and runs the task")
            .unwrap();
        assert_eq!(done.state, TaskState::Succeeded);
    }
    b.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_resumed_through_another_node_is_taken_at_once_by_a_node_with_free_workers() {
    let store = MemoryStore::shared();
    let a = sleepy_node(&store, "a").await;
    let b = sleepy_node(&store, "b").await;
    a.pause_queue("default").unwrap();
    let id = a
        .submit(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap()
        .id;
    assert_eq!(a.pause(id).await.unwrap(), taskmesh::Control::Done);
    a.shutdown(Duration::from_secs(5)).await;
    // Through b, which does not hold it: the task goes back to the shared pool waiting,
    // and b, polling once an hour, hears of it from its own hint.
    assert_eq!(b.resume(id).await.unwrap(), taskmesh::Control::Done);
    let done = tokio::time::timeout(Duration::from_secs(10), b.wait(id))
        .await
        .expect("the hint wakes b")
        .unwrap();
    assert_eq!(done.state, TaskState::Succeeded);
    b.shutdown(Duration::from_secs(5)).await;
}
