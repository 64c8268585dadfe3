//! Cron schedules: one row per name, the record as JSON. Writes are rare, so they run on
//! pooled connections, each its own transaction.

use deadpool_postgres::Pool;

use super::errors::{pg_error, pool_error, Doing};
use crate::cron::schedule::ScheduleRecord;
use crate::store::StoreError;

const UPSERT: &str = "INSERT INTO schedules (name, record, updated_at) \
    SELECT name, record::json, now() FROM unnest($1::text[], $2::text[]) AS u(name, record) \
    ON CONFLICT (name) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at";

fn failed(what: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| pg_error(Doing::Other(what), e)
}

/// Puts every record in one statement: all or none. A name given twice keeps the last.
pub(super) async fn put_all(pool: &Pool, records: &[ScheduleRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut last = std::collections::BTreeMap::new();
    for r in records {
        let json = serde_json::to_string(r).map_err(|e| {
            StoreError::WriteFailed(format!("cannot encode schedule {:?}: {e}", r.spec.name))
        })?;
        last.insert(r.spec.name.as_str(), json);
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
            "SELECT name, record::text FROM schedules ORDER BY name COLLATE \"C\"",
            &[],
        )
        .await
        .map_err(|e| pg_error(Doing::Read("reading schedules"), e))?;
    rows.iter()
        .map(|r| {
            let name: &str = r.get(0);
            serde_json::from_str(r.get(1)).map_err(|e| {
                StoreError::ReadFailed(format!("schedule {name:?} does not decode: {e}"))
            })
        })
        .collect()
}
