//! Cron over a harness cluster: schedules added through a node, the cron lease as the
//! database holds it, and a checker in the style of Jepsen's chronos over the tasks the
//! schedules created.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use taskmesh::testing::pg::TestDb;

use super::Cluster;

/// The `[store]` lines of a cron lease lasting 3 s, renewed every 500 ms.
pub const LEASE_3S: &str = "[store]\ncron_lease_ms = 3000\ncron_renew_ms = 500\n";

/// Adds `n` schedules `s00`, `s01`, … firing every second with catch-up `all` (every
/// slot must fire), through node `via`.
pub async fn add_schedules(c: &Cluster, via: usize, n: usize) {
    let client = reqwest::Client::new();
    for i in 0..n {
        let spec = json!({"cron": "* * * * * *", "catch_up": "all", "catch_up_max": 100,
            "task": {"kind": "noop"}});
        let url = format!("{}/v1/schedules/s{i:02}", c.nodes[via].url);
        let resp = client.put(url).json(&spec).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    }
}

/// The cron lease as the database holds it: holder node and epoch.
pub async fn lease(db: &TestDb) -> Option<(String, i64)> {
    let client = db.client().await;
    let row = client
        .query_opt(
            "SELECT holder_node, epoch FROM leases WHERE name = 'cron'",
            &[],
        )
        .await
        .unwrap();
    row.map(|r| (r.get(0), r.get(1)))
}

/// Waits until the lease is held, with time left, by a node other than `not`.
pub async fn new_leader(db: &TestDb, not: &str, limit: Duration) -> (String, i64) {
    let client = db.client().await;
    let deadline = Instant::now() + limit;
    loop {
        let sql = "SELECT holder_node, epoch FROM leases WHERE name = 'cron' \
                   AND holder_node <> $1 AND expires_at > clock_timestamp()";
        if let Some(r) = client.query_opt(sql, &[&not]).await.unwrap() {
            return (r.get(0), r.get(1));
        }
        assert!(Instant::now() < deadline, "no new leader within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The cron tasks in the database: per schedule, the number of tasks per slot.
pub struct Slots {
    pub per: BTreeMap<String, BTreeMap<DateTime<Utc>, usize>>,
}

/// Reads every cron task's slot key.
pub async fn slots(db: &TestDb) -> Slots {
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

/// Waits until each of `n` schedules fired its slot of `at` (a whole second), at most
/// `within`; returns how long that took.
pub async fn fired_through(db: &TestDb, n: usize, at: DateTime<Utc>, within: Duration) -> Duration {
    let began = Instant::now();
    let client = db.client().await;
    let key_of = |i: usize| format!("cron:s{i:02}:{}", at.format("%Y-%m-%dT%H:%M:%SZ"));
    let keys: Vec<String> = (0..n).map(key_of).collect();
    loop {
        let sql = "SELECT count(*) FROM tasks WHERE unique_key = ANY($1)";
        let got: i64 = client.query_one(sql, &[&keys]).await.unwrap().get(0);
        if got as usize == n {
            return began.elapsed();
        }
        if began.elapsed() >= within {
            let last = last_slots(&client).await;
            panic!("{got} of {n} schedules fired {at} within {within:?}; the last slots: {last}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each schedule's latest slot task, its state and owner, and the cron lease: what a
/// stalled leader left behind.
async fn last_slots(client: &tokio_postgres::Client) -> String {
    let sql = "SELECT DISTINCT ON (split_part(unique_key, ':', 2)) \
        unique_key || ' ' || state || ' owner ' || coalesce(owner_node, '-') \
        || ' ran on ' || coalesce(ran_on, '-') \
        FROM tasks WHERE unique_key LIKE 'cron:%' \
        ORDER BY split_part(unique_key, ':', 2), created_at DESC";
    let rows = client.query(sql, &[]).await.unwrap();
    let mut out: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let lease = "SELECT holder_node || ' epoch ' || epoch || ' expires ' || expires_at::text \
        FROM leases";
    for r in client.query(lease, &[]).await.unwrap() {
        out.push(format!("lease {}", r.get::<_, String>(0)));
    }
    out.join("; ")
}

/// The chronos check: each of `n` schedules fired, and every slot from its first to `to`
/// has exactly one task.
pub fn check(slots: &Slots, n: usize, to: DateTime<Utc>) {
    assert_eq!(slots.per.len(), n, "every schedule fired");
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
        let twice: Vec<_> = per.iter().filter(|(_, k)| **k > 1).collect();
        assert!(twice.is_empty(), "schedule {name}: {twice:?}");
    }
}

/// `t` without its fraction of a second.
pub fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

/// The index of the node named `name`.
pub fn index(c: &Cluster, name: &str) -> usize {
    (0..c.nodes.len()).find(|i| c.name(*i) == name).unwrap()
}
