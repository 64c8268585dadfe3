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

use cluster::limits::{bound, busiest_window};
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
    let (busiest, windows) = busiest_window(&c.db, None, 2).await;
    let bound = bound(PER_SECOND);
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
