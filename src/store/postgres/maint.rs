//! Maintenance on pooled connections: pruning ended tasks, sweeping old crashes, and the
//! readiness probe. Each chunk is its own short transaction, so a large cleanup never
//! holds locks (or vacuum) back for long.

use std::time::SystemTime;

use deadpool_postgres::Pool;

use super::errors::{pg_error, pool_error, Doing};
use super::rows::nanos;
use crate::store::StoreError;
use crate::task::TaskId;

/// How many tasks or crashes one transaction deletes.
const CHUNK: i64 = 1_000;

/// Deletes a chunk of ended tasks (rows, specs, events, crashes) and takes them off the
/// task counts; rows another transaction holds are left for the next run. Yields how
/// many tasks went.
const PRUNE: &str = "WITH doomed AS ( \
    SELECT id FROM tasks WHERE state IN ('succeeded', 'failed', 'cancelled') \
    AND updated_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED), \
e AS (DELETE FROM events WHERE task IN (SELECT id FROM doomed)), \
c AS (DELETE FROM crashes WHERE task_id IN (SELECT id FROM doomed)), \
s AS (DELETE FROM task_specs WHERE id IN (SELECT id FROM doomed)), \
gone AS (DELETE FROM tasks WHERE id IN (SELECT id FROM doomed) \
    RETURNING state, queue, kind), \
counted AS (INSERT INTO task_counts AS k (slot, state, queue, kind, n) \
    SELECT pg_backend_pid(), state, queue, kind, -count(*) FROM gone \
    GROUP BY state, queue, kind ORDER BY state, queue, kind \
    ON CONFLICT (slot, state, queue, kind) DO UPDATE SET n = k.n + EXCLUDED.n) \
SELECT count(*) FROM gone";

/// Deletes the ended tasks among `$1` (rows, specs, events, crashes) and takes them off
/// the task counts, like [`PRUNE`]; rows another transaction holds are left alone.
/// Yields the ids deleted.
const DELETE: &str = "WITH doomed AS ( \
    SELECT id FROM tasks WHERE id = ANY($1) \
    AND state IN ('succeeded', 'failed', 'cancelled') FOR UPDATE SKIP LOCKED), \
e AS (DELETE FROM events WHERE task IN (SELECT id FROM doomed)), \
c AS (DELETE FROM crashes WHERE task_id IN (SELECT id FROM doomed)), \
s AS (DELETE FROM task_specs WHERE id IN (SELECT id FROM doomed)), \
gone AS (DELETE FROM tasks WHERE id IN (SELECT id FROM doomed) \
    RETURNING id, state, queue, kind), \
counted AS (INSERT INTO task_counts AS k (slot, state, queue, kind, n) \
    SELECT pg_backend_pid(), state, queue, kind, -count(*) FROM gone \
    GROUP BY state, queue, kind ORDER BY state, queue, kind \
    ON CONFLICT (slot, state, queue, kind) DO UPDATE SET n = k.n + EXCLUDED.n) \
SELECT id FROM gone";

/// Folds the task counts of connections that are gone into slot 0 (see `schema`); the
/// rows of live connections are left alone, so no writer ever waits on this.
const FOLD: &str = "WITH gone AS ( \
    DELETE FROM task_counts WHERE slot <> 0 \
    AND slot NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL) \
    RETURNING state, queue, kind, n) \
INSERT INTO task_counts AS c (slot, state, queue, kind, n) \
SELECT 0, state, queue, kind, sum(n) FROM gone GROUP BY state, queue, kind \
ORDER BY state, queue, kind \
ON CONFLICT (slot, state, queue, kind) DO UPDATE SET n = c.n + EXCLUDED.n";

const SWEEP: &str = "DELETE FROM crashes WHERE id IN \
    (SELECT id FROM crashes WHERE at < $1 ORDER BY at LIMIT $2)";

/// Deletes terminal tasks last updated before `before`, in chunks, then folds the task
/// counts of connections that are gone.
pub(super) async fn prune(pool: &Pool, before: SystemTime) -> Result<u64, StoreError> {
    let pruned = in_chunks(pool, PRUNE, before, "pruning tasks", true).await?;
    let doing = Doing::Other("folding task counts");
    let c = pool.get().await.map_err(|e| pool_error(doing, e))?;
    c.execute(FOLD, &[]).await.map_err(|e| pg_error(doing, e))?;
    c.execute("DELETE FROM task_counts WHERE slot = 0 AND n = 0", &[])
        .await
        .map_err(|e| pg_error(doing, e))?;
    Ok(pruned)
}

/// Deletes the ended tasks among `ids` in one transaction; yields those deleted.
pub(super) async fn delete_ended(pool: &Pool, ids: Vec<TaskId>) -> Result<Vec<TaskId>, StoreError> {
    let doing = Doing::Other("deleting ended tasks");
    let c = pool.get().await.map_err(|e| pool_error(doing, e))?;
    let stmt = c
        .prepare_cached(DELETE)
        .await
        .map_err(|e| pg_error(doing, e))?;
    let uuids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
    let rows = c
        .query(&stmt, &[&uuids])
        .await
        .map_err(|e| pg_error(doing, e))?;
    Ok(rows.iter().map(|r| TaskId(r.get(0))).collect())
}

/// Deletes crashes older than `before`, in chunks.
pub(super) async fn sweep(pool: &Pool, before: SystemTime) -> Result<u64, StoreError> {
    in_chunks(pool, SWEEP, before, "sweeping crashes", false).await
}

async fn in_chunks(
    pool: &Pool,
    sql: &str,
    before: SystemTime,
    what: &'static str,
    yields_count: bool,
) -> Result<u64, StoreError> {
    let c = pool
        .get()
        .await
        .map_err(|e| pool_error(Doing::Other(what), e))?;
    let stmt = c
        .prepare_cached(sql)
        .await
        .map_err(|e| pg_error(Doing::Other(what), e))?;
    let before = nanos(before);
    let mut total = 0;
    loop {
        let failed = |e| pg_error(Doing::Other(what), e);
        let n = match yields_count {
            true => {
                let row = c
                    .query_one(&stmt, &[&before, &CHUNK])
                    .await
                    .map_err(failed)?;
                u64::try_from(row.get::<_, i64>(0)).unwrap_or_default()
            }
            false => c.execute(&stmt, &[&before, &CHUNK]).await.map_err(failed)?,
        };
        total += n;
        if n < CHUNK as u64 {
            return Ok(total);
        }
    }
}

/// Touches the probe row, so a real commit happens.
pub(super) async fn probe(pool: &Pool) -> Result<(), StoreError> {
    let doing = Doing::Other("probing the store");
    let c = pool.get().await.map_err(|e| pool_error(doing, e))?;
    c.execute(
        "INSERT INTO probe (id, at) VALUES (1, now()) \
         ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        &[],
    )
    .await
    .map(drop)
    .map_err(|e| pg_error(doing, e))
}
