//! The shared-store checks of `shared_store.rs` on a real PostgreSQL database (the
//! 10,000-task one is in `pg_shared.rs`): a task a stopped system accepted is run by
//! another. Each test makes its own database (see `taskmesh::testing::pg`); without a
//! server they print `skipped: …`.

mod common;

use std::time::Duration;

use common::{task, unique_ns};
use taskmesh::store::prelude::*;
use taskmesh::store::PgStore;
use taskmesh::testing::pg::TestDb;
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{QueueConfig, TaskState, TaskSystem};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_given_back_at_shutdown_are_taken_at_once_by_a_system_the_hint_wakes() {
    let Some(db) = TestDb::create("hinted").await else {
        return;
    };
    let hour = Duration::from_secs(3600);
    let mut systems = Vec::new();
    for name in ["a", "b"] {
        let store = PgStore::connect_with(db.options()).await.unwrap();
        let (handler, _events) = ScriptHandler::new();
        let sys = TaskSystem::builder()
            .namespace(unique_ns(name))
            .node_name(name)
            .queue(QueueConfig::new("default").workers(1, 4))
            // Polls once an hour: only a hint brings b to the released tasks in time.
            .liveness(hour * 3, hour, hour)
            .handler(handler)
            .store(store)
            .start()
            .await
            .unwrap();
        systems.push(sys);
    }
    let (a, b) = (&systems[0], &systems[1]);
    a.pause_queue("default").unwrap();
    let mut ids = Vec::new();
    for i in 0..9 {
        ids.push(
            a.submit(task(Script::Ok { value: i.into() }))
                .await
                .unwrap()
                .id,
        );
    }
    a.shutdown(Duration::from_secs(5)).await;
    for id in ids {
        let done = tokio::time::timeout(Duration::from_secs(20), b.wait(id))
            .await
            .expect("the hint wakes b, which reserves and runs the task")
            .unwrap();
        assert_eq!(done.state, TaskState::Succeeded);
    }
    b.shutdown(Duration::from_secs(5)).await;
}
