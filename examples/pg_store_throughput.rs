//! Raw write throughput of the PostgreSQL store: C producers each push tasks through
//! create, claim (fenced) and settle (fenced), one awaited write each, as a node would;
//! prints tasks/s end to end and the commits taken. Uses a fresh database on the test
//! server (`TASKMESH_TEST_DATABASE_URL`, default local), dropped after.
//!
//! `cargo run --release --example pg_store_throughput -- [tasks] [producers]`

use std::time::{Duration, Instant, SystemTime};

use taskmesh::store::prelude::*;
use taskmesh::store::{
    EventKind, Fence, Life, Owner, PgStore, States, TaskEvent, TaskRecord, Write, WriteResult,
};
use taskmesh::task::{Backoff, Metadata, Priority, Task, TaskId};
use taskmesh::testing::pg::TestDb;
use taskmesh::TaskState;

fn life(state: TaskState, attempt: u32, owner: &Owner) -> Life {
    Life {
        state,
        attempt,
        max_attempts: 3,
        result: None,
        error: None,
        cancel_reason: None,
        progress: None,
        phase: None,
        due_at: None,
        restarts: 0,
        updated_at: SystemTime::now(),
        intent: None,
        owner: Some(owner.clone()),
        ran_on: Some(owner.node.clone()),
    }
}

fn event(id: TaskId, kind: EventKind) -> TaskEvent {
    TaskEvent {
        task_id: id,
        at: SystemTime::now(),
        kind,
        actor_id: None,
        correlation_id: None,
    }
}

fn task() -> Task {
    Task {
        id: TaskId::new(),
        kind: "noop".into(),
        args: serde_json::json!({"n": 1}),
        queue: "default".into(),
        priority: Priority::Normal,
        timeout: Duration::from_secs(30),
        max_attempts: 3,
        backoff: Backoff::default(),
        unique_key: None,
        run_at: None,
        metadata: Metadata::default(),
        title: None,
        auto_restart: 0,
        created_at: SystemTime::now(),
    }
}

/// One task through its three writes.
async fn one(store: &PgStore, owner: &Owner) {
    let task = task();
    let id = task.id;
    let created = Write::Create(
        Box::new(TaskRecord {
            task,
            life: life(TaskState::Pending, 0, owner),
        }),
        event(id, EventKind::Created),
    );
    let me = Some(owner.clone());
    let started = EventKind::Started {
        attempt: 1,
        worker: None,
    };
    let claim = Write::fenced(
        id,
        life(TaskState::Running, 1, owner),
        event(id, started),
        Fence::new(States::WAITING, 0, me.clone()),
    );
    let mut done = life(TaskState::Succeeded, 1, owner);
    done.result = Some(serde_json::json!(1));
    let result = serde_json::json!(1);
    let settle = Write::fenced(
        id,
        done,
        event(id, EventKind::Succeeded { result }),
        Fence::new(States::RUNNING, 1, me),
    );
    for w in [created, claim, settle] {
        let got = store.write(vec![w]).await.expect("write");
        assert_eq!(got, vec![WriteResult::Done]);
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let producers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let Some(db) = TestDb::create("throughput").await else {
        return;
    };
    let store = PgStore::connect_with(db.options()).await.expect("connect");
    let owner = store
        .register(taskmesh::store::NodeInfo {
            name: "bench".into(),
            ..Default::default()
        })
        .await
        .expect("register");
    let start = Instant::now();
    let per = tasks / producers;
    let mut handles = Vec::new();
    for _ in 0..producers {
        let (store, owner) = (store.clone(), owner.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..per {
                one(&store, &owner).await;
            }
        }));
    }
    for h in handles {
        h.await.expect("producer");
    }
    let took = start.elapsed();
    let n = per * producers;
    println!(
        "postgres store: {n} tasks (create + claim + settle) by {producers} producers in {:.2} s: {:.0} tasks/s, {:.0} writes/s, {} commits",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        3.0 * n as f64 / took.as_secs_f64(),
        store.commits()
    );
}
