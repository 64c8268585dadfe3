//! Cluster-wide breakers in the `breakers` table, all times by the database's clock.
//! Each write is one statement: the conditional change, or (when it does not match) the
//! row as it stands.

use std::time::Duration;

use deadpool_postgres::Pool;
use futures::future::{BoxFuture, FutureExt};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::errors::{conn, failed, read_conn, read_failed};
use super::rows::{micros, signed};

use super::PgStore;
use crate::breaker::BreakerState;
use crate::store::{BreakerWrite, Breakers, Owner, ProbeOutcome, SharedBreaker, StoreError};

/// The columns of a breaker, the time left in microseconds (0 once past).
const COLUMNS: &str = "name, version, state, probe_node, probe_incarnation, \
    greatest(0, (extract(epoch FROM until - clock_timestamp()) * 1000000)::int8)";

/// `$2` microseconds from now.
const FROM_NOW: &str = "clock_timestamp() + $2::int8 * interval '1 microsecond'";

fn breaker_of(row: &Row) -> SharedBreaker {
    let unsigned = |n: i64| u64::try_from(n).unwrap_or_default();
    let state = match row.get::<_, &str>(2) {
        "open" => BreakerState::Open,
        "half_open" => BreakerState::HalfOpen,
        _ => BreakerState::Closed,
    };
    let probe = match (
        row.get::<_, Option<String>>(3),
        row.get::<_, Option<i64>>(4),
    ) {
        (Some(node), Some(incarnation)) => Some(Owner::new(node, unsigned(incarnation))),
        _ => None,
    };
    SharedBreaker {
        name: row.get(0),
        version: unsigned(row.get(1)),
        state,
        remaining: Duration::from_micros(unsigned(row.get(5))),
        probe,
    }
}

/// The change (`$1` the name, `$2` a duration in microseconds, then the write's own
/// parameters), returning the changed row or, when nothing matched, the row as it was.
fn statement(write: &BreakerWrite) -> String {
    let change = match write {
        BreakerWrite::Trip { .. } => format!(
            "INSERT INTO breakers AS b (name, version, state, until) \
             VALUES ($1, 1, 'open', {FROM_NOW}) \
             ON CONFLICT (name) DO UPDATE SET version = b.version + 1, state = 'open', \
                 until = excluded.until, probe_node = NULL, probe_incarnation = NULL \
             WHERE b.state = 'closed'"
        ),
        BreakerWrite::Probe { .. } => format!(
            "UPDATE breakers SET version = version + 1, state = 'half_open', \
                 until = {FROM_NOW}, probe_node = $3, probe_incarnation = $4 \
             WHERE name = $1 AND version = $5 AND state <> 'closed' \
                 AND until <= clock_timestamp()"
        ),
        BreakerWrite::EndProbe { .. } => format!(
            "UPDATE breakers SET version = version + 1, state = $6, until = {FROM_NOW}, \
                 probe_node = NULL, probe_incarnation = NULL \
             WHERE name = $1 AND version = $5 AND state = 'half_open' \
                 AND probe_node = $3 AND probe_incarnation = $4"
        ),
    };
    format!(
        "WITH w AS ({change} RETURNING {COLUMNS}) \
         SELECT * FROM w \
         UNION ALL SELECT {COLUMNS} FROM breakers \
             WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM w)"
    )
}

/// The write's parameters after the name: a duration, then holder, version and state.
fn parameters(write: &BreakerWrite) -> (i64, Option<(String, i64, i64)>, &'static str) {
    match write {
        BreakerWrite::Trip { cooldown } => (micros(*cooldown), None, ""),
        BreakerWrite::Probe {
            version,
            holder,
            deadline,
        } => (micros(*deadline), Some(held(holder, *version)), ""),
        BreakerWrite::EndProbe {
            version,
            holder,
            outcome,
        } => {
            let (after, state) = match outcome {
                ProbeOutcome::Succeeded => (Duration::ZERO, "closed"),
                ProbeOutcome::Failed(cooldown) => (*cooldown, "open"),
                ProbeOutcome::Neutral => (Duration::ZERO, "open"),
            };
            (micros(after), Some(held(holder, *version)), state)
        }
    }
}

fn held(holder: &Owner, version: u64) -> (String, i64, i64) {
    (
        holder.node.clone(),
        signed(holder.incarnation),
        signed(version),
    )
}

async fn write(
    pool: &Pool,
    name: String,
    write: BreakerWrite,
) -> Result<SharedBreaker, StoreError> {
    let what = "writing a shared breaker";
    let c = conn(pool, what).await?;
    let sql = statement(&write);
    let (micros, holder, state) = parameters(&write);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&name, &micros];
    if let Some((node, incarnation, version)) = &holder {
        params.extend([node as &(dyn ToSql + Sync), incarnation, version]);
    }
    if !state.is_empty() {
        params.push(&state);
    }
    let row = c.query_opt(&sql, &params).await.map_err(failed(what))?;
    // A probe or its end on a breaker never written: nothing to change, it is closed.
    Ok(row
        .as_ref()
        .map_or_else(|| SharedBreaker::closed(name), breaker_of))
}

async fn free(pool: &Pool, holder: Owner) -> Result<u64, StoreError> {
    let what = "freeing a dead node's probes";
    let c = conn(pool, what).await?;
    let sql = "UPDATE breakers SET version = version + 1, state = 'open', \
               until = clock_timestamp(), probe_node = NULL, probe_incarnation = NULL \
               WHERE state = 'half_open' AND probe_node = $1 AND probe_incarnation = $2";
    c.execute(sql, &[&holder.node, &signed(holder.incarnation)])
        .await
        .map_err(failed(what))
}

async fn read_all(pool: &Pool) -> Result<Vec<SharedBreaker>, StoreError> {
    let what = "reading the shared breakers";
    let c = read_conn(pool, what).await?;
    let sql = format!("SELECT {COLUMNS} FROM breakers ORDER BY name");
    let rows = c.query(&sql, &[]).await.map_err(read_failed(what))?;
    Ok(rows.iter().map(breaker_of).collect())
}

impl Breakers for PgStore {
    fn write_breaker(
        &self,
        name: String,
        change: BreakerWrite,
    ) -> BoxFuture<'static, Result<SharedBreaker, StoreError>> {
        let pool = self.pool().clone();
        async move { write(&pool, name, change).await }.boxed()
    }

    fn free_probes(&self, holder: Owner) -> BoxFuture<'static, Result<u64, StoreError>> {
        let pool = self.pool().clone();
        async move { free(&pool, holder).await }.boxed()
    }

    fn breakers(&self) -> BoxFuture<'static, Result<Vec<SharedBreaker>, StoreError>> {
        let pool = self.pool().clone();
        async move { read_all(&pool).await }.boxed()
    }
}
