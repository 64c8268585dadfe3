//! An operator's retry and delete of ended tasks on the durable stores: a retried failed
//! task runs one more attempt and says who retried it, only ended tasks are deleted, and
//! on PostgreSQL two systems sharing the database agree: of two racing retries one wins,
//! the retried task goes back to the shared pool and runs once more, and a delete keeps
//! the counts by state right. (That deletes survive a reopening is in the store
//! conformance suite.) PostgreSQL checks are skipped
//! (saying why) without a server unless `TASKMESH_REQUIRE_PG=1`.

mod common;

use std::time::{Duration, SystemTime};

use common::{builder, task};
use taskmesh::store::{PgStore, SqliteStore, Store, TaskFilter};
use taskmesh::testing::pg::TestDb;
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{TaskError, TaskId, TaskState, TaskSystem};

async fn system(prefix: &str, store: impl Store) -> TaskSystem {
    let (h, _rx) = ScriptHandler::new();
    builder(prefix, h).store(store).start().await.unwrap()
}

/// A task that fails its only attempt, ended.
async fn failed(sys: &TaskSystem) -> TaskId {
    let boom = task(Script::Fail {
        message: "boom".into(),
    })
    .max_attempts(1);
    let id = sys.submit(boom).await.unwrap().id;
    let _ = sys.wait(id).await;
    assert_eq!(sys.get(id).await.unwrap().status.state, TaskState::Failed);
    id
}

/// Waits (through `sys`: from the store if another system holds it) until task `id`
/// has ended again after a retry; its state and attempts.
async fn ended_again(sys: &TaskSystem, id: TaskId) -> (TaskState, u32) {
    let r = sys.wait_timeout(id, Duration::from_secs(30)).await.unwrap();
    (r.state, r.attempt)
}

fn who_retried(events: &[taskmesh::store::StoredEvent]) -> Vec<Option<String>> {
    events
        .iter()
        .filter(|e| e.event.kind.name() == "restarted")
        .map(|e| e.event.actor_id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_retried_task_runs_again_saying_who_and_only_ended_tasks_are_deleted() {
    let dir = std::env::temp_dir().join(format!("taskmesh-revive-{}", TaskId::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let sys = system(
        "revive-sqlite",
        SqliteStore::open(dir.join("t.db")).unwrap(),
    )
    .await;
    let id = failed(&sys).await;
    sys.retry_by(id, "ops:ann").await.unwrap();
    assert_eq!(ended_again(&sys, id).await, (TaskState::Failed, 2));
    let view = sys.get(id).await.unwrap();
    assert_eq!(who_retried(&view.events), vec![Some("ops:ann".to_string())]);
    let started = view
        .events
        .iter()
        .filter(|e| e.event.kind.name() == "started");
    assert_eq!(started.count(), 2, "one more attempt");

    let done = sys
        .submit_and_wait(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap()
        .id;
    let later = SystemTime::now() + Duration::from_secs(3600);
    let waiting = task(Script::Ok { value: 2.into() }).run_at(later);
    let waiting = sys.submit(waiting).await.unwrap().id;
    let mut gone = sys
        .delete_ended(vec![done, id, waiting, TaskId::new()])
        .await
        .unwrap();
    gone.sort_unstable();
    let mut want = vec![done, id];
    want.sort_unstable();
    assert_eq!(gone, want, "the ended tasks, never a waiting one");
    for id in [done, id] {
        assert!(
            matches!(sys.get(id).await, Err(TaskError::NotFound(_))),
            "{id}"
        );
    }
    assert_eq!(sys.count(TaskFilter::default()).await.unwrap(), 1);
    sys.shutdown(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_retried_task_goes_back_to_the_shared_pool_once_and_a_delete_keeps_the_counts(
) {
    let Some(db) = TestDb::create("revive").await else {
        return;
    };
    let a = system(
        "revive-a",
        PgStore::connect_with(db.options()).await.unwrap(),
    )
    .await;
    let b = system(
        "revive-b",
        PgStore::connect_with(db.options()).await.unwrap(),
    )
    .await;
    let id = failed(&a).await;
    let (first, second) = tokio::join!(b.retry_by(id, "ops:bo"), a.retry_by(id, "ops:ann"));
    let won = [first.is_ok(), second.is_ok()];
    assert_eq!(
        won.iter().filter(|w| **w).count(),
        1,
        "one of two racing retries wins: {first:?} {second:?}"
    );
    assert_eq!(ended_again(&b, id).await, (TaskState::Failed, 2));
    let view = a.get(id).await.unwrap();
    assert_eq!(who_retried(&view.events).len(), 1, "one new attempt");

    let failed_count = || {
        a.count(TaskFilter {
            state: Some(TaskState::Failed),
            ..TaskFilter::default()
        })
    };
    assert_eq!(failed_count().await.unwrap(), 1);
    assert_eq!(b.delete_ended(vec![id]).await.unwrap(), vec![id]);
    assert_eq!(
        failed_count().await.unwrap(),
        0,
        "task_counts follow the delete"
    );
    assert!(matches!(a.get(id).await, Err(TaskError::NotFound(_))));
    a.shutdown(Duration::from_secs(1)).await;
    b.shutdown(Duration::from_secs(1)).await;
}
