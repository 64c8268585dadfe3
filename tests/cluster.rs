//! The cluster under real faults: three `taskmesh node` processes on 127.0.0.1, one
//! PostgreSQL database, an in-test proxy on every database link and in front of every
//! mesh listener, a steady submit load through all nodes, and a checker over the
//! database afterwards (every acknowledged task has exactly one terminal state; no attempt
//! settled after a newer one started; none lost). Short versions of each scenario; the
//! randomized long run is `scripts/chaos.sh`.
//!
//! Skipped (with a line saying why) when no PostgreSQL answers, unless
//! `TASKMESH_REQUIRE_PG=1`, as in `.ci/run`.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::check::{check, wait_all_ended};
use cluster::load::{sleep_task, Load, Pace};
use cluster::view::MemberState;
use cluster::Cluster;
use taskmesh::testing::pg::TestDb;
use taskmesh::testing::proxy::Mode;

/// The bound of every wait.
const LIMIT: Duration = Duration::from_secs(30);
/// The harness's `store.dead_after_ms`.
const DEAD_AFTER: Duration = Duration::from_secs(3);

/// The ids of the tasks node `name` runs now, as its rows say; waits until there is one.
async fn running_on(db: &TestDb, name: &str) -> Vec<uuid::Uuid> {
    let client = db.client().await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let sql = "SELECT id FROM tasks WHERE state = 'running' AND owner_node = $1";
        let ids: Vec<uuid::Uuid> = client
            .query(sql, &[&name])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !ids.is_empty() {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "{name} runs nothing within {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until each of `ids` has started an attempt after its first, on any node;
/// returns how long that took.
async fn started_again(db: &TestDb, ids: &[uuid::Uuid]) -> Duration {
    let began = Instant::now();
    let client = db.client().await;
    loop {
        let sql = "SELECT count(DISTINCT task) FROM events WHERE type = 'started' \
                   AND task = ANY($1) AND (data::jsonb->>'attempt')::int >= 2";
        let n: i64 = client.query_one(sql, &[&ids]).await.unwrap().get(0);
        if n as usize == ids.len() {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < LIMIT,
            "{n} of {} started again within {LIMIT:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Stops the load, waits (through node `via`) until every acknowledged task ended, and
/// checks the database; returns the acknowledged tasks' final states.
async fn finish(
    c: &Cluster,
    load: Load,
    via: usize,
) -> (usize, std::collections::BTreeMap<String, String>) {
    let tally = load.stop().await;
    let states = wait_all_ended(&c.nodes[via], &tally.acknowledged, 3 * LIMIT).await;
    check(&c.db, &tally.acknowledged).await;
    let states = states
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    (tally.acknowledged.len(), states)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_running_tasks_start_again_elsewhere_within_5_s() {
    let Some(mut c) = Cluster::start("cluster_kill", 3, "").await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let mut load = Load::start(&c, Pace::Rate(20.0), sleep_task(1500));
    load.wait_acknowledged(15, LIMIT).await;
    let victims = running_on(&c.db, "n3").await;
    c.kill(2);
    let killed = Instant::now();
    c.wait_view(0, LIMIT, |v| v.state_of("n3") != Some(MemberState::Up))
        .await;
    let noticed = killed.elapsed();
    let took = started_again(&c.db, &victims).await + noticed;
    eprintln!("figure: kill -9: noticed after {noticed:?}, its running tasks started again after {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "rescued {took:?} after the kill"
    );
    c.wait_sees(0, 2, MemberState::Down, LIMIT).await;
    load.wait_acknowledged(load.acknowledged() + 15, LIMIT)
        .await;
    let (n, states) = finish(&c, load, 0).await;
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
    assert!(n >= 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_is_suspect_within_3_s_rescued_after_dead_after_and_fenced_when_it_continues(
) {
    let Some(mut c) = Cluster::start("cluster_stop", 3, "").await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let mut load = Load::start(&c, Pace::Rate(20.0), sleep_task(1500));
    load.wait_acknowledged(15, LIMIT).await;
    let victims = running_on(&c.db, "n3").await;
    c.stop(2);
    let stopped = Instant::now();
    c.wait_sees(0, 2, MemberState::Suspect, LIMIT).await;
    let suspect = stopped.elapsed();
    assert!(
        suspect < Duration::from_secs(3),
        "suspect after {suspect:?}"
    );
    let took = started_again(&c.db, &victims).await + suspect;
    eprintln!("figure: SIGSTOP: suspect after {suspect:?}, its running tasks started again after {took:?}");
    // A stopped process keeps its connections: not rescued at once, but at dead_after.
    assert!(
        took >= DEAD_AFTER - Duration::from_millis(600),
        "rescued {took:?} after the stop: before dead_after"
    );
    c.cont(2);
    c.nodes[2].wait_log("fenced out", LIMIT);
    c.wait_all_up(LIMIT).await;
    load.wait_acknowledged(load.acknowledged() + 15, LIMIT)
        .await;
    let (_, states) = finish(&c, load, 0).await;
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_database_stops_answers_503_and_its_tasks_run_elsewhere() {
    let Some(c) = Cluster::start("cluster_db_cut", 3, "").await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let mut load = Load::start(&c, Pace::Rate(20.0), sleep_task(1500));
    load.wait_acknowledged(15, LIMIT).await;
    let victims = running_on(&c.db, "n3").await;
    c.db_proxy(2).set_mode(Mode::BlackHole);
    c.nodes[2].wait_log("no heartbeat renewed within the trust window", LIMIT);
    let took = started_again(&c.db, &victims).await;
    eprintln!("figure: database link black-holed: its running tasks started again elsewhere {took:?} after the trust window ended");
    assert!(
        took < DEAD_AFTER + Duration::from_secs(5),
        "rescued {took:?} after the cut"
    );
    // It stopped its attempts (at its trust window's end) before anyone rescued them.
    assert!(
        took > Duration::from_millis(250),
        "rescued only {took:?} after the cut-off node stopped its attempts"
    );
    let submit = format!("{}/v1/tasks", c.nodes[2].url);
    let body = sleep_task(1).to_string();
    let deadline = Instant::now() + LIMIT;
    loop {
        let (status, _, v) = cluster::node::http("POST", &submit, None, Some(body.clone())).await;
        if status == 503 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "submits to the cut-off node still answer {status}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster::partition::heal(c.db_proxy(2)).await;
    let ready = format!("{}/health/ready", c.nodes[2].url);
    let deadline = Instant::now() + LIMIT;
    while cluster::node::http("GET", &ready, None, None).await.0 != 200 {
        assert!(Instant::now() < deadline, "n3 does not become ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    load.wait_acknowledged(load.acknowledged() + 15, LIMIT)
        .await;
    let (_, states) = finish(&c, load, 0).await;
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_cut_off_from_each_other_rescue_nothing_run_nothing_twice_and_mesh_again_within_5_s()
{
    let Some(c) = Cluster::start("cluster_partition", 3, "").await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let mut load = Load::start(&c, Pace::Rate(20.0), sleep_task(1000));
    load.wait_acknowledged(15, LIMIT).await;
    let remote = running_on(&c.db, "n2").await[0];
    for i in 0..3 {
        c.isolate(i);
    }
    for (i, j) in [(0, 1), (1, 2), (2, 0)] {
        c.wait_sees(i, j, MemberState::Suspect, LIMIT).await;
    }
    // A live query for a task another node runs falls back to the database.
    let url = format!("{}/v1/tasks/{remote}", c.nodes[0].url);
    let (status, _, v) = cluster::node::http("GET", &url, None, None).await;
    assert_eq!(status, 200, "{v}");
    load.wait_acknowledged(load.acknowledged() + 20, LIMIT)
        .await;
    c.heal_mesh();
    let healed = Instant::now();
    c.wait_all_up(LIMIT).await;
    let took = healed.elapsed();
    eprintln!("figure: mesh partition healed: every node up again after {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "the mesh re-formed {took:?} after the heal"
    );
    let (_, states) = finish(&c, load, 1).await;
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
    for i in 0..3 {
        let logs = c.logs(i);
        assert!(
            !logs.contains("rescued the tasks of a dead process"),
            "n{} rescued during a mesh partition:\n{logs}",
            i + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_with_drain_under_load_loses_and_fails_nothing() {
    let Some(mut c) = Cluster::start("cluster_rolling", 3, "").await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let mut load = Load::start(&c, Pace::Rate(20.0), sleep_task(500));
    load.wait_acknowledged(10, LIMIT).await;
    for i in 0..3 {
        let drain = format!("{}/v1/cluster/drain", c.nodes[i].url);
        let deadline = Instant::now() + LIMIT;
        loop {
            let (status, _, v) = cluster::node::http("POST", &drain, None, None).await;
            assert_eq!(status, 202, "{v}");
            if v["empty"] == true {
                break;
            }
            assert!(Instant::now() < deadline, "n{} never empties: {v}", i + 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(c.terminate(i), 0, "a drained node exits cleanly");
        c.restart(i);
        c.wait_all_up(LIMIT).await;
        load.wait_acknowledged(load.acknowledged() + 10, LIMIT)
            .await;
    }
    let tally_n = load.acknowledged();
    let (n, states) = finish(&c, load, 0).await;
    assert!(n >= tally_n);
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
    let client = c.db.client().await;
    let again: i64 = client
        .query_one("SELECT count(*) FROM tasks WHERE attempt > 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        again, 0,
        "a drained node's tasks finish: no attempt is cut off and retried"
    );
}
