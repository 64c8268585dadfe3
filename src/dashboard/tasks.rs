//! The task list: filters in the URL query, keyset pages.
//!
//! A page is read with the store's list, newest first. The next page's cursor is the
//! creation time of the last task shown (`before`, nanoseconds) plus how many tasks of
//! exactly that time were shown (`skip`), so deep pages cost as little as the first and
//! tasks created meanwhile never shift a page.
//!
//! The error-text filter (`error`, a case-insensitive substring of the last error) is
//! not an index: a page reads at most [`SCAN`] tasks matching the other filters from the
//! cursor on, keeps those whose last error contains the text (up to [`PAGE`]), and moves
//! the cursor past what it read. A page therefore costs at most one read of [`SCAN`] rows
//! however rare the text is, and says how many tasks it looked at; "Older tasks" goes on
//! from there.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::Extension;
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::{html, Markup};

use super::auth::{Role, Session};
use super::error::UiError;
use super::layout::{self, Nav};
use super::{format, Ui};
use crate::store::TaskFilter;
use crate::{TaskState, TaskStatus};

/// Tasks per page.
pub(crate) const PAGE: u32 = 50;

/// The most tasks one page of an error-text search reads.
pub(crate) const SCAN: u32 = 1000;

/// The filters and the cursor of a list request.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ListQuery {
    /// Only this state.
    pub state: Option<TaskState>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only tasks whose latest attempt ran (or runs) on this node (in a cluster).
    pub node: Option<String>,
    /// Only tasks whose last error contains this text (any case).
    pub error: Option<String>,
    /// Created at or after (UTC).
    pub from: Option<SystemTime>,
    /// Created before (UTC).
    pub to: Option<SystemTime>,
    /// The cursor: created at or before this time...
    pub before: Option<SystemTime>,
    /// ...skipping this many tasks created exactly then.
    pub skip: u64,
}

impl ListQuery {
    /// Parses the URL query; an unusable value is a 400 naming the parameter.
    pub fn parse(q: &HashMap<String, String>) -> Result<Self, UiError> {
        let text = |k: &str| {
            q.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let bad = |k: &str, e: String| UiError::bad_request(format!("parameter {k}: {e}"));
        let state = text("state")
            .map(|s| format::parse_state(&s))
            .transpose()
            .map_err(|e| bad("state", e))?;
        let time = |k: &str| {
            text(k)
                .map(|s| parse_time(&s))
                .transpose()
                .map_err(|e| bad(k, e))
        };
        let before = text("before")
            .map(|s| {
                s.parse::<u64>()
                    .map(|n| UNIX_EPOCH + Duration::from_nanos(n))
            })
            .transpose()
            .map_err(|e| bad("before", e.to_string()))?;
        let skip = text("skip")
            .map(|s| s.parse::<u64>())
            .transpose()
            .map_err(|e| bad("skip", e.to_string()))?;
        Ok(Self {
            state,
            queue: text("queue"),
            kind: text("kind"),
            node: text("node"),
            error: text("error"),
            from: time("from")?,
            to: time("to")?,
            before,
            skip: skip.unwrap_or(0),
        })
    }

    /// The store filter of this page: the filters, narrowed by the cursor.
    pub fn filter(&self) -> TaskFilter {
        let cursor = self.before.map(|t| t + Duration::from_nanos(1));
        let created_before = match (self.to, cursor) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        TaskFilter {
            state: self.state,
            queue: self.queue.clone(),
            kind: self.kind.clone(),
            node: self.node.clone(),
            created_after: self.from,
            created_before,
            ..TaskFilter::default()
        }
    }

    /// True when `t` passes the error-text filter (always, without one).
    pub fn error_matches(&self, t: &TaskStatus) -> bool {
        let Some(needle) = &self.error else {
            return true;
        };
        let needle = needle.to_lowercase();
        t.error
            .as_ref()
            .is_some_and(|e| e.message.to_lowercase().contains(&needle))
    }

    /// The cursor after `tasks`, the page read with this query.
    pub fn next(&self, tasks: &[TaskStatus]) -> Option<Self> {
        let last = tasks.last()?.created_at;
        let same = tasks.iter().filter(|t| t.created_at == last).count() as u64;
        let skip = if self.before == Some(last) {
            self.skip + same
        } else {
            same
        };
        Some(Self {
            before: Some(last),
            skip,
            ..self.clone()
        })
    }

    /// The URL query of these filters (and the cursor, if set).
    pub fn href(&self) -> String {
        let query: Vec<String> = self
            .pairs()
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        format!("/ui/tasks?{}", query.join("&"))
    }

    /// The filters (and the cursor, if set) as query fields.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut parts: Vec<(&str, String)> = vec![];
        let iso = |t: SystemTime| {
            DateTime::<Utc>::from(t)
                .format("%Y-%m-%dT%H:%M")
                .to_string()
        };
        if let Some(s) = self.state {
            parts.push(("state", s.as_str().into()))
        }
        if let Some(q) = &self.queue {
            parts.push(("queue", q.clone()))
        }
        if let Some(k) = &self.kind {
            parts.push(("kind", k.clone()))
        }
        if let Some(n) = &self.node {
            parts.push(("node", n.clone()))
        }
        if let Some(e) = &self.error {
            parts.push(("error", e.clone()))
        }
        if let Some(t) = self.from {
            parts.push(("from", iso(t)))
        }
        if let Some(t) = self.to {
            parts.push(("to", iso(t)))
        }
        if let Some(t) = self.before {
            let nanos = t
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            parts.push(("before", nanos.to_string()));
            parts.push(("skip", self.skip.to_string()));
        }
        parts
    }
}

/// RFC 3339, or `YYYY-MM-DDTHH:MM` (what a `datetime-local` input sends) read as UTC.
pub(crate) fn parse_time(s: &str) -> Result<SystemTime, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc).into());
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc().into())
        .ok_or_else(|| {
            format!("expected a time like 2026-01-31T08:00 (UTC) or RFC 3339, got {s:?}")
        })
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /ui/tasks`.
pub(crate) async fn page(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Markup, UiError> {
    let query = ListQuery::parse(&raw)?;
    let limit = if query.error.is_some() { SCAN } else { PAGE };
    let page = ui.system.list(query.filter(), limit, query.skip).await?;
    let found = Found::of(&query, page.tasks);
    let more = page.total > query.skip + found.read.len() as u64;
    let next = more.then(|| query.next(&found.read)).flatten();
    let queues: Vec<String> = ui.system.queues().into_iter().map(|q| q.name).collect();
    let nodes = nodes(&ui).await;
    let body = html! {
        h1 { "Tasks" }
        (filters(&query, &queues, nodes.as_deref()))
        div #task-list {
            p.summary aria-live="polite" {
                @if let Some(e) = &query.error {
                    (found.shown.len()) " whose last error contains “" (e) "” among the next "
                    (found.read.len()) " of " (page.total - query.skip.min(page.total))
                    " tasks matching the other filters"
                    @if more { " (each page looks at up to " (SCAN) ")" }
                } @else {
                    (page.total) @if query.before.is_some() { " more" } " matching"
                }
                @if query.before.is_some() { " · " a href=(ListQuery { before: None, skip: 0, ..query.clone() }.href()) { "Back to the newest" } }
            }
            (bulk_form(&query, &session, page.total))
            (table(&found.shown, session.role == Role::Operator))
            @if let Some(next) = next {
                nav.pager aria-label="Pages" { a rel="next" href=(next.href()) { "Older tasks →" } }
            }
        }
    };
    Ok(layout::page("Tasks", Nav::Tasks, &session, body))
}

/// A page's tasks: those read from the store, and those shown (the same without an
/// error-text filter; with one, the matches among the first read, and what was read up to
/// the last match shown when the page filled up).
struct Found {
    read: Vec<TaskStatus>,
    shown: Vec<TaskStatus>,
}

impl Found {
    fn of(q: &ListQuery, mut read: Vec<TaskStatus>) -> Self {
        if q.error.is_none() {
            return Self {
                shown: read.clone(),
                read,
            };
        }
        let mut shown = Vec::new();
        for (i, t) in read.iter().enumerate() {
            if q.error_matches(t) {
                shown.push(t.clone());
                if shown.len() == PAGE as usize {
                    read.truncate(i + 1);
                    break;
                }
            }
        }
        Self { read, shown }
    }
}

/// In a cluster, the nodes to filter by: every node the live snapshot (at most a tick
/// old) knows. `None` on a node that is not in a cluster.
async fn nodes(ui: &Ui) -> Option<Vec<String>> {
    ui.cluster.as_ref()?;
    let snapshot = ui.live.current().await;
    let status = snapshot.cluster.as_ref()?;
    Some(status.nodes.iter().map(|n| n.name.clone()).collect())
}

fn filters(q: &ListQuery, queues: &[String], nodes: Option<&[String]>) -> Markup {
    // A node no longer registered (it left, or was buried) stays selectable while chosen.
    let gone = q
        .node
        .as_ref()
        .filter(|n| !nodes.is_some_and(|all| all.contains(n)));
    let local = |t: Option<SystemTime>| {
        t.map(|t| {
            DateTime::<Utc>::from(t)
                .format("%Y-%m-%dT%H:%M")
                .to_string()
        })
    };
    html! {
        form.filters method="get" action="/ui/tasks" role="search"
            hx-get="/ui/tasks" hx-target="#task-list" hx-select="#task-list" hx-swap="outerHTML"
            hx-push-url="true" hx-trigger="change, submit" {
            label { "State "
                select name="state" {
                    option value="" { "any" }
                    @for s in TaskState::ALL { option value=(s.as_str()) selected[q.state == Some(s)] { (s.as_str()) } }
                }
            }
            label { "Queue "
                select name="queue" {
                    option value="" { "any" }
                    @for name in queues { option value=(name) selected[q.queue.as_deref() == Some(name)] { (name) } }
                }
            }
            label { "Kind " input #filter-kind type="search" name="kind" value=[q.kind.as_deref()] size="12"; }
            @if nodes.is_some() || gone.is_some() {
                label { "Node "
                    select #filter-node name="node" {
                        option value="" { "any" }
                        @for name in nodes.unwrap_or_default() { option value=(name) selected[q.node.as_deref() == Some(name)] { (name) } }
                        @if let Some(name) = gone { option value=(name) selected { (name) } }
                    }
                }
            }
            label { "Last error contains " input #filter-error type="search" name="error" value=[q.error.as_deref()] size="16" maxlength="200"; }
            label { "Created from (UTC) " input type="datetime-local" name="from" value=[local(q.from)]; }
            label { "to " input type="datetime-local" name="to" value=[local(q.to)]; }
            button type="submit" { "Filter" }
            " " a href="/ui/tasks" { "Clear" }
        }
    }
}

/// The bulk-action form of an operator: its checkboxes are the table's rows (`form=bulk`);
/// its hidden fields carry the current filters for "every task matching the filter".
fn bulk_form(q: &ListQuery, session: &Session, total: u64) -> Markup {
    let filters = ListQuery {
        before: None,
        skip: 0,
        ..q.clone()
    };
    html! {
        @if session.role == Role::Operator {
            form #bulk .bulk method="post" action="/ui/bulk" aria-label="Bulk action" {
                (layout::csrf(session))
                @for (k, v) in filters.pairs() {
                    input type="hidden" name=(k) value=(v);
                }
                label { "Bulk "
                    select name="action" {
                        option value="cancel" { "cancel" }
                        option value="restart" { "restart" }
                        option value="retry" { "retry (ended)" }
                        option value="delete" { "delete (ended)" }
                    }
                }
                label { input type="radio" name="scope" value="selected" checked; " the selected tasks" }
                label { input type="radio" name="scope" value="filter";
                    @if q.error.is_some() { " all matching the filters (among " (total) " matching the others)" }
                    @else { " all " (total) " matching the filter" } }
                button type="submit" { "Count first…" }
            }
        }
    }
}

/// The rows of a page (also used by the unit tests with hostile values); with
/// `selectable`, a checkbox per row for the bulk form.
pub(crate) fn table(tasks: &[TaskStatus], selectable: bool) -> Markup {
    // In a cluster (tasks that ran on a node), which node ran each.
    let clustered = tasks.iter().any(|t| t.node.is_some());
    html! {
        @if tasks.is_empty() {
            p.empty { "No task matches." }
        } @else {
            table.tasks {
                thead { tr {
                    @if selectable { th scope="col" { span.sr-only { "select" } } }
                    th scope="col" { "task" } th scope="col" { "kind" } th scope="col" { "queue" }
                    th scope="col" { "state" } th scope="col" { "attempt" }
                    @if clustered { th scope="col" { "node" } }
                    th scope="col" { "created" }
                    th scope="col" { "last error" }
                } }
                tbody {
                    @for t in tasks {
                        tr {
                            @if selectable { td { input type="checkbox" form="bulk" name="id" value=(t.id)
                                aria-label={ "select task " (t.id) }; } }
                            td { a.mono href={ "/ui/tasks/" (t.id) } { (short(&t.id.to_string())) } }
                            td { (t.kind) }
                            td { (t.queue) }
                            td { (format::state(t.state)) }
                            td.num { (t.attempt) "/" (t.max_attempts) }
                            @if clustered { td { (t.node.as_deref().unwrap_or("")) } }
                            td { (format::when(t.created_at)) }
                            td.err { @if let Some(e) = &t.error { (clip(&e.message, 80)) } }
                        }
                    }
                }
            }
        }
    }
}

/// The last 12 characters of an id, its random part (the full id is in the link).
pub(crate) fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(12)..).unwrap_or(id)
}

/// At most `n` characters, with an ellipsis when cut.
pub(crate) fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
