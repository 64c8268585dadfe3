//! Two real `taskmesh node` processes on one PostgreSQL database, with faults: a node
//! killed under load, a node stopped (SIGSTOP) past `dead_after` and continued, and
//! PostgreSQL unreachable (an in-test proxy cut) while tasks run. A checker reads the
//! database afterwards: every acknowledged task has exactly one terminal event, and no
//! attempt number started twice.
//!
//! Skipped (with a line saying why) when no PostgreSQL answers, unless
//! `TASKMESH_REQUIRE_PG=1`, as in `.ci/run`.

#[path = "support/node.rs"]
mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{http, temp_dir, Node};
use taskmesh::testing::pg::{Proxy, TestDb};
use taskmesh::TaskId;

/// Liveness short enough for a test: dead after 3 s.
const LIVENESS: [(&str, &str); 3] = [
    ("TASKMESH_STORE__DEAD_AFTER_MS", "3000"),
    ("TASKMESH_STORE__HEARTBEAT_MS", "500"),
    ("TASKMESH_STORE__POLL_MS", "100"),
];

fn url_of(db: &TestDb, server: std::net::SocketAddr) -> String {
    format!("postgres://postgres@{server}/{}", db.name())
}

fn start(test: &str, name: &str, store: &str) -> Node {
    let dir = temp_dir(&format!("{test}-{name}"));
    Node::start(&dir, &LIVENESS, &["--store", store, "--node-name", name])
}

async fn submit(node: &Node, ms: u64) -> TaskId {
    let body = json!({"kind": "sleep", "args": {"ms": ms}}).to_string();
    let (status, _, v) = http("POST", &format!("{}/v1/tasks", node.url), None, Some(body)).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().parse().unwrap()
}

/// Waits through `node` until the task has ended; returns its state.
async fn ended(node: &Node, id: TaskId) -> String {
    let url = format!("{}/v1/tasks/{id}/wait?timeout_ms=30000", node.url);
    let (status, _, v) = http("GET", &url, None, None).await;
    assert_eq!(status, 200, "{id}: {v}");
    v["state"].as_str().unwrap().to_string()
}

fn signal(node: &Node, sig: &str) {
    let pid = node.child.id().to_string();
    assert!(Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success());
}

/// Per task: its terminal events, and whether an attempt number started twice.
async fn check(db: &TestDb, ids: &[TaskId]) {
    let client = db.client().await;
    let rows = client
        .query("SELECT task::text, type, data::text FROM events", &[])
        .await
        .expect("events are readable");
    let mut terminal: HashMap<String, usize> = HashMap::new();
    let mut starts: HashMap<(String, u64), usize> = HashMap::new();
    for row in rows {
        let (id, kind, data): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        if matches!(kind.as_str(), "succeeded" | "failed" | "cancelled") {
            *terminal.entry(id.clone()).or_default() += 1;
        }
        if kind == "started" {
            let data: Value = serde_json::from_str(&data).unwrap();
            let attempt = data["attempt"].as_u64().unwrap();
            *starts.entry((id, attempt)).or_default() += 1;
        }
    }
    for id in ids {
        assert_eq!(terminal.get(&id.to_string()), Some(&1), "task {id}");
    }
    let twice: Vec<_> = starts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "attempts started twice: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_and_its_tasks_are_rescued_in_time() {
    let Some(db) = TestDb::create("killed_under_load").await else {
        return;
    };
    let store = url_of(&db, db.server());
    let a = start("killed", "a", &store);
    let b = start("killed", "b", &store);
    let mut ids = Vec::new();
    for i in 0..100 {
        let node = if i % 2 == 0 { &a } else { &b };
        ids.push(submit(node, 300).await);
    }
    let mut a = a;
    let _ = a.child.kill();
    let _ = a.child.wait();
    let killed = Instant::now();
    let line = b.wait_log(
        "rescued the tasks of a dead process",
        Duration::from_secs(15),
    );
    assert!(line.contains("owner=a#"), "{line}");
    let took = killed.elapsed();
    assert!(
        took <= Duration::from_secs(3 + 5),
        "rescued {took:?} after the kill, past dead_after + 5 s"
    );
    for id in &ids {
        assert_eq!(ended(&b, *id).await, "succeeded", "{id}");
    }
    check(&db, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_nodes_late_results_are_fenced_out() {
    let Some(db) = TestDb::create("stopped_node").await else {
        return;
    };
    let store = url_of(&db, db.server());
    let a = start("stopped", "a", &store);
    let b = start("stopped", "b", &store);
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(submit(&a, 1500).await);
    }
    // Every task has started on a (its own claim) before a is stopped.
    for id in &ids {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, _, v) = http("GET", &format!("{}/v1/tasks/{id}", b.url), None, None).await;
            if v["state"] == "running" {
                break;
            }
            assert!(Instant::now() < deadline, "{id} did not start on a: {v}");
            // Paced by a bounded server-side wait rather than a sleep.
            let wait = format!("{}/v1/tasks/{id}/wait?timeout_ms=20", a.url);
            let _ = http("GET", &wait, None, None).await;
        }
    }
    signal(&a, "-STOP");
    b.wait_log(
        "rescued the tasks of a dead process",
        Duration::from_secs(15),
    );
    signal(&a, "-CONT");
    a.wait_log("fenced out", Duration::from_secs(15));
    for id in &ids {
        assert_eq!(ended(&b, *id).await, "succeeded", "{id}");
    }
    check(&db, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_fails_submits_clearly_and_loses_nothing_acknowledged() {
    let Some(db) = TestDb::create("pg_unreachable").await else {
        return;
    };
    let proxy = Proxy::start(db.server()).await.unwrap();
    let a = start("unreachable", "a", &url_of(&db, proxy.addr()));
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(submit(&a, 200).await);
    }
    proxy.cut();
    let body = json!({"kind": "sleep", "args": {"ms": 1}}).to_string();
    let (status, _, v) = http(
        "POST",
        &format!("{}/v1/tasks", a.url),
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 503, "{v}");
    let ready = format!("{}/health/ready", a.url);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, _) = http("GET", &ready, None, None).await;
        if status == 503 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "readiness stays 200 while PostgreSQL is unreachable"
        );
        let _ = http(
            "POST",
            &format!("{}/v1/tasks", a.url),
            None,
            Some(body.clone()),
        )
        .await;
    }
    proxy.restore().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, _) = http("GET", &ready, None, None).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "readiness does not return");
        let _ = http(
            "GET",
            &format!("{}/v1/tasks/{}/wait?timeout_ms=100", a.url, ids[0]),
            None,
            None,
        )
        .await;
    }
    for id in &ids {
        assert_eq!(ended(&a, *id).await, "succeeded", "{id}");
    }
    check(&db, &ids).await;
}
