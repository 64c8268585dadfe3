//! Adding and editing a schedule from the dashboard (operators only).
//!
//! The form sets the name, the expression, the zone and the task (kind, queue, args). An
//! edit keeps every other setting of the schedule (daylight-saving, catch-up and overlap
//! policies, paused) and the task's other options; a new schedule takes the defaults. A
//! refused schedule (bad expression, unknown zone) shows the form again with the error.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::{Role, Session};
use super::error::UiError;
use super::layout::{self, Nav};
use super::Ui;
use crate::scheduler::ScheduleSpec;
use crate::NewTask;

/// The form's fields.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ScheduleForm {
    /// The session's CSRF token.
    pub csrf: Option<String>,
    /// The schedule's name (an existing name is replaced).
    #[serde(default)]
    pub name: String,
    /// The cron expression.
    #[serde(default)]
    pub cron: String,
    /// An IANA zone; empty means UTC.
    #[serde(default)]
    pub timezone: String,
    /// The task's kind.
    #[serde(default)]
    pub kind: String,
    /// The task's queue; empty means the default queue.
    #[serde(default)]
    pub queue: String,
    /// The task's args as JSON; empty means `{}`.
    #[serde(default)]
    pub args: String,
}

impl ScheduleForm {
    fn of(spec: &ScheduleSpec) -> Self {
        Self {
            csrf: None,
            name: spec.name.clone(),
            cron: spec.cron.clone(),
            timezone: spec.timezone.clone(),
            kind: spec.task.kind.clone(),
            queue: spec.task.queue.clone().unwrap_or_default(),
            args: spec.task.args.to_string(),
        }
    }

    /// The spec this form asks for, over `old` when it edits one.
    fn spec(&self, old: Option<ScheduleSpec>) -> Result<ScheduleSpec, String> {
        let args = match self.args.trim() {
            "" => serde_json::json!({}),
            a => serde_json::from_str(a)
                .map_err(|e| format!("args: expected JSON, got {a:?}: {e}"))?,
        };
        let (name, kind) = (self.name.trim(), self.kind.trim());
        if name.is_empty() || kind.is_empty() {
            return Err("a schedule needs a name and a task kind".into());
        }
        let queue = Some(self.queue.trim())
            .filter(|q| !q.is_empty())
            .map(String::from);
        let zone = Some(self.timezone.trim())
            .filter(|z| !z.is_empty())
            .unwrap_or("UTC");
        let task = match &old {
            Some(o) => NewTask {
                kind: kind.into(),
                args,
                queue,
                ..o.task.clone()
            },
            None => NewTask {
                queue,
                ..NewTask::new(kind, args)
            },
        };
        let fresh = ScheduleSpec::new(name, self.cron.trim(), task.clone()).timezone(zone);
        Ok(match old {
            Some(o) => ScheduleSpec {
                cron: fresh.cron,
                timezone: fresh.timezone,
                task,
                ..o
            },
            None => fresh,
        })
    }
}

/// `GET /ui/schedules/edit[?name=<name>]`: the form, empty or with that schedule.
pub(crate) async fn page(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Markup, UiError> {
    let form = match q.get("name").filter(|n| !n.is_empty()) {
        Some(name) => ScheduleForm::of(&ui.system.schedule(name).await?.record.spec),
        None => ScheduleForm::default(),
    };
    Ok(view(&form, &session, None))
}

/// `POST /ui/schedules/save`: adds or replaces the schedule.
pub(crate) async fn save(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Form(form): Form<ScheduleForm>,
) -> Result<Response, UiError> {
    ui.auth
        .permit(&session, form.csrf.as_deref())
        .map_err(UiError::refused)?;
    let old = ui.system.schedule(form.name.trim()).await.ok();
    let put = match form.spec(old.map(|i| i.record.spec)) {
        Ok(spec) => ui
            .system
            .put_schedule(spec)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    if let Err(e) = put {
        return Ok((StatusCode::BAD_REQUEST, view(&form, &session, Some(&e))).into_response());
    }
    tracing::info!(schedule = %form.name.trim(), actor = %session.actor, "schedule saved from the dashboard");
    Ok(Redirect::to("/ui/schedules?done=save").into_response())
}

fn view(form: &ScheduleForm, session: &Session, error: Option<&str>) -> Markup {
    let body = html! {
        h1 { @if form.name.is_empty() { "New schedule" } @else { "Schedule " (form.name) } }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if session.role != Role::Operator {
            p { "Your session is read-only (viewer)." }
        } @else {
            form.schedule-form method="post" action="/ui/schedules/save" {
                (layout::csrf(session))
                label for="s-name" { "Name (an existing name is replaced)" }
                input #s-name type="text" name="name" value=(form.name) required maxlength="200";
                label for="s-cron" { "Cron expression: second minute hour day month weekday [year]" }
                input #s-cron .mono type="text" name="cron" value=(form.cron) required placeholder="0 30 2 * * *";
                label for="s-zone" { "Time zone (IANA, empty for UTC)" }
                input #s-zone type="text" name="timezone" value=(form.timezone) placeholder="Europe/Berlin";
                label for="s-kind" { "Task kind" }
                input #s-kind type="text" name="kind" value=(form.kind) required;
                label for="s-queue" { "Queue (empty for default)" }
                input #s-queue type="text" name="queue" value=(form.queue);
                label for="s-args" { "Args (JSON)" }
                textarea #s-args .mono name="args" rows="4" { (form.args) }
                button type="submit" { "Save the schedule" }
                " " a href="/ui/schedules" { "Back to the schedules" }
            }
        }
    };
    layout::page("Edit schedule", Nav::Schedules, session, body)
}
