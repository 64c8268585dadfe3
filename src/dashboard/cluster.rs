//! The cluster as this node sees it: every node's state, heartbeat and load, and the
//! drain of this node. The node table is a live region, swapped (by morphing) from the
//! stream; the drain form stays outside it, so no swap lands under a confirmation.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};

use super::actions::ActionForm;
use super::auth::Session;
use super::error::UiError;
use super::layout::{self, Nav};
use super::Ui;
use crate::cluster::{ClusterStatus, NodeState, NodeStatus};

/// `GET /ui/cluster`.
pub(crate) async fn page(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Query(q): Query<HashMap<String, String>>,
) -> Markup {
    let Some(cluster) = &ui.cluster else {
        return layout::page("Cluster", Nav::Cluster, &session, alone());
    };
    let status = cluster.status().await;
    let body = html! {
        h1 { "Cluster" }
        @if let Some(done) = super::format::done(&q) { p.notice role="status" { (done) } }
        div #cluster hx-ext="sse,morph" sse-connect="/ui/live" {
            p.updated { span #live-state .live-state { "" } }
            div #nodes sse-swap="cluster" hx-swap="morph:innerHTML" aria-live="polite" { (view(&status)) }
        }
        @if !draining(&status) {
            (layout::action(&session, "/ui/cluster/drain", "Drain this node", "danger"))
        }
    };
    layout::page("Cluster", Nav::Cluster, &session, body)
}

/// The page of a node that is not in a cluster.
fn alone() -> Markup {
    html! {
        h1 { "Cluster" }
        p role="status" { "This node is not in a cluster; set " code { "cluster.listen" } ", see the README." }
    }
}

/// True once this node drains.
fn draining(status: &ClusterStatus) -> bool {
    status
        .nodes
        .iter()
        .any(|n| n.this && n.state == NodeState::Draining)
}

/// The live region: who answered, the store error, the cron leader, this node's drain
/// progress, the nodes.
pub(crate) fn view(status: &ClusterStatus) -> Markup {
    html! {
        p { "As seen by " strong.mono { (status.answered_by) } "." }
        @if let Some(e) = &status.store_error {
            p.error role="alert" { "The store's node registry is unavailable (states come from the mesh alone): " (e) }
        }
        @match &status.cron_leader {
            Some(l) if l.remaining_ms > 0 => p.cron-leader {
                "Cron leader: " strong.mono { (l.node) } " (epoch " (l.epoch) ", lease "
                (age(l.remaining_ms)) " left): it fires every schedule."
            },
            Some(l) => p.cron-leader { "Cron leader: none now (the lease of " span.mono { (l.node) }
                ", epoch " (l.epoch) ", ran out; the next node to try takes it)." },
            None => p.cron-leader.muted { "Cron leader: none yet." },
        }
        @for n in status.nodes.iter().filter(|n| n.this && n.state == NodeState::Draining) {
            p.notice role="status" { "Draining: " @match n.running {
                Some(0) | None => strong { "empty" },
                Some(r) => { strong { (r) } " running left" },
            } }
        }
        (table(&status.nodes))
    }
}

fn table(nodes: &[NodeStatus]) -> Markup {
    html! {
        table.nodes {
            thead { tr {
                th scope="col" { "node" } th scope="col" { "address" } th scope="col" { "state" }
                th.num scope="col" { "incarnation" } th.num scope="col" { "heartbeat age" }
                th.num scope="col" { "running" } th.num scope="col" { "free workers" }
                th.num scope="col" { "queued" } th scope="col" { "queues" }
            } }
            tbody {
                @for n in nodes {
                    tr.this[n.this] {
                        td { span.mono { (n.name) } @if n.this { " " span.badge.this-node { "this node" } } }
                        td.mono { @if let Some(a) = &n.address { (a) } @else { span.muted { "unknown" } } }
                        td { (state(n.state)) }
                        td.num { (n.incarnation) }
                        td.num { (optional(n.heartbeat_age_ms.map(age))) }
                        td.num { (optional(n.running)) } td.num { (optional(n.free_slots)) }
                        td.num { (optional(n.queued)) }
                        td { (n.queues.join(", ")) }
                    }
                }
            }
        }
    }
}

/// A node state as a badge; the class carries the colour, the text the meaning.
fn state(s: NodeState) -> Markup {
    let name = match s {
        NodeState::Up => "up",
        NodeState::Suspect => "suspect",
        NodeState::Down => "down",
        NodeState::Draining => "draining",
    };
    html! { span class={ "badge node-" (name) } { (name) } }
}

/// `1.2 s`.
fn age(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// A value, or a muted dash when the node did not tell.
fn optional(v: Option<impl std::fmt::Display>) -> Markup {
    html! { @match v { Some(v) => (v.to_string()), None => span.muted { "–" } } }
}

/// `POST /ui/cluster/drain`: a confirmation page, then (`confirm=yes`) the drain.
pub(crate) async fn drain(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Form(form): Form<ActionForm>,
) -> Result<Response, UiError> {
    ui.auth
        .permit(&session, form.csrf.as_deref())
        .map_err(UiError::refused)?;
    let cluster = ui
        .cluster
        .as_ref()
        .ok_or_else(|| UiError::new(StatusCode::CONFLICT, "this node is not in a cluster"))?;
    if form.confirm.as_deref() != Some("yes") {
        return Ok(confirm_drain(cluster.node_name(), &session));
    }
    let load = cluster.drain().await;
    tracing::info!(actor = %session.actor, running = load.running, "drain from the dashboard");
    Ok(Redirect::to("/ui/cluster?done=drain").into_response())
}

fn confirm_drain(node: &str, session: &Session) -> Response {
    let body = html! {
        h1 { "Drain node " span.mono { (node) } "?" }
        p { "The node takes no new tasks: running ones finish here, waiting ones go to other nodes. It stays draining until it restarts." }
        form.confirm method="post" action="/ui/cluster/drain" {
            (layout::csrf(session))
            input type="hidden" name="confirm" value="yes";
            button.danger type="submit" { "Drain the node" }
            " " a href="/ui/cluster" { "Keep it serving" }
        }
    };
    layout::page("Drain node", Nav::Cluster, session, body).into_response()
}
