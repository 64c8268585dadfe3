//! Cluster-wide circuit breakers in a cluster test: tasks of the `exec` kind (whose
//! breaker the test configures), the shared record in the database, and each node's
//! view of it (`GET /v1/queues`, the default queue's worst breaker).

use std::time::Duration;

use serde_json::{json, Value};
use taskmesh::testing::pg::TestDb;
use taskmesh::TaskId;
use tokio::time::Instant;

use super::Cluster;

/// How often the tests look at the database and the nodes.
pub const LOOK: Duration = Duration::from_millis(20);

/// An `exec` task that fails at once (no retry).
pub fn failing() -> Value {
    json!({"kind": "exec", "args": {"command": "false"}, "max_attempts": 1})
}

/// An `exec` task that succeeds after `secs` seconds (timeout `timeout_ms`), tried
/// again after a crash (`exec` is tried once by default).
pub fn sleeping(secs: u32, timeout_ms: u64) -> Value {
    json!({"kind": "exec", "args": {"command": "sleep", "args": [secs.to_string()]},
           "timeout_ms": timeout_ms, "max_attempts": 3})
}

/// The shared `exec` breaker as the database has it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub version: i64,
    pub state: String,
    /// Open: the end of the cooldown; half-open: the end of the probe's claim; closed:
    /// when it closed. Nanoseconds since the Unix epoch (database time).
    pub until: i64,
    /// Until `until`, by the database's clock at the read (negative once past).
    pub left: Duration,
    pub probe: Option<String>,
}

pub async fn row(db: &TestDb) -> Option<Row> {
    let sql = "SELECT version, state, (extract(epoch FROM until) * 1e9)::int8, \
               greatest(0, (extract(epoch FROM until - clock_timestamp()) * 1e6)::int8), \
               probe_node FROM breakers WHERE name = 'exec'";
    let row = db.client().await.query_opt(sql, &[]).await.unwrap()?;
    Some(Row {
        version: row.get(0),
        state: row.get(1),
        until: row.get(2),
        left: Duration::from_micros(u64::try_from(row.get::<_, i64>(3)).unwrap_or(0)),
        probe: row.get(4),
    })
}

/// Polls the record every [`LOOK`] until `holds`; panics with the last one after `limit`.
pub async fn wait_row(db: &TestDb, limit: Duration, holds: impl Fn(&Row) -> bool) -> Row {
    let deadline = Instant::now() + limit;
    loop {
        let last = row(db).await;
        match &last {
            Some(r) if holds(r) => return r.clone(),
            _ if Instant::now() >= deadline => panic!("no such breaker within {limit:?}: {last:?}"),
            _ => tokio::time::sleep(LOOK).await,
        }
    }
}

impl Cluster {
    /// Submits `task` through node `i`; its id.
    pub async fn submit_to(&self, i: usize, task: &Value) -> TaskId {
        let url = format!("{}/v1/tasks", self.nodes[i].url);
        let resp = self.http.post(&url).json(task).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 201, "submit to {}", self.name(i));
        let body: Value = resp.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// Node `i`'s breaker of the default queue (`closed`, `open`, `half_open`).
    pub async fn breaker_of(&self, i: usize) -> String {
        let url = format!("{}/v1/queues", self.nodes[i].url);
        let resp = self.http.get(&url).send().await.unwrap();
        let queues: Value = resp.json().await.unwrap();
        let list = queues.as_array().or(queues["queues"].as_array()).unwrap();
        let default = list.iter().find(|q| q["name"] == "default").unwrap();
        default["breaker"].as_str().unwrap().to_string()
    }
}

/// The nodes that started attempts of `ids` at or after `from` and before `to`
/// (nanoseconds since the epoch), one entry per attempt, oldest first.
pub async fn starts_between(db: &TestDb, ids: &[TaskId], from: i64, to: i64) -> Vec<String> {
    let ids: Vec<uuid::Uuid> = ids
        .iter()
        .map(|id| id.to_string().parse().unwrap())
        .collect();
    let sql = "SELECT split_part(data->>'worker', '/', 1) FROM events \
               WHERE type = 'started' AND task = ANY($1) AND at >= $2 AND at < $3 ORDER BY at";
    let rows = db
        .client()
        .await
        .query(sql, &[&ids, &from, &to])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}
