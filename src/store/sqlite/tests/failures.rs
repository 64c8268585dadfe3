//! Failed writes roll back their whole group; malformed rows are read errors, not panics.

use crate::store::prelude::*;
use serde_json::json;

use super::{at, create, event, hold, open, record, TempDir};
use crate::store::{EventKind, StoreError, TaskFilter, TaskQuery, Write, WriteResult};

/// Makes the writer fail any insert of a task of kind "boom", without touching the file.
const BOOM: &str = "CREATE TEMP TRIGGER boom BEFORE INSERT ON main.tasks \
                    WHEN NEW.kind = 'boom' BEGIN SELECT RAISE(ABORT, 'injected failure'); END";

fn write_failed<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Err(StoreError::WriteFailed(msg)) => msg,
        other => panic!("expected WriteFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failed_write_applies_nothing_of_its_group_and_a_later_write_succeeds() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    store
        .exec_on_writer(|c| c.execute_batch(BOOM))
        .await
        .unwrap();
    let (fine, boom) = (record("fine", at(1)), record("boom", at(2)));
    let msg = write_failed(store.write(vec![create(&fine), create(&boom)]).await);
    assert!(msg.contains("injected failure"), "{msg}");

    let (release, holding) = hold(&store);
    let other = record("fine", at(3));
    let neighbour = store.write(vec![create(&other)]);
    let failing = store.write(vec![create(&boom)]);
    release.send(()).unwrap();
    holding.await.unwrap();
    write_failed(neighbour.await);
    write_failed(failing.await);

    for r in [&fine, &boom, &other] {
        assert_eq!(store.get(r.task.id).await.unwrap(), None);
        assert!(store.events(r.task.id).await.unwrap().is_empty());
    }
    assert_eq!(
        store.write(vec![create(&fine)]).await.unwrap(),
        vec![WriteResult::Done]
    );
    assert!(store.get(fine.task.id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_full_disk_fails_the_write_and_the_store_recovers_when_space_returns() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let small = record("k", at(1));
    store.write(vec![create(&small)]).await.unwrap();
    store
        .exec_on_writer(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.pragma_update(None, "max_page_count", pages)
        })
        .await
        .unwrap();
    let mut big = record("k", at(2));
    big.task.args = json!("x".repeat(256 * 1024));
    let id = small.task.id;
    let writes = vec![
        Write::Event(event(id, EventKind::Paused, at(3))),
        create(&big),
    ];
    let msg = write_failed(store.write(writes).await);
    assert!(msg.contains("full"), "{msg}");
    assert_eq!(
        store.events(id).await.unwrap().len(),
        1,
        "the event was rolled back"
    );
    store
        .exec_on_writer(|c| c.pragma_update(None, "max_page_count", 1_000_000_000))
        .await
        .unwrap();
    store.write(vec![create(&big)]).await.unwrap();
    assert_eq!(
        store.get(big.task.id).await.unwrap().unwrap().task.args,
        big.task.args
    );
}

/// On a full disk the one-row readiness probe still fits (the WAL keeps the space of the
/// batch that failed); the recovery check needs fresh space and fails until there is.
#[tokio::test]
async fn after_a_full_disk_the_recovery_check_fails_where_the_small_probe_passes() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    store.check_writable().await.unwrap();
    store
        .exec_on_writer(|c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.pragma_update(None, "max_page_count", pages)
        })
        .await
        .unwrap();
    let mut big = record("k", at(1));
    big.task.args = json!("x".repeat(256 * 1024));
    write_failed(store.write(vec![create(&big)]).await);
    store.check_writable().await.unwrap();
    let msg = write_failed(store.check_recovered().await);
    assert!(msg.contains("full"), "{msg}");

    store
        .exec_on_writer(|c| c.pragma_update(None, "max_page_count", 1_000_000_000))
        .await
        .unwrap();
    store.check_recovered().await.unwrap();
    store.write(vec![create(&big)]).await.unwrap();
}

#[tokio::test]
async fn a_read_only_connection_fails_writes_until_it_is_writable_again() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    store.check_writable().await.unwrap();
    store
        .exec_on_writer(|c| c.pragma_update(None, "query_only", true))
        .await
        .unwrap();
    let r = record("k", at(1));
    write_failed(store.write(vec![create(&r)]).await);
    write_failed(store.check_writable().await);
    store
        .exec_on_writer(|c| c.pragma_update(None, "query_only", false))
        .await
        .unwrap();
    store.check_writable().await.unwrap();
    store.write(vec![create(&r)]).await.unwrap();
}

#[tokio::test]
async fn malformed_json_in_a_row_is_a_read_error_naming_the_task() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let r = record("k", at(1));
    let id = r.task.id;
    store.write(vec![create(&r)]).await.unwrap();
    let sql = format!(
        "UPDATE tasks SET life = '{{\"state\":' WHERE id = '{id}'; \
         UPDATE events SET data = 'nope' WHERE task = (SELECT n FROM tasks WHERE id = '{id}')"
    );
    store
        .exec_on_writer(move |c| c.execute_batch(&sql))
        .await
        .unwrap();
    let reads = [
        store.get(id).await.map(drop),
        store
            .list(TaskQuery {
                limit: 10,
                ..TaskQuery::default()
            })
            .await
            .map(drop),
        store.open_tasks().await.map(drop),
        store.events(id).await.map(drop),
    ];
    for read in reads {
        match read {
            Err(StoreError::ReadFailed(msg)) => assert!(msg.contains(&id.to_string()), "{msg}"),
            other => panic!("expected ReadFailed, got {other:?}"),
        }
    }
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 1);
}
