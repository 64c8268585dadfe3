//! Failing servers, failing batches, bad rows and bad input.

use std::time::SystemTime;

use super::{created, fresh};
use crate::store::conformance::record_of;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::{StoreError, WriteResult};
use crate::testing::pg::{Proxy, TestDb};
use crate::testing::proxy::Mode;

#[tokio::test]
async fn an_unreachable_server_fails_writes_reads_and_readiness_until_it_returns() {
    let Some(db) = TestDb::create("unreachable").await else {
        return;
    };
    let proxy = Proxy::start(db.server()).await.unwrap();
    let store = PgStore::connect_with(db.options_via(proxy.addr()))
        .await
        .unwrap();
    let a = record_of("k", SystemTime::now());
    assert_eq!(
        store.write(vec![created(&a)]).await.unwrap(),
        [WriteResult::Done]
    );
    proxy.cut();
    let b = record_of("k", SystemTime::now());
    let err = store.write(vec![created(&b)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(err.retryable());
    assert!(
        std::error::Error::source(&err).is_some(),
        "keeps its source"
    );
    let ready = store.check_writable().await.unwrap_err();
    assert!(matches!(ready, StoreError::Unavailable { .. }), "{ready}");
    assert!(store.get(a.task.id).await.unwrap_err().retryable());
    proxy.restore().await.unwrap();
    assert_eq!(
        store.write(vec![created(&b)]).await.unwrap(),
        [WriteResult::Done]
    );
    store.check_writable().await.unwrap();
    assert_eq!(store.get(a.task.id).await.unwrap(), Some(a));
    assert_eq!(store.get(b.task.id).await.unwrap(), Some(b));
}

/// A request lost on the way while the connection stays open (a black hole that heals
/// without closing it: the proxy reads and drops what the writer sends) gets no answer;
/// the lone writer gives up on that connection after `answer_within` and writes on a new
/// one, instead of holding that batch and every later one for good.
#[tokio::test]
async fn a_writer_whose_batch_got_no_answer_drops_the_connection_and_writes_on() {
    let Some(db) = TestDb::create("silent").await else {
        return;
    };
    let proxy = Proxy::start(db.server()).await.unwrap();
    let mut options = db.options_via(proxy.addr());
    options.writers = 1;
    options.answer_within = std::time::Duration::from_millis(500);
    let store = PgStore::connect_with(options).await.unwrap();
    let a = record_of("k", SystemTime::now());
    assert_eq!(
        store.write(vec![created(&a)]).await.unwrap(),
        [WriteResult::Done]
    );
    let before = proxy.dropped();
    proxy.set_mode(Mode::BlackHole);
    let b = record_of("k", SystemTime::now());
    let writing = tokio::spawn({
        let store = store.clone();
        let b = created(&b);
        async move { store.write(vec![b]).await }
    });
    // The batch is swallowed once the proxy has read it and dropped it; then traffic
    // goes through again, on the same connection, which will never answer that batch.
    proxy.dropped_more_than(before).await;
    proxy.set_mode(Mode::Pass);
    let written = tokio::time::timeout(std::time::Duration::from_secs(30), writing)
        .await
        .expect("the writer gave up on the silent connection")
        .unwrap();
    assert_eq!(
        written.unwrap(),
        [WriteResult::Done],
        "retried on a new connection"
    );
    assert_eq!(store.get(b.task.id).await.unwrap(), Some(b));
    let c = record_of("k", SystemTime::now());
    assert_eq!(
        store.write(vec![created(&c)]).await.unwrap(),
        [WriteResult::Done]
    );
}

#[tokio::test]
async fn a_closed_store_refuses_writes_and_readiness() {
    let Some((_db, store)) = fresh("closed").await else {
        return;
    };
    store.close();
    let r = record_of("k", SystemTime::now());
    let err = store.write(vec![created(&r)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err}");
    assert!(store.check_writable().await.is_err());
}

#[tokio::test]
async fn a_batch_the_server_refuses_applies_nothing_and_a_later_write_succeeds() {
    let Some((db, store)) = fresh("refused").await else {
        return;
    };
    db.client()
        .await
        .batch_execute("ALTER TABLE tasks ADD CONSTRAINT no_bad CHECK (kind <> 'bad')")
        .await
        .unwrap();
    let good = record_of("good", SystemTime::now());
    let bad = record_of("bad", SystemTime::now());
    let err = store
        .write(vec![created(&good), created(&bad)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::WriteFailed(ref m) if m.contains("no_bad")),
        "{err}"
    );
    assert!(!err.retryable());
    assert_eq!(store.get(good.task.id).await.unwrap(), None);
    assert_eq!(
        store.write(vec![created(&good)]).await.unwrap(),
        [WriteResult::Done]
    );
}

#[tokio::test]
async fn text_with_a_nul_byte_is_refused_naming_the_task_before_it_reaches_a_batch() {
    let Some((_db, store)) = fresh("nul").await else {
        return;
    };
    let mut r = record_of("k", SystemTime::now());
    r.task.kind = "a\0b".into();
    let err = store.write(vec![created(&r)]).await.unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains(&r.task.id.to_string()) && shown.contains("kind"),
        "{shown}"
    );
    let ok = record_of("k", SystemTime::now());
    assert_eq!(
        store.write(vec![created(&ok)]).await.unwrap(),
        [WriteResult::Done]
    );
}

#[tokio::test]
async fn malformed_json_in_a_row_is_a_read_error_naming_the_task() {
    let Some((db, store)) = fresh("malformed").await else {
        return;
    };
    let r = record_of("k", SystemTime::now());
    store.write(vec![created(&r)]).await.unwrap();
    db.client()
        .await
        .batch_execute("UPDATE tasks SET life = '{\"state\": 7}'")
        .await
        .unwrap();
    let err = store.get(r.task.id).await.unwrap_err();
    let shown = err.to_string();
    assert!(matches!(err, StoreError::ReadFailed(_)), "{shown}");
    assert!(
        shown.contains(&r.task.id.to_string()) && shown.contains("life"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_schema_from_a_newer_build_is_refused() {
    let Some((db, store)) = fresh("newer").await else {
        return;
    };
    drop(store);
    db.client()
        .await
        .batch_execute("INSERT INTO taskmesh_migrations (version) VALUES (99)")
        .await
        .unwrap();
    let err = PgStore::connect_with(db.options()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unusable { ref reason, .. } if reason.contains("99")),
        "{err}"
    );
}
