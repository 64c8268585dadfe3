//! Between store types and rows: times as nanoseconds, JSON columns, and writes encoded
//! on the caller's thread so the writer thread only runs SQL.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Row, ToSql};

use crate::store::{
    Crash, Fence, Life, Owner, StoreError, StoredEvent, TaskEvent, TaskRecord, Write,
};
use crate::task::{TaskId, TaskState};

impl ToSql for TaskId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for TaskId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

pub(super) use crate::store::nanos::{nanos, time};

/// An event ready to insert.
pub(super) struct EventRow {
    pub task_id: TaskId,
    pub at: i64,
    pub kind: &'static str,
    pub actor_id: Option<String>,
    pub correlation_id: Option<String>,
    pub data: String,
}

/// What a fence looks at in a task's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Current {
    pub state: TaskState,
    pub attempt: u32,
    pub owner: Option<Owner>,
    pub requested: bool,
}

/// The mutable columns of a task row.
pub(super) struct LifeRow {
    pub current: Current,
    pub state: &'static str,
    pub phase: Option<String>,
    pub updated_at: i64,
    pub due_at: Option<i64>,
    pub life: String,
}

/// A task row ready to insert.
pub(super) struct TaskRow {
    pub id: TaskId,
    pub kind: String,
    pub queue: String,
    pub priority: i64,
    pub created_by: Option<String>,
    pub unique_key: Option<String>,
    pub created_at: i64,
    pub task: String,
    pub life: LifeRow,
}

/// A crash row ready to insert.
pub(super) struct CrashRow {
    pub task_id: TaskId,
    pub at: i64,
    pub attempt: u32,
    pub kind: &'static str,
    pub reason: String,
}

/// A [`Transition`](crate::store::Transition) with its JSON encoded.
pub(super) struct TransitionRow {
    pub id: TaskId,
    pub life: LifeRow,
    pub events: Vec<EventRow>,
    pub crash: Option<CrashRow>,
    pub fence: Option<Fence>,
}

/// A [`Write`] with its JSON already encoded.
pub(super) enum WriteRow {
    Create(Box<TaskRow>, EventRow),
    Update(Box<TransitionRow>),
    Event(EventRow),
    Crash(CrashRow),
}

/// Encodes a batch; fails (naming the task) if a value cannot be serialised.
pub(super) fn encode(batch: Vec<Write>) -> Result<Vec<WriteRow>, StoreError> {
    batch.into_iter().map(encode_one).collect()
}

fn encode_one(write: Write) -> Result<WriteRow, StoreError> {
    Ok(match write {
        Write::Create(record, event) => {
            WriteRow::Create(Box::new(task_row(&record)?), event_row(event)?)
        }
        Write::Update(t) => {
            let t = *t;
            let events = t.events.into_iter().map(event_row);
            WriteRow::Update(Box::new(TransitionRow {
                id: t.id,
                life: life_row(t.id, &t.life)?,
                events: events.collect::<Result<_, _>>()?,
                crash: t.crash.map(crash_row),
                fence: t.fence,
            }))
        }
        Write::Event(event) => WriteRow::Event(event_row(event)?),
        Write::Crash(c) => WriteRow::Crash(crash_row(c)),
    })
}

fn crash_row(c: Crash) -> CrashRow {
    CrashRow {
        task_id: c.task_id,
        at: nanos(c.at),
        attempt: c.attempt,
        kind: c.kind.as_str(),
        reason: c.reason,
    }
}

fn json<T: serde::Serialize>(id: TaskId, what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::WriteFailed(format!("cannot encode the {what} of task {id}: {e}")))
}

fn task_row(record: &TaskRecord) -> Result<TaskRow, StoreError> {
    let task = &record.task;
    Ok(TaskRow {
        id: task.id,
        kind: task.kind.to_string(),
        queue: task.queue.to_string(),
        priority: task.priority.index() as i64,
        created_by: task.metadata.actor_id.clone(),
        unique_key: task.unique_key.clone(),
        created_at: nanos(task.created_at),
        task: json(task.id, "task", task)?,
        life: life_row(task.id, &record.life)?,
    })
}

fn life_row(id: TaskId, life: &Life) -> Result<LifeRow, StoreError> {
    Ok(LifeRow {
        current: Current {
            state: life.state,
            attempt: life.attempt,
            owner: life.owner.clone(),
            requested: life.intent.is_some(),
        },
        state: life.state.as_str(),
        phase: life.phase.clone(),
        updated_at: nanos(life.updated_at),
        due_at: life.due_at.map(nanos),
        life: json(id, "life", life)?,
    })
}

fn event_row(event: TaskEvent) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        task_id: event.task_id,
        at: nanos(event.at),
        kind: event.kind.name(),
        data: json(event.task_id, "event", &event.kind)?,
        actor_id: event.actor_id,
        correlation_id: event.correlation_id,
    })
}

/// The columns [`record`] reads, in order, from `tasks` (the task JSON is looked up only
/// for rows returned, not for rows an OFFSET skips).
pub(super) const RECORD_COLUMNS: &str =
    "id, (SELECT task FROM task_specs WHERE task_specs.n = tasks.n), life";

/// Decodes `id, task, life`; a malformed value is an error naming the task and the
/// column.
pub(super) fn record(row: &Row<'_>) -> Result<TaskRecord, StoreError> {
    let id = text(row, 0, "id")?;
    Ok(TaskRecord {
        task: from_json(id, "task", text(row, 1, "task")?)?,
        life: from_json(id, "life", text(row, 2, "life")?)?,
    })
}

fn text<'r>(row: &'r Row<'_>, i: usize, name: &str) -> Result<&'r str, StoreError> {
    let value = row.get_ref(i).map_err(|e| column(name, e))?;
    value.as_str().map_err(|e| column(name, e))
}

/// Column `i`, called `name` in errors.
fn get<T: FromSql>(row: &Row<'_>, i: usize, name: &str) -> Result<T, StoreError> {
    row.get(i).map_err(|e| column(name, e))
}

fn column(name: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::ReadFailed(format!("column {name}: {e}"))
}

/// The columns [`event`] reads, in order, from `events` joined to `tasks`.
pub(super) const EVENT_COLUMNS: &str = "seq, tasks.id, at, actor_id, correlation_id, data";

/// Decodes an event row; a malformed value is an error naming the column.
pub(super) fn event(row: &Row<'_>) -> Result<StoredEvent, StoreError> {
    let seq: i64 = get(row, 0, "seq")?;
    let seq = u64::try_from(seq).map_err(|_| {
        column(
            "seq",
            format!("expected a sequence number of 0 or more, got {seq}"),
        )
    })?;
    let task_id: TaskId = get(row, 1, "id")?;
    let data: String = get(row, 5, "data")?;
    let kind = serde_json::from_str(&data).map_err(|e| {
        column(
            "data",
            format!("event {seq} of task {task_id}: malformed json: {e}"),
        )
    })?;
    Ok(StoredEvent {
        seq,
        event: TaskEvent {
            task_id,
            at: time(get(row, 2, "at")?),
            kind,
            actor_id: get(row, 3, "actor_id")?,
            correlation_id: get(row, 4, "correlation_id")?,
        },
    })
}

/// The columns [`crash`] reads, in order.
pub(super) const CRASH_COLUMNS: &str = "task_id, at, attempt, kind, reason";

/// Decodes a crash row; a malformed value is an error naming the column.
pub(super) fn crash(row: &Row<'_>) -> Result<Crash, StoreError> {
    let task_id: TaskId = get(row, 0, "task_id")?;
    let kind: String = get(row, 3, "kind")?;
    Ok(Crash {
        task_id,
        at: time(get(row, 1, "at")?),
        attempt: get(row, 2, "attempt")?,
        kind: serde_json::from_value(serde_json::Value::String(kind.clone())).map_err(|_| {
            column(
                "kind",
                format!("a crash of task {task_id}: unknown kind {kind:?}"),
            )
        })?,
        reason: get(row, 4, "reason")?,
    })
}

fn from_json<T: serde::de::DeserializeOwned>(
    id: &str,
    what: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| column(what, format!("task {id}: malformed json: {e}")))
}

/// Any SQLite error on the read path.
pub(super) fn read_failed(e: rusqlite::Error) -> StoreError {
    StoreError::ReadFailed(e.to_string())
}

/// Runs each row decoder (task record, event, crash) on one row of arbitrary `values`
/// (padded with NULL), for the fuzz target `stored_rows` in `fuzz/`: a decoder may refuse
/// a row, and must never panic. Not part of the API.
#[doc(hidden)]
pub fn fuzz_decode_rows(values: &[rusqlite::types::Value]) -> Vec<Result<(), StoreError>> {
    thread_local! {
        static CONN: rusqlite::Connection =
            rusqlite::Connection::open_in_memory().expect("an in-memory database");
    }
    type Decode = fn(&Row<'_>) -> Result<(), StoreError>;
    let decoders: [(&[&str], Decode); 3] = [
        (&["id", "task", "life"], |r| record(r).map(drop)),
        (
            &["seq", "id", "at", "actor_id", "correlation_id", "data"],
            |r| event(r).map(drop),
        ),
        (&["task_id", "at", "attempt", "kind", "reason"], |r| {
            crash(r).map(drop)
        }),
    ];
    CONN.with(|conn| {
        decoders
            .iter()
            .map(|(names, decode)| decode_one(conn, names, values, *decode))
            .collect()
    })
}

fn decode_one(
    conn: &rusqlite::Connection,
    names: &[&str],
    values: &[rusqlite::types::Value],
    decode: fn(&Row<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let columns: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, name)| format!("?{} AS {name}", i + 1))
        .collect();
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {}", columns.join(", ")))
        .map_err(read_failed)?;
    let null = rusqlite::types::Value::Null;
    let params = (0..names.len()).map(|i| values.get(i).unwrap_or(&null));
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(read_failed)?;
    match rows.next().map_err(read_failed)? {
        Some(row) => decode(row),
        None => Ok(()),
    }
}
