//! A cluster-wide rate limit under real faults: three `taskmesh node` processes on one
//! PostgreSQL database, the default queue limited to 50 starts per second across the
//! cluster, a steady load of short tasks well above that, and one node killed and
//! started again. Afterwards the database's `started` events are counted per 10-second
//! window: the cluster's starts stay within the limit plus 10 %.
//!
//! Skipped (with a line saying why) when no PostgreSQL answers, unless
//! `TASKMESH_REQUIRE_PG=1`, as in `.ci/run`.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::Duration;

use cluster::load::{Load, Pace};
use cluster::Cluster;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);
const PER_SECOND: i64 = 50;
const EXTRA: &str = r#"
[[system.queues]]
name = "default"
min_workers = 4
max_workers = 16
rate_limit = { per_second = 50, burst = 50, scope = "cluster" }
"#;

/// The most `started` events in any 10-second window (sliding by 100 ms) between the
/// first and last start, skipping the first `settle` seconds (shares are set at the
/// first heartbeats).
async fn busiest_window(db: &taskmesh::testing::pg::TestDb, settle: i64) -> (i64, i64) {
    let client = db.client().await;
    let sql = "WITH s AS (SELECT at FROM events WHERE type = 'started'), \
               b AS (SELECT min(at) + $1 * 1000000000::int8 AS lo, max(at) AS hi FROM s), \
               w AS (SELECT generate_series(b.lo, b.hi - 10000000000, 100000000) AS t FROM b) \
               SELECT coalesce(max((SELECT count(*) FROM s WHERE s.at >= w.t AND s.at < w.t + 10000000000)), 0), \
                      (SELECT count(*) FROM w) FROM w";
    let row = client.query_one(sql, &[&settle]).await.unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_wide_limit_holds_while_a_node_is_killed_and_restarted() {
    let Some(mut c) = Cluster::start("cluster_limits", 3, EXTRA).await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    // Paced by the load's acknowledgements (120 a second): about 8 s, 6 s, 8 s.
    let mut load = Load::start(&c, Pace::Rate(120.0), json!({"kind": "noop"}));
    load.wait_acknowledged(960, LIMIT).await;
    c.kill(2);
    load.wait_acknowledged(load.acknowledged() + 720, LIMIT)
        .await;
    c.restart(2);
    c.wait_all_up(LIMIT).await;
    load.wait_acknowledged(load.acknowledged() + 960, LIMIT)
        .await;
    let tally = load.stop().await;
    let (busiest, windows) = busiest_window(&c.db, 2).await;
    let bound = PER_SECOND * 10 * 11 / 10;
    eprintln!("figure: cluster-wide limit {PER_SECOND}/s on 3 nodes, one killed and restarted: at most {busiest} starts in any 10 s window ({windows} windows; bound {bound}); {} acknowledged", tally.acknowledged.len());
    assert!(windows > 50, "a long enough run: {windows} windows");
    assert!(
        busiest <= bound,
        "{busiest} starts in a 10 s window, bound {bound}"
    );
    assert!(
        busiest >= PER_SECOND * 10 / 2,
        "the limit was the bottleneck: {busiest}"
    );
}
