//! The cron leader on a store several processes share (a shared memory store, paused
//! time): one node holds the `cron` lease and fires; an edit made through another node
//! reaches it; when the leader stops, another node takes the lease and fires on from the
//! watermark, every slot exactly once; a schedule that skips overlapping runs skips
//! while its last run runs (the leader asks the store, where the run may be any node's).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::unique_ns;
use taskmesh::scheduler::{LeaseConfig, Overlap, ScheduleSpec, TokioClock};
use taskmesh::store::prelude::*;
use taskmesh::store::{MemoryStore, TaskFilter, TaskQuery};
use taskmesh::testing::{script, Script, ScriptHandler};
use taskmesh::{NewTask, TaskSystem};

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, h, m, s).unwrap()
}

async fn node(store: &MemoryStore, name: &str, h: ScriptHandler) -> TaskSystem {
    TaskSystem::builder()
        .namespace(unique_ns(name))
        .node_name(name)
        .clock(TokioClock::starting_at(at(0, 0, 0)))
        .store(store.clone())
        .handler(h)
        .cron_lease(LeaseConfig::default())
        .start()
        .await
        .unwrap()
}

fn ok_task() -> NewTask {
    NewTask::new("script", script(Script::Ok { value: 1.into() }))
}

/// Every cron task in the store, by its slot key: the number of tasks per key.
async fn per_slot(store: &MemoryStore) -> BTreeMap<String, usize> {
    let page = store
        .list(TaskQuery {
            filter: TaskFilter::default(),
            limit: 100_000,
            offset: 0,
        })
        .await
        .unwrap();
    let mut per = BTreeMap::new();
    for t in page.tasks {
        if let Some(key) = t.task.unique_key.filter(|k| k.starts_with("cron:")) {
            *per.entry(key).or_insert(0) += 1;
        }
    }
    per
}

/// Waits (in paused time) until `sys` leads cron, at most `within`.
async fn leads(store: &MemoryStore, node: &str, within: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let lease = store.lease("cron".into()).await.unwrap();
        if let Some(l) = lease.filter(|l| l.holder.node == node && !l.remaining.is_zero()) {
            return l.epoch;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{node} did not take the lease within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn one_node_fires_each_slot_once_and_another_takes_over_when_it_stops() {
    let store = MemoryStore::shared();
    let (ha, _) = ScriptHandler::new();
    let (hb, _) = ScriptHandler::new();
    let a = node(&store, "a", ha).await;
    assert_eq!(leads(&store, "a", Duration::from_secs(1)).await, 1);
    let b = node(&store, "b", hb).await;
    // Added through the node that does not lead: the leader fires it.
    b.put_schedule(ScheduleSpec::new("every", "* * * * * *", ok_task()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let before = per_slot(&store).await;
    assert!(before.len() >= 8, "the leader fired: {before:?}");
    assert!(before.values().all(|n| *n == 1), "{before:?}");

    // The leader stops: it releases the lease, the other takes it at its next try.
    a.shutdown(Duration::from_secs(1)).await;
    let stopped = tokio::time::Instant::now();
    assert_eq!(leads(&store, "b", Duration::from_secs(3)).await, 2);
    let took = stopped.elapsed();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = per_slot(&store).await;
    assert!(after.values().all(|n| *n == 1), "{after:?}");
    let slots: Vec<DateTime<Utc>> = after
        .keys()
        .map(|k| {
            let s = k.strip_prefix("cron:every:").unwrap();
            DateTime::parse_from_rfc3339(s).unwrap().to_utc()
        })
        .collect();
    let (first, last) = (slots[0], *slots.last().unwrap());
    let gaps: Vec<_> = slots
        .windows(2)
        .filter(|w| w[1] - w[0] != chrono::Duration::seconds(1))
        .collect();
    // A handover within one renewal misses nothing: the new leader catches up from the
    // watermark (the default policy fires the newest missed slot; none is missed here).
    assert!(
        gaps.is_empty() || took > Duration::from_secs(1),
        "slots {first}..{last} have gaps {gaps:?} after a handover of {took:?}"
    );
    assert!(
        after.len() >= before.len() + 8,
        "the new leader fires: {after:?}"
    );
    b.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn an_edit_through_any_node_reaches_the_leader_within_a_second() {
    let store = MemoryStore::shared();
    let (ha, _) = ScriptHandler::new();
    let (hb, _) = ScriptHandler::new();
    let a = node(&store, "a", ha).await;
    leads(&store, "a", Duration::from_secs(1)).await;
    let b = node(&store, "b", hb).await;
    b.put_schedule(ScheduleSpec::new("edit", "* * * * * *", ok_task()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fired = per_slot(&store).await.len();
    assert!(fired >= 2, "{fired}");
    // Paused through the other node: the leader stops firing it within a second.
    b.pause_schedule("edit").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paused_at = per_slot(&store).await.len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        per_slot(&store).await.len(),
        paused_at,
        "no slot while paused"
    );
    let listed = a.schedules().await.unwrap();
    let edit = listed
        .iter()
        .find(|s| s.record.spec.name == "edit")
        .unwrap();
    assert!(edit.record.spec.paused, "the leader's book has the edit");
    a.shutdown(Duration::from_secs(1)).await;
    b.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn overlap_skip_holds_under_the_lease_while_the_last_run_runs() {
    let store = MemoryStore::shared();
    let (ha, _) = ScriptHandler::new();
    let a = node(&store, "a", ha.clone()).await;
    leads(&store, "a", Duration::from_secs(1)).await;
    // The run never ends until its gate opens.
    let gated = NewTask::new("script", script(Script::Gate { gate: "g".into() }));
    a.put_schedule(ScheduleSpec::new("long", "* * * * * *", gated).overlap(Overlap::Skip))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        per_slot(&store).await.len(),
        1,
        "skipped while the first runs"
    );
    ha.open("g", 10);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        per_slot(&store).await.len() >= 2,
        "fires again once it ended"
    );
    a.shutdown(Duration::from_secs(1)).await;
}
