//! A cluster-wide rate limit on a store several processes share (a shared memory store,
//! paused time): the nodes' starts add up to the limit (within 10 % over 10 s), and when
//! a node joins, the shares move at the next heartbeat.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::{task, unique_ns};
use taskmesh::ratelimit::RateLimit;
use taskmesh::store::prelude::*;
use taskmesh::store::MemoryStore;
use taskmesh::testing::{Script, ScriptEvent, ScriptHandler};
use taskmesh::{QueueConfig, TaskSystem};
use tokio::sync::mpsc::UnboundedReceiver;

const PER_SECOND: u32 = 20;

async fn node(store: &MemoryStore, name: &str) -> (TaskSystem, UnboundedReceiver<ScriptEvent>) {
    let (h, rx) = ScriptHandler::new();
    let limit = RateLimit::per_second(NonZeroU32::new(PER_SECOND).unwrap()).cluster_wide();
    let sys = TaskSystem::builder()
        .namespace(unique_ns(name))
        .node_name(name)
        .queue(QueueConfig::new("default").workers(2, 4).rate_limit(limit))
        .liveness(
            Duration::from_secs(60),
            Duration::from_millis(100),
            Duration::from_millis(50),
        )
        .store(store.clone())
        .handler(h)
        .start()
        .await
        .unwrap();
    (sys, rx)
}

/// Starts seen on `rx` since the last call.
fn starts(rx: &mut UnboundedReceiver<ScriptEvent>) -> usize {
    let mut n = 0;
    while let Ok(e) = rx.try_recv() {
        n += usize::from(e.started);
    }
    n
}

async fn submit(sys: &TaskSystem, n: usize) {
    for i in 0..n {
        sys.submit(task(Script::Ok { value: i.into() }))
            .await
            .unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_cluster_wide_limit_holds_across_nodes_and_shares_move_when_one_joins() {
    let store = MemoryStore::shared();
    let (a, mut ra) = node(&store, "a").await;
    let (b, mut rb) = node(&store, "b").await;
    submit(&a, 600).await;
    submit(&b, 600).await;
    // Settle in: a heartbeat or two for the shares, the first (one-node) bursts spent.
    tokio::time::sleep(Duration::from_secs(2)).await;
    starts(&mut ra);
    starts(&mut rb);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (sa, sb) = (starts(&mut ra), starts(&mut rb));
    let bound = (PER_SECOND * 10) as usize * 11 / 10;
    assert!(
        sa + sb <= bound,
        "{sa} + {sb} starts in 10 s, limit {bound}"
    );
    assert!(sa + sb >= 180, "{sa} + {sb}: each node used its share");
    assert!((90..=110).contains(&sa), "a's half: {sa}");

    let (c, mut rc) = node(&store, "c").await;
    submit(&c, 600).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for rx in [&mut ra, &mut rb, &mut rc] {
        starts(rx);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let s: Vec<usize> = [&mut ra, &mut rb, &mut rc]
        .into_iter()
        .map(starts)
        .collect();
    let total: usize = s.iter().sum();
    assert!(
        total <= bound,
        "{s:?}: {total} starts in 10 s, limit {bound}"
    );
    assert!(total >= 180, "{s:?}");
    assert!((60..=74).contains(&s[0]), "a's third: {s:?}");
    for sys in [a, b, c] {
        sys.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_node_that_stops_gracefully_leaves_the_registry_at_once() {
    let store = MemoryStore::shared();
    let (a, _ra) = node(&store, "a").await;
    let (b, _rb) = node(&store, "b").await;
    let names = |records: Vec<taskmesh::store::NodeRecord>| -> Vec<String> {
        let mut names: Vec<String> = records.into_iter().map(|r| r.owner.node).collect();
        names.sort();
        names
    };
    assert_eq!(names(store.nodes().await.unwrap()), ["a", "b"]);
    b.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        names(store.nodes().await.unwrap()),
        ["a"],
        "b is gone before anyone could find it dead (dead_after is 60 s)"
    );
    a.shutdown(Duration::from_secs(1)).await;
}
