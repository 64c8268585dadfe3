//! Concurrent writers: group commit, and unique keys across two stores (two processes).

use std::collections::HashMap;
use std::time::SystemTime;

use super::{created, fresh};
use crate::store::conformance::record_of;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::{TaskFilter, WriteResult};
use crate::task::TaskId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_from_64_tasks_share_commits_and_all_land() {
    let Some((_db, store)) = fresh("group_commit").await else {
        return;
    };
    let writers: Vec<_> = (0..64)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let r = record_of("k", SystemTime::now());
                    let got = store.write(vec![created(&r)]).await.unwrap();
                    assert_eq!(got, [WriteResult::Done]);
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 1280);
    assert!(store.commits() < 1280, "{} commits", store.commits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_key_has_one_holder_when_two_stores_race_for_it() {
    let Some((db, a)) = fresh("unique_race").await else {
        return;
    };
    let b = PgStore::connect_with(db.options()).await.unwrap();
    let race = |store: PgStore| {
        tokio::spawn(async move {
            let writes = (0..50).map(|k| {
                let mut r = record_of("k", SystemTime::now());
                r.task.unique_key = Some(format!("key-{k}"));
                let store = store.clone();
                async move {
                    let got = store.write(vec![created(&r)]).await.unwrap();
                    (k, r.task.id, got[0])
                }
            });
            futures::future::join_all(writes).await
        })
    };
    let (from_a, from_b) = (race(a.clone()), race(b));
    let mut all = from_a.await.unwrap();
    all.extend(from_b.await.unwrap());
    let mut winners: HashMap<i32, TaskId> = HashMap::new();
    for (k, id, got) in &all {
        if *got == WriteResult::Done {
            assert!(winners.insert(*k, *id).is_none(), "key {k} created twice");
        }
    }
    assert_eq!(winners.len(), 50, "every key has a holder");
    for (k, _, got) in &all {
        if *got != WriteResult::Done {
            assert_eq!(*got, WriteResult::Duplicate(winners[k]), "key {k}");
        }
    }
    for (k, id) in &winners {
        assert_eq!(a.find_unique(format!("key-{k}")).await.unwrap(), Some(*id));
    }
    assert_eq!(a.count(TaskFilter::default()).await.unwrap(), 50);
}

#[tokio::test]
async fn a_lone_deferred_write_commits_by_itself() {
    let Some((_db, store)) = fresh("deferred").await else {
        return;
    };
    let r = record_of("k", SystemTime::now());
    let got = store.write_deferred(vec![created(&r)]).await.unwrap();
    assert_eq!(got, [WriteResult::Done]);
    assert_eq!(store.get(r.task.id).await.unwrap(), Some(r));
}
