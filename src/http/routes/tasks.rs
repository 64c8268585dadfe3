//! `/v1/tasks`: submit, get, list, events, and the commands on a task's execution.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::dto::{parse_state, parse_time, EventJson, SubmitBody, TaskJson};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, OptionalJson, Params};
use crate::http::HttpState;
use crate::store::TaskFilter;
use crate::{Control, TaskError, TaskId, TaskStatus, TaskSystem};

/// The page size when `limit` is not given.
const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit` accepted.
const MAX_LIMIT: u32 = 1000;

/// `POST /v1/tasks`: 201 with the new task, or 200 with the existing one and
/// `"duplicate": true` when its unique key is held.
pub(super) async fn submit(
    State(state): State<HttpState>,
    ApiJson(body): ApiJson<SubmitBody>,
) -> Result<(StatusCode, Json<TaskJson>), ApiError> {
    let receipt = state.system.submit(body.into_new_task()?).await?;
    let task = TaskJson::from(status(&state.system, receipt.id).await?);
    Ok(match receipt.duplicate {
        true => (StatusCode::OK, Json(task.duplicate())),
        false => (StatusCode::CREATED, Json(task)),
    })
}

/// `GET /v1/tasks/{id}`.
pub(super) async fn get(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskJson>, ApiError> {
    let id = task_id(&id)?;
    Ok(Json(status(&state.system, id).await?.into()))
}

/// `GET /v1/tasks/{id}/events`: the task's events, oldest first.
pub(super) async fn events(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let events = state.system.events(task_id(&id)?).await?;
    let events: Vec<EventJson> = events.into_iter().map(EventJson::from).collect();
    Ok(Json(json!({"events": events})))
}

const LIST_PARAMS: [&str; 9] = [
    "state",
    "queue",
    "kind",
    "phase",
    "created_by",
    "created_after",
    "created_before",
    "limit",
    "offset",
];

/// `GET /v1/tasks`: a filtered page, newest first, with the total.
pub(super) async fn list(
    State(state): State<HttpState>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    params.only(&LIST_PARAMS)?;
    let filter = TaskFilter {
        state: params.parse("state", parse_state)?,
        queue: params.text("queue"),
        kind: params.text("kind"),
        phase: params.text("phase"),
        created_by: params.text("created_by"),
        created_after: params.parse("created_after", |s| parse_time("created_after", s))?,
        created_before: params.parse("created_before", |s| parse_time("created_before", s))?,
    };
    let limit = params.parse("limit", parse_limit)?.unwrap_or(DEFAULT_LIMIT);
    let offset = params
        .parse("offset", |s| {
            s.parse::<u64>().map_err(|_| expected_count(s))
        })?
        .unwrap_or(0);
    let page = state.system.list(filter, limit, offset).await?;
    let tasks: Vec<TaskJson> = page.tasks.into_iter().map(TaskJson::from).collect();
    Ok(Json(json!({"tasks": tasks, "total": page.total})))
}

fn parse_limit(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n <= MAX_LIMIT => Ok(n),
        _ => Err(format!(
            "expected a whole number from 0 to {MAX_LIMIT}, got {s:?}"
        )),
    }
}

fn expected_count(s: &str) -> String {
    format!("expected a whole number, got {s:?}")
}

/// The optional body of `POST /v1/tasks/{id}/cancel`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CancelBody {
    reason: Option<String>,
}

/// `POST /v1/tasks/{id}/cancel`.
pub(super) async fn cancel(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<CancelBody>,
) -> Result<Json<Value>, ApiError> {
    let reason = body
        .and_then(|b| b.reason)
        .unwrap_or_else(|| "cancelled through the HTTP API".into());
    command(&state.system, &id, Command::Cancel(reason)).await
}

/// `POST /v1/tasks/{id}/pause`.
pub(super) async fn pause(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    command(&state.system, &id, Command::Pause).await
}

/// `POST /v1/tasks/{id}/resume`.
pub(super) async fn resume(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    command(&state.system, &id, Command::Resume).await
}

/// `POST /v1/tasks/{id}/restart`.
pub(super) async fn restart(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    command(&state.system, &id, Command::Restart).await
}

enum Command {
    Cancel(String),
    Pause,
    Resume,
    Restart,
}

/// Runs a command: `{"result": "done"|"requested", "task": …}`; 409 if the task ended
/// (also when it is only left in the store) or the change is not allowed from its state.
async fn command(system: &TaskSystem, id: &str, cmd: Command) -> Result<Json<Value>, ApiError> {
    let id = task_id(id)?;
    let outcome = match cmd {
        Command::Cancel(reason) => system.cancel(id, reason).await,
        Command::Pause => system.pause(id).await,
        Command::Resume => system.resume(id).await,
        Command::Restart => system.restart(id).await,
    };
    let control = match outcome {
        Err(TaskError::NotFound(_)) => return Err(ended_in_store(system, id).await),
        other => other?,
    };
    let result = match control {
        Control::Done => "done",
        Control::Requested => "requested",
    };
    let task = TaskJson::from(status(system, id).await?);
    Ok(Json(json!({"result": result, "task": task})))
}

/// The error for a command on a task not held in memory: a conflict if the store has it
/// (only ended tasks leave memory), else not found.
async fn ended_in_store(system: &TaskSystem, id: TaskId) -> ApiError {
    match system.get(id).await {
        Ok(view) if view.status.state.is_terminal() => {
            ApiError::conflict(format!("task {id} is already {}", view.status.state))
        }
        Ok(_) => ApiError::not_found(format!("task {id} not found")),
        Err(e) => e.into(),
    }
}

/// The task's status: live from memory, else from the store.
async fn status(system: &TaskSystem, id: TaskId) -> Result<TaskStatus, TaskError> {
    match system.status(id) {
        Err(TaskError::NotFound(_)) => Ok(system.get(id).await?.status),
        other => other,
    }
}

fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    raw.parse::<TaskId>().map_err(ApiError::from)
}
