//! The queues: depth, running, workers, and pause/resume of dispatch.

use axum::extract::{Query, State};
use axum::Extension;
use maud::{html, Markup};
use std::collections::HashMap;

use super::auth::Session;
use super::layout::{self, Nav};
use super::Ui;
use crate::breaker::BreakerState;
use crate::system::{KindGates, QueueStats};

/// `GET /ui/queues`.
pub(crate) async fn page(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Query(q): Query<HashMap<String, String>>,
) -> Markup {
    let queues = ui.system.queues();
    let health = ui.system.health().await;
    let gates = health
        .services
        .iter()
        .filter(|s| s.service == "breakers" || s.service.starts_with("pool:"));
    let body = html! {
        h1 { "Queues" }
        @if let Some(done) = super::format::done(&q) { p.notice role="status" { (done) } }
        (table(&queues, &session))
        h2 { "Circuit breakers and rate limits per kind" }
        div #gates hx-ext="sse,morph" sse-connect="/ui/live" {
            p.updated { span #live-state .live-state { "" } }
            div sse-swap="gates" hx-swap="morph:innerHTML" aria-live="polite" { (gates_table(&ui.system.kind_gates())) }
        }
        h2 { "Pools and circuit breakers" }
        ul {
            @for s in gates {
                li { strong { (s.service) } " (" (format!("{:?}", s.status).to_lowercase()) "): " (s.detail) }
            }
        }
    };
    layout::page("Queues", Nav::Queues, &session, body)
}

/// The queue table with its actions.
pub(crate) fn table(queues: &[QueueStats], session: &Session) -> Markup {
    html! {
        table.queues {
            thead { tr {
                th scope="col" { "queue" } th.num scope="col" { "waiting" } th.num scope="col" { "bound" }
                th.num scope="col" { "running" } th.num scope="col" { "workers" } th.num scope="col" { "idle" }
                th.num scope="col" { "min" } th.num scope="col" { "max" } th scope="col" { "dispatch" }
                th scope="col" { "rate limit" } th.num scope="col" { "tokens left" }
                th scope="col" { span.sr-only { "actions" } }
            } }
            tbody {
                @for q in queues {
                    tr {
                        td { a href={ "/ui/tasks?queue=" (q.name) } { (q.name) } }
                        td.num { (q.depth) } td.num { (q.bound) } td.num { (q.running) }
                        td.num { (q.workers) } td.num { (q.idle) }
                        td.num { (q.min_workers) } td.num { (q.max_workers) }
                        td { @if q.paused { span.badge.paused { "paused" } } @else { "running" } }
                        td { @if let Some(r) = q.rate_limit { (r.per_second) "/s, burst " (r.burst) } @else { span.muted { "none" } } }
                        td.num { @if let Some(t) = q.tokens { (t) } @else { span.muted { "–" } } }
                        td {
                            @let base = format!("/ui/queues/{}", super::schedules::encode_segment(&q.name));
                            @if q.paused {
                                (layout::action(session, &format!("{base}/resume"), "Resume", ""))
                            } @else {
                                (layout::action(session, &format!("{base}/pause"), "Pause", ""))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Each kind's breaker (state, next probe), rate limit and the tokens it has left (an
/// estimate read without taking one): a live region of the page.
pub(crate) fn gates_table(gates: &[KindGates]) -> Markup {
    html! {
        table.gates {
            thead { tr {
                th scope="col" { "kind" } th scope="col" { "breaker" } th scope="col" { "next probe" }
                th scope="col" { "rate limit" } th.num scope="col" { "tokens left" }
            } }
            tbody {
                @for g in gates {
                    tr {
                        td { a href={ "/ui/tasks?kind=" (g.kind) } { (g.kind) } }
                        td { @match g.breaker {
                            None => span.muted { "none" },
                            Some(BreakerState::Closed) => span.badge.closed { "closed" },
                            Some(BreakerState::Open) => span.badge.open { "open" },
                            Some(BreakerState::HalfOpen) => span.badge.half-open { "half-open: probing" },
                        } }
                        td { @if let Some(d) = g.next_probe { "in " (d.as_secs()) " s" } }
                        td { @if let Some(r) = g.rate_limit { (r.per_second) "/s, burst " (r.burst) } @else { span.muted { "none" } } }
                        td.num { @if let Some(t) = g.tokens { (t) } @else { span.muted { "–" } } }
                    }
                }
            }
        }
    }
}
