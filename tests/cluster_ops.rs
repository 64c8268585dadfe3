//! Operations across a cluster of three real nodes: routing of new tasks (round robin,
//! consistent hashing on a routing key), the live status of a task another node runs,
//! a cancel through any node reaching the running attempt at once, and the CLI's
//! `cluster status`.
//!
//! Skipped (with a line saying why) when no PostgreSQL answers, unless
//! `TASKMESH_REQUIRE_PG=1`.

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cluster::check::{check, wait_all_ended};
use cluster::node::http;
use cluster::Cluster;
use serde_json::json;
use taskmesh::TaskId;

const LIMIT: Duration = Duration::from_secs(30);

async fn submit(c: &Cluster, i: usize, body: serde_json::Value) -> TaskId {
    let url = format!("{}/v1/tasks", c.nodes[i].url);
    let (status, _, v) = http("POST", &url, None, Some(body.to_string())).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().parse().unwrap()
}

/// The node that ran each task's first attempt, from its `started` event.
async fn ran_on(c: &Cluster, ids: &[TaskId]) -> BTreeMap<TaskId, String> {
    let client = c.db.client().await;
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    let rows = client
        .query(
            "SELECT task, data::jsonb->>'worker' FROM events WHERE type = 'started' AND task = ANY($1)",
            &[&ids],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let worker: String = r.get(1);
            let node = worker.split('/').next().unwrap().to_string();
            (TaskId(r.get(0)), node)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_one_nodes_submits_and_consistent_hash_keeps_a_key_on_one_node() {
    let extra = "[cluster.routing]\ndefault = \"round_robin\"\n[cluster.routing.queues]\ndefault = \"consistent_hash\"\n";
    // Queue "default" hashes; "rr" (below) goes round robin.
    let extra =
        format!("{extra}[[system.queues]]\nname = \"default\"\n[[system.queues]]\nname = \"rr\"\n");
    let Some(c) = Cluster::start("cluster_routing", 3, &extra).await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let mut spread = Vec::new();
    for _ in 0..30 {
        spread.push(
            submit(
                &c,
                0,
                json!({"kind": "sleep", "args": {"ms": 10}, "queue": "rr"}),
            )
            .await,
        );
    }
    let mut keyed: BTreeMap<&str, Vec<TaskId>> = BTreeMap::new();
    for (i, key) in ["alpha", "beta", "gamma", "delta"]
        .iter()
        .cycle()
        .take(40)
        .enumerate()
    {
        let body = json!({"kind": "sleep", "args": {"ms": 10}, "routing_key": key});
        keyed
            .entry(key)
            .or_default()
            .push(submit(&c, i % 3, body).await);
    }
    let all: Vec<TaskId> = spread
        .iter()
        .chain(keyed.values().flatten())
        .copied()
        .collect();
    wait_all_ended(&c.nodes[1], &all, LIMIT).await;
    check(&c.db, &all).await;
    let ran = ran_on(&c, &spread).await;
    let nodes: BTreeSet<&String> = ran.values().collect();
    assert_eq!(
        nodes.len(),
        3,
        "round robin from n1 reaches every node: {ran:?}"
    );
    for node in &nodes {
        // The list's node filter, through another node, finds what ran there.
        let url = format!(
            "{}/v1/tasks?queue=rr&limit=1000&node={node}",
            c.nodes[2].url
        );
        let (status, _, v) = http("GET", &url, None, None).await;
        assert_eq!(status, 200, "{v}");
        let listed: BTreeSet<TaskId> = v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                assert_eq!(t["node"], node.as_str(), "{t}");
                t["id"].as_str().unwrap().parse().unwrap()
            })
            .collect();
        let want: BTreeSet<TaskId> = ran
            .iter()
            .filter(|(_, n)| n == node)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(listed, want, "tasks listed for node {node}");
        assert_eq!(v["total"], want.len(), "the total for node {node}");
    }
    let ran = ran_on(&c, &all).await;
    for (key, ids) in &keyed {
        let nodes: BTreeSet<&String> = ids.iter().map(|id| &ran[id]).collect();
        assert_eq!(nodes.len(), 1, "key {key} ran on {nodes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_shows_the_live_status_and_a_cancel_through_it_stops_the_attempt_within_1_s() {
    let Some(c) = Cluster::start("cluster_live", 3, "").await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let id = submit(&c, 1, json!({"kind": "sleep", "args": {"ms": 60000}})).await;
    let get = format!("{}/v1/tasks/{id}", c.nodes[0].url);
    let deadline = Instant::now() + LIMIT;
    let live = loop {
        let (status, _, v) = http("GET", &get, None, None).await;
        assert_eq!(status, 200, "{v}");
        if v["state"] == "running" {
            break v;
        }
        assert!(Instant::now() < deadline, "never running: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Only the running node knows its worker: the answer came from n2, not the store.
    assert!(live["worker"].is_string(), "not a live status: {live}");
    let cancel = format!("{}/v1/tasks/{id}/cancel", c.nodes[2].url);
    let began = Instant::now();
    let (status, _, v) = http(
        "POST",
        &cancel,
        None,
        Some(json!({"reason": "test"}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let wait = format!("{}/v1/tasks/{id}/wait?timeout_ms=5000", c.nodes[2].url);
    let (_, _, v) = http("GET", &wait, None, None).await;
    let took = began.elapsed();
    assert_eq!(v["state"], "cancelled", "{v}");
    assert!(
        took < Duration::from_secs(1),
        "cancelled {took:?} after the request"
    );
    check(&c.db, &[id]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_every_node_and_which_one_answered() {
    let Some(c) = Cluster::start("cluster_cli", 3, "").await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let (code, v, err) = cluster::node::cli(
        &c.nodes[2].url,
        None,
        &["cluster", "status", "--output", "json"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["answered_by"], "n3");
    let nodes = v["nodes"].as_array().unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    for n in nodes {
        assert_eq!(n["state"], "up", "{n}");
        assert!(n["incarnation"].as_u64().unwrap() > 0, "{n}");
        assert!(
            n["free_slots"].is_u64() && n["heartbeat_age_ms"].is_u64(),
            "{n}"
        );
        assert_eq!(n["queues"], json!(["default"]), "{n}");
    }
    assert_eq!(nodes.iter().filter(|n| n["this"] == true).count(), 1);
    // Each queue shows its load on every node.
    let (code, v, err) = cluster::node::cli(&c.nodes[0].url, None, &["queues", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let default = &v["queues"][0];
    assert_eq!(default["name"], "default", "{v}");
    let on: Vec<&str> = default["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no per-node load: {v}"))
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    let mut on = on;
    on.sort();
    assert_eq!(on, ["n1", "n2", "n3"], "{v}");
}
