//! Concurrent writers: group commit, and two stores (as two processes) racing for unique
//! keys, for claims and for a task's event order.

use std::collections::HashMap;
use std::time::SystemTime;

use super::{created, fresh};
use crate::store::conformance::record_of;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::{EventKind, Fence, Owner, States, TaskEvent, TaskFilter, Write, WriteResult};
use crate::task::{TaskId, TaskState};

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

/// A running life of attempt 1 held by `owner`.
fn running(owner: &Owner) -> crate::store::Life {
    let mut l = record_of("k", SystemTime::now()).life;
    l.state = TaskState::Running;
    l.attempt = 1;
    l.owner = Some(owner.clone());
    l
}

fn started(id: TaskId) -> TaskEvent {
    TaskEvent {
        task_id: id,
        at: SystemTime::now(),
        kind: EventKind::Started {
            attempt: 1,
            worker: None,
        },
        actor_id: None,
        correlation_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_claiming_the_same_tasks_win_each_claim_once() {
    let Some((db, a)) = fresh("claim_race").await else {
        return;
    };
    let b = PgStore::connect_with(db.options()).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| record_of("k", SystemTime::now()))
        .collect();
    a.write(tasks.iter().map(created).collect()).await.unwrap();
    let claim_all = |store: PgStore, owner: Owner| {
        let ids: Vec<TaskId> = tasks.iter().map(|r| r.task.id).collect();
        tokio::spawn(async move {
            let claims = ids.into_iter().map(|id| {
                let fence = Fence::new(States::WAITING, 0, None);
                let w = Write::fenced(id, running(&owner), started(id), fence);
                let store = store.clone();
                async move { (id, store.write(vec![w]).await.unwrap()[0]) }
            });
            futures::future::join_all(claims).await
        })
    };
    let (oa, ob) = (Owner::new("a", 1), Owner::new("b", 2));
    let (got_a, got_b) = (claim_all(a.clone(), oa.clone()), claim_all(b, ob.clone()));
    let (got_a, got_b) = (got_a.await.unwrap(), got_b.await.unwrap());
    for ((id, ra), (_, rb)) in got_a.iter().zip(&got_b) {
        let won = match (ra, rb) {
            (WriteResult::Done, WriteResult::Fenced) => &oa,
            (WriteResult::Fenced, WriteResult::Done) => &ob,
            other => panic!("task {id}: expected one winner, got {other:?}"),
        };
        let r = a.get(*id).await.unwrap().unwrap();
        assert_eq!(r.life.owner.as_ref(), Some(won));
        let events = a.events(*id).await.unwrap();
        assert_eq!(events.len(), 2, "created + one started");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_appended_by_two_stores_keep_a_gapless_per_task_order() {
    let Some((db, a)) = fresh("event_order").await else {
        return;
    };
    let b = PgStore::connect_with(db.options()).await.unwrap();
    let r = record_of("k", SystemTime::now());
    let id = r.task.id;
    a.write(vec![created(&r)]).await.unwrap();
    let append = |store: PgStore| {
        tokio::spawn(async move {
            let writes = (0..100).map(|_| store.write(vec![Write::Event(started(id))]));
            futures::future::try_join_all(writes).await.unwrap();
        })
    };
    let (x, y) = (append(a.clone()), append(b));
    x.await.unwrap();
    y.await.unwrap();
    let events = a.events(id).await.unwrap();
    assert_eq!(events.len(), 201);
    assert!(
        events.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq increases"
    );
    let c = db.client().await;
    let seqs: Vec<i32> = c
        .query("SELECT seq FROM events ORDER BY seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        seqs,
        (1..=201).collect::<Vec<i32>>(),
        "no gap in the task's own order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_is_buried_at_once_only_when_none_of_its_connections_is_left() {
    use std::time::Duration;
    let Some((db, survivor)) = fresh("bury_gone").await else {
        return;
    };
    let victim = PgStore::connect_with(db.options()).await.expect("connect");
    let owner = victim
        .register(crate::store::NodeInfo {
            name: "victim".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let zero = Duration::ZERO;
    assert!(
        !survivor.bury_gone(owner.clone(), zero).await.unwrap(),
        "a process whose connections are open (stopped, slow) is left to dead_after"
    );
    let session = victim.session().to_string();
    victim.close();
    drop(victim);
    // Its backends end once the writer and listener tasks drop their connections.
    let client = db.client().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&session],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the closed store's connections stay open"
        );
        let _ = client.query_one("SELECT pg_sleep(0.05)", &[]).await;
    }
    assert!(
        !survivor
            .bury_gone(owner.clone(), Duration::from_secs(3600))
            .await
            .unwrap(),
        "a heartbeat younger than silent_for keeps it registered"
    );
    assert!(
        survivor.bury_gone(owner.clone(), zero).await.unwrap(),
        "gone: buried"
    );
    assert!(survivor
        .nodes()
        .await
        .unwrap()
        .iter()
        .all(|n| n.owner != owner));
    assert!(
        survivor.bury_gone(owner, zero).await.unwrap(),
        "burying again reports it gone"
    );
}
