//! The actions: POST forms checked on the server (operator role and CSRF token first),
//! answered with a redirect to the page they came from (303).
//!
//! Task commands are written into the task's events with the session's actor. Cancel is
//! confirmed on the server: without `confirm=yes` it answers a confirmation page.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::{DateTime, Utc};
use maud::html;
use serde::Deserialize;

use super::auth::Session;
use super::error::UiError;
use super::layout::{self, Nav};
use super::Ui;
use crate::{TaskError, TaskId};

/// The fields an action form may carry.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
    /// Why (cancel).
    pub reason: Option<String>,
    /// The result as JSON (complete).
    pub result: Option<String>,
    /// `yes` once confirmed (cancel).
    pub confirm: Option<String>,
    /// The slot to fire (a schedule's fire): RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` in UTC.
    pub slot: Option<String>,
}

/// `POST /ui/tasks/{id}/{action}`: cancel, pause, resume, restart, complete.
pub(crate) async fn task(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, UiError> {
    ui.auth
        .permit(&session, form.csrf.as_deref())
        .map_err(UiError::refused)?;
    let id: TaskId = id
        .parse()
        .map_err(|_| UiError::bad_request(format!("expected a task id (a uuid), got {id:?}")))?;
    let s = &ui.system;
    let actor = session.actor.as_str();
    let outcome = match action.as_str() {
        "cancel" if form.confirm.as_deref() != Some("yes") => {
            return Ok(confirm_cancel(id, &session))
        }
        "cancel" => {
            let reason = form.reason.filter(|r| !r.trim().is_empty());
            s.cancel_by(
                id,
                reason.unwrap_or_else(|| "cancelled from the dashboard".into()),
                actor,
            )
            .await
        }
        "pause" => s.pause_by(id, actor).await,
        "resume" => s.resume_by(id, actor).await,
        "restart" => s.restart_by(id, actor).await,
        "complete" => {
            s.complete_by(id, result(form.result.as_deref())?, actor)
                .await
        }
        other => return Err(UiError::not_found(format!("no task action {other:?}"))),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to(&format!("/ui/tasks/{id}?done={action}")).into_response()),
        Err(TaskError::NotFound(_)) => Err(ended(&ui, id).await),
        Err(e) => Err(e.into()),
    }
}

/// The result of a complete: JSON, `null` when empty.
fn result(raw: Option<&str>) -> Result<serde_json::Value, UiError> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(serde_json::Value::Null),
        Some(r) => serde_json::from_str(r)
            .map_err(|e| UiError::bad_request(format!("result: expected JSON, got {r:?}: {e}"))),
    }
}

/// The error for a command on a task no longer in memory: ended (409) or unknown (404).
async fn ended(ui: &Ui, id: TaskId) -> UiError {
    match ui.system.get(id).await {
        Ok(v) if v.status.state.is_terminal() => UiError::new(
            axum::http::StatusCode::CONFLICT,
            format!("task {id} is already {}", v.status.state),
        ),
        Ok(_) => UiError::not_found(format!("task {id} not found")),
        Err(e) => e.into(),
    }
}

/// Fires `slot` (or the next slot) of schedule `name` for the session's actor; answers
/// with the slot's task, new or the one an earlier fire created.
async fn fire(
    ui: &Ui,
    session: &Session,
    name: &str,
    slot: Option<&str>,
) -> Result<Response, UiError> {
    let slot = match slot.map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => super::tasks::parse_time(raw)
            .map(DateTime::<Utc>::from)
            .map_err(|e| UiError::bad_request(format!("slot: {e}")))?,
        None => ui.system.schedule(name).await?.next.ok_or_else(|| {
            UiError::new(
                axum::http::StatusCode::CONFLICT,
                format!("schedule {name:?} has no next slot"),
            )
        })?,
    };
    let receipt = ui
        .system
        .fire_schedule_by(name, slot, &session.actor)
        .await?;
    let done = if receipt.duplicate {
        "fired-before"
    } else {
        "fire"
    };
    tracing::info!(schedule = %name, slot = %slot, task = %receipt.id, duplicate = receipt.duplicate, actor = %session.actor, "slot fired from the dashboard");
    Ok(Redirect::to(&format!("/ui/tasks/{}?done={done}", receipt.id)).into_response())
}

fn confirm_cancel(id: TaskId, session: &Session) -> Response {
    let body = html! {
        h1 { "Cancel task " span.mono { (id) } "?" }
        p { "A waiting task ends at once; a running one is asked to stop and ends as cancelled." }
        form.confirm method="post" action={ "/ui/tasks/" (id) "/cancel" } {
            (layout::csrf(session))
            input type="hidden" name="confirm" value="yes";
            label for="reason" { "Reason (recorded in the task's events)" }
            input #reason type="text" name="reason" maxlength="200";
            button.danger type="submit" { "Cancel the task" }
            " " a href={ "/ui/tasks/" (id) } { "Keep it" }
        }
    };
    layout::page("Cancel task", Nav::Tasks, session, body).into_response()
}

/// `POST /ui/queues/{name}/{action}`: pause or resume dispatch.
pub(crate) async fn queue(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, UiError> {
    ui.auth
        .permit(&session, form.csrf.as_deref())
        .map_err(UiError::refused)?;
    match action.as_str() {
        "pause" => ui.system.pause_queue(&name)?,
        "resume" => ui.system.resume_queue(&name)?,
        other => return Err(UiError::not_found(format!("no queue action {other:?}"))),
    }
    tracing::info!(queue = %name, actor = %session.actor, action = %action, "queue command from the dashboard");
    Ok(Redirect::to(&format!("/ui/queues?done={action}")).into_response())
}

/// `POST /ui/schedules/{name}/{action}`: pause, resume, or fire a slot now (the one in
/// `slot`, or the next one). A fired slot's task is created by the session's actor and
/// carries the slot's unique key, so firing a slot twice creates one task; the answer is
/// that task's page.
pub(crate) async fn schedule(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, UiError> {
    ui.auth
        .permit(&session, form.csrf.as_deref())
        .map_err(UiError::refused)?;
    match action.as_str() {
        "pause" => drop(ui.system.pause_schedule(&name).await?),
        "resume" => drop(ui.system.resume_schedule(&name).await?),
        "fire" => return fire(&ui, &session, &name, form.slot.as_deref()).await,
        other => return Err(UiError::not_found(format!("no schedule action {other:?}"))),
    }
    tracing::info!(schedule = %name, actor = %session.actor, action = %action, "schedule command from the dashboard");
    Ok(Redirect::to(&format!("/ui/schedules?done={action}")).into_response())
}
