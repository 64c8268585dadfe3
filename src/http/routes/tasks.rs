//! `/v1/tasks`: submit, get, list, events, and the commands on a task's execution.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::dto::{parse_state, parse_time, EventJson, SubmitBody, TaskJson};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, ApiPath, OptionalJson, Params};
use crate::http::HttpState;
use crate::store::TaskFilter;
use crate::{Control, TaskError, TaskId, TaskStatus, TaskSystem};

/// The page size when `limit` is not given.
const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit` accepted.
const MAX_LIMIT: u32 = 1000;

/// A page of tasks.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskPage {
    /// The page, newest first.
    tasks: Vec<TaskJson>,
    /// How many tasks match the filter in all.
    total: u64,
}

/// A task's events.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventList {
    /// Oldest first.
    events: Vec<EventJson>,
}

/// The answer to a command.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CommandAnswer {
    /// `done` when applied, `requested` when the running attempt was asked to stop.
    result: String,
    /// The task after the command.
    task: TaskJson,
}

/// `POST /v1/tasks`: 201 with the new task, or 200 with the existing one and
/// `"duplicate": true` when its unique key is held.
#[utoipa::path(post, path = "/v1/tasks", tag = "tasks", request_body = SubmitBody,
    responses(
        (status = 201, description = "created", body = TaskJson),
        (status = 200, description = "a task with this unique key exists: it, with `duplicate: true`", body = TaskJson),
        (status = 400, description = "invalid body; the message names the field", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 413, description = "body over the limit", body = ErrorBody),
        (status = 503, description = "queue full or node not ready; retry after `Retry-After`", body = ErrorBody),
    ))]
pub(crate) async fn submit(
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
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, format = Uuid, description = "the task's uuid")),
    responses(
        (status = 200, description = "the task", body = TaskJson),
        (status = 400, description = "not a uuid", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
    ))]
pub(crate) async fn get(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskJson>, ApiError> {
    let id = task_id(&id)?;
    Ok(Json(status(&state.system, id).await?.into()))
}

/// `GET /v1/tasks/{id}/events`: the task's events, oldest first.
#[utoipa::path(get, path = "/v1/tasks/{id}/events", tag = "tasks",
    params(("id" = String, Path, format = Uuid, description = "the task's uuid")),
    responses(
        (status = 200, description = "its events", body = EventList),
        (status = 400, description = "not a uuid", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
    ))]
pub(crate) async fn events(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EventList>, ApiError> {
    let events = state.system.events(task_id(&id)?).await?;
    let events: Vec<EventJson> = events.into_iter().map(EventJson::from).collect();
    Ok(Json(EventList { events }))
}

const LIST_PARAMS: [&str; 10] = [
    "state",
    "queue",
    "kind",
    "phase",
    "created_by",
    "node",
    "created_after",
    "created_before",
    "limit",
    "offset",
];

/// `GET /v1/tasks`: a filtered page, newest first, with the total.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks",
    params(
        ("state" = Option<crate::http::openapi::names::StateName>, Query, description = "only tasks in this state"),
        ("queue" = Option<String>, Query, description = "only this queue"),
        ("kind" = Option<String>, Query, description = "only this kind"),
        ("phase" = Option<String>, Query, description = "only this workflow phase"),
        ("created_by" = Option<String>, Query, description = "only tasks of this actor"),
        ("node" = Option<String>, Query, description = "only tasks whose latest attempt ran (or runs) on this node (in a cluster)"),
        ("created_after" = Option<String>, Query, format = DateTime, description = "RFC 3339, 1970 to 2262"),
        ("created_before" = Option<String>, Query, format = DateTime, description = "RFC 3339, 1970 to 2262"),
        ("limit" = Option<u32>, Query, maximum = 1000, description = "page size (default 100)"),
        ("offset" = Option<u64>, Query, maximum = 9_223_372_036_854_775_807_u64, description = "tasks to skip"),
    ),
    responses(
        (status = 200, description = "a page", body = TaskPage),
        (status = 400, description = "a bad parameter, named", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
    ))]
pub(crate) async fn list(
    State(state): State<HttpState>,
    params: Params,
) -> Result<Json<TaskPage>, ApiError> {
    params.only(&LIST_PARAMS)?;
    let filter = TaskFilter {
        state: params.parse("state", parse_state)?,
        queue: params.text("queue"),
        kind: params.text("kind"),
        phase: params.text("phase"),
        created_by: params.text("created_by"),
        node: params.text("node"),
        created_after: params.parse("created_after", |s| parse_time("created_after", s))?,
        created_before: params.parse("created_before", |s| parse_time("created_before", s))?,
    };
    let limit = params.parse("limit", parse_limit)?.unwrap_or(DEFAULT_LIMIT);
    let offset = params.parse("offset", parse_offset)?.unwrap_or(0);
    let page = state.system.list(filter, limit, offset).await?;
    let tasks: Vec<TaskJson> = page.tasks.into_iter().map(TaskJson::from).collect();
    Ok(Json(TaskPage {
        tasks,
        total: page.total,
    }))
}

fn parse_limit(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n <= MAX_LIMIT => Ok(n),
        _ => Err(format!(
            "expected a whole number from 0 to {MAX_LIMIT}, got {s:?}"
        )),
    }
}

/// An offset up to `i64::MAX`, the most a store can skip.
fn parse_offset(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n <= i64::MAX as u64 => Ok(n),
        _ => Err(format!(
            "expected a whole number from 0 to {}, got {s:?}",
            i64::MAX
        )),
    }
}

/// The optional body of `POST /v1/tasks/{id}/cancel`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CancelBody {
    /// Why; recorded in the `cancelled` event.
    reason: Option<String>,
}

/// `POST /v1/tasks/{id}/cancel`.
#[utoipa::path(post, path = "/v1/tasks/{id}/cancel", tag = "tasks",
    params(("id" = String, Path, format = Uuid, description = "the task's uuid")),
    request_body(content = Option<CancelBody>, description = "optional"),
    responses(
        (status = 200, description = "cancelled, or asked to stop", body = CommandAnswer),
        (status = 400, description = "not a uuid, or a bad body", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
        (status = 409, description = "the task has ended", body = ErrorBody),
        (status = 503, description = "not ready", body = ErrorBody),
    ))]
pub(crate) async fn cancel(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<CancelBody>,
) -> Result<Json<CommandAnswer>, ApiError> {
    let reason = body
        .and_then(|b| b.reason)
        .unwrap_or_else(|| "cancelled through the HTTP API".into());
    command(&state.system, &id, Command::Cancel(reason)).await
}

/// `POST /v1/tasks/{id}/pause`.
#[utoipa::path(post, path = "/v1/tasks/{id}/pause", tag = "tasks",
    params(("id" = String, Path, format = Uuid, description = "the task's uuid")),
    responses(
        (status = 200, description = "done, or requested", body = CommandAnswer),
        (status = 400, description = "not a uuid", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
        (status = 409, description = "not allowed from the task's state", body = ErrorBody),
        (status = 503, description = "not ready", body = ErrorBody),
    ))]
pub(crate) async fn pause(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CommandAnswer>, ApiError> {
    command(&state.system, &id, Command::Pause).await
}

/// `POST /v1/tasks/{id}/resume`.
#[utoipa::path(post, path = "/v1/tasks/{id}/resume", tag = "tasks",
    params(("id" = String, Path, format = Uuid, description = "the task's uuid")),
    responses(
        (status = 200, description = "done, or requested", body = CommandAnswer),
        (status = 400, description = "not a uuid", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
        (status = 409, description = "not allowed from the task's state", body = ErrorBody),
        (status = 503, description = "not ready", body = ErrorBody),
    ))]
pub(crate) async fn resume(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CommandAnswer>, ApiError> {
    command(&state.system, &id, Command::Resume).await
}

/// `POST /v1/tasks/{id}/restart`.
#[utoipa::path(post, path = "/v1/tasks/{id}/restart", tag = "tasks",
    params(("id" = String, Path, format = Uuid, description = "the task's uuid")),
    responses(
        (status = 200, description = "done, or requested", body = CommandAnswer),
        (status = 400, description = "not a uuid", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
        (status = 409, description = "not allowed from the task's state", body = ErrorBody),
        (status = 503, description = "not ready", body = ErrorBody),
    ))]
pub(crate) async fn restart(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CommandAnswer>, ApiError> {
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
async fn command(
    system: &TaskSystem,
    id: &str,
    cmd: Command,
) -> Result<Json<CommandAnswer>, ApiError> {
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
    Ok(Json(CommandAnswer {
        result: result.into(),
        task,
    }))
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
pub(super) async fn status(system: &TaskSystem, id: TaskId) -> Result<TaskStatus, TaskError> {
    match system.status(id) {
        Err(TaskError::NotFound(_)) => Ok(system.get(id).await?.status),
        other => other,
    }
}

pub(super) fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    raw.parse::<TaskId>().map_err(ApiError::from)
}
