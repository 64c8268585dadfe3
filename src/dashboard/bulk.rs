//! Bulk actions on the task list: cancel, restart, retry or delete the selected tasks, or
//! every task matching the list's filters.
//!
//! Retry and delete act on ended tasks only: a retry gives a failed or cancelled task one
//! more attempt (a write fenced by its ended row, with a `restarted` event naming who);
//! a delete removes ended tasks, a page at a time in one store call, and never touches a
//! task that has not ended. Every other task is counted as skipped.
//!
//! A bulk request is posted twice. The first post is a dry run: it shows how many tasks
//! the action would touch (the selection's size, or one count of the filter) and asks to
//! confirm. The confirmed post starts a background [`Op`] that walks the tasks page by
//! page (newest first, each page bounded by the creation time of the last one, so tasks
//! that leave the filter as they change never shift the walk) and applies the action to
//! each on behalf of the session's actor, so every change is written into the task's
//! events with who did it. Its progress page is live over the SSE stream
//! (`/ui/live?bulk=<n>`) and has a cancel button.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::auth::{Role, Session};
use super::error::UiError;
use super::layout::{self, Nav};
use super::tasks::ListQuery;
use super::Ui;
use crate::error::TaskError;
use crate::{TaskId, TaskStatus, TaskSystem};

/// Tasks read per page of a walk over a filter.
const WALK_PAGE: u32 = 200;
/// Operations remembered (the oldest finished ones are forgotten first).
const KEEP: usize = 32;
/// The most tasks a selection may name.
const MAX_SELECTED: usize = 1000;

/// What a bulk operation does to each task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    /// Cancel it.
    Cancel,
    /// Restart its execution (a paused task is resumed, a running one stopped and queued).
    Restart,
    /// Give an ended (failed or cancelled) task one more attempt.
    Retry,
    /// Delete an ended task (row, events, crash history).
    Delete,
}

impl Verb {
    fn parse(s: &str) -> Result<Self, UiError> {
        match s {
            "cancel" => Ok(Self::Cancel),
            "restart" => Ok(Self::Restart),
            "retry" => Ok(Self::Retry),
            "delete" => Ok(Self::Delete),
            other => Err(UiError::bad_request(format!(
                "action: expected cancel, restart, retry or delete, got {other:?}"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Restart => "restart",
            Self::Retry => "retry",
            Self::Delete => "delete",
        }
    }

    /// What the dry run says of the tasks it will leave alone.
    fn skips(self) -> &'static str {
        match self {
            Self::Cancel | Self::Restart => "Tasks that have ended or changed meanwhile are skipped.",
            Self::Retry => "Only failed and cancelled tasks are retried; every other task is skipped.",
            Self::Delete => {
                "Only ended tasks (succeeded, failed, cancelled) are deleted, with their events; a task that has not ended is never deleted."
            }
        }
    }
}

/// Which tasks a bulk request touches.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scope {
    /// These tasks.
    Selected(Vec<TaskId>),
    /// Every task matching these filters (the cursor is ignored).
    Filter(ListQuery),
}

/// A parsed bulk form.
#[derive(Clone, Debug)]
pub(crate) struct BulkRequest {
    csrf: Option<String>,
    verb: Verb,
    scope: Scope,
    confirmed: bool,
    /// The fields to post again on confirmation.
    fields: Vec<(String, String)>,
}

impl BulkRequest {
    /// Reads `action`, `scope` (`selected` or `filter`), every `id`, the list filters,
    /// `csrf` and `confirm`; an unusable value is a 400 naming the field.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Self, UiError> {
        let one = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let verb = Verb::parse(one("action").as_deref().unwrap_or(""))?;
        let scope = match one("scope").as_deref().unwrap_or("selected") {
            "selected" => Scope::Selected(ids(&pairs)?),
            "filter" => {
                let q: HashMap<String, String> = pairs.iter().cloned().collect();
                let mut query = ListQuery::parse(&q)?;
                (query.before, query.skip) = (None, 0);
                Scope::Filter(query)
            }
            other => {
                return Err(UiError::bad_request(format!(
                    "scope: expected selected or filter, got {other:?}"
                )))
            }
        };
        let fields = pairs
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "confirm"))
            .cloned()
            .collect();
        Ok(Self {
            csrf: one("csrf"),
            verb,
            scope,
            confirmed: one("confirm").as_deref() == Some("yes"),
            fields,
        })
    }
}

fn ids(pairs: &[(String, String)]) -> Result<Vec<TaskId>, UiError> {
    let ids: Vec<TaskId> = pairs
        .iter()
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| {
            v.parse()
                .map_err(|_| UiError::bad_request(format!("id: expected a uuid, got {v:?}")))
        })
        .collect::<Result<_, _>>()?;
    match ids.len() {
        0 => Err(UiError::bad_request(
            "no task selected: tick some rows, or choose every task matching the filter",
        )),
        n if n > MAX_SELECTED => Err(UiError::bad_request(format!(
            "expected at most {MAX_SELECTED} selected tasks, got {n}"
        ))),
        _ => Ok(ids),
    }
}

/// One background bulk operation and its progress.
pub(crate) struct Op {
    /// Its number, in `/ui/bulk/{n}`.
    pub id: u64,
    /// What it does.
    pub verb: Verb,
    /// Who started it (`ui:<name>`).
    pub actor: String,
    /// The dry-run count when it started.
    pub planned: u64,
    /// Tasks changed.
    pub done: AtomicU64,
    /// Tasks left as they were (already ended, gone, or in a state the action skips).
    pub skipped: AtomicU64,
    /// Tasks whose change failed.
    pub failed: AtomicU64,
    /// The last failure's message.
    pub last_error: Mutex<Option<String>>,
    /// Fired by the cancel button.
    pub stop: CancellationToken,
    /// Fired when the walk ends (finished or cancelled).
    pub ended: CancellationToken,
}

impl Op {
    fn processed(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
            + self.skipped.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
    }

    fn state(&self) -> &'static str {
        match (self.ended.is_cancelled(), self.stop.is_cancelled()) {
            (true, true) => "cancelled",
            (true, false) => "finished",
            (false, true) => "stopping",
            (false, false) => "running",
        }
    }

    async fn apply(&self, system: &TaskSystem, id: TaskId) {
        let outcome = match self.verb {
            Verb::Cancel => {
                let reason = format!("bulk cancel {} from the dashboard", self.id);
                system.cancel_by(id, reason, &self.actor).await
            }
            Verb::Restart => system.restart_by(id, &self.actor).await,
            Verb::Retry => system.retry_by(id, &self.actor).await,
            Verb::Delete => return self.delete(system, &[id]).await,
        };
        let counter = match outcome {
            Ok(_) => &self.done,
            Err(
                TaskError::NotFound(_)
                | TaskError::AlreadyTerminal { .. }
                | TaskError::Transition(_)
                | TaskError::Conflict(_),
            ) => &self.skipped,
            Err(e) => {
                *self.last_error.lock() = Some(format!("task {id}: {e}"));
                &self.failed
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies the verb to `ids`: a delete in one store call, the others task by task
    /// until the cancel button is pressed.
    async fn apply_all(&self, system: &TaskSystem, ids: &[TaskId]) {
        if self.verb == Verb::Delete {
            return self.delete(system, ids).await;
        }
        for id in ids {
            if self.stop.is_cancelled() {
                return;
            }
            self.apply(system, *id).await;
        }
    }

    /// Deletes the ended tasks among `ids`; the others count as skipped.
    async fn delete(&self, system: &TaskSystem, ids: &[TaskId]) {
        match system.delete_ended(ids.to_vec()).await {
            Ok(gone) => {
                let n = gone.len() as u64;
                self.done.fetch_add(n, Ordering::Relaxed);
                self.skipped
                    .fetch_add(ids.len() as u64 - n, Ordering::Relaxed);
            }
            Err(e) => {
                *self.last_error.lock() = Some(format!("deleting {} task(s): {e}", ids.len()));
                self.failed.fetch_add(ids.len() as u64, Ordering::Relaxed);
            }
        }
    }

    async fn run(self: Arc<Self>, system: TaskSystem, scope: Scope) {
        match scope {
            Scope::Selected(ids) => {
                for chunk in ids.chunks(WALK_PAGE as usize) {
                    if self.stop.is_cancelled() {
                        break;
                    }
                    self.apply_all(&system, chunk).await;
                }
            }
            Scope::Filter(query) => self.walk(&system, query).await,
        }
        tracing::info!(op = self.id, actor = %self.actor, action = self.verb.as_str(),
            changed = self.done.load(Ordering::Relaxed), "bulk action from the dashboard ended");
        self.ended.cancel();
    }

    /// Applies the verb to every task matching `query` that existed when it started.
    async fn walk(&self, system: &TaskSystem, query: ListQuery) {
        let mut bound = Some(SystemTime::now() + Duration::from_nanos(1));
        let mut seen: HashSet<TaskId> = HashSet::new();
        while !self.stop.is_cancelled() {
            let mut filter = query.filter();
            filter.created_before = match (filter.created_before, bound) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let page = match system.list(filter, WALK_PAGE, 0).await {
                Ok(p) => p.tasks,
                Err(e) => return *self.last_error.lock() = Some(e.to_string()),
            };
            let fresh: Vec<_> = page.iter().filter(|t| !seen.contains(&t.id)).collect();
            let Some(last) = page.last() else { return };
            if fresh.is_empty() && page.len() < WALK_PAGE as usize {
                return;
            }
            let (hits, misses): (Vec<&&TaskStatus>, Vec<_>) =
                fresh.iter().partition(|t| query.error_matches(t));
            self.skipped
                .fetch_add(misses.len() as u64, Ordering::Relaxed);
            let ids: Vec<TaskId> = hits.iter().map(|t| t.id).collect();
            self.apply_all(system, &ids).await;
            if self.stop.is_cancelled() {
                return;
            }
            let edge = last.created_at;
            if fresh.is_empty() {
                (bound, seen) = (Some(edge), HashSet::new());
                continue;
            }
            if bound != Some(edge + Duration::from_nanos(1)) {
                seen.clear();
            }
            seen.extend(page.iter().filter(|t| t.created_at == edge).map(|t| t.id));
            bound = Some(edge + Duration::from_nanos(1));
        }
    }
}

/// The operations of this dashboard. They live in memory: a restart of the node stops a
/// running one (the tasks it changed stay changed, each with its event). Their numbers
/// start at the node's start time in milliseconds, so the page of an operation of an
/// earlier run is never another operation's: it says the operation is not known here.
pub(crate) struct Ops {
    next: AtomicU64,
    ops: Mutex<Vec<Arc<Op>>>,
}

impl Default for Ops {
    fn default() -> Self {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
        let base = now.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
        Self {
            next: AtomicU64::new(base),
            ops: Mutex::default(),
        }
    }
}

impl Ops {
    /// The number the next operation gets.
    #[cfg(test)]
    pub fn next_id(&self) -> u64 {
        self.next.load(Ordering::Relaxed) + 1
    }

    /// Starts `verb` over `scope` in the background.
    fn start(&self, system: TaskSystem, req: &BulkRequest, actor: &str, planned: u64) -> u64 {
        let op = Arc::new(Op {
            id: self.next.fetch_add(1, Ordering::Relaxed) + 1,
            verb: req.verb,
            actor: actor.to_string(),
            planned,
            done: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_error: Mutex::new(None),
            stop: CancellationToken::new(),
            ended: CancellationToken::new(),
        });
        let mut ops = self.ops.lock();
        if ops.len() >= KEEP {
            if let Some(i) = ops.iter().position(|o| o.ended.is_cancelled()) {
                ops.remove(i);
            }
        }
        ops.push(op.clone());
        tokio::spawn(op.clone().run(system, req.scope.clone()));
        op.id
    }

    /// Operation `n`, if remembered.
    pub fn get(&self, n: u64) -> Option<Arc<Op>> {
        self.ops.lock().iter().find(|o| o.id == n).cloned()
    }
}

/// `POST /ui/bulk`: the dry run, or (with `confirm=yes`) the start of the operation.
pub(crate) async fn start(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let req = BulkRequest::parse(pairs)?;
    ui.auth
        .permit(&session, req.csrf.as_deref())
        .map_err(UiError::refused)?;
    let planned = match &req.scope {
        Scope::Selected(ids) => ids.len() as u64,
        Scope::Filter(q) => ui.system.count(q.filter()).await?,
    };
    if !req.confirmed {
        return Ok(dry_run(&req, planned, &session).into_response());
    }
    let n = ui
        .bulk
        .start(ui.system.clone(), &req, &session.actor, planned);
    tracing::info!(op = n, actor = %session.actor, action = req.verb.as_str(), planned, "bulk action from the dashboard");
    Ok(Redirect::to(&format!("/ui/bulk/{n}")).into_response())
}

fn dry_run(req: &BulkRequest, planned: u64, session: &Session) -> Markup {
    let verb = req.verb.as_str();
    let which = match &req.scope {
        Scope::Selected(_) => "selected".to_string(),
        Scope::Filter(q) if q.error.is_some() => format!(
            "matching the other filters ({}); only those whose last error contains the text are changed, the others are skipped",
            q.href()
        ),
        Scope::Filter(q) => format!("matching the filter ({})", q.href()),
    };
    let body = html! {
        h1 { "Bulk " (verb) ": dry run" }
        p #bulk-count { "This would " (verb) " " strong { (planned) } " task(s) " (which) "." }
        p { (req.verb.skips()) }
        form.confirm method="post" action="/ui/bulk" {
            (layout::csrf(session))
            @for (k, v) in &req.fields { input type="hidden" name=(k) value=(v); }
            input type="hidden" name="confirm" value="yes";
            button.danger type="submit" { "Start: " (verb) " " (planned) " task(s)" }
            " " a href="/ui/tasks" { "Back to the tasks" }
        }
    };
    layout::page("Bulk action", Nav::Tasks, session, body)
}

/// `GET /ui/bulk/{n}`: the operation's progress, live.
pub(crate) async fn page(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Path(n): Path<u64>,
) -> Result<Markup, UiError> {
    let op = ui.bulk.get(n).ok_or_else(|| unknown(n))?;
    let body = html! {
        h1 { "Bulk " (op.verb.as_str()) " " (n) }
        div hx-ext="sse,morph" sse-connect={ "/ui/live?bulk=" (n) } {
            p.updated { span #live-state .live-state { "" } }
            div #bulk-progress sse-swap="bulk" hx-swap="morph:innerHTML" aria-live="polite" { (progress(&op)) }
        }
        @if session.role == Role::Operator && !op.ended.is_cancelled() {
            (layout::action(&session, &format!("/ui/bulk/{n}/cancel"), "Cancel the operation", "danger"))
        }
        p { a href="/ui/tasks" { "Back to the tasks" } }
    };
    Ok(layout::page("Bulk action", Nav::Tasks, &session, body))
}

/// The answer for an operation this node does not know.
fn unknown(n: u64) -> UiError {
    UiError::not_found(format!(
        "bulk operation {n} is not known to this node: operations live in memory, so one \
         started before the node restarted was interrupted there (the tasks it had changed \
         stay changed, each with its event), and only the last {KEEP} are remembered"
    ))
}

/// The live region of a progress page.
pub(crate) fn progress(op: &Op) -> Markup {
    let max = op.planned.max(1);
    html! {
        p { "Started by " (op.actor) " · " span.badge #bulk-state { (op.state()) } }
        progress max=(max) value=(op.processed().min(max)) aria-label="Progress" {}
        p #bulk-counts {
            (op.processed()) " of " (op.planned) " processed: "
            (op.done.load(Ordering::Relaxed)) " changed, "
            (op.skipped.load(Ordering::Relaxed)) " skipped, "
            (op.failed.load(Ordering::Relaxed)) " failed"
        }
        @if let Some(e) = op.last_error.lock().as_deref() { p.error role="alert" { (e) } }
    }
}

/// `POST /ui/bulk/{n}/cancel`: stops the operation after the task in hand.
pub(crate) async fn cancel(
    State(ui): State<Ui>,
    Extension(session): Extension<Session>,
    Path(n): Path<u64>,
    Form(form): Form<super::actions::ActionForm>,
) -> Result<Response, UiError> {
    ui.auth
        .permit(&session, form.csrf.as_deref())
        .map_err(UiError::refused)?;
    let op = ui.bulk.get(n).ok_or_else(|| unknown(n))?;
    op.stop.cancel();
    tracing::info!(op = n, actor = %session.actor, "bulk action cancelled from the dashboard");
    Ok(Redirect::to(&format!("/ui/bulk/{n}")).into_response())
}
