//! Tests of the PostgreSQL store against a real server (see `testing::pg`).

mod concurrency;
mod conformance;
mod failures;

use super::{PgOptions, PgStore};
use crate::store::conformance::record_of;
use crate::store::prelude::*;
use crate::store::{EventKind, TaskEvent, Write, WriteResult};
use crate::testing::pg::TestDb;

/// A store on a fresh database, or `None` (skipped).
pub(super) async fn fresh(test: &str) -> Option<(TestDb, PgStore)> {
    let db = TestDb::create(test).await?;
    let store = PgStore::connect_with(db.options()).await.expect("connect");
    Some((db, store))
}

pub(super) fn created(r: &crate::store::TaskRecord) -> Write {
    let e = TaskEvent {
        task_id: r.task.id,
        at: r.task.created_at,
        kind: EventKind::Created,
        actor_id: None,
        correlation_id: None,
    };
    Write::Create(Box::new(r.clone()), e)
}

#[tokio::test]
async fn a_created_task_reads_back_and_a_second_connect_finds_the_schema() {
    let Some((db, store)) = fresh("smoke").await else {
        return;
    };
    let r = record_of("k", std::time::SystemTime::now());
    assert_eq!(
        store.write(vec![created(&r)]).await.unwrap(),
        vec![WriteResult::Done]
    );
    assert_eq!(store.get(r.task.id).await.unwrap(), Some(r.clone()));
    let again = PgStore::connect_with(db.options()).await.unwrap();
    assert_eq!(again.events(r.task.id).await.unwrap().len(), 1);
    let _ = PgOptions::new("x");
}

/// With TLS built in, the URL's `sslmode` decides: `disable` connects in plain text, and
/// `require` verifies the server's certificate (the test server's self-signed one is
/// refused, or a server without TLS is).
#[cfg(feature = "postgres-tls")]
#[tokio::test]
async fn with_tls_built_in_sslmode_decides_and_certificates_are_verified() {
    let Some(db) = TestDb::create("tls").await else {
        return;
    };
    let with = |mode: &str| {
        let mut o = db.options();
        o.url = format!(
            "{}?sslmode={mode}",
            o.url.split('?').next().unwrap_or_default()
        );
        o
    };
    PgStore::connect_with(with("disable")).await.expect("plain");
    let err = PgStore::connect_with(with("require")).await.unwrap_err();
    assert!(
        matches!(err, crate::store::StoreError::Unavailable { .. }),
        "{err}"
    );
}

/// The next hint, or a failure after `secs` seconds.
async fn next_hint(hints: &mut tokio::sync::broadcast::Receiver<String>, secs: u64) -> String {
    let limit = std::time::Duration::from_secs(secs);
    tokio::time::timeout(limit, hints.recv())
        .await
        .expect("a hint arrives")
        .expect("the listener runs")
}

#[tokio::test]
async fn hints_reach_every_store_of_the_schema_and_no_other() {
    let Some((db, store)) = fresh("hints").await else {
        return;
    };
    let other = PgStore::connect_with(db.options()).await.expect("connect");
    let elsewhere = PgStore::connect_with(db.options().schema("elsewhere"))
        .await
        .expect("connect");
    let mut hints = other.listen().expect("a shared store listens");
    assert_eq!(
        next_hint(&mut hints, 10).await,
        "",
        "listening: look everywhere"
    );
    elsewhere.notify(vec!["z".into()]).await.unwrap();
    store.notify(vec!["q".into(), "r".into()]).await.unwrap();
    // Notifications arrive in commit order: the other schema's came first, if at all.
    assert_eq!(next_hint(&mut hints, 10).await, "q");
    assert_eq!(next_hint(&mut hints, 10).await, "r");
    let mut own = store.listen().expect("a shared store listens");
    assert_eq!(
        next_hint(&mut own, 10).await,
        "",
        "its first listen starts its listener"
    );
    other.notify(vec!["s".into()]).await.unwrap();
    assert_eq!(
        next_hint(&mut own, 10).await,
        "s",
        "a store hears the others"
    );
    assert_eq!(next_hint(&mut hints, 10).await, "s", "and its own");
}
