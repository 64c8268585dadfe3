//! The overview: tasks per state, queue load and service health. The counts, the queues
//! and the "last updated" mark are live regions, swapped (by morphing) from the stream.

use axum::extract::State;
use axum::Extension;
use maud::{html, Markup};

use super::auth::Session;
use super::layout::{self, Nav};
use super::live::Snapshot;
use super::{format, Ui};

/// `GET /ui`.
pub(crate) async fn page(State(ui): State<Ui>, Extension(session): Extension<Session>) -> Markup {
    let snapshot = ui.live.current().await;
    let health = ui.system.health().await;
    let body = html! {
        h1 { "Overview" }
        div #live hx-ext="sse,morph" sse-connect="/ui/live" {
            p.updated {
                span #updated sse-swap="updated" hx-swap="morph:innerHTML" { (updated(&snapshot)) }
                " " span #live-state .live-state { "" }
            }
            section aria-labelledby="counts-h" {
                h2 #counts-h { "Tasks by state" }
                div #counts sse-swap="counts" hx-swap="morph:innerHTML" aria-live="polite" {
                    (counts(&snapshot))
                }
            }
            section aria-labelledby="rates-h" {
                h2 #rates-h { "Throughput and latency" }
                div #rates sse-swap="rates" hx-swap="morph:innerHTML" {
                    (super::metrics::view(snapshot.rates.as_ref(), &snapshot.marks()))
                }
            }
            section aria-labelledby="queues-h" {
                h2 #queues-h { "Queues" }
                div #queues sse-swap="queues" hx-swap="morph:innerHTML" { (queues(&snapshot)) }
            }
        }
        section aria-labelledby="health-h" {
            h2 #health-h { "Services" }
            @let r = ui.system.recovery();
            p { "At start this node recovered " (r.loaded) " open tasks from the store ("
                (r.interrupted) " interrupted, " (r.orphaned) " orphaned)." }
            p { "Overall: " strong { (format!("{:?}", health.status).to_lowercase()) } }
            table {
                thead { tr { th scope="col" { "service" } th scope="col" { "status" } th scope="col" { "detail" } } }
                tbody {
                    @for s in &health.services {
                        tr { td { (s.service) } td { (format!("{:?}", s.status).to_lowercase()) } td { (s.detail) } }
                    }
                }
            }
        }
    };
    layout::page("Overview", Nav::Overview, &session, body)
}

/// The counts region: one link per state, to the task list filtered by it.
pub(crate) fn counts(s: &Snapshot) -> Markup {
    html! {
        @match &s.counts {
            Ok(counts) => ul.counts {
                @for (state, n) in counts {
                    li { a href={ "/ui/tasks?state=" (state.as_str()) } {
                        span.n { (n) } " " (format::state(*state))
                    } }
                }
            },
            Err(e) => p.error role="alert" { "Counts unavailable: " (e) },
        }
    }
}

/// The queues region: depth, running, workers, paused.
pub(crate) fn queues(s: &Snapshot) -> Markup {
    html! {
        table {
            thead { tr {
                th scope="col" { "queue" } th.num scope="col" { "waiting" } th.num scope="col" { "running" }
                th.num scope="col" { "workers (idle)" } th.num scope="col" { "min–max" } th scope="col" { "dispatch" }
            } }
            tbody {
                @for q in &s.queues {
                    tr {
                        td { a href={ "/ui/tasks?queue=" (q.name) } { (q.name) } }
                        td.num { (q.depth) " / " (q.bound) }
                        td.num { (q.running) }
                        td.num { (q.workers) " (" (q.idle) ")" }
                        td.num { (q.min_workers) "–" (q.max_workers) }
                        td { @if q.paused { span.badge.paused { "paused" } } @else { "running" } }
                    }
                }
            }
        }
    }
}

/// The "last updated" mark.
pub(crate) fn updated(s: &Snapshot) -> Markup {
    html! { span { "Last updated " (format::when(s.at)) } }
}
