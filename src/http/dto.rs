//! The JSON shapes of the API: request bodies and their conversion to [`NewTask`], and the
//! task and event answers. Times are RFC 3339 in UTC with milliseconds.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::error::ValidationError;
use crate::runtime::{AttemptError, TaskStatus};
use crate::store::{EventKind, StoredEvent};
use crate::task::{check_time, NewTask, Priority, TaskId, TaskState, MAX_TIMEOUT};

/// `time` as RFC 3339, e.g. `2025-01-31T09:00:00.000Z`.
pub(super) fn rfc3339(time: SystemTime) -> String {
    utc(DateTime::<Utc>::from(time))
}

/// A UTC time as RFC 3339 with milliseconds.
pub(super) fn utc(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 time within the stores' range (1970 to 2262); the error names
/// `field`.
pub(super) fn parse_time(field: &'static str, s: &str) -> Result<SystemTime, ValidationError> {
    let time = DateTime::parse_from_rfc3339(s)
        .map(SystemTime::from)
        .map_err(|e| {
            let why =
                format!("expected an RFC 3339 time such as 2025-01-31T09:00:00Z, got {s:?}: {e}");
            ValidationError::new(field, why)
        })?;
    check_time(field, time)?;
    Ok(time)
}

/// Parses a priority name; the error names `field`.
fn parse_priority(field: &'static str, s: &str) -> Result<Priority, ValidationError> {
    s.parse::<Priority>()
        .map_err(|e| ValidationError::new(field, e.reason))
}

/// Parses a task state name; the error names the `state` parameter.
pub(super) fn parse_state(s: &str) -> Result<TaskState, String> {
    serde_json::from_value(Value::String(s.to_string())).map_err(|_| {
        format!("expected one of scheduled, pending, running, retrying, paused, succeeded, failed, cancelled, got {s:?}")
    })
}

/// The fields a task has both when submitted and as a schedule's template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskTemplate {
    /// The registered handler that runs it.
    #[schema(min_length = 1, example = "noop")]
    kind: String,
    /// The handler's arguments, any JSON; numbers keep every digit. A task without args
    /// gets `null`.
    #[serde(default)]
    args: Value,
    /// The queue; defaults to the kind's queue.
    queue: Option<String>,
    /// One of critical, high, normal, low, background.
    #[schema(value_type = Option<crate::http::openapi::names::PriorityName>)]
    priority: Option<String>,
    /// How long one attempt may run, in ms (1 ms to 365 days).
    #[schema(minimum = 1, maximum = 31_536_000_000_u64)]
    timeout_ms: Option<u64>,
    /// Attempts before the task fails (at least 1).
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 4_294_967_295_u64)]
    max_attempts: Option<u32>,
    /// A title of at most 200 characters.
    #[schema(max_length = 200)]
    title: Option<String>,
}

impl TaskTemplate {
    /// The task; errors name the field, prefixed with `task.` inside a schedule.
    pub fn into_new_task(self, in_schedule: bool) -> Result<NewTask, ValidationError> {
        let name = |top: &'static str, nested: &'static str| if in_schedule { nested } else { top };
        let mut task = NewTask::new(self.kind, self.args);
        task.queue = self.queue;
        task.title = self.title;
        task.max_attempts = self.max_attempts;
        if let Some(p) = self.priority {
            task.priority = Some(parse_priority(name("priority", "task.priority"), &p)?);
        }
        if let Some(ms) = self.timeout_ms {
            let max = MAX_TIMEOUT.as_millis() as u64;
            if ms == 0 || ms > max {
                let field = name("timeout_ms", "task.timeout_ms");
                let why = format!("expected 1 to {max} ms (365 days), got {ms}");
                return Err(ValidationError::new(field, why));
            }
            task.timeout = Some(Duration::from_millis(ms));
        }
        Ok(task)
    }
}

/// The body of `POST /v1/tasks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmitBody {
    /// The registered handler that runs it.
    #[schema(min_length = 1, example = "noop")]
    kind: String,
    /// The handler's arguments, any JSON; numbers keep every digit. A task without args
    /// gets `null`.
    #[serde(default)]
    args: Value,
    /// The queue; defaults to the kind's queue.
    queue: Option<String>,
    /// One of critical, high, normal, low, background.
    #[schema(value_type = Option<crate::http::openapi::names::PriorityName>)]
    priority: Option<String>,
    /// How long one attempt may run, in ms (1 ms to 365 days).
    #[schema(minimum = 1, maximum = 31_536_000_000_u64)]
    timeout_ms: Option<u64>,
    /// Attempts before the task fails (at least 1).
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 4_294_967_295_u64)]
    max_attempts: Option<u32>,
    /// A second submit with the same key answers the first task (200, `duplicate`). At
    /// most 1024 bytes; the prefixes `cron:`, `system:` and `taskmesh:` are reserved.
    #[schema(min_length = 1, max_length = 1024)]
    unique_key: Option<String>,
    /// Not before this time: RFC 3339, from 1970 to 2262-04-11.
    #[schema(format = DateTime)]
    run_at: Option<String>,
    /// A title of at most 200 characters.
    #[schema(max_length = 200)]
    title: Option<String>,
    /// Ties the task to a request or workflow (at most 256 bytes).
    #[schema(max_length = 256)]
    correlation_id: Option<String>,
    /// Who created the task (at most 256 bytes; `cron:`, `system:`, `taskmesh:` and
    /// `taskmesh` are reserved). Shown as `created_by`.
    #[schema(max_length = 256)]
    actor_id: Option<String>,
    /// False creates the task paused (default true).
    auto_start: Option<bool>,
    /// In a cluster whose queue routes by `consistent_hash`: tasks with one key start on
    /// one node while it is up (at most 256 bytes).
    #[schema(max_length = 256)]
    routing_key: Option<String>,
}

impl SubmitBody {
    /// The task to submit; errors name the field.
    pub fn into_new_task(self) -> Result<NewTask, ValidationError> {
        let template = TaskTemplate {
            kind: self.kind,
            args: self.args,
            queue: self.queue,
            priority: self.priority,
            timeout_ms: self.timeout_ms,
            max_attempts: self.max_attempts,
            title: self.title,
        };
        let mut task = template.into_new_task(false)?;
        task.unique_key = self.unique_key;
        task.run_at = self.run_at.map(|s| parse_time("run_at", &s)).transpose()?;
        task.metadata.correlation_id = self.correlation_id;
        task.metadata.actor_id = self.actor_id;
        task.auto_start = self.auto_start.unwrap_or(true);
        task.routing_key = self.routing_key;
        task.check_unreserved()?;
        Ok(task)
    }
}

/// A task as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TaskJson {
    #[schema(value_type = String, format = Uuid)]
    id: TaskId,
    kind: String,
    args: Value,
    queue: String,
    #[schema(value_type = crate::http::openapi::names::PriorityName)]
    priority: Priority,
    #[schema(value_type = crate::http::openapi::names::StateName)]
    state: TaskState,
    attempt: u32,
    max_attempts: u32,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    error: Option<AttemptError>,
    title: Option<String>,
    unique_key: Option<String>,
    correlation_id: Option<String>,
    created_by: Option<String>,
    cancel_reason: Option<String>,
    progress: Option<Value>,
    phase: Option<String>,
    worker: Option<String>,
    /// The node of the latest attempt, in a cluster.
    node: Option<String>,
    restarts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
}

impl TaskJson {
    /// Marks the answer to a submit that matched an existing task's unique key.
    pub fn duplicate(mut self) -> Self {
        self.duplicate = Some(true);
        self
    }
}

impl From<TaskStatus> for TaskJson {
    fn from(s: TaskStatus) -> Self {
        let progress = s
            .progress
            .map(|p| json!({"percent": p.percent, "message": p.message, "at": rfc3339(p.at)}));
        Self {
            id: s.id,
            kind: s.kind,
            args: s.args,
            queue: s.queue,
            priority: s.priority,
            state: s.state,
            attempt: s.attempt,
            max_attempts: s.max_attempts,
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
            result: s.result,
            error: s.error,
            title: s.title,
            unique_key: s.unique_key,
            correlation_id: s.correlation_id,
            created_by: s.created_by,
            cancel_reason: s.cancel_reason,
            progress,
            phase: s.phase,
            worker: s.worker,
            node: s.node,
            restarts: s.restarts,
            duplicate: None,
        }
    }
}

/// One event of a task's stream.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventJson {
    seq: u64,
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    kind: &'static str,
    #[schema(format = DateTime)]
    at: String,
    actor_id: Option<String>,
    correlation_id: Option<String>,
    data: Value,
}

impl From<StoredEvent> for EventJson {
    fn from(e: StoredEvent) -> Self {
        let ev = e.event;
        Self {
            seq: e.seq,
            kind: ev.kind.name(),
            at: rfc3339(ev.at),
            actor_id: ev.actor_id,
            correlation_id: ev.correlation_id,
            data: event_data(ev.kind),
        }
    }
}

/// What an event carries besides its type, with times as RFC 3339.
fn event_data(kind: EventKind) -> Value {
    match kind {
        EventKind::Created | EventKind::Paused | EventKind::Resumed | EventKind::Restarted => {
            json!({})
        }
        EventKind::Started { attempt, worker } => json!({"attempt": attempt, "worker": worker}),
        EventKind::Progress {
            percent,
            message,
            phase,
        } => json!({"percent": percent, "message": message, "phase": phase}),
        EventKind::AttemptFailed { error } | EventKind::Failed { error } => {
            json!({"error": error})
        }
        EventKind::RetryScheduled { attempt, at } => {
            json!({"attempt": attempt, "at": rfc3339(at)})
        }
        EventKind::Snoozed { until } => json!({"until": rfc3339(until)}),
        EventKind::Succeeded { result } => json!({"result": result}),
        EventKind::Cancelled { reason } => json!({"reason": reason}),
        EventKind::StopRequested { intent } => json!(intent),
        EventKind::Crashed { crash } => json!({
            "attempt": crash.attempt,
            "kind": crash.kind,
            "reason": crash.reason,
            "at": rfc3339(crash.at),
        }),
    }
}
