//! Cron schedules: one row per name, the record as JSON and a version from one sequence
//! (the column is the truth; the record's copy is replaced on read). Writes are rare, so
//! they run on pooled connections, each its own transaction. The cron leader's firing
//! (`fire`) checks its lease, creates the slots' tasks and compares and sets the
//! schedules' versions in one transaction.

use deadpool_postgres::{ClientWrapper, Pool};
use tokio_postgres::Error;

use super::errors::{failed, pg_error, pool_error, Doing};
use super::rows::signed;

use super::lease::HELD;
use super::writer::{apply, Tail, WriteRow};
use crate::cron::schedule::ScheduleRecord;
use crate::store::{Fired, Firing, LeaseFence, StoreError};

const UPSERT: &str = "INSERT INTO schedules (name, record, updated_at) \
    SELECT name, record::json, now() FROM unnest($1::text[], $2::text[]) AS u(name, record) \
    ON CONFLICT (name) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at, \
        version = nextval('schedule_versions')";

/// Replaces `$1`'s record with `$2` if its version is still `$3`.
const REPLACE_IF: &str = "UPDATE schedules SET record = $2::text::json, updated_at = now(), \
    version = nextval('schedule_versions') WHERE name = $1 AND version = $3 RETURNING version";

/// Replaces each named record whose version is still the one given, in name order (so
/// two writers lock the rows in one order).
const MARK_ALL: &str = "UPDATE schedules s SET record = u.record::json, updated_at = now(), \
    version = nextval('schedule_versions') \
    FROM (SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) AS u(name, record, version) \
          ORDER BY name) u \
    WHERE s.name = u.name AND s.version = u.version AND u.version > 0 \
    RETURNING s.name, s.version";

/// Inserts `$1` with record `$2` unless the name is taken.
const INSERT_NEW: &str = "INSERT INTO schedules (name, record) VALUES ($1, $2::text::json) \
    ON CONFLICT (name) DO NOTHING RETURNING version";

/// Puts every record in one statement: all or none. A name given twice keeps the last.
pub(super) async fn put_all(pool: &Pool, records: &[ScheduleRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut last = std::collections::BTreeMap::new();
    for r in records {
        last.insert(r.spec.name.as_str(), encode(r)?);
    }
    let (names, jsons): (Vec<&str>, Vec<String>) = last.into_iter().unzip();
    let c = pool
        .get()
        .await
        .map_err(|e| pool_error(Doing::Other("storing schedules"), e))?;
    let stmt = c
        .prepare_cached(UPSERT)
        .await
        .map_err(failed("storing schedules"))?;
    c.execute(&stmt, &[&names, &jsons])
        .await
        .map_err(failed("storing schedules"))
        .map(drop)
}

/// Deletes `name`; false if there was none.
pub(super) async fn delete(pool: &Pool, name: &str) -> Result<bool, StoreError> {
    let c = pool
        .get()
        .await
        .map_err(|e| pool_error(Doing::Other("deleting a schedule"), e))?;
    c.execute("DELETE FROM schedules WHERE name = $1", &[&name])
        .await
        .map(|n| n > 0)
        .map_err(failed("deleting a schedule"))
}

/// Every schedule, by name (byte order, as on SQLite).
pub(super) async fn all(pool: &Pool) -> Result<Vec<ScheduleRecord>, StoreError> {
    let c = pool
        .get()
        .await
        .map_err(|e| pool_error(Doing::Read("reading schedules"), e))?;
    let rows = c
        .query(
            "SELECT name, record::text, version FROM schedules ORDER BY name COLLATE \"C\"",
            &[],
        )
        .await
        .map_err(|e| pg_error(Doing::Read("reading schedules"), e))?;
    rows.iter()
        .map(|r| {
            let name: &str = r.get(0);
            let mut record: ScheduleRecord = serde_json::from_str(r.get(1)).map_err(|e| {
                StoreError::ReadFailed(format!("schedule {name:?} does not decode: {e}"))
            })?;
            record.version = unsigned(r.get(2));
            Ok(record)
        })
        .collect()
}

fn encode(r: &ScheduleRecord) -> Result<String, StoreError> {
    serde_json::to_string(r).map_err(|e| {
        StoreError::WriteFailed(format!("cannot encode schedule {:?}: {e}", r.spec.name))
    })
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// Stores `record` if its stored version is `record.version` (zero: there is none, and
/// it is inserted); its new version, or `None` if it changed.
async fn put_if_on(c: &ClientWrapper, record: &ScheduleRecord) -> Result<Option<u64>, Error> {
    let json = serde_json::to_string(record).unwrap_or_default();
    let name = record.spec.name.as_str();
    let row = match record.version {
        0 => {
            let stmt = c.prepare_cached(INSERT_NEW).await?;
            c.query_opt(&stmt, &[&name, &json]).await?
        }
        v => {
            let version = i64::try_from(v).unwrap_or(i64::MAX);
            let stmt = c.prepare_cached(REPLACE_IF).await?;
            c.query_opt(&stmt, &[&name, &json, &version]).await?
        }
    };
    Ok(row.map(|r| unsigned(r.get(0))))
}

/// Stores `record` if it is still at its version; see [`put_if_on`].
pub(super) async fn put_if(pool: &Pool, record: ScheduleRecord) -> Result<Option<u64>, StoreError> {
    encode(&record)?;
    let c = pool
        .get()
        .await
        .map_err(|e| pool_error(Doing::Other("storing a schedule"), e))?;
    put_if_on(&c, &record)
        .await
        .map_err(failed("storing a schedule"))
}

/// The cron leader's transaction: the lease (`FOR SHARE`, so nobody takes it over until
/// this commits), the slots' tasks (as a write batch), the schedules' new watermarks
/// (compared and set by version; a schedule deleted since stays deleted).
pub(super) async fn fire(
    pool: &Pool,
    rows: Vec<WriteRow>,
    firing: Firing,
) -> Result<Fired, StoreError> {
    for r in &firing.marks {
        encode(r)?;
    }
    let what = "firing cron slots";
    let c = pool
        .get()
        .await
        .map_err(|e| pool_error(Doing::Other(what), e))?;
    c.batch_execute("BEGIN").await.map_err(failed(what))?;
    match fire_in(&c, rows, &firing).await {
        Ok(Some((fired, tail))) => {
            let (sent, _) = tokio::sync::oneshot::channel();
            tail.commit(&c, sent).await.map_err(failed(what))?;
            Ok(fired)
        }
        Ok(None) => {
            let _ = c.batch_execute("ROLLBACK").await;
            let LeaseFence {
                name,
                holder,
                epoch,
            } = firing.lease;
            Err(StoreError::LeaseLost {
                name,
                holder,
                epoch,
            })
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(failed(what)(e))
        }
    }
}

/// The statements of [`fire`] before its commit; `None` if the lease did not match.
async fn fire_in(
    c: &ClientWrapper,
    rows: Vec<WriteRow>,
    firing: &Firing,
) -> Result<Option<(Fired, Tail)>, Error> {
    let fence = &firing.lease;
    let held = format!("SELECT 1 FROM leases WHERE {HELD} FOR SHARE");
    let (incarnation, epoch) = (signed(fence.holder.incarnation), signed(fence.epoch));
    let found = c
        .query_opt(
            &held,
            &[&fence.name, &fence.holder.node, &incarnation, &epoch],
        )
        .await?;
    if found.is_none() {
        return Ok(None);
    }
    let batches = [rows];
    let ((mut results, tail), versions) =
        futures::try_join!(apply(c, &batches), marks(c, &firing.marks))?;
    let results = results.pop().unwrap_or_default();
    Ok(Some((Fired { results, versions }, tail)))
}

/// Compares and sets every mark's record in one statement; each one's new version, or
/// `None` if its schedule changed or went since it was read (never inserted here: a
/// schedule deleted meanwhile stays gone).
async fn marks(c: &ClientWrapper, marks: &[ScheduleRecord]) -> Result<Vec<Option<u64>>, Error> {
    if marks.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = marks.iter().map(|r| r.spec.name.as_str()).collect();
    let jsons: Vec<String> = marks
        .iter()
        .map(|r| serde_json::to_string(r).unwrap_or_default())
        .collect();
    let versions: Vec<i64> = marks.iter().map(|r| signed(r.version)).collect();
    let stmt = c.prepare_cached(MARK_ALL).await?;
    let rows = c.query(&stmt, &[&names, &jsons, &versions]).await?;
    let stored: std::collections::HashMap<String, u64> = rows
        .iter()
        .map(|r| (r.get::<_, String>(0), unsigned(r.get(1))))
        .collect();
    Ok(names.iter().map(|n| stored.get(*n).copied()).collect())
}
