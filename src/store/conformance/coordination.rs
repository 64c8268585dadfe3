//! Conformance checks of coordination, for stores several processes share (a shared
//! memory store, PostgreSQL): the node registry, liveness in store time, and the sharing
//! of waiting tasks.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::{ids, life, put, record, Harness};
use crate::store::prelude::*;
use crate::store::{NodeInfo, Owner, StoreError, TaskRecord};
use crate::task::{Priority, TaskId, TaskState};

/// Long enough that a node registered during a test is alive.
const HOUR: Duration = Duration::from_secs(3600);

fn info(name: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        address: Some("127.0.0.1:1".into()),
        queues: vec!["q".into()],
    }
}

/// A waiting task of queue `queue`, created at `ms`.
fn waiting(ms: u64, queue: &str, priority: Priority, state: TaskState) -> TaskRecord {
    let mut r = record(ms);
    r.task.queue = queue.into();
    r.task.priority = priority;
    r.life.state = state;
    r
}

/// Runs every coordination check; panics on the first failure.
pub(crate) async fn run_shared<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    assert!(s.shared(), "{} is shared", s.name());
    register_gives_increasing_incarnations_and_heartbeats_find_them(h).await;
    a_buried_owner_cannot_heartbeat(h).await;
    dead_lists_stale_and_superseded_incarnations_and_orphaned_owners(h).await;
    reserve_takes_due_unheld_tasks_of_its_queues_best_first(h).await;
    two_concurrent_reservers_never_get_the_same_task(h).await;
    release_returns_reservations_and_held_lists_running_first(h).await;
    reserve_ids_takes_the_named_tasks_held_for_it_and_the_due_ones_nobody_holds(h).await;
}

async fn reserve_ids_takes_the_named_tasks_held_for_it_and_the_due_ones_nobody_holds<H: Harness>(
    h: &mut H,
) {
    use TaskState::{Pending, Running, Scheduled};
    let s = h.fresh().await;
    let me = s.register(info("a")).await.unwrap();
    let other = s.register(info("b")).await.unwrap();
    let held_by = |n: u64, owner: &Owner| {
        let mut r = waiting(n, "q", Priority::Normal, Pending);
        r.life.owner = Some(owner.clone());
        r
    };
    let free = waiting(1, "q", Priority::Normal, Pending);
    let not_named = waiting(2, "q", Priority::Normal, Pending);
    let not_due = {
        let mut r = waiting(3, "q", Priority::Normal, Scheduled);
        r.life.due_at = Some(SystemTime::now() + HOUR);
        r
    };
    let theirs = held_by(4, &other);
    let running = {
        let mut r = waiting(5, "q", Priority::Normal, Running);
        r.life = life(Running, 1, 5);
        r
    };
    let mine = held_by(6, &me);
    let mine_later = {
        let mut r = held_by(7, &me);
        r.life.state = Scheduled;
        r.life.due_at = Some(SystemTime::now() + HOUR);
        r
    };
    let all = [
        free.clone(),
        not_named,
        not_due.clone(),
        theirs.clone(),
        running.clone(),
        mine.clone(),
        mine_later.clone(),
    ];
    put(&s, &all).await;
    let named = ids(&[
        free.clone(),
        not_due,
        theirs.clone(),
        running,
        mine.clone(),
        mine_later.clone(),
    ]);
    let mut got = ids(&s.reserve_ids(me.clone(), named.clone()).await.unwrap());
    got.sort();
    let mut want = ids(&[free.clone(), mine, mine_later]);
    want.sort();
    assert_eq!(
        got, want,
        "the due waiting ones held by nobody, and every waiting one held by me"
    );
    let again = s.reserve_ids(other.clone(), named).await.unwrap();
    assert_eq!(
        ids(&again),
        ids(&[theirs]),
        "a hint to another process takes only what it holds, nothing held by me"
    );
    let stored = s.get(free.task.id).await.unwrap().unwrap();
    assert_eq!(stored.life.owner, Some(me), "the first taker holds it");
}

async fn register_gives_increasing_incarnations_and_heartbeats_find_them<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let a1 = s.register(info("a")).await.unwrap();
    let b = s.register(info("b")).await.unwrap();
    let a2 = s.register(info("a")).await.unwrap();
    assert!(a1.incarnation < b.incarnation && b.incarnation < a2.incarnation);
    assert_eq!((a1.node.as_str(), a2.node.as_str()), ("a", "a"));
    assert!(s.heartbeat(a2.clone()).await.unwrap().is_empty());
    let nodes = s.nodes().await.unwrap();
    let owners: Vec<Owner> = nodes.iter().map(|n| n.owner.clone()).collect();
    assert_eq!(owners, [a1, a2, b], "by name, then incarnation");
    assert_eq!(nodes[0].info, info("a"));
    assert!(nodes.iter().all(|n| n.heartbeat_age < HOUR));
    let s = h.reopen(s).await;
    assert_eq!(
        s.nodes().await.unwrap().len(),
        3,
        "registrations are durable"
    );
}

async fn a_buried_owner_cannot_heartbeat<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let a = s.register(info("a")).await.unwrap();
    assert!(!s.bury(a.clone(), HOUR).await.unwrap(), "alive: not buried");
    s.heartbeat(a.clone()).await.unwrap();
    assert!(s.bury(a.clone(), Duration::ZERO).await.unwrap());
    match s.heartbeat(a.clone()).await {
        Err(StoreError::Fenced { owner }) => assert_eq!(owner, a),
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert!(
        s.bury(a, HOUR).await.unwrap(),
        "not registered: nothing to bury"
    );
    assert!(s.nodes().await.unwrap().is_empty());
}

async fn dead_lists_stale_and_superseded_incarnations_and_orphaned_owners<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let a1 = s.register(info("a")).await.unwrap();
    let a2 = s.register(info("a")).await.unwrap();
    let b = s.register(info("b")).await.unwrap();
    let ghost = Owner::new("ghost", 1_000_000);
    let mut orphan = record(1);
    orphan.life.state = TaskState::Running;
    orphan.life.attempt = 1;
    orphan.life.owner = Some(ghost.clone());
    let mut ended = record(2);
    ended.life.state = TaskState::Succeeded;
    ended.life.owner = Some(Owner::new("gone", 1_000_001));
    put(&s, &[orphan, ended]).await;
    assert_eq!(
        s.dead(HOUR).await.unwrap(),
        [a1.clone(), ghost.clone()],
        "superseded and orphaned"
    );
    let mut all = s.dead(Duration::ZERO).await.unwrap();
    all.sort();
    let mut want = vec![a1, a2.clone(), b, ghost];
    want.sort();
    assert_eq!(all, want, "every heartbeat is older than zero");
    assert!(
        !s.bury(a2, HOUR).await.unwrap(),
        "the newest incarnation, alive, is not buried"
    );
}

async fn reserve_takes_due_unheld_tasks_of_its_queues_best_first<H: Harness>(h: &mut H) {
    use Priority::{Critical, High, Low, Normal};
    use TaskState::{Pending, Retrying, Running, Scheduled};
    let s = h.fresh().await;
    let me = s.register(info("a")).await.unwrap();
    let low_due = {
        let mut r = waiting(1, "q", Low, Retrying);
        r.life.due_at = Some(SystemTime::now() - HOUR);
        r
    };
    let normal = waiting(2, "q", Normal, Pending);
    let critical = waiting(3, "q", Critical, Pending);
    let normal_due = {
        let mut r = waiting(4, "q", Normal, Scheduled);
        r.life.due_at = Some(SystemTime::now() - HOUR);
        r
    };
    let not_due = {
        let mut r = waiting(5, "q", High, Scheduled);
        r.life.due_at = Some(SystemTime::now() + HOUR);
        r
    };
    let other_queue = waiting(6, "other", Critical, Pending);
    let held = {
        let mut r = waiting(7, "q", Critical, Pending);
        r.life.owner = Some(Owner::new("b", 99));
        r
    };
    let running = {
        let mut r = waiting(8, "q", Critical, Running);
        r.life = life(Running, 1, 8);
        r
    };
    let all = [
        &low_due,
        &normal,
        &critical,
        &normal_due,
        &not_due,
        &other_queue,
        &held,
        &running,
    ];
    put(&s, &all.map(|r| r.clone())).await;
    let got = s.reserve(me.clone(), vec!["q".into()], 10).await.unwrap();
    // Normal: the pending one (no due time) before the scheduled one that was due.
    let want = ids(&[critical, normal, normal_due, low_due]);
    assert_eq!(ids(&got), want, "best first: priority, due time, id");
    assert!(got.iter().all(|r| r.life.owner.as_ref() == Some(&me)));
    for id in &want {
        let r = s.get(*id).await.unwrap().unwrap();
        assert_eq!(r.life.owner.as_ref(), Some(&me), "the owner is stored");
    }
    let again = s.reserve(me.clone(), vec!["q".into()], 10).await.unwrap();
    assert!(again.is_empty(), "reserved tasks are held");
    let other = s
        .reserve(me, vec!["other".into(), "q".into()], 1)
        .await
        .unwrap();
    assert_eq!(ids(&other), ids(&[other_queue]), "a queue given");
}

async fn two_concurrent_reservers_never_get_the_same_task<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (
        s.register(info("a")).await.unwrap(),
        s.register(info("b")).await.unwrap(),
    );
    let tasks: Vec<TaskRecord> = (0..300)
        .map(|i| waiting(i, "q", Priority::Normal, TaskState::Pending))
        .collect();
    put(&s, &tasks).await;
    let drain = |owner: Owner| {
        let s = &s;
        async move {
            let mut mine = Vec::new();
            loop {
                let got = s.reserve(owner.clone(), vec!["q".into()], 7).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(ids(&got));
            }
        }
    };
    let (mine_a, mine_b) = tokio::join!(drain(a), drain(b));
    let set_a: HashSet<TaskId> = mine_a.iter().copied().collect();
    let set_b: HashSet<TaskId> = mine_b.iter().copied().collect();
    assert_eq!(set_a.len() + set_b.len(), 300, "each task reserved once");
    assert!(set_a.is_disjoint(&set_b));
    let all: HashSet<TaskId> = set_a.union(&set_b).copied().collect();
    assert_eq!(all, ids(&tasks).into_iter().collect());
}

async fn release_returns_reservations_and_held_lists_running_first<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let me = s.register(info("a")).await.unwrap();
    let queued: Vec<TaskRecord> = (0..3)
        .map(|i| waiting(i, "q", Priority::Normal, TaskState::Pending))
        .collect();
    let mut running = waiting(10, "q", Priority::Normal, TaskState::Running);
    running.life = life(TaskState::Running, 1, 10);
    running.life.owner = Some(me.clone());
    let mut done = waiting(11, "q", Priority::Normal, TaskState::Succeeded);
    done.life.state = TaskState::Succeeded;
    done.life.owner = Some(me.clone());
    put(&s, &queued).await;
    put(&s, &[running.clone(), done]).await;
    let reserved = s.reserve(me.clone(), vec!["q".into()], 10).await.unwrap();
    assert_eq!(ids(&reserved), ids(&queued));
    let held = s.held(me.clone()).await.unwrap();
    let mut want = ids(std::slice::from_ref(&running));
    want.extend(ids(&queued));
    assert_eq!(
        ids(&held),
        want,
        "running first, then reserved, oldest first"
    );
    assert_eq!(s.release(me.clone()).await.unwrap(), 3);
    assert_eq!(ids(&s.held(me.clone()).await.unwrap()), ids(&[running]));
    let other = s.register(info("b")).await.unwrap();
    let again = s.reserve(other, vec!["q".into()], 10).await.unwrap();
    assert_eq!(
        ids(&again),
        ids(&queued),
        "released tasks are reservable again"
    );
    assert_eq!(s.release(me).await.unwrap(), 0);
}
