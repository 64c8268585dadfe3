//! A cluster-wide circuit breaker across three real `taskmesh node` processes on one
//! PostgreSQL database: the `exec` kind's breaker (`scope = "cluster"`) opens on every
//! node within a second of opening on one; after the cooldown one probe runs in the
//! whole cluster while every node's tasks wait; its success closes the breaker
//! everywhere. When the node running the probe is killed, the survivors free its claim
//! as they bury it (a killed node in a mesh is found dead at once), and another node
//! probes well before the claim would have run out.
//!
//! Skipped (with a line saying why) when no PostgreSQL answers, unless
//! `TASKMESH_REQUIRE_PG=1`, as in `.ci/run`.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::Duration;

use cluster::breakers::{failing, sleeping, starts_between, wait_row, LOOK};
use cluster::check::wait_all_ended;
use cluster::Cluster;
use taskmesh::TaskId;
use tokio::time::Instant;

const LIMIT: Duration = Duration::from_secs(30);
const COOLDOWN: Duration = Duration::from_secs(3);
/// The probe's claim: its timeout (8 s), the cancel grace (1 s) and a margin of 1 s.
const CLAIM: Duration = Duration::from_secs(10);
const EXTRA: &str = r#"
[exec]
allow = ["false", "sleep"]

[system]
cancel_grace_ms = 1000

[[system.kinds]]
name = "exec"
breaker = { failure_threshold = 3, cooldown_ms = 3000, scope = "cluster" }
"#;

/// Three failures through node `via` open the shared breaker; returns when every node
/// shows it open, with the time each took after it opened in the database.
async fn trip(c: &Cluster, via: usize) -> (cluster::breakers::Row, Vec<Duration>) {
    for _ in 0..3 {
        c.submit_to(via, &failing()).await;
    }
    let open = wait_row(&c.db, LIMIT, |r| r.state == "open").await;
    // When it opened, on this clock: its cooldown less what is left of it.
    let opened = Instant::now() - COOLDOWN.saturating_sub(open.left);
    let mut lags = vec![None; c.nodes.len()];
    while lags.iter().any(Option::is_none) {
        assert!(opened.elapsed() < LIMIT, "not open everywhere: {lags:?}");
        for (i, lag) in lags.iter_mut().enumerate() {
            if lag.is_none() && c.breaker_of(i).await == "open" {
                *lag = Some(opened.elapsed());
            }
        }
        tokio::time::sleep(LOOK).await;
    }
    (open, lags.into_iter().map(Option::unwrap).collect())
}

/// The attempts started while the breaker was half-open: the first is the probe, and
/// every one is on the probe's node (which starts the next ones as soon as its probe
/// succeeded, a moment before the store has the breaker closed).
fn only_the_probers(starts: &[String]) {
    assert!(!starts.is_empty(), "the probe started");
    assert!(
        starts.iter().all(|n| *n == starts[0]),
        "no node but the probe's started anything while it was claimed: {starts:?}"
    );
}

/// Two tasks of `secs` seconds on every node, submitted while the breaker is open.
async fn waiting(c: &Cluster, secs: u32) -> Vec<TaskId> {
    let mut ids = Vec::new();
    for i in 0..c.nodes.len() {
        for _ in 0..2 {
            ids.push(c.submit_to(i, &sleeping(secs, 8000)).await);
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_wide_breaker_opens_everywhere_probes_on_one_node_and_closes_everywhere() {
    let Some(c) = Cluster::start("cluster_breakers", 3, EXTRA).await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    let (open, lags) = trip(&c, 0).await;
    eprintln!(
        "figure: cluster-wide breaker open on each node after {lags:?} (observed every {LOOK:?})"
    );
    for lag in &lags {
        assert!(*lag <= Duration::from_secs(1) + LOOK, "open after {lag:?}");
    }
    let ids = waiting(&c, 1).await;
    let states = wait_all_ended(&c.nodes[1], &ids, LIMIT).await;
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
    let closed = wait_row(&c.db, LIMIT, |r| r.state == "closed").await;
    let early = starts_between(&c.db, &ids, 0, open.until).await;
    assert_eq!(
        early,
        Vec::<String>::new(),
        "nothing started in the cooldown"
    );
    let before_close = starts_between(&c.db, &ids, 0, closed.until).await;
    only_the_probers(&before_close);
    for i in 0..3 {
        assert_eq!(c.breaker_of(i).await, "closed", "{} closed", c.name(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_probing_node_is_killed_another_node_probes_once_it_is_found_dead() {
    let Some(mut c) = Cluster::start("cluster_breakers_kill", 3, EXTRA).await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    trip(&c, 1).await;
    let ids = waiting(&c, 1).await;
    let claim = wait_row(&c.db, LIMIT, |r| r.state == "half_open").await;
    let prober = claim.probe.clone().expect("a holder");
    let victim = (0..3).find(|&i| c.name(i) == prober).unwrap();
    c.kill(victim);
    let killed = Instant::now();
    let moved = wait_row(&c.db, LIMIT, |r| r.version > claim.version).await;
    let took = killed.elapsed();
    let next = wait_row(&c.db, LIMIT, |r| {
        r.state == "half_open" && r.probe.as_deref() != Some(prober.as_str())
    })
    .await;
    eprintln!("figure: probing node {prober} killed; its claim freed after {took:?} (claim {CLAIM:?}), then {next:?}");
    assert!(moved.probe.as_deref() != Some(prober.as_str()), "{moved:?}");
    assert!(took < CLAIM / 2, "freed when buried, not run out: {took:?}");
    let closed = wait_row(&c.db, LIMIT, |r| r.state == "closed").await;
    let survivor = (0..3).find(|&i| i != victim).unwrap();
    let states = wait_all_ended(&c.nodes[survivor], &ids, LIMIT).await;
    assert!(states.values().all(|s| s == "succeeded"), "{states:?}");
    // The killed node may have died before or after its probe's attempt began.
    let claimed = next.until - i64::try_from(CLAIM.as_nanos()).unwrap();
    let before = starts_between(&c.db, &ids, 0, claimed).await;
    assert!(
        before.iter().all(|n| *n == prober) && before.len() <= 1,
        "at most the killed probe before the new claim: {before:?}"
    );
    let after = starts_between(&c.db, &ids, claimed, closed.until).await;
    only_the_probers(&after);
    // A survivor probes. It need not be the first claimant: a claim whose task was taken
    // by another node meanwhile (the killed node's tasks are rescued and routed) ends the
    // probe as neutral, and the next claim may go to another survivor.
    assert_ne!(after[0], prober, "a survivor probed: {after:?}");
}
