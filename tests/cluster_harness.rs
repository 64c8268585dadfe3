//! The cluster harness itself: its config files, the checker against a database broken
//! by hand, the load driver and the checker with plain nodes (no mesh) and one node's
//! database link black-holed, the node lifecycle, and (once nodes know `[cluster]`) a
//! meshed cluster's views.
//!
//! The PostgreSQL tests are skipped (with a line saying why) when no server answers,
//! unless `TASKMESH_REQUIRE_PG=1`; the mesh test is skipped while the node rejects the
//! `[cluster]` section.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::check::{check, inspect, wait_all_ended, Violation};
use cluster::config::{self, Mesh};
use cluster::load::{sleep_task, Load, Pace};
use cluster::view::MemberState;
use cluster::Cluster;
use taskmesh::testing::pg::TestDb;
use taskmesh::testing::proxy::Mode;
use taskmesh::TaskId;

/// The bound of every wait on a cluster.
const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_node_config_has_the_liveness_its_mesh_and_the_extra_toml_over_them() {
    let addr = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
    let mesh = Mesh {
        name: "n2".into(),
        listen: addr(7001),
        advertise: addr(8002),
        seeds: vec![addr(8001), addr(8003)],
    };
    let extra = config::parse_extra("[cluster]\nping_ms = 200\n[system]\nnamespace = \"x\"\n");
    let url = "postgres://postgres@127.0.0.1:1/db";
    let doc: toml::Table = config::render(url, Some(&mesh), &extra).parse().unwrap();
    assert_eq!(doc["store"]["url"].as_str(), Some(url));
    assert_eq!(doc["store"]["dead_after_ms"].as_integer(), Some(3000));
    assert_eq!(doc["store"]["heartbeat_ms"].as_integer(), Some(500));
    let c = &doc["cluster"];
    assert_eq!(c["node_name"].as_str(), Some("n2"));
    assert_eq!(c["listen"].as_str(), Some("127.0.0.1:7001"));
    assert_eq!(c["advertise"].as_str(), Some("127.0.0.1:8002"));
    let seeds: Vec<&str> = c["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(seeds, ["127.0.0.1:8001", "127.0.0.1:8003"]);
    assert_eq!(c["ping_ms"].as_integer(), Some(200), "the extra TOML wins");
    assert_eq!(doc["system"]["namespace"].as_str(), Some("x"));
    let plain: toml::Table = config::render(url, None, &toml::Table::new())
        .parse()
        .unwrap();
    assert!(!plain.contains_key("cluster"));
}

/// Writes a task row in `state` and its events (seq from 1), as the stores would.
async fn forge(client: &tokio_postgres::Client, state: Option<&str>, events: &[&str]) -> TaskId {
    let id = TaskId::new();
    if let Some(state) = state {
        client
            .batch_execute(&format!(
                "INSERT INTO tasks (id, kind, queue, priority, state, attempt, intent, \
                 created_at, updated_at, last_seq, life) \
                 VALUES ('{id}', 'sleep', 'default', 0, '{state}', 0, false, 0, 0, 0, '{{}}')"
            ))
            .await
            .unwrap();
    }
    for (seq, data) in events.iter().enumerate() {
        let kind: serde_json::Value = serde_json::from_str(data).unwrap();
        let kind = kind["type"].as_str().unwrap();
        let seq = seq + 1;
        client
            .batch_execute(&format!(
                "INSERT INTO events (task, seq, at, type, data) VALUES ('{id}', {seq}, 0, '{kind}', '{data}')"
            ))
            .await
            .unwrap();
    }
    id
}

const CREATED: &str = r#"{"type":"created"}"#;
const START_1: &str = r#"{"type":"started","attempt":1,"worker":null}"#;
const START_2: &str = r#"{"type":"started","attempt":2,"worker":null}"#;
const FAILED_1: &str =
    r#"{"type":"attempt_failed","error":{"attempt":1,"kind":"failed","message":"x"}}"#;
const RETRY_2: &str =
    r#"{"type":"retry_scheduled","attempt":2,"at":{"secs_since_epoch":0,"nanos_since_epoch":0}}"#;
const CRASHED_1: &str =
    r#"{"type":"crashed","crash":{"task_id":"t","attempt":1,"kind":"crashed","reason":"x"}}"#;
const STOP: &str = r#"{"type":"stop_requested","intent":{"command":"shutdown"}}"#;
const RESTARTED: &str = r#"{"type":"restarted"}"#;
const SUCCEEDED: &str = r#"{"type":"succeeded","result":1}"#;

#[tokio::test]
async fn the_checker_reports_each_broken_rule_naming_the_task() {
    let Some(db) = TestDb::create("harness_checker").await else {
        return;
    };
    drop(
        taskmesh::store::PgStore::connect_with(db.options())
            .await
            .unwrap(),
    );
    let c = db.client().await;
    let s = Some("succeeded");
    let fine = [
        forge(&c, s, &[CREATED, START_1, SUCCEEDED]).await,
        forge(&c, s, &[START_1, FAILED_1, RETRY_2, START_2, SUCCEEDED]).await,
        forge(&c, s, &[START_1, STOP, RESTARTED, START_1, SUCCEEDED]).await,
        forge(&c, s, &[START_1, CRASHED_1, RESTARTED, START_2, SUCCEEDED]).await,
    ];
    let clean = check(&db, &fine).await;
    assert_eq!(clean.ended.get("succeeded"), Some(&4));

    let missing = forge(&c, None, &[]).await;
    let open = forge(&c, Some("running"), &[CREATED, START_1]).await;
    let twice_ended = forge(&c, s, &[START_1, SUCCEEDED, SUCCEEDED]).await;
    let wrong_state = forge(&c, Some("running"), &[START_1, SUCCEEDED]).await;
    let twice_started = forge(&c, s, &[START_1, START_1, SUCCEEDED]).await;
    let late = forge(&c, s, &[START_1, CRASHED_1, START_2, FAILED_1, SUCCEEDED]).await;
    let after_end = forge(&c, s, &[START_1, SUCCEEDED, START_2]).await;
    let unacknowledged = forge(&c, Some("running"), &[START_1, START_1]).await;
    let unreadable = forge(&c, Some("running"), &[r#"{"type":"started"}"#]).await;
    let broken = [
        missing,
        open,
        twice_ended,
        wrong_state,
        twice_started,
        late,
        after_end,
    ];
    let acknowledged: Vec<TaskId> = fine.iter().chain(&broken).copied().collect();

    let report = inspect(&db, &acknowledged).await;
    let t = |id: TaskId| id.to_string();
    let mut expected = vec![
        Violation::Missing { task: t(missing) },
        Violation::Terminals {
            task: t(open),
            count: 0,
        },
        Violation::Terminals {
            task: t(twice_ended),
            count: 2,
        },
        Violation::State {
            task: t(wrong_state),
            state: "running".into(),
            terminal: "succeeded".into(),
        },
        Violation::StartedTwice {
            task: t(twice_started),
            attempt: 1,
            seqs: (1, 2),
        },
        Violation::LateSettle {
            task: t(late),
            attempt: 1,
            event: "attempt_failed".into(),
            seq: 4,
            newer: 2,
        },
        Violation::StartedAfterEnd {
            task: t(after_end),
            attempt: 2,
            seq: 3,
        },
        Violation::StartedTwice {
            task: t(unacknowledged),
            attempt: 1,
            seqs: (1, 2),
        },
        Violation::Unreadable {
            task: t(unreadable),
            event: "started".into(),
            seq: 1,
        },
    ];
    let mut found = report.violations.clone();
    expected.sort_by_key(|v| v.to_string());
    found.sort_by_key(|v| v.to_string());
    assert_eq!(found, expected);
    assert_eq!((report.acknowledged, report.stored), (11, 12));

    let message = report.failure().expect("violations fail the check");
    for id in broken.iter().chain([&unacknowledged, &unreadable]) {
        assert!(
            message.contains(&id.to_string()),
            "{id} is named in: {message}"
        );
    }
}

/// Waits until node `name` runs at least one task, as its rows say.
async fn runs_something(db: &TestDb, name: &str) {
    let client = db.client().await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let sql = "SELECT count(*) FROM tasks WHERE state = 'running' AND owner_node = $1";
        let n: i64 = client.query_one(sql, &[&name]).await.unwrap().get(0);
        if n > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} runs nothing within {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_through_two_plain_nodes_passes_the_checker_with_one_database_link_black_holed() {
    let Some(c) = Cluster::builder("harness_black_hole")
        .nodes(2)
        .without_mesh()
        .start()
        .await
    else {
        return;
    };
    let mut load = Load::start(&c, Pace::Rate(10.0), sleep_task(1000));
    load.wait_acknowledged(10, LIMIT).await;
    runs_something(&c.db, "n1").await;
    c.db_proxy(0).set_mode(Mode::BlackHole);
    let line = c.nodes[1].wait_log("rescued the tasks of a dead process", LIMIT);
    assert!(line.contains("owner=n1#"), "{line}");
    let before = load.acknowledged();
    load.wait_acknowledged(before + 10, LIMIT).await;
    let tally = load.stop().await;
    assert!(tally.by_node["n2"] >= 10, "{tally:?}");
    cluster::partition::heal(c.db_proxy(0)).await;
    let states = wait_all_ended(&c.nodes[1], &tally.acknowledged, 2 * LIMIT).await;
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
    let report = check(&c.db, &tally.acknowledged).await;
    assert_eq!(report.ended["succeeded"], tally.acknowledged.len());
    assert!(report.starts >= tally.acknowledged.len(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_is_skipped_by_the_load_and_a_restarted_one_serves_again() {
    let Some(mut c) = Cluster::builder("harness_lifecycle")
        .nodes(2)
        .without_mesh()
        .start()
        .await
    else {
        return;
    };
    let mut load = Load::start(&c, Pace::Concurrent(2), sleep_task(10));
    load.wait_acknowledged(10, LIMIT).await;
    c.stop(0);
    assert_eq!(c.live(), [1]);
    let n1 = load.tally().by_node.get("n1").copied().unwrap_or(0);
    load.wait_acknowledged(load.acknowledged() + 20, LIMIT)
        .await;
    let stopped = load.tally().by_node.get("n1").copied().unwrap_or(0);
    assert!(
        stopped <= n1 + 2,
        "only submits in flight at the stop: {n1} then {stopped}"
    );
    c.cont(0);
    c.terminate(0);
    assert!(c.live() == [1] && c.life(0) == cluster::Life::Exited);
    c.restart(0);
    let url = c.nodes[0].url.clone();
    load.wait_acknowledged(load.acknowledged() + 20, LIMIT)
        .await;
    let tally = load.stop().await;
    assert!(
        tally.by_node["n1"] > stopped,
        "the restarted n1 ({url}) acknowledges: {tally:?}"
    );
    wait_all_ended(&c.nodes[0], &tally.acknowledged, LIMIT).await;
    check(&c.db, &tally.acknowledged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meshed_nodes_see_an_isolated_node_suspect_and_a_killed_one_down() {
    let Some(mut c) = Cluster::start("harness_mesh", 3, "").await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let view = c.wait_view(0, LIMIT, |v| v.nodes.len() == 3).await;
    assert_eq!(view.answered_by, "n1");
    assert!(view.member("n1").unwrap().this);
    // n1 sorts first, so it dials: its links go through its peers' proxies.
    c.isolate(0);
    c.wait_sees(1, 0, MemberState::Suspect, LIMIT).await;
    let view = c.wait_sees(2, 0, MemberState::Suspect, LIMIT).await;
    assert_eq!(view.state_of("n2"), Some(MemberState::Up), "{view:?}");
    c.heal_mesh();
    c.wait_all_up(LIMIT).await;
    c.kill(2);
    c.wait_sees(0, 2, MemberState::Down, LIMIT).await;
    c.restart(2);
    c.wait_all_up(LIMIT).await;
}
