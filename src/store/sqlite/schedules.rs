//! Cron schedules in SQLite. Schedule writes are rare (an operator's change, or one
//! transaction per scheduler tick for every watermark it moved), so they use a connection
//! of their own rather than the group-commit writer; WAL and the busy timeout serialise
//! them with it. Each write is its own durable transaction (synchronous=FULL).

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, Connection};

use super::open;
use crate::cron::schedule::ScheduleRecord;
use crate::store::StoreError;

/// The schedules table, behind one connection.
pub(super) struct Schedules {
    conn: Mutex<Connection>,
}

impl Schedules {
    pub(super) fn open(path: &Path) -> Result<Arc<Self>, StoreError> {
        Ok(Arc::new(Self {
            conn: Mutex::new(open::open_checkpointer(path)?),
        }))
    }

    pub(super) fn put(&self, record: &ScheduleRecord) -> Result<(), StoreError> {
        upsert(&self.conn.lock(), record)
    }

    /// Puts every record in one transaction (one fsync): all or none.
    pub(super) fn put_all(&self, records: &[ScheduleRecord]) -> Result<(), StoreError> {
        let failed = |e: rusqlite::Error| StoreError::WriteFailed(e.to_string());
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(failed)?;
        for record in records {
            upsert(&tx, record)?;
        }
        tx.commit().map_err(failed)
    }

    pub(super) fn delete(&self, name: &str) -> Result<bool, StoreError> {
        self.conn
            .lock()
            .execute("DELETE FROM schedules WHERE name = ?1", params![name])
            .map(|n| n > 0)
            .map_err(|e| StoreError::WriteFailed(e.to_string()))
    }

    pub(super) fn all(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let conn = self.conn.lock();
        let read = |e: rusqlite::Error| StoreError::ReadFailed(e.to_string());
        let mut stmt = conn
            .prepare("SELECT name, record FROM schedules ORDER BY name")
            .map_err(read)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(read)?;
        let mut out = vec![];
        for row in rows {
            let (name, json) = row.map_err(read)?;
            let record = serde_json::from_str(&json).map_err(|e| {
                StoreError::ReadFailed(format!("schedule {name:?} does not decode: {e}"))
            })?;
            out.push(record);
        }
        Ok(out)
    }
}

fn upsert(conn: &Connection, record: &ScheduleRecord) -> Result<(), StoreError> {
    let json = serde_json::to_string(record).map_err(|e| StoreError::WriteFailed(e.to_string()))?;
    let at = record.updated_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO schedules (name, record, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
    )
    .and_then(|mut stmt| stmt.execute(params![record.spec.name, json, at]))
    .map(drop)
    .map_err(|e| StoreError::WriteFailed(e.to_string()))
}
