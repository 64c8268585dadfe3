//! `/v1/schedules`: cron schedules, put and read by name.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::cron::DstPolicy;
use crate::http::dto::{utc, TaskTemplate};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::openapi::names;
use crate::http::HttpState;
use crate::scheduler::{CatchUp, Overlap, ScheduleInfo, ScheduleSpec};

/// The body of `PUT /v1/schedules/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleBody {
    /// A cron expression with seconds: `sec min hour day month weekday [year]`.
    #[schema(example = "0 */5 * * * *")]
    cron: String,
    /// An IANA zone such as `Europe/Paris` (default UTC).
    timezone: Option<String>,
    /// The task each slot creates.
    task: TaskTemplate,
    /// What a slot in a DST gap or overlap does.
    #[schema(value_type = Option<names::DstJson>)]
    dst: Option<DstPolicy>,
    /// What happens to slots missed while the node was down.
    #[schema(value_type = Option<names::CatchUpName>)]
    catch_up: Option<CatchUp>,
    /// The most missed slots fired on catch-up (at least 1).
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 4_294_967_295_u64)]
    catch_up_max: Option<u32>,
    /// What a slot does while the previous run still runs.
    #[schema(value_type = Option<names::OverlapName>)]
    overlap: Option<Overlap>,
    /// Created paused.
    paused: Option<bool>,
}

impl ScheduleBody {
    fn into_spec(self, name: String) -> Result<ScheduleSpec, ApiError> {
        let defaults = ScheduleSpec::new(name, self.cron, self.task.into_new_task(true)?);
        Ok(ScheduleSpec {
            timezone: self.timezone.unwrap_or(defaults.timezone.clone()),
            dst: self.dst.unwrap_or_default(),
            catch_up: self.catch_up.unwrap_or_default(),
            catch_up_max: self.catch_up_max.unwrap_or(defaults.catch_up_max),
            overlap: self.overlap.unwrap_or_default(),
            paused: self.paused.unwrap_or(false),
            ..defaults
        })
    }
}

/// A schedule as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleJson {
    name: String,
    cron: String,
    timezone: String,
    #[schema(value_type = names::DstJson)]
    dst: DstPolicy,
    #[schema(value_type = names::CatchUpName)]
    catch_up: CatchUp,
    catch_up_max: u32,
    #[schema(value_type = names::OverlapName)]
    overlap: Overlap,
    paused: bool,
    #[schema(format = DateTime)]
    last_slot: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    last_task: Option<crate::TaskId>,
    #[schema(format = DateTime)]
    next: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// The task template.
    #[schema(value_type = Object)]
    task: Value,
}

/// Every schedule.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleList {
    /// By name.
    schedules: Vec<ScheduleJson>,
}

impl From<ScheduleInfo> for ScheduleJson {
    fn from(info: ScheduleInfo) -> Self {
        let r = info.record;
        let spec = r.spec;
        let t = spec.task;
        let task = json!({
            "kind": t.kind,
            "args": t.args,
            "queue": t.queue,
            "priority": t.priority,
            "timeout_ms": t.timeout.map(|d| d.as_millis() as u64),
            "max_attempts": t.max_attempts,
            "title": t.title,
        });
        Self {
            name: spec.name,
            cron: spec.cron,
            timezone: spec.timezone,
            dst: spec.dst,
            catch_up: spec.catch_up,
            catch_up_max: spec.catch_up_max,
            overlap: spec.overlap,
            paused: spec.paused,
            last_slot: r.last_slot.map(utc),
            last_task: r.last_task,
            next: info.next.map(utc),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            task,
        }
    }
}

/// `GET /v1/schedules`: every schedule, by name.
#[utoipa::path(get, path = "/v1/schedules", tag = "schedules",
    responses(
        (status = 200, description = "every schedule", body = ScheduleList),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 503, description = "not ready", body = ErrorBody),
    ))]
pub(crate) async fn list(State(state): State<HttpState>) -> Result<Json<ScheduleList>, ApiError> {
    let all = state.system.schedules().await?;
    let schedules = all.into_iter().map(ScheduleJson::from).collect();
    Ok(Json(ScheduleList { schedules }))
}

/// `GET /v1/schedules/{name}`.
#[utoipa::path(get, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._:-]{1,128}$", description = "1 to 128 of [A-Za-z0-9._:-]")),
    responses(
        (status = 200, description = "the schedule", body = ScheduleJson),
        (status = 400, description = "a bad name", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such schedule", body = ErrorBody),
        (status = 503, description = "not ready", body = ErrorBody),
    ))]
pub(crate) async fn get(
    State(state): State<HttpState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ScheduleJson>, ApiError> {
    Ok(Json(state.system.schedule(&name).await?.into()))
}

/// `PUT /v1/schedules/{name}`: adds the schedule or replaces the one of that name.
#[utoipa::path(put, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._:-]{1,128}$", description = "1 to 128 of [A-Za-z0-9._:-]")),
    request_body = ScheduleBody,
    responses(
        (status = 200, description = "the schedule as stored", body = ScheduleJson),
        (status = 400, description = "a bad field, named", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 413, description = "body over the limit", body = ErrorBody),
        (status = 503, description = "not ready", body = ErrorBody),
    ))]
pub(crate) async fn put(
    State(state): State<HttpState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> Result<Json<ScheduleJson>, ApiError> {
    let spec = body.into_spec(name)?;
    Ok(Json(state.system.put_schedule(spec).await?.into()))
}

/// `DELETE /v1/schedules/{name}`: 204; the tasks it created are not touched.
#[utoipa::path(delete, path = "/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9._:-]{1,128}$", description = "1 to 128 of [A-Za-z0-9._:-]")),
    responses(
        (status = 204, description = "removed"),
        (status = 400, description = "a bad name", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no such schedule", body = ErrorBody),
        (status = 503, description = "not ready", body = ErrorBody),
    ))]
pub(crate) async fn remove(
    State(state): State<HttpState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.system.remove_schedule(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
