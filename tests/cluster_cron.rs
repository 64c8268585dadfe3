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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cluster::partition::heal;
use cluster::Cluster;
use serde_json::json;
use taskmesh::testing::pg::TestDb;
use taskmesh::testing::proxy::Mode;

/// The bound of every wait.
const LIMIT: Duration = Duration::from_secs(30);
/// The cron lease of every node here.
const TTL: Duration = Duration::from_secs(3);
const EXTRA: &str = "[store]\ncron_lease_ms = 3000\ncron_renew_ms = 500\n";
const SCHEDULES: usize = 50;

/// Adds the schedules through node `via`.
async fn add_schedules(c: &Cluster, via: usize) {
    let client = reqwest::Client::new();
    for i in 0..SCHEDULES {
        let spec = json!({"cron": "* * * * * *", "catch_up": "all", "catch_up_max": 100,
            "task": {"kind": "noop"}});
        let url = format!("{}/v1/schedules/s{i:02}", c.nodes[via].url);
        let resp = client.put(url).json(&spec).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    }
}

/// The cron lease as the database holds it: holder node and epoch.
async fn lease(db: &TestDb) -> Option<(String, i64)> {
    let client = db.client().await;
    let row = client
        .query_opt("SELECT holder_node, epoch FROM leases WHERE name = 'cron'", &[])
        .await
        .unwrap();
    row.map(|r| (r.get(0), r.get(1)))
}

/// Waits until the lease is held by someone other than `not` (with time left).
async fn new_leader(db: &TestDb, not: &str) -> (String, i64) {
    let client = db.client().await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let sql = "SELECT holder_node, epoch FROM leases WHERE name = 'cron' \
                   AND holder_node <> $1 AND expires_at > clock_timestamp()";
        if let Some(r) = client.query_opt(sql, &[&not]).await.unwrap() {
            return (r.get(0), r.get(1));
        }
        assert!(Instant::now() < deadline, "no new leader within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node index named `name`.
fn index(c: &Cluster, name: &str) -> usize {
    (0..c.nodes.len()).find(|i| c.name(*i) == name).unwrap()
}

/// Every cron task's slot, per schedule: the number of tasks per slot, and the time
/// (database clock) each slot's task was stored.
struct Slots {
    per: BTreeMap<String, BTreeMap<DateTime<Utc>, usize>>,
}

async fn slots(db: &TestDb) -> Slots {
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT unique_key FROM tasks WHERE unique_key LIKE 'cron:%'",
            &[],
        )
        .await
        .unwrap();
    let mut per: BTreeMap<String, BTreeMap<DateTime<Utc>, usize>> = BTreeMap::new();
    for row in rows {
        let key: String = row.get(0);
        let rest = key.strip_prefix("cron:").unwrap();
        let (name, slot) = rest.split_once(':').unwrap();
        let slot = DateTime::parse_from_rfc3339(slot).unwrap().to_utc();
        *per.entry(name.to_string())
            .or_default()
            .entry(slot)
            .or_insert(0) += 1;
    }
    Slots { per }
}

/// Waits until every schedule fired the slot of `at` (whole second), at most `within`;
/// returns how long that took.
async fn fired_through(db: &TestDb, at: DateTime<Utc>, within: Duration) -> Duration {
    let began = Instant::now();
    let client = db.client().await;
    let key_of = |i: usize| format!("cron:s{i:02}:{}", at.format("%Y-%m-%dT%H:%M:%SZ"));
    let keys: Vec<String> = (0..SCHEDULES).map(key_of).collect();
    loop {
        let sql = "SELECT count(*) FROM tasks WHERE unique_key = ANY($1)";
        let n: i64 = client.query_one(sql, &[&keys]).await.unwrap().get(0);
        if n as usize == SCHEDULES {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < within,
            "{n} of {SCHEDULES} schedules fired {at} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The chronos check: for every schedule, every slot from the first one fired to `to`
/// has exactly one task.
fn check(slots: &Slots, to: DateTime<Utc>) {
    assert_eq!(slots.per.len(), SCHEDULES, "every schedule fired");
    for (name, per) in &slots.per {
        let first = *per.keys().next().unwrap();
        let mut at = first;
        while at <= to {
            assert_eq!(
                per.get(&at).copied().unwrap_or(0),
                1,
                "schedule {name}: slot {at} (slots {first}..={to}) should have exactly one task"
            );
            at += chrono::Duration::seconds(1);
        }
        let twice: Vec<_> = per.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "schedule {name}: {twice:?}");
    }
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_cron_leader_hands_over_within_the_lease_and_every_slot_fires_once() {
    let Some(mut c) = Cluster::start("cluster_cron_kill", 3, EXTRA).await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    add_schedules(&c, 1).await;
    let (old, epoch) = lease(&c.db).await.expect("someone leads");
    fired_through(&c.db, whole_second(Utc::now()) + chrono::Duration::seconds(2), LIMIT).await;

    let victim = index(&c, &old);
    c.kill(victim);
    let killed = Instant::now();
    let (new, new_epoch) = new_leader(&c.db, &old).await;
    let took_over = killed.elapsed();
    assert!(new_epoch > epoch, "epochs only grow: {epoch} then {new_epoch}");
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
    let Some(mut c) = Cluster::start("cluster_cron_stop", 3, EXTRA).await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    add_schedules(&c, 0).await;
    let (old, epoch) = lease(&c.db).await.expect("someone leads");
    fired_through(&c.db, whole_second(Utc::now()) + chrono::Duration::seconds(2), LIMIT).await;
    let victim = index(&c, &old);
    c.stop(victim);
    let stopped = Instant::now();
    let (new, new_epoch) = new_leader(&c.db, &old).await;
    let took_over = stopped.elapsed();
    assert!(new_epoch > epoch);
    eprintln!("figure: cron leader {old} stopped: {new} took the lease after {took_over:?}");
    assert!(took_over < TTL + Duration::from_secs(2), "{took_over:?}");
    // Stopped well past its lease, then continued: it finds its lease gone.
    tokio::time::sleep(TTL).await;
    c.cont(victim);
    let log = c.nodes[victim].wait_log("lost the cron lease", LIMIT);
    assert!(log.contains("lost the cron lease"));
    let end = whole_second(Utc::now()) + chrono::Duration::seconds(3);
    fired_through(&c.db, end, LIMIT).await;
    check(&slots(&c.db).await, end);
    let (holder, last) = lease(&c.db).await.unwrap();
    assert_eq!((holder.as_str(), last), (new.as_str(), new_epoch), "the lease stayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_database_is_replaced_and_every_slot_fires_once() {
    let Some(c) = Cluster::start("cluster_cron_db", 3, EXTRA).await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    add_schedules(&c, 0).await;
    let (old, epoch) = lease(&c.db).await.expect("someone leads");
    fired_through(&c.db, whole_second(Utc::now()) + chrono::Duration::seconds(2), LIMIT).await;
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
    assert_eq!(lease(&c.db).await.unwrap(), (new, new_epoch), "the lease stayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_peers_only_keeps_leading() {
    let Some(c) = Cluster::start("cluster_cron_isolated", 3, EXTRA).await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    add_schedules(&c, 2).await;
    let (old, epoch) = lease(&c.db).await.expect("someone leads");
    let victim = index(&c, &old);
    c.isolate(victim);
    // Three lease times: the database is the authority, and the leader reaches it.
    let end = whole_second(Utc::now()) + chrono::Duration::seconds(9);
    fired_through(&c.db, end, LIMIT).await;
    assert_eq!(lease(&c.db).await.unwrap(), (old, epoch), "it kept the lease");
    c.heal_mesh();
    check(&slots(&c.db).await, end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_node_one_by_one_fires_every_slot_once() {
    let Some(mut c) = Cluster::start("cluster_cron_rolling", 3, EXTRA).await else {
        return;
    };
    c.wait_all_up(LIMIT).await;
    add_schedules(&c, 0).await;
    fired_through(&c.db, whole_second(Utc::now()) + chrono::Duration::seconds(1), LIMIT).await;
    let mut epochs = vec![lease(&c.db).await.expect("someone leads").1];
    for i in 0..3 {
        c.restart(i);
        c.wait_all_up(LIMIT).await;
        fired_through(&c.db, whole_second(Utc::now()) + chrono::Duration::seconds(1), LIMIT).await;
        epochs.push(lease(&c.db).await.unwrap().1);
    }
    assert!(
        epochs.windows(2).all(|w| w[0] <= w[1]),
        "epochs only grow: {epochs:?}"
    );
    let end = whole_second(Utc::now());
    check(&slots(&c.db).await, end);
}
