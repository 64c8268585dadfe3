//! Coordination: the node registry, heartbeats in the database's time, and the sharing
//! of waiting tasks (reserve with `FOR UPDATE SKIP LOCKED`, release, rescue's reads).
//!
//! Liveness is decided by the database clock alone: an incarnation is alive while it is
//! registered, its heartbeat is at most `dead_after` old by `now()`, and no newer
//! incarnation of its node registered.

use std::time::Duration;

use deadpool_postgres::Pool;
use futures::future::{BoxFuture, FutureExt};

use super::errors::{conn, failed, pg_error, Doing};
use super::rows::{self, incarnation, micros, RECORD_COLUMNS, RECORD_FROM};
use super::PgStore;
use crate::store::{
    Coordination, Intent, NodeInfo, NodeRecord, Owner, Requested, StoreError, TaskRecord,
};
use crate::task::TaskId;

/// `$3` (microseconds) as an interval, and the "alive" test of a node row `n`.
const ALIVE: &str = "n.heartbeat_at >= now() - $3::int8 * interval '1 microsecond' \
    AND NOT EXISTS (SELECT 1 FROM nodes m WHERE m.name = n.name AND m.incarnation > n.incarnation)";

const OPEN: &str = "state NOT IN ('succeeded', 'failed', 'cancelled')";

async fn register(pool: &Pool, info: NodeInfo, session: &str) -> Result<Owner, StoreError> {
    let what = "registering a node";
    let json = serde_json::to_string(&info)
        .map_err(|e| StoreError::WriteFailed(format!("cannot encode node {:?}: {e}", info.name)))?;
    let c = conn(pool, what).await?;
    let row = c
        .query_one(
            "INSERT INTO nodes (name, info, session) VALUES ($1, $2::text::json, $3) \
             RETURNING incarnation",
            &[&info.name, &json, &session],
        )
        .await
        .map_err(failed(what))?;
    let n: i64 = row.get(0);
    Ok(Owner::new(info.name, u64::try_from(n).unwrap_or_default()))
}

async fn heartbeat(pool: &Pool, owner: Owner) -> Result<Vec<Requested>, StoreError> {
    let what = "renewing a heartbeat";
    let c = conn(pool, what).await?;
    let n = c
        .execute(
            "UPDATE nodes SET heartbeat_at = now() WHERE incarnation = $1 AND name = $2",
            &[&incarnation(owner.incarnation), &owner.node],
        )
        .await
        .map_err(failed(what))?;
    if n == 0 {
        return Err(StoreError::Fenced { owner });
    }
    let found = c
        .query(
            "SELECT id, attempt, life::text, state <> 'running' FROM tasks \
             WHERE owner_incarnation = $1 AND owner_node = $2 AND intent \
               AND state IN ('running', 'pending', 'scheduled', 'retrying')",
            &[&incarnation(owner.incarnation), &owner.node],
        )
        .await
        .map_err(failed(what))?;
    let mut requested = Vec::new();
    for r in &found {
        let id = TaskId(r.get(0));
        let life: crate::store::Life = serde_json::from_str(r.get(2)).map_err(|e| {
            StoreError::ReadFailed(format!("column life: task {id}: malformed json: {e}"))
        })?;
        let attempt: i32 = r.get(1);
        if let Some(intent) = life.intent {
            requested.push(request(id, attempt, intent, r.get(3)));
        }
    }
    Ok(requested)
}

fn request(task_id: TaskId, attempt: i32, intent: Intent, waiting: bool) -> Requested {
    Requested {
        task_id,
        attempt: u32::try_from(attempt).unwrap_or_default(),
        intent,
        waiting,
    }
}

async fn nodes(pool: &Pool) -> Result<Vec<NodeRecord>, StoreError> {
    let what = "reading nodes";
    let c = conn(pool, what).await?;
    let found = c
        .query(
            "SELECT incarnation, name, info::text, started_at, heartbeat_at, \
             greatest(0, (extract(epoch FROM now() - heartbeat_at) * 1000000)::int8) \
             FROM nodes ORDER BY name COLLATE \"C\", incarnation",
            &[],
        )
        .await
        .map_err(|e| pg_error(Doing::Read(what), e))?;
    found
        .iter()
        .map(|r| {
            let n: i64 = r.get(0);
            let name: String = r.get(1);
            let info = serde_json::from_str(r.get(2)).map_err(|e| {
                StoreError::ReadFailed(format!("column info: node {name}: malformed json: {e}"))
            })?;
            let age: i64 = r.get(5);
            Ok(NodeRecord {
                owner: Owner::new(name, u64::try_from(n).unwrap_or_default()),
                info,
                started_at: r.get(3),
                heartbeat_at: r.get(4),
                heartbeat_age: Duration::from_micros(u64::try_from(age).unwrap_or_default()),
            })
        })
        .collect()
}

async fn dead(pool: &Pool, dead_after: Duration) -> Result<Vec<Owner>, StoreError> {
    let what = "finding dead nodes";
    let c = conn(pool, what).await?;
    let sql = format!(
        "WITH owners AS ( \
             SELECT name, incarnation FROM nodes \
             UNION \
             SELECT DISTINCT owner_node, owner_incarnation FROM tasks \
             WHERE owner_incarnation IS NOT NULL AND {OPEN}) \
         SELECT o.name, o.incarnation FROM owners o \
         WHERE NOT EXISTS (SELECT 1 FROM nodes n WHERE n.incarnation = o.incarnation \
             AND n.name = o.name AND {ALIVE}) \
         ORDER BY o.name COLLATE \"C\", o.incarnation"
    )
    .replace("$3", "$1");
    let found = c
        .query(&sql, &[&micros(dead_after)])
        .await
        .map_err(failed(what))?;
    Ok(found
        .iter()
        .filter_map(|r| rows::owner(r.get(0), r.get(1)))
        .collect())
}

async fn bury(pool: &Pool, owner: Owner, dead_after: Duration) -> Result<bool, StoreError> {
    let what = "burying a node";
    let c = conn(pool, what).await?;
    let sql = format!(
        "WITH gone AS (DELETE FROM nodes n WHERE n.incarnation = $1 AND n.name = $2 \
             AND NOT ({ALIVE}) RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM gone) OR NOT EXISTS \
             (SELECT 1 FROM nodes WHERE incarnation = $1 AND name = $2)"
    );
    let row = c
        .query_one(
            &sql,
            &[
                &incarnation(owner.incarnation),
                &owner.node,
                &micros(dead_after),
            ],
        )
        .await
        .map_err(failed(what))?;
    Ok(row.get(0))
}

async fn bury_gone(pool: &Pool, owner: Owner, silent_for: Duration) -> Result<bool, StoreError> {
    let what = "burying a node that is gone";
    let c = conn(pool, what).await?;
    let sql = "WITH gone AS (DELETE FROM nodes n WHERE n.incarnation = $1 AND n.name = $2 \
             AND n.heartbeat_at < now() - $3::int8 * interval '1 microsecond' \
             AND n.session IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = n.session) \
             RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM gone) OR NOT EXISTS \
             (SELECT 1 FROM nodes WHERE incarnation = $1 AND name = $2)";
    let row = c
        .query_one(
            sql,
            &[
                &incarnation(owner.incarnation),
                &owner.node,
                &micros(silent_for),
            ],
        )
        .await
        .map_err(failed(what))?;
    Ok(row.get(0))
}

async fn held(pool: &Pool, owner: Owner) -> Result<Vec<TaskRecord>, StoreError> {
    let what = "reading held tasks";
    let c = conn(pool, what).await?;
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} \
         WHERE t.owner_incarnation = $1 AND t.owner_node = $2 AND t.{OPEN} \
         ORDER BY t.state <> 'running', t.created_at, t.id"
    );
    let found = c
        .query(&sql, &[&incarnation(owner.incarnation), &owner.node])
        .await
        .map_err(|e| pg_error(Doing::Read(what), e))?;
    found.iter().map(rows::record).collect()
}

async fn held_since(
    pool: &Pool,
    owner: Owner,
    since: std::time::SystemTime,
) -> Result<Vec<TaskRecord>, StoreError> {
    let what = "reading tasks routed here";
    let c = conn(pool, what).await?;
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} \
         WHERE t.owner_incarnation = $1 AND t.owner_node = $2 \
           AND t.state IN ('pending', 'retrying', 'scheduled', 'paused') AND t.created_at >= $3 \
         ORDER BY t.created_at, t.id"
    );
    let found = c
        .query(
            &sql,
            &[
                &incarnation(owner.incarnation),
                &owner.node,
                &crate::store::nanos::nanos(since),
            ],
        )
        .await
        .map_err(|e| pg_error(Doing::Read(what), e))?;
    found.iter().map(rows::record).collect()
}

async fn release(pool: &Pool, owner: Owner) -> Result<u64, StoreError> {
    let what = "releasing reservations";
    let c = conn(pool, what).await?;
    c.execute(
        &format!(
            "UPDATE tasks SET owner_node = NULL, owner_incarnation = NULL \
             WHERE owner_incarnation = $1 AND owner_node = $2 AND {OPEN} AND state <> 'running'"
        ),
        &[&incarnation(owner.incarnation), &owner.node],
    )
    .await
    .map_err(failed(what))
}

/// One statement: the best due, unheld tasks of the queues, locked with `SKIP LOCKED` in a
/// materialized CTE (so the planner cannot touch more rows than the limit), then owned.
const RESERVE: &str = "WITH picked AS MATERIALIZED ( \
    SELECT id FROM tasks \
    WHERE queue = ANY($3) AND owner_incarnation IS NULL \
      AND state IN ('pending', 'retrying', 'scheduled') \
      AND (state = 'pending' OR due_at IS NULL OR due_at <= now()) \
    ORDER BY priority DESC, due_at NULLS FIRST, id \
    LIMIT $4 FOR UPDATE SKIP LOCKED) \
UPDATE tasks t SET owner_node = $2, owner_incarnation = $1 \
FROM picked JOIN task_specs s ON s.id = picked.id \
WHERE t.id = picked.id \
RETURNING t.id, s.task::text, t.life::text, t.owner_node, t.owner_incarnation";

/// The named waiting tasks held by the owner already (due or not: it queues them with
/// their time) or due and held by nobody, locked with `SKIP LOCKED` and owned.
const RESERVE_IDS: &str = "WITH picked AS MATERIALIZED ( \
    SELECT id FROM tasks \
    WHERE id = ANY($3) \
      AND (owner_incarnation IS NULL OR (owner_incarnation = $1 AND owner_node = $2)) \
      AND state IN ('pending', 'retrying', 'scheduled') \
      AND (state = 'pending' OR due_at IS NULL OR due_at <= now() \
           OR owner_incarnation IS NOT NULL) \
    FOR UPDATE SKIP LOCKED) \
UPDATE tasks t SET owner_node = $2, owner_incarnation = $1 \
FROM picked JOIN task_specs s ON s.id = picked.id \
WHERE t.id = picked.id \
RETURNING t.id, s.task::text, t.life::text, t.owner_node, t.owner_incarnation";

async fn reserve_ids(
    pool: &Pool,
    owner: Owner,
    ids: Vec<TaskId>,
) -> Result<Vec<TaskRecord>, StoreError> {
    let what = "reserving hinted tasks";
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
    let c = conn(pool, what).await?;
    let stmt = c.prepare_cached(RESERVE_IDS).await.map_err(failed(what))?;
    let found = c
        .query(&stmt, &[&incarnation(owner.incarnation), &owner.node, &ids])
        .await
        .map_err(failed(what))?;
    found.iter().map(rows::record).collect()
}

async fn reserve(
    pool: &Pool,
    owner: Owner,
    queues: Vec<String>,
    limit: u32,
) -> Result<Vec<TaskRecord>, StoreError> {
    let what = "reserving tasks";
    if limit == 0 || queues.is_empty() {
        return Ok(Vec::new());
    }
    let c = conn(pool, what).await?;
    let stmt = c.prepare_cached(RESERVE).await.map_err(failed(what))?;
    let found = c
        .query(
            &stmt,
            &[
                &incarnation(owner.incarnation),
                &owner.node,
                &queues,
                &i64::from(limit),
            ],
        )
        .await
        .map_err(failed(what))?;
    let mut records = found
        .iter()
        .map(rows::record)
        .collect::<Result<Vec<_>, _>>()?;
    records.sort_by(|a, b| {
        let key = |r: &TaskRecord| (std::cmp::Reverse(r.task.priority), r.life.due_at, r.task.id);
        key(a).cmp(&key(b))
    });
    Ok(records)
}

impl Coordination for PgStore {
    fn shared(&self) -> bool {
        true
    }

    fn register(&self, info: NodeInfo) -> BoxFuture<'static, Result<Owner, StoreError>> {
        let pool = self.pool().clone();
        let session = self.session().to_string();
        async move { register(&pool, info, &session).await }.boxed()
    }

    fn heartbeat(&self, owner: Owner) -> BoxFuture<'static, Result<Vec<Requested>, StoreError>> {
        let pool = self.pool().clone();
        async move { heartbeat(&pool, owner).await }.boxed()
    }

    fn nodes(&self) -> BoxFuture<'static, Result<Vec<NodeRecord>, StoreError>> {
        let pool = self.pool().clone();
        async move { nodes(&pool).await }.boxed()
    }

    fn dead(&self, dead_after: Duration) -> BoxFuture<'static, Result<Vec<Owner>, StoreError>> {
        let pool = self.pool().clone();
        async move { dead(&pool, dead_after).await }.boxed()
    }

    fn bury(
        &self,
        owner: Owner,
        dead_after: Duration,
    ) -> BoxFuture<'static, Result<bool, StoreError>> {
        let pool = self.pool().clone();
        async move { bury(&pool, owner, dead_after).await }.boxed()
    }

    fn bury_gone(
        &self,
        owner: Owner,
        silent_for: Duration,
    ) -> BoxFuture<'static, Result<bool, StoreError>> {
        let pool = self.pool().clone();
        async move { bury_gone(&pool, owner, silent_for).await }.boxed()
    }

    fn reserve_ids(
        &self,
        owner: Owner,
        ids: Vec<TaskId>,
    ) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        let pool = self.pool().clone();
        async move { reserve_ids(&pool, owner, ids).await }.boxed()
    }

    fn held(&self, owner: Owner) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        let pool = self.pool().clone();
        async move { held(&pool, owner).await }.boxed()
    }

    fn held_since(
        &self,
        owner: Owner,
        since: std::time::SystemTime,
    ) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        let pool = self.pool().clone();
        async move { held_since(&pool, owner, since).await }.boxed()
    }

    fn release(&self, owner: Owner) -> BoxFuture<'static, Result<u64, StoreError>> {
        let pool = self.pool().clone();
        async move { release(&pool, owner).await }.boxed()
    }

    fn reserve(
        &self,
        owner: Owner,
        queues: Vec<String>,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        let pool = self.pool().clone();
        async move { reserve(&pool, owner, queues, limit).await }.boxed()
    }
}
