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

/// The count of `filter` by the counters and by `count(*)` over the rows.
async fn both_counts(store: &PgStore, filter: crate::store::TaskFilter) -> (u64, u64) {
    let by_counters = store.count(filter.clone()).await.unwrap();
    // A creation-time bound makes the store count rows: it equals the counters' total.
    let rows = crate::store::TaskFilter {
        created_after: Some(std::time::UNIX_EPOCH),
        ..filter
    };
    (by_counters, store.count(rows).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_from_the_counters_match_the_rows_across_writers_prunes_and_folds() {
    use crate::store::conformance::life_at;
    use crate::store::TaskFilter;
    use crate::task::TaskState;
    let Some((db, store)) = fresh("counts").await else {
        return;
    };
    let other = PgStore::connect_with(db.options()).await.expect("connect");
    let now = std::time::SystemTime::now();
    let long_ago = now - std::time::Duration::from_secs(3600);
    // Two stores (each with its own writers and connections) create and settle at once.
    let work = |s: PgStore, kind: &'static str| async move {
        for round in 0..20 {
            let records: Vec<_> = (0..50).map(|_| record_of(kind, long_ago)).collect();
            let creates = records.iter().map(created).collect();
            s.write(creates).await.unwrap();
            let ends = records
                .iter()
                .enumerate()
                .filter(|(i, _)| (i + round) % 3 != 0);
            let updates = ends
                .map(|(i, r)| {
                    let state = [TaskState::Succeeded, TaskState::Failed][i % 2];
                    let life = life_at(state, 1, long_ago);
                    let e = TaskEvent {
                        task_id: r.task.id,
                        at: long_ago,
                        kind: EventKind::Progress {
                            percent: 1,
                            message: String::new(),
                            phase: None,
                        },
                        actor_id: None,
                        correlation_id: None,
                    };
                    Write::update(r.task.id, life, e)
                })
                .collect();
            s.write(updates).await.unwrap();
        }
    };
    let (a, b) = (
        tokio::spawn(work(store.clone(), "a")),
        tokio::spawn(work(other.clone(), "b")),
    );
    a.await.unwrap();
    b.await.unwrap();
    let filters = || {
        vec![
            TaskFilter::default(),
            TaskFilter {
                state: Some(TaskState::Pending),
                ..Default::default()
            },
            TaskFilter {
                state: Some(TaskState::Succeeded),
                kind: Some("a".into()),
                ..Default::default()
            },
            TaskFilter {
                queue: Some("default".into()),
                kind: Some("b".into()),
                ..Default::default()
            },
        ]
    };
    for f in filters() {
        let (counted, rows) = both_counts(&store, f.clone()).await;
        assert_eq!(counted, rows, "{f:?}");
    }
    assert_eq!(both_counts(&store, TaskFilter::default()).await.0, 2000);
    // Pruning deletes through the counters too. Then every connection that wrote counts
    // ends (waiting up to 5 s for each to be gone), and the next prune folds their
    // counts into slot 0.
    let pruned = store.prune_terminal(now).await.unwrap();
    assert!(pruned > 0);
    drop(other);
    let remaining = 2000 - pruned;
    let c = store.pool().get().await.unwrap();
    let one = |sql: &'static str| {
        let c = &c;
        async move { c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let writers = "SELECT count(*) FROM task_counts WHERE slot <> 0";
    assert!(
        one(writers).await >= 2,
        "each writer connection counts in its own rows"
    );
    // (This connection may be the one that pruned: its counts stay in its own rows.)
    let ended = "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) \
        FROM pg_stat_activity WHERE pid IN (SELECT slot FROM task_counts) \
        AND pid <> pg_backend_pid()";
    assert!(one(ended).await >= 2);
    store.prune_terminal(now).await.unwrap();
    let gone = "SELECT count(*) FROM task_counts WHERE slot <> 0 \
        AND slot NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)";
    assert_eq!(
        one(gone).await,
        0,
        "the counts of ended connections are folded"
    );
    for f in filters() {
        let (counted, rows) = both_counts(&store, f.clone()).await;
        assert_eq!(counted, rows, "after pruning and folding: {f:?}");
    }
    assert_eq!(
        both_counts(&store, TaskFilter::default()).await.0,
        remaining
    );
}
