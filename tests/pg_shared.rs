//! Two task systems in one process (different namespaces) on one PostgreSQL database:
//! 10,000 tasks submitted to both end exactly once, with one `started` per attempt and
//! no change refused by a fence. Skipped (saying why) without a PostgreSQL server unless
//! `TASKMESH_REQUIRE_PG=1`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{task, unique_ns};
use taskmesh::store::PgStore;
use taskmesh::testing::pg::TestDb;
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{QueueConfig, TaskId, TaskState, TaskSystem};

async fn node(db: &TestDb, name: &str) -> TaskSystem {
    let store = PgStore::connect_with(db.options()).await.unwrap();
    let (handler, _events) = ScriptHandler::new();
    TaskSystem::builder()
        .namespace(unique_ns(name))
        .node_name(name)
        .queue(QueueConfig::new("default").workers(4, 16).bound(20_000))
        .handler(handler)
        .store(store)
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_systems_on_one_postgres_database_end_every_task_exactly_once() {
    let Some(db) = TestDb::create("two_systems_10k").await else {
        return;
    };
    let a = Arc::new(node(&db, "a").await);
    let b = Arc::new(node(&db, "b").await);
    let mut producers = Vec::new();
    for p in 0..32 {
        let sys = if p % 2 == 0 { a.clone() } else { b.clone() };
        producers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..(10_000 + 31 - p) / 32 {
                let value = (i * 32 + p) as u64;
                let receipt = sys
                    .submit(task(Script::Ok {
                        value: value.into(),
                    }))
                    .await;
                ids.push(receipt.unwrap().id);
            }
            ids
        }));
    }
    let mut ids: Vec<TaskId> = Vec::new();
    for p in producers {
        ids.extend(p.await.unwrap());
    }
    assert_eq!(ids.len(), 10_000);
    for id in &ids {
        let done = tokio::time::timeout(Duration::from_secs(60), a.wait(*id))
            .await
            .expect("every task ends")
            .unwrap();
        assert_eq!(done.state, TaskState::Succeeded, "{id}");
    }
    let client = db.client().await;
    let rows = client
        .query("SELECT task::text, type, data::text FROM events", &[])
        .await
        .unwrap();
    let mut per_task: HashMap<String, (usize, usize)> = HashMap::new();
    for row in rows {
        let (id, kind): (String, String) = (row.get(0), row.get(1));
        let e = per_task.entry(id).or_default();
        match kind.as_str() {
            "started" => e.0 += 1,
            "succeeded" | "failed" | "cancelled" => e.1 += 1,
            _ => {}
        }
    }
    for id in &ids {
        assert_eq!(per_task.get(&id.to_string()), Some(&(1, 1)), "task {id}");
    }
    assert_eq!((a.fenced(), b.fenced()), (0, 0), "no change was fenced out");
    a.shutdown(Duration::from_secs(5)).await;
    b.shutdown(Duration::from_secs(5)).await;
}
