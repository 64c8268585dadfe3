//! `/v1/schedules`: cron schedules, put and read by name.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cron::DstPolicy;
use crate::http::dto::{utc, TaskTemplate};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::HttpState;
use crate::scheduler::{CatchUp, Overlap, ScheduleInfo, ScheduleSpec};

/// The body of `PUT /v1/schedules/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScheduleBody {
    cron: String,
    timezone: Option<String>,
    task: TaskTemplate,
    dst: Option<DstPolicy>,
    catch_up: Option<CatchUp>,
    catch_up_max: Option<u32>,
    overlap: Option<Overlap>,
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
#[derive(Debug, Serialize)]
pub(super) struct ScheduleJson {
    name: String,
    cron: String,
    timezone: String,
    dst: DstPolicy,
    catch_up: CatchUp,
    catch_up_max: u32,
    overlap: Overlap,
    paused: bool,
    last_slot: Option<String>,
    last_task: Option<crate::TaskId>,
    next: Option<String>,
    created_at: String,
    updated_at: String,
    task: Value,
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
pub(super) async fn list(State(state): State<HttpState>) -> Result<Json<Value>, ApiError> {
    let all = state.system.schedules().await?;
    let all: Vec<ScheduleJson> = all.into_iter().map(ScheduleJson::from).collect();
    Ok(Json(json!({"schedules": all})))
}

/// `GET /v1/schedules/{name}`.
pub(super) async fn get(
    State(state): State<HttpState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ScheduleJson>, ApiError> {
    Ok(Json(state.system.schedule(&name).await?.into()))
}

/// `PUT /v1/schedules/{name}`: adds the schedule or replaces the one of that name.
pub(super) async fn put(
    State(state): State<HttpState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> Result<Json<ScheduleJson>, ApiError> {
    let spec = body.into_spec(name)?;
    Ok(Json(state.system.put_schedule(spec).await?.into()))
}

/// `DELETE /v1/schedules/{name}`: 204; the tasks it created are not touched.
pub(super) async fn remove(
    State(state): State<HttpState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.system.remove_schedule(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
