//! Cron across the cluster under real faults: three `taskmesh node` processes on one
//! PostgreSQL database, 50 schedules firing every second (catch-up `all`, so every slot
//! must fire), the cron lease lasting 3 s and renewed every 500 ms. After each fault a
//! checker in the style of Jepsen's chronos reads the database: for every schedule and
//! every slot in the run's window exactly one task exists; the lease's epoch only grew;
//! and a new leader fired within the lease's time plus 2 s of the fault. Faults: the
//! leader killed; stopped (SIGSTOP) past its lease, then continued; cut off from the
//! database; cut off from its peers only (it keeps leading: the database is the
//! authority); every node restarted one by one.
//!
//! Skipped (with a line saying why) when no PostgreSQL answers, unless
//! `TASKMESH_REQUIRE_PG=1`, as in `.ci/run`.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cluster::cron::{self, index, lease, slots, whole_second, Slots, LEASE_3S as EXTRA};
use cluster::partition::heal;
use cluster::Cluster;
use taskmesh::testing::pg::TestDb;
use taskmesh::testing::proxy::Mode;

/// The bound of every wait.
const LIMIT: Duration = Duration::from_secs(30);
/// The cron lease of every node here.
const TTL: Duration = Duration::from_secs(3);
const SCHEDULES: usize = 50;

/// Starts three nodes and adds the schedules through node `via`; the cluster, with the
/// cron lease's holder and epoch.
async fn started(test: &str, via: usize) -> Option<(Cluster, String, i64)> {
    let c = Cluster::start(test, 3, EXTRA).await?;
    c.wait_all_up(LIMIT).await;
    cron::add_schedules(&c, via, SCHEDULES).await;
    let (holder, epoch) = lease(&c.db).await.expect("someone leads");
    Some((c, holder, epoch))
}

/// Waits until every schedule fired the slot `secs` whole seconds from now.
async fn fired_in(db: &TestDb, secs: i64) -> Duration {
    let at = whole_second(Utc::now()) + chrono::Duration::seconds(secs);
    fired_through(db, at, LIMIT).await
}

async fn new_leader(db: &TestDb, not: &str) -> (String, i64) {
    cron::new_leader(db, not, LIMIT).await
}

async fn fired_through(db: &TestDb, at: DateTime<Utc>, within: Duration) -> Duration {
    cron::fired_through(db, SCHEDULES, at, within).await
}

fn check(slots: &Slots, to: DateTime<Utc>) {
    cron::check(slots, SCHEDULES, to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_cron_leader_hands_over_within_the_lease_and_every_slot_fires_once() {
    let Some((mut c, old, epoch)) = started("cluster_cron_kill", 1).await else {
        return;
    };
    fired_in(&c.db, 2).await;

    let victim = index(&c, &old);
    c.kill(victim);
    let killed = Instant::now();
    let (new, new_epoch) = new_leader(&c.db, &old).await;
    let took_over = killed.elapsed();
    assert!(
        new_epoch > epoch,
        "epochs only grow: {epoch} then {new_epoch}"
    );
    // Every slot that came due while nobody led fires (catch-up all), at once.
    let due = whole_second(Utc::now());
    let caught_up = fired_through(&c.db, due, LIMIT).await + took_over;
    eprintln!("figure: cron leader {old} killed: {new} took the lease after {took_over:?}, every schedule had fired the slot due then after {caught_up:?}");
    assert!(
        caught_up < TTL + Duration::from_secs(2),
        "a new leader fired {caught_up:?} after the kill (lease {TTL:?})"
    );
    let end = whole_second(Utc::now()) + chrono::Duration::seconds(2);
    fired_through(&c.db, end, LIMIT).await;
    check(&slots(&c.db).await, end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_loses_the_lease_and_fires_nothing_when_it_continues() {
    let Some((mut c, old, epoch)) = started("cluster_cron_stop", 0).await else {
        return;
    };
    fired_in(&c.db, 2).await;
    let victim = index(&c, &old);
    c.stop(victim);
    let stopped = Instant::now();
    let (new, new_epoch) = new_leader(&c.db, &old).await;
    let took_over = stopped.elapsed();
    assert!(new_epoch > epoch);
    eprintln!("figure: cron leader {old} stopped: {new} took the lease after {took_over:?}");
    assert!(took_over < TTL + Duration::from_secs(2), "{took_over:?}");
    // Stopped past its lease while the new leader fires, then continued: it finds its
    // lease gone.
    fired_in(&c.db, 1).await;
    c.cont(victim);
    let log = c.nodes[victim].wait_log("lost the cron lease", LIMIT);
    assert!(log.contains("lost the cron lease"));
    let end = whole_second(Utc::now()) + chrono::Duration::seconds(3);
    fired_through(&c.db, end, LIMIT).await;
    check(&slots(&c.db).await, end);
    let (holder, last) = lease(&c.db).await.unwrap();
    assert_eq!(
        (holder.as_str(), last),
        (new.as_str(), new_epoch),
        "the lease stayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_database_is_replaced_and_every_slot_fires_once() {
    let Some((c, old, epoch)) = started("cluster_cron_db", 0).await else {
        return;
    };
    fired_in(&c.db, 2).await;
    let victim = index(&c, &old);
    c.db_proxy(victim).set_mode(Mode::BlackHole);
    let cut = Instant::now();
    let (new, new_epoch) = new_leader(&c.db, &old).await;
    let took_over = cut.elapsed();
    assert!(new_epoch > epoch);
    eprintln!("figure: cron leader {old} cut off from the database: {new} took the lease after {took_over:?}");
    assert!(took_over < TTL + Duration::from_secs(2), "{took_over:?}");
    let due = whole_second(Utc::now());
    fired_through(&c.db, due, LIMIT).await;
    heal(c.db_proxy(victim)).await;
    let end = whole_second(Utc::now()) + chrono::Duration::seconds(3);
    fired_through(&c.db, end, LIMIT).await;
    check(&slots(&c.db).await, end);
    assert_eq!(
        lease(&c.db).await.unwrap(),
        (new, new_epoch),
        "the lease stayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_peers_only_keeps_leading() {
    let Some((c, old, epoch)) = started("cluster_cron_isolated", 2).await else {
        return;
    };
    let victim = index(&c, &old);
    c.isolate(victim);
    // Three lease times: the database is the authority, and the leader reaches it.
    let end = whole_second(Utc::now()) + chrono::Duration::seconds(9);
    fired_through(&c.db, end, LIMIT).await;
    assert_eq!(
        lease(&c.db).await.unwrap(),
        (old, epoch),
        "it kept the lease"
    );
    c.heal_mesh();
    check(&slots(&c.db).await, end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_node_one_by_one_fires_every_slot_once() {
    let Some((mut c, _, epoch)) = started("cluster_cron_rolling", 0).await else {
        return;
    };
    fired_in(&c.db, 1).await;
    let mut epochs = vec![epoch];
    for i in 0..3 {
        c.restart(i);
        c.wait_all_up(LIMIT).await;
        fired_in(&c.db, 1).await;
        epochs.push(lease(&c.db).await.unwrap().1);
    }
    assert!(
        epochs.windows(2).all(|w| w[0] <= w[1]),
        "epochs only grow: {epochs:?}"
    );
    let end = whole_second(Utc::now());
    check(&slots(&c.db).await, end);
}
