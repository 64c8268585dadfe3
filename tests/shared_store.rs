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
