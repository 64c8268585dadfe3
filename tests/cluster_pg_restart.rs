//! A cluster of three nodes while PostgreSQL itself restarts under load (the machine's
//! server, `pg_ctlcluster … restart`): nothing acknowledged is lost, and every node's
//! readiness returns. In a test binary of its own, because the restart ends every
//! connection to the server, and cargo runs test binaries one after another.
//!
//! Skipped (with a line saying why) when no PostgreSQL answers or it cannot be restarted
//! from here (no `pg_ctlcluster`, not root), unless `TASKMESH_REQUIRE_PG=1`.

#[path = "support/cluster.rs"]
mod cluster;

use std::process::Command;
use std::time::{Duration, Instant};

use cluster::check::{check, wait_all_ended};
use cluster::load::{sleep_task, Load, Pace};
use cluster::Cluster;

const LIMIT: Duration = Duration::from_secs(60);

/// The server's cluster version under /etc/postgresql, if this machine can restart it.
fn restartable() -> Option<String> {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .next()?;
    let found = Command::new("pg_ctlcluster").arg("--help").output().is_ok();
    let root = rustix::process::geteuid().is_root();
    (found && root).then_some(version)
}

fn restart_postgres(version: &str) {
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", version, "main", "restart"])
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "pg_ctlcluster restart failed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_under_load_loses_nothing_acknowledged_and_readiness_returns() {
    let Some(version) = restartable() else {
        let why = "PostgreSQL cannot be restarted from here (needs pg_ctlcluster and root)";
        assert!(std::env::var("TASKMESH_REQUIRE_PG").is_err(), "{why}");
        eprintln!("skipped: {why}");
        return;
    };
    let Some(c) = Cluster::start("cluster_pg_restart", 3, "").await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let mut load = Load::start(&c, Pace::Rate(20.0), sleep_task(300));
    load.wait_acknowledged(20, LIMIT).await;
    tokio::task::spawn_blocking(move || restart_postgres(&version))
        .await
        .unwrap();
    for node in &c.nodes {
        let ready = format!("{}/health/ready", node.url);
        let deadline = Instant::now() + LIMIT;
        while cluster::node::http("GET", &ready, None, None).await.0 != 200 {
            assert!(Instant::now() < deadline, "{} is not ready again", node.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    load.wait_acknowledged(load.acknowledged() + 20, LIMIT)
        .await;
    let tally = load.stop().await;
    let states = wait_all_ended(&c.nodes[0], &tally.acknowledged, 2 * LIMIT).await;
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
    check(&c.db, &tally.acknowledged).await;
}
