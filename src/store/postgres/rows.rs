//! Between store types and rows: times as nanoseconds, JSON as text (the `json` columns
//! keep it byte for byte), writes encoded on the caller's task so the writer only runs
//! SQL, and decoding that names the bad column instead of panicking.

use std::time::SystemTime;

use tokio_postgres::Row;

use crate::store::{
    Crash, Fence, Life, Owner, StoreError, StoredEvent, TaskEvent, TaskRecord, Transition,
};
use crate::task::TaskId;

pub(super) use crate::store::nanos::{nanos, time};

/// An event ready to insert.
#[derive(Debug)]
pub(super) struct EventRow {
    pub task_id: TaskId,
    pub at: i64,
    pub kind: &'static str,
    pub actor_id: Option<String>,
    pub correlation_id: Option<String>,
    pub data: String,
}

/// The mutable columns of a task row.
#[derive(Clone, Debug)]
pub(super) struct LifeRow {
    pub state: &'static str,
    pub attempt: i32,
    pub owner_node: Option<String>,
    pub owner_incarnation: Option<i64>,
    /// The node of the latest attempt (`Life::ran_on`), a column for the node filter.
    pub ran_on: Option<String>,
    /// An operator's request waits for the running attempt.
    pub intent: bool,
    pub phase: Option<String>,
    pub updated_at: i64,
    pub due_at: Option<SystemTime>,
    pub life: String,
}

/// A task row ready to insert.
#[derive(Debug)]
pub(super) struct TaskRow {
    pub id: TaskId,
    pub kind: String,
    pub queue: String,
    pub priority: i16,
    pub created_by: Option<String>,
    pub unique_key: Option<String>,
    pub created_at: i64,
    pub task: String,
    pub life: LifeRow,
}

/// A crash row ready to insert.
#[derive(Debug)]
pub(super) struct CrashRow {
    pub task_id: TaskId,
    pub at: i64,
    pub attempt: i32,
    pub kind: &'static str,
    pub reason: String,
}

pub(super) fn json<T: serde::Serialize>(
    id: TaskId,
    what: &str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::WriteFailed(format!("cannot encode the {what} of task {id}: {e}")))
}

/// Refuses text PostgreSQL cannot store (a NUL byte), naming the task and the field, so
/// one bad write fails alone instead of failing the batch it would join.
fn plain(id: TaskId, what: &str, text: Option<&str>) -> Result<(), StoreError> {
    match text {
        Some(t) if t.contains('\0') => Err(StoreError::WriteFailed(format!(
            "the {what} of task {id} contains a NUL byte, which PostgreSQL cannot store"
        ))),
        _ => Ok(()),
    }
}

pub(super) fn task_row(record: &TaskRecord) -> Result<TaskRow, StoreError> {
    let task = &record.task;
    let id = task.id;
    plain(id, "kind", Some(&task.kind))?;
    plain(id, "queue", Some(&task.queue))?;
    plain(id, "unique key", task.unique_key.as_deref())?;
    plain(id, "actor id", task.metadata.actor_id.as_deref())?;
    Ok(TaskRow {
        id: task.id,
        kind: task.kind.to_string(),
        queue: task.queue.to_string(),
        priority: task.priority.index() as i16,
        created_by: task.metadata.actor_id.clone(),
        unique_key: task.unique_key.clone(),
        created_at: nanos(task.created_at),
        task: json(task.id, "task", task)?,
        life: life_row(task.id, &record.life)?,
    })
}

pub(super) fn life_row(id: TaskId, life: &Life) -> Result<LifeRow, StoreError> {
    plain(id, "phase", life.phase.as_deref())?;
    plain(id, "owner", life.owner.as_ref().map(|o| o.node.as_str()))?;
    plain(id, "node", life.ran_on.as_deref())?;
    Ok(LifeRow {
        state: life.state.as_str(),
        attempt: i32::try_from(life.attempt).unwrap_or(i32::MAX),
        owner_node: life.owner.as_ref().map(|o| o.node.clone()),
        owner_incarnation: life.owner.as_ref().map(|o| incarnation(o.incarnation)),
        ran_on: life.ran_on.clone(),
        intent: life.intent.is_some(),
        phase: life.phase.clone(),
        updated_at: nanos(life.updated_at),
        due_at: life.due_at,
        life: json(id, "life", life)?,
    })
}

/// A transition ready to apply.
#[derive(Debug)]
pub(super) struct TransitionRow {
    pub id: TaskId,
    pub life: LifeRow,
    pub events: Vec<EventRow>,
    pub crash: Option<CrashRow>,
    pub fence: Option<Fence>,
}

pub(super) fn transition_row(t: Transition) -> Result<TransitionRow, StoreError> {
    Ok(TransitionRow {
        id: t.id,
        life: life_row(t.id, &t.life)?,
        events: t
            .events
            .into_iter()
            .map(event_row)
            .collect::<Result<_, _>>()?,
        crash: t.crash.map(crash_row).transpose()?,
        fence: t.fence,
    })
}

/// An incarnation as stored (the sequence's `bigint`).
pub(super) fn incarnation(n: u64) -> i64 {
    signed(n)
}

/// A counter (incarnation, epoch, version) as PostgreSQL's `bigint`, saturating.
pub(super) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A duration in whole microseconds, as `bigint`, saturating.
pub(super) fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The owner named by two columns, if both are set.
pub(super) fn owner(node: Option<String>, incarnation: Option<i64>) -> Option<Owner> {
    Some(Owner::new(node?, u64::try_from(incarnation?).ok()?))
}

pub(super) fn event_row(event: TaskEvent) -> Result<EventRow, StoreError> {
    plain(event.task_id, "event actor id", event.actor_id.as_deref())?;
    plain(
        event.task_id,
        "event correlation id",
        event.correlation_id.as_deref(),
    )?;
    Ok(EventRow {
        task_id: event.task_id,
        at: nanos(event.at),
        kind: event.kind.name(),
        data: json(event.task_id, "event", &event.kind)?,
        actor_id: event.actor_id,
        correlation_id: event.correlation_id,
    })
}

pub(super) fn crash_row(c: Crash) -> Result<CrashRow, StoreError> {
    plain(c.task_id, "crash reason", Some(&c.reason))?;
    Ok(CrashRow {
        task_id: c.task_id,
        at: nanos(c.at),
        attempt: i32::try_from(c.attempt).unwrap_or(i32::MAX),
        kind: c.kind.as_str(),
        reason: c.reason,
    })
}

/// The columns [`record`] reads, in order, from `tasks` joined to `task_specs`. The
/// owner columns are the truth for the owner (reservations change only them).
pub(super) const RECORD_COLUMNS: &str =
    "t.id, s.task::text, t.life::text, t.owner_node, t.owner_incarnation";

/// The join [`RECORD_COLUMNS`] read from.
pub(super) const RECORD_FROM: &str = "tasks t JOIN task_specs s ON s.id = t.id";

/// Column `i`, called `name` in errors.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    i: usize,
    name: &str,
) -> Result<T, StoreError> {
    row.try_get(i).map_err(|e| column(name, e))
}

fn column(name: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::ReadFailed(format!("column {name}: {e}"))
}

/// Decodes `id, task, life`; a malformed value is an error naming the task and column.
pub(super) fn record(row: &Row) -> Result<TaskRecord, StoreError> {
    let id: uuid::Uuid = get(row, 0, "id")?;
    let mut life: Life = from_json(id, "life", get(row, 2, "life")?)?;
    life.owner = owner(
        get(row, 3, "owner_node")?,
        get(row, 4, "owner_incarnation")?,
    );
    Ok(TaskRecord {
        task: from_json(id, "task", get(row, 1, "task")?)?,
        life,
    })
}

fn from_json<T: serde::de::DeserializeOwned>(
    id: uuid::Uuid,
    what: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| column(what, format!("task {id}: malformed json: {e}")))
}

/// The columns [`event`] reads, in order, from `events`.
pub(super) const EVENT_COLUMNS: &str = "gseq, task, at, actor_id, correlation_id, data::text";

/// Decodes an event row.
pub(super) fn event(row: &Row) -> Result<StoredEvent, StoreError> {
    let seq: i64 = get(row, 0, "gseq")?;
    let seq =
        u64::try_from(seq).map_err(|_| column("gseq", format!("expected 0 or more, got {seq}")))?;
    let task: uuid::Uuid = get(row, 1, "task")?;
    let data: &str = get(row, 5, "data")?;
    let kind = serde_json::from_str(data).map_err(|e| {
        column(
            "data",
            format!("event {seq} of task {task}: malformed json: {e}"),
        )
    })?;
    Ok(StoredEvent {
        seq,
        event: TaskEvent {
            task_id: TaskId(task),
            at: time(get(row, 2, "at")?),
            kind,
            actor_id: get(row, 3, "actor_id")?,
            correlation_id: get(row, 4, "correlation_id")?,
        },
    })
}

/// The columns [`crash`] reads, in order.
pub(super) const CRASH_COLUMNS: &str = "task_id, at, attempt, kind, reason";

/// Decodes a crash row.
pub(super) fn crash(row: &Row) -> Result<Crash, StoreError> {
    let task: uuid::Uuid = get(row, 0, "task_id")?;
    let kind: String = get(row, 3, "kind")?;
    let attempt: i32 = get(row, 2, "attempt")?;
    Ok(Crash {
        task_id: TaskId(task),
        at: time(get(row, 1, "at")?),
        attempt: u32::try_from(attempt)
            .map_err(|_| column("attempt", format!("expected 0 or more, got {attempt}")))?,
        kind: serde_json::from_value(serde_json::Value::String(kind.clone())).map_err(|_| {
            column(
                "kind",
                format!("a crash of task {task}: unknown kind {kind:?}"),
            )
        })?,
        reason: get(row, 4, "reason")?,
    })
}
