//! Reads: a small pool of read-only WAL connections, and the queries run on them.
//!
//! Every query runs on a blocking thread (see `SqliteStore::read`), never on the async
//! runtime. A WAL reader sees every transaction committed before its read began.

use parking_lot::{Condvar, Mutex};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use super::rows::{self, nanos, read_failed, CRASH_COLUMNS, EVENT_COLUMNS, RECORD_COLUMNS};
use crate::store::{Crash, Page, StoreError, StoredEvent, TaskFilter, TaskQuery, TaskRecord};
use crate::task::TaskId;

/// Idle read connections; a caller waits if all are busy.
pub(super) struct Readers {
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
}

impl Readers {
    /// A pool of these connections.
    pub(super) fn new(conns: Vec<Connection>) -> Self {
        Self {
            idle: Mutex::new(conns),
            freed: Condvar::new(),
        }
    }

    /// Runs `f` on an idle connection (blocking until one is free), then returns it.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lent = Lent {
            pool: self,
            conn: Some(self.take()),
        };
        let conn = lent
            .conn
            .as_mut()
            .expect("a lent connection is present until dropped");
        f(conn)
    }

    fn take(&self) -> Connection {
        let mut idle = self.idle.lock();
        loop {
            if let Some(conn) = idle.pop() {
                return conn;
            }
            self.freed.wait(&mut idle);
        }
    }
}

/// Gives its connection back to the pool when dropped, even if the reader panicked.
struct Lent<'p> {
    pool: &'p Readers,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.idle.lock().push(conn);
            self.pool.freed.notify_one();
        }
    }
}

/// A task's row.
pub(super) fn get(conn: &Connection, id: TaskId) -> Result<Option<TaskRecord>, StoreError> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM tasks WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql).map_err(read_failed)?;
    let mut rows = stmt.query([id]).map_err(read_failed)?;
    match rows.next().map_err(read_failed)? {
        Some(row) => rows::record(row).map(Some),
        None => Ok(None),
    }
}

/// A task's events, oldest first.
pub(super) fn events(conn: &Connection, id: TaskId) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM tasks JOIN events ON events.task = tasks.n \
         WHERE tasks.id = ?1 ORDER BY seq"
    );
    collect(conn, &sql, [Value::Text(id.to_string())], rows::event)
}

/// A task's events and crashes, read in one transaction (one snapshot).
pub(super) fn history(
    conn: &mut Connection,
    id: TaskId,
) -> Result<crate::store::History, StoreError> {
    let tx = conn.transaction().map_err(read_failed)?;
    let events = events(&tx, id)?;
    let crashes = crashes(&tx, id)?;
    drop(tx);
    Ok((events, crashes))
}

/// A task's crashes, oldest first (by time, then by insertion).
pub(super) fn crashes(conn: &Connection, id: TaskId) -> Result<Vec<Crash>, StoreError> {
    let sql = format!("SELECT {CRASH_COLUMNS} FROM crashes WHERE task_id = ?1 ORDER BY at, id");
    collect(conn, &sql, [Value::Text(id.to_string())], rows::crash)
}

/// Non-terminal tasks, oldest first.
pub(super) fn open_tasks(conn: &Connection) -> Result<Vec<TaskRecord>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM tasks \
         WHERE state NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY created_at, id"
    );
    collect(conn, &sql, [], rows::record)
}

/// The task holding `key`.
pub(super) fn find_unique(conn: &Connection, key: &str) -> Result<Option<TaskId>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id FROM tasks WHERE unique_key = ?1")
        .map_err(read_failed)?;
    stmt.query_row([key], |r| r.get(0))
        .optional()
        .map_err(read_failed)
}

/// How many tasks match: a sum of `task_counts` rows when the filter uses only the
/// columns it keeps (state, queue, kind), else a count of the index entries.
pub(super) fn count(conn: &Connection, filter: &TaskFilter) -> Result<u64, StoreError> {
    let (clause, args) = where_clause(filter);
    let counted = filter.phase.is_none()
        && filter.created_by.is_none()
        && filter.node.is_none()
        && filter.created_after.is_none()
        && filter.created_before.is_none();
    let sql = match counted {
        true => format!("SELECT coalesce(sum(n), 0) FROM task_counts{clause}"),
        false => format!("SELECT count(*) FROM tasks{clause}"),
    };
    let mut stmt = conn.prepare_cached(&sql).map_err(read_failed)?;
    let n: i64 = stmt
        .query_row(params_from_iter(args), |r| r.get(0))
        .map_err(read_failed)?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// A page, newest first, and the total; both from one snapshot.
pub(super) fn list(conn: &mut Connection, query: &TaskQuery) -> Result<Page, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Deferred)
        .map_err(read_failed)?;
    let total = count(&tx, &query.filter)?;
    let (clause, mut args) = where_clause(&query.filter);
    args.push(Value::Integer(query.limit.into()));
    args.push(Value::Integer(
        i64::try_from(query.offset).unwrap_or(i64::MAX),
    ));
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM tasks{clause} \
         ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    );
    let tasks = collect(&tx, &sql, args, rows::record)?;
    Ok(Page { tasks, total })
}

/// ` WHERE a = ? AND …` for the set fields (or nothing), and the values in order.
fn where_clause(f: &TaskFilter) -> (String, Vec<Value>) {
    let text = |s: &str| Value::Text(s.to_owned());
    let terms: Vec<(&str, Value)> = [
        f.state.map(|s| ("state = ?", text(s.as_str()))),
        f.queue.as_deref().map(|q| ("queue = ?", text(q))),
        f.kind.as_deref().map(|k| ("kind = ?", text(k))),
        f.phase.as_deref().map(|p| ("phase = ?", text(p))),
        f.created_by.as_deref().map(|a| ("created_by = ?", text(a))),
        // Set only on a store several processes share, which SQLite never is.
        f.node
            .as_deref()
            .map(|n| ("json_extract(life, '$.ran_on') = ?", text(n))),
        f.created_after
            .map(|t| ("created_at >= ?", Value::Integer(nanos(t)))),
        f.created_before
            .map(|t| ("created_at < ?", Value::Integer(nanos(t)))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if terms.is_empty() {
        return (String::new(), Vec::new());
    }
    let (sql, args): (Vec<&str>, Vec<Value>) = terms.into_iter().unzip();
    (format!(" WHERE {}", sql.join(" AND ")), args)
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    args: impl IntoIterator<Item = Value>,
    decode: fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(read_failed)?;
    let mut rows = stmt.query(params_from_iter(args)).map_err(read_failed)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(read_failed)? {
        out.push(decode(row)?);
    }
    Ok(out)
}
