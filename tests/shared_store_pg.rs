//! The shared-store checks of `shared_store.rs` on a real PostgreSQL database: several
//! task systems (as several processes) on one database, each task run once, claims won
//! in the store, and every task visible from every system. Each test makes its own
//! database (see `taskmesh::testing::pg`); without a server they print `skipped: …`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{task, unique_ns};
use taskmesh::store::prelude::*;
use taskmesh::store::{EventKind, PgStore};
use taskmesh::testing::pg::TestDb;
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{QueueConfig, TaskId, TaskState, TaskSystem};

async fn node(db: &TestDb, name: &str) -> (TaskSystem, PgStore) {
    let store = PgStore::connect_with(db.options()).await.unwrap();
    let (handler, _events) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns(name))
        .node_name(name)
        .queue(QueueConfig::new("default").workers(2, 16))
        .handler(handler)
        .store(store.clone())
        .start()
        .await
        .unwrap();
    (sys, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_systems_on_one_postgres_database_run_each_of_10_000_tasks_once() {
    let Some(db) = TestDb::create("two_systems").await else {
        return;
    };
    let (a, store) = node(&db, "a").await;
    let (b, _) = node(&db, "b").await;
    let submits = (0..10_000).map(|i| {
        let sys = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            let receipt = sys.submit(task(Script::Ok { value: i.into() })).await;
            (receipt.unwrap().id, i % 2 == 0)
        }
    });
    let ids: Vec<(TaskId, bool)> = futures::future::join_all(submits).await;
    for (id, on_a) in &ids {
        let other = if *on_a { &b } else { &a };
        let done = tokio::time::timeout(Duration::from_secs(120), other.wait(*id))
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
        let crashed = events
            .iter()
            .any(|e| matches!(e.event.kind, EventKind::Crashed { .. }));
        assert!(!crashed, "{id}");
    }
    assert_eq!(store.nodes().await.unwrap().len(), 2);
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_accepted_by_a_system_that_stopped_is_run_by_another() {
    let Some(db) = TestDb::create("handover").await else {
        return;
    };
    let (a, store) = node(&db, "a").await;
    a.pause_queue("default").unwrap();
    let held = a
        .submit(task(Script::Ok { value: 7.into() }))
        .await
        .unwrap();
    let record = store.get(held.id).await.unwrap().unwrap();
    let holder = record.life.owner.as_ref().map(|o| o.node.as_str());
    assert_eq!(holder, Some("a"), "accepted by a, held by a");
    a.shutdown(Duration::from_secs(5)).await;
    let record = store.get(held.id).await.unwrap().unwrap();
    assert_eq!(record.life.owner, None, "given back at shutdown");
    let (b, _) = node(&db, "b").await;
    let done = tokio::time::timeout(Duration::from_secs(10), b.wait(held.id))
        .await
        .expect("b reserves and runs it")
        .unwrap();
    assert_eq!(done.state, TaskState::Succeeded);
    assert_eq!(done.result, Some(7.into()));
    b.shutdown(Duration::from_secs(5)).await;
}
