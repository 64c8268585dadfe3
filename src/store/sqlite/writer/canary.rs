//! The recovery check after a failed write.
//!
//! The readiness probe touches one row. After a full disk that proves little: the WAL
//! keeps the space of the batch that failed, so a one-page write fits where a real batch
//! does not. Before the store is called writable again, the canary checkpoints and
//! truncates the WAL (which needs the database file to take every committed page), then
//! commits a row of [`CANARY_BYTES`] into the now empty WAL, and shrinks it again. Only
//! fresh space on disk lets both through.

use std::time::{Duration, SystemTime};

use rusqlite::{ffi, Connection};

use crate::store::sqlite::open::BUSY_TIMEOUT;
use crate::store::sqlite::rows::nanos;

/// How much fresh space the canary needs: more than a large group commit writes.
pub(super) const CANARY_BYTES: i64 = 256 * 1024;

/// How long the canary's checkpoint waits for readers: the readiness probe that asked
/// should answer promptly, and "not yet" is a fine answer.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(200);

/// Runs the canary on the write connection, outside any transaction.
pub(super) fn run(conn: &Connection) -> rusqlite::Result<()> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    conn.busy_timeout(CHECKPOINT_WAIT)?;
    let result = checkpoint_and_write(conn);
    conn.busy_timeout(BUSY_TIMEOUT)?;
    result
}

fn checkpoint_and_write(conn: &Connection) -> rusqlite::Result<()> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        return Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_BUSY),
            Some("the WAL could not be checkpointed and truncated".into()),
        ));
    }
    let upsert = "INSERT INTO probe (id, at) VALUES (1, ?1) \
                  ON CONFLICT (id) DO UPDATE SET at = excluded.at";
    conn.execute(
        "INSERT INTO probe (id, at) VALUES (1, zeroblob(?1)) \
         ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        [CANARY_BYTES],
    )?;
    conn.execute(upsert, [nanos(SystemTime::now())])?;
    Ok(())
}
