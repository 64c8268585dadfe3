//! The schedules: expression, zone, policies, last slot, and the next fires computed on
//! the server, in UTC and in the schedule's own zone.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Extension;
use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::auth::{Role, Session};
use super::error::UiError;
use super::layout::{self, Nav};
use super::{format, Ui};
use crate::cron::parse_zone;
use crate::scheduler::ScheduleInfo;

/// Next fires shown per schedule.
const NEXT: usize = 5;

/// `GET /ui/schedules`.
pub(crate) async fn page(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Markup, UiError> {
    let schedules = ui.system.schedules().await?;
    let mut rows = Vec::with_capacity(schedules.len());
    for s in schedules {
        let next = ui
            .system
            .next_fires(&s.record.spec.name, NEXT)
            .await
            .unwrap_or_default();
        rows.push((s, next));
    }
    let body = html! {
        h1 { "Schedules" }
        @if let Some(done) = format::done(&q) { p.notice role="status" { (done) } }
        @if session.role == Role::Operator { p { a.button href="/ui/schedules/edit" { "Add a schedule" } } }
        @if rows.is_empty() { p.empty { "No schedule yet. Add one here or with " code { "PUT /v1/schedules/{name}" } "." } }
        @for (info, next) in &rows { (schedule(info, next, &session)) }
    };
    Ok(layout::page("Schedules", Nav::Schedules, &session, body))
}

/// One schedule's card (the unit tests render it with hostile values).
pub(crate) fn schedule(info: &ScheduleInfo, next: &[DateTime<Utc>], session: &Session) -> Markup {
    let spec = &info.record.spec;
    let zone = parse_zone(&spec.timezone).ok();
    let local = |t: &DateTime<Utc>| match zone {
        Some(z) => t
            .with_timezone(&z)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        None => String::new(),
    };
    let base = format!("/ui/schedules/{}", encode_segment(&spec.name));
    let operator = session.role == Role::Operator;
    html! {
        section.schedule aria-label={ "Schedule " (spec.name) } {
            h2 { (spec.name) @if spec.paused { " " span.badge.paused { "paused" } } }
            dl.fields {
                dt { "expression" } dd { span.mono { (spec.cron) }
                    @if let Some(words) = super::cron_words::describe(&spec.cron) { br; span.words { (words) } } }
                dt { "zone" } dd { (spec.timezone) }
                dt { "task" } dd { (spec.task.kind) " on " (spec.task.queue.as_deref().unwrap_or("default")) }
                dt { "daylight saving" } dd { "gap: " (format!("{:?}", spec.dst.gap).to_lowercase()) ", fold: " (format!("{:?}", spec.dst.fold).to_lowercase()) }
                dt { "catch-up" } dd { (format!("{:?}", spec.catch_up).to_lowercase()) " (at most " (spec.catch_up_max) ")" }
                dt { "overlap" } dd { (format!("{:?}", spec.overlap).to_lowercase()) }
                dt { "last fired slot" } dd {
                    @match (&info.record.last_slot, &info.record.last_task) {
                        (Some(slot), Some(task)) => { (format::utc(*slot)) " · " a href={ "/ui/tasks/" (task) } { "its task" } },
                        (Some(slot), None) => (format::utc(*slot)),
                        _ => "none yet",
                    }
                }
            }
            table.fires {
                caption { "Next fires" }
                thead { tr {
                    th scope="col" { "UTC" } th scope="col" { "in " (spec.timezone) } th scope="col" { "in your zone" }
                    @if operator { th scope="col" { span.sr-only { "actions" } } }
                } }
                tbody {
                    @for t in next {
                        tr {
                            td { (format::utc(*t)) } td { (local(t)) }
                            td { time.local datetime=(t.to_rfc3339()) { "(needs JavaScript)" } }
                            @if operator { td { (fire_form(session, &base, t)) } }
                        }
                    }
                }
            }
            @if let Ok(r) = spec.recurrence() { (super::dst::block(&r, Utc::now())) }
            div.actions {
                @if spec.paused {
                    (layout::action(session, &format!("{base}/resume"), "Resume", ""))
                } @else {
                    (layout::action(session, &format!("{base}/pause"), "Pause", ""))
                }
                (layout::action(session, &format!("{base}/fire"), "Fire the next slot now", ""))
                @if operator {
                    a.button href={ "/ui/schedules/edit?name=" (encode_segment(&spec.name)) } { "Edit" }
                }
            }
            @if operator {
                form.fire-slot method="post" action={ (base) "/fire" } {
                    (layout::csrf(session))
                    @let id = format!("slot-{}", encode_segment(&spec.name));
                    label for=(id) { "Fire a chosen slot (UTC), e.g. a missed one " }
                    input id=(id) type="datetime-local" step="1" name="slot" required;
                    " " button type="submit" { "Fire this slot" }
                }
            }
        }
    }
}

/// The button that fires one listed slot (its task is created once, whoever fires it).
fn fire_form(session: &Session, base: &str, slot: &DateTime<Utc>) -> Markup {
    html! {
        form.action method="post" action={ (base) "/fire" } {
            (layout::csrf(session))
            input type="hidden" name="slot" value=(slot.to_rfc3339());
            button type="submit" aria-label={ "Fire the slot of " (format::utc(*slot)) } { "Fire" }
        }
    }
}

/// Percent-encodes a path segment.
pub(crate) fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
