//! One task: its fields, args and result, one lane per attempt, crash history, actions.
//!
//! Events are grouped into lanes: what happened before the first attempt, then one lane
//! per `started` event holding everything up to the next one (progress, the failure, the
//! backoff, a crash). A long history shows its newest [`MAX_EVENTS`] events unless the
//! URL asks for all of them.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Extension;
use maud::{html, Markup};

use super::auth::{Role, Session};
use super::error::UiError;
use super::layout::{self, Nav};
use super::{format, Ui};
use crate::store::{Crash, EventKind, StoredEvent};
use crate::system::TaskView;
use crate::{TaskId, TaskState, TaskStatus};

/// Events shown unless `?events=all`.
pub(crate) const MAX_EVENTS: usize = 200;

/// `GET /ui/tasks/{id}`.
pub(crate) async fn page(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Markup, UiError> {
    let id: TaskId = id
        .parse()
        .map_err(|_| UiError::bad_request(format!("expected a task id (a uuid), got {id:?}")))?;
    let view = ui.system.get(id).await?;
    let all = q.get("events").is_some_and(|v| v == "all");
    let done = format::done(&q);
    Ok(layout::page(
        &format!("Task {}", super::tasks::short(&id.to_string())),
        Nav::Tasks,
        &session,
        body(&view, &session, all, done),
    ))
}

/// The page body (the unit tests render it with hostile values).
pub(crate) fn body(
    view: &TaskView,
    session: &Session,
    all: bool,
    done: Option<&'static str>,
) -> Markup {
    let t = &view.status;
    html! {
        h1 { "Task " span.mono { (t.id) } }
        @if let Some(done) = done { p.notice role="status" { (done) } }
        @if t.state.is_terminal() {
            (fields(t))
        } @else {
            div hx-ext="sse,morph" sse-connect={ "/ui/live?task=" (t.id) } {
                p.updated { span #live-state .live-state { "" } }
                div #task-live sse-swap="task" hx-swap="morph:innerHTML" aria-live="polite" { (fields(t)) }
            }
        }
        (actions(view, session))
        section aria-labelledby="args-h" { h2 #args-h { "Args" } (format::json(&t.args)) }
        @if let Some(r) = &t.result { section aria-labelledby="result-h" { h2 #result-h { "Result" } (format::json(r)) } }
        @if let Some(e) = &t.error {
            section aria-labelledby="error-h" {
                h2 #error-h { "Last error" }
                p { "attempt " (e.attempt) ", " (e.kind.as_str()) } pre.error { (e.message) }
            }
        }
        @if let Some(r) = &t.cancel_reason { p { "Cancelled: " (r) } }
        (lanes(&view.events, all, t.id))
        (crashes(&view.crashes))
    }
}

/// The task's fields: the live region of its page (state, attempt, progress).
pub(crate) fn fields(t: &TaskStatus) -> Markup {
    html! {
        dl.fields {
            dt { "state" } dd { (format::state(t.state)) }
            dt { "kind" } dd { (t.kind) }
            dt { "queue" } dd { a href={ "/ui/tasks?queue=" (t.queue) } { (t.queue) } }
            dt { "attempt" } dd { (t.attempt) " of " (t.max_attempts) }
            @if let Some(title) = &t.title { dt { "title" } dd { (title) } }
            @if let Some(by) = &t.created_by { dt { "created by" } dd { (by) } }
            @if let Some(key) = &t.unique_key { dt { "unique key" } dd.mono { (key) } }
            @if let Some(p) = &t.phase { dt { "phase" } dd { (p) } }
            @if let Some(w) = &t.worker { dt { "worker" } dd.mono { (w) } }
            dt { "created" } dd { (format::when(t.created_at)) }
            dt { "updated" } dd { (format::when(t.updated_at)) }
            @if let Some(p) = &t.progress {
                dt { "progress" } dd { progress max="100" value=(p.percent) { (p.percent) "%" } " " (p.percent) "% " (p.message) }
            }
        }
    }
}

fn actions(view: &TaskView, session: &Session) -> Markup {
    let t = &view.status;
    if t.state.is_terminal() || session.role != Role::Operator {
        return html! {};
    }
    let base = format!("/ui/tasks/{}", t.id);
    html! {
        section.actions aria-label="Actions" {
            (layout::action(session, &format!("{base}/cancel"), "Cancel…", "danger"))
            @if t.state == TaskState::Paused {
                (layout::action(session, &format!("{base}/resume"), "Resume", ""))
            } @else {
                (layout::action(session, &format!("{base}/pause"), "Pause", ""))
            }
            (layout::action(session, &format!("{base}/restart"), "Restart", ""))
            form.action method="post" action={ (base) "/complete" } {
                (layout::csrf(session))
                label for="complete-result" { "Result (JSON)" }
                input #complete-result type="text" name="result" value="null" size="10";
                button type="submit" { "Complete" }
            }
        }
    }
}

/// The attempt lanes, newest events last.
fn lanes(events: &[StoredEvent], all: bool, id: TaskId) -> Markup {
    let cut = if all {
        0
    } else {
        events.len().saturating_sub(MAX_EVENTS)
    };
    let mut lanes: Vec<(String, Vec<&StoredEvent>)> =
        vec![("Before the first attempt".into(), vec![])];
    for e in &events[cut..] {
        if let EventKind::Started { attempt, worker } = &e.event.kind {
            let on = worker
                .as_deref()
                .map(|w| format!(" on {w}"))
                .unwrap_or_default();
            lanes.push((format!("Attempt {attempt}{on}"), vec![]));
        }
        lanes.last_mut().expect("one lane at least").1.push(e);
    }
    html! {
        section aria-labelledby="events-h" {
            h2 #events-h { "Attempts and events (" (events.len()) ")" }
            @if cut > 0 {
                p { "Showing the newest " (MAX_EVENTS) ". " a href={ "/ui/tasks/" (id) "?events=all" } { "Show all " (events.len()) } }
            }
            ol.lanes {
                @for (title, lane) in lanes.iter().filter(|(_, l)| !l.is_empty()) {
                    li.lane {
                        h3 { (title) }
                        ol.events {
                            @for e in lane {
                                li class={ "ev ev-" (e.event.kind.name()) } {
                                    (format::when(e.event.at)) " " strong { (e.event.kind.name().replace('_', " ")) }
                                    " " (detail(&e.event.kind))
                                    @if let Some(a) = &e.event.actor_id { " " span.actor { "by " (a) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What an event says beyond its name.
fn detail(kind: &EventKind) -> String {
    match kind {
        EventKind::Progress {
            percent,
            message,
            phase,
        } => {
            let phase = phase
                .as_deref()
                .map(|p| format!(" [{p}]"))
                .unwrap_or_default();
            format!("{percent}% {message}{phase}")
        }
        EventKind::AttemptFailed { error } | EventKind::Failed { error } => {
            format!("{}: {}", error.kind.as_str(), error.message)
        }
        EventKind::RetryScheduled { attempt, at } => {
            format!("attempt {attempt} at {}", format::time(*at))
        }
        EventKind::Snoozed { until } => format!("until {}", format::time(*until)),
        EventKind::Succeeded { result } => super::tasks::clip(&result.to_string(), 120),
        EventKind::Cancelled { reason } => reason.clone(),
        EventKind::Crashed { crash } => format!("attempt {}: {}", crash.attempt, crash.reason),
        EventKind::StopRequested { intent } => intent.name().to_string(),
        _ => String::new(),
    }
}

fn crashes(crashes: &[Crash]) -> Markup {
    html! {
        @if !crashes.is_empty() {
            section aria-labelledby="crashes-h" {
                h2 #crashes-h { "Crash history" }
                table {
                    thead { tr { th scope="col" { "when" } th scope="col" { "attempt" } th scope="col" { "how" } th scope="col" { "why" } } }
                    tbody {
                        @for c in crashes {
                            tr { td { (format::when(c.at)) } td.num { (c.attempt) } td { (c.kind.as_str()) } td { (c.reason) } }
                        }
                    }
                }
            }
        }
    }
}
