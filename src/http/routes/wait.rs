//! `GET /v1/tasks/{id}/wait`: answers once the task ends (a long poll), so a client is
//! told at once instead of asking again and again.

use std::time::Duration;

use axum::extract::State;
use axum::Json;

use super::tasks::{status, task_id};
use crate::http::dto::TaskJson;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiPath, Params};
use crate::http::HttpState;
use crate::TaskError;

/// How long a wait lasts when `timeout_ms` is not given.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// The longest `timeout_ms` accepted.
const MAX_WAIT_MS: u64 = 300_000;
/// What a wait leaves of the request timeout, so the answer always beats the 408.
const MARGIN: Duration = Duration::from_secs(1);

/// `GET /v1/tasks/{id}/wait`: the task once it has ended, or as it is when the wait
/// runs out (check its `state`). The wait is capped a second below the node's request
/// timeout.
#[utoipa::path(get, path = "/v1/tasks/{id}/wait", tag = "tasks",
    params(
        ("id" = String, Path, format = Uuid, description = "the task's uuid"),
        ("timeout_ms" = Option<u64>, Query, maximum = 300_000, description = "how long to wait at most (default 10000; capped below the request timeout)"),
    ),
    responses(
        (status = 200, description = "the task: ended, or as it was when the wait ran out", body = TaskJson),
        (status = 400, description = "not a uuid, or a bad timeout_ms", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such task", body = ErrorBody),
    ))]
pub(crate) async fn wait(
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<String>,
    params: Params,
) -> Result<Json<TaskJson>, ApiError> {
    params.only(&["timeout_ms"])?;
    let id = task_id(&id)?;
    let asked = params.parse("timeout_ms", parse_timeout)?;
    let limit = asked
        .unwrap_or(DEFAULT_WAIT)
        .min(state.request_timeout.saturating_sub(MARGIN));
    match state.system.wait_timeout(id, limit).await {
        Ok(_) | Err(TaskError::WaitTimeout(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Json(status(&state.system, id).await?.into()))
}

fn parse_timeout(raw: &str) -> Result<Duration, String> {
    match raw.parse::<u64>() {
        Ok(ms) if ms <= MAX_WAIT_MS => Ok(Duration::from_millis(ms)),
        Ok(ms) => Err(format!("expected at most {MAX_WAIT_MS} ms, got {ms}")),
        Err(e) => Err(format!("expected milliseconds, got {raw:?}: {e}")),
    }
}
