//! Reads on pooled connections: one task, its history, filtered pages and counts.

use deadpool_postgres::{Object, Pool};
use tokio_postgres::types::ToSql;

use super::errors::{read_conn as conn, read_failed};
use super::rows::{self, nanos, CRASH_COLUMNS, EVENT_COLUMNS, RECORD_COLUMNS, RECORD_FROM};
use crate::store::{
    Crash, History, Page, StoreError, StoredEvent, TaskFilter, TaskQuery, TaskRecord,
};
use crate::task::TaskId;

/// A task's row.
pub(super) async fn get(pool: &Pool, id: TaskId) -> Result<Option<TaskRecord>, StoreError> {
    let c = conn(pool, "reading a task").await?;
    let sql = format!("SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE t.id = $1");
    let stmt = c
        .prepare_cached(&sql)
        .await
        .map_err(read_failed("reading a task"))?;
    let row = c
        .query_opt(&stmt, &[&id.0])
        .await
        .map_err(read_failed("reading a task"))?;
    row.as_ref().map(rows::record).transpose()
}

/// A task's events, oldest first.
pub(super) async fn events(pool: &Pool, id: TaskId) -> Result<Vec<StoredEvent>, StoreError> {
    let c = conn(pool, "reading events").await?;
    events_on(&c, id).await
}

async fn events_on(c: &Object, id: TaskId) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE task = $1 ORDER BY seq");
    let stmt = c
        .prepare_cached(&sql)
        .await
        .map_err(read_failed("reading events"))?;
    let found = c
        .query(&stmt, &[&id.0])
        .await
        .map_err(read_failed("reading events"))?;
    found.iter().map(rows::event).collect()
}

/// A task's crashes, oldest first.
pub(super) async fn crashes(pool: &Pool, id: TaskId) -> Result<Vec<Crash>, StoreError> {
    let c = conn(pool, "reading crashes").await?;
    crashes_on(&c, id).await
}

async fn crashes_on(c: &Object, id: TaskId) -> Result<Vec<Crash>, StoreError> {
    let sql = format!("SELECT {CRASH_COLUMNS} FROM crashes WHERE task_id = $1 ORDER BY at, id");
    let stmt = c
        .prepare_cached(&sql)
        .await
        .map_err(read_failed("reading crashes"))?;
    let found = c
        .query(&stmt, &[&id.0])
        .await
        .map_err(read_failed("reading crashes"))?;
    found.iter().map(rows::crash).collect()
}

/// Events and crashes from one snapshot (a repeatable-read, read-only transaction).
pub(super) async fn history(pool: &Pool, id: TaskId) -> Result<History, StoreError> {
    let mut c = conn(pool, "reading a history").await?;
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(read_failed("reading a history"))?;
    let events = {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE task = $1 ORDER BY seq");
        let found = tx
            .query(&sql, &[&id.0])
            .await
            .map_err(read_failed("reading events"))?;
        found
            .iter()
            .map(rows::event)
            .collect::<Result<Vec<_>, _>>()?
    };
    let crashes = {
        let sql = format!("SELECT {CRASH_COLUMNS} FROM crashes WHERE task_id = $1 ORDER BY at, id");
        let found = tx
            .query(&sql, &[&id.0])
            .await
            .map_err(read_failed("reading crashes"))?;
        found
            .iter()
            .map(rows::crash)
            .collect::<Result<Vec<_>, _>>()?
    };
    tx.commit()
        .await
        .map_err(read_failed("reading a history"))?;
    Ok((events, crashes))
}

/// Non-terminal tasks, oldest first.
pub(super) async fn open_tasks(pool: &Pool) -> Result<Vec<TaskRecord>, StoreError> {
    let c = conn(pool, "reading open tasks").await?;
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} \
         WHERE t.state NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY t.created_at, t.id"
    );
    let found = c
        .query(&sql, &[])
        .await
        .map_err(read_failed("reading open tasks"))?;
    found.iter().map(rows::record).collect()
}

/// The task holding `key`.
pub(super) async fn find_unique(pool: &Pool, key: &str) -> Result<Option<TaskId>, StoreError> {
    let c = conn(pool, "finding a unique key").await?;
    let row = c
        .query_opt("SELECT id FROM tasks WHERE unique_key = $1", &[&key])
        .await
        .map_err(read_failed("finding a unique key"))?;
    Ok(row.map(|r| TaskId(r.get(0))))
}

/// How many tasks match.
pub(super) async fn count(pool: &Pool, filter: &TaskFilter) -> Result<u64, StoreError> {
    let c = conn(pool, "counting tasks").await?;
    count_on(&**c, filter).await
}

async fn count_on(
    c: &impl tokio_postgres::GenericClient,
    filter: &TaskFilter,
) -> Result<u64, StoreError> {
    // The same terms name the same columns in `task_counts`.
    let w = Where::of(filter);
    let sql = match counted(filter) {
        true => format!(
            "SELECT coalesce(sum(n), 0)::int8 FROM task_counts t{}",
            w.clause
        ),
        false => format!("SELECT count(*) FROM tasks t{}", w.clause),
    };
    let row = c
        .query_one(&sql, &w.params())
        .await
        .map_err(read_failed("counting tasks"))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
}

/// Whether `filter` uses only columns `task_counts` keeps (state, queue, kind): then the
/// total is a sum of its rows rather than a count of tasks.
fn counted(f: &TaskFilter) -> bool {
    f.phase.is_none()
        && f.created_by.is_none()
        && f.node.is_none()
        && f.created_after.is_none()
        && f.created_before.is_none()
}

/// A page, newest first, and the total, from one snapshot.
pub(super) async fn list(pool: &Pool, query: &TaskQuery) -> Result<Page, StoreError> {
    let mut c = conn(pool, "listing tasks").await?;
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(read_failed("listing tasks"))?;
    let total = count_on(tx.client(), &query.filter).await?;
    let w = Where::of(&query.filter);
    let n = w.values.len();
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM}{} \
         ORDER BY t.created_at DESC, t.id DESC LIMIT ${} OFFSET ${}",
        w.clause,
        n + 1,
        n + 2
    );
    let limit = i64::from(query.limit);
    let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
    let mut params = w.params();
    params.push(&limit);
    params.push(&offset);
    let found = tx
        .query(&sql, &params)
        .await
        .map_err(read_failed("listing tasks"))?;
    tx.commit().await.map_err(read_failed("listing tasks"))?;
    let tasks = found.iter().map(rows::record).collect::<Result<_, _>>()?;
    Ok(Page { tasks, total })
}

/// A filter as ` WHERE …` on `tasks t` and its values.
struct Where {
    clause: String,
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Where {
    fn of(f: &TaskFilter) -> Self {
        let mut terms: Vec<(&str, Box<dyn ToSql + Sync + Send>)> = Vec::new();
        let text = |s: &str| -> Box<dyn ToSql + Sync + Send> { Box::new(s.to_owned()) };
        if let Some(s) = f.state {
            terms.push(("t.state", text(s.as_str())));
        }
        if let Some(q) = &f.queue {
            terms.push(("t.queue", text(q)));
        }
        if let Some(k) = &f.kind {
            terms.push(("t.kind", text(k)));
        }
        if let Some(p) = &f.phase {
            terms.push(("t.phase", text(p)));
        }
        if let Some(a) = &f.created_by {
            terms.push(("t.created_by", text(a)));
        }
        if let Some(n) = &f.node {
            terms.push(("t.ran_on", text(n)));
        }
        let mut sql: Vec<String> = Vec::new();
        let mut values = Vec::new();
        for (column, value) in terms {
            values.push(value);
            sql.push(format!("{column} = ${}", values.len()));
        }
        if let Some(t) = f.created_after {
            values.push(Box::new(nanos(t)));
            sql.push(format!("t.created_at >= ${}", values.len()));
        }
        if let Some(t) = f.created_before {
            values.push(Box::new(nanos(t)));
            sql.push(format!("t.created_at < ${}", values.len()));
        }
        let clause = if sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", sql.join(" AND "))
        };
        Self { clause, values }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|v| &**v as &(dyn ToSql + Sync))
            .collect()
    }
}
