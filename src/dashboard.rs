//! The web dashboard, served by the node at `/ui`: server-rendered HTML (maud) that works
//! without JavaScript, made live by one Server-Sent Events stream per tab.
//!
//! | route | what it shows or does |
//! |---|---|
//! | `GET /ui` | overview: tasks per state, throughput and latency percentiles, queue load, service health; live |
//! | `GET /ui/tasks` | tasks filtered by state, queue, kind, creation time and last-error text (in the URL), keyset pages; an operator's bulk form |
//! | `GET /ui/tasks/{id}` | one task: live state and progress, args, result, one lane per attempt, crash history, actions |
//! | `GET /ui/queues` | depth, running, workers, pause and resume; each kind's breaker (state, next probe), rate limit and tokens left, live |
//! | `GET /ui/cluster` | every node as this one sees it (state, heartbeat age, load, queues), live; or that the node is not in a cluster |
//! | `GET /ui/schedules` | expression (and in plain words), zone, policies, next fires in UTC, the schedule's zone and the viewer's; the next DST change and what the policy does there |
//! | `POST /ui/tasks/{id}/{cancel,pause,resume,restart,complete}` | task commands |
//! | `POST /ui/bulk` | bulk cancel, restart, retry or delete (the last two: ended tasks only) of the selected tasks or of every task matching the filters: a dry-run count, then (`confirm=yes`) a background operation |
//! | `GET /ui/bulk/{n}`, `POST /ui/bulk/{n}/cancel` | a bulk operation's live progress; stop it |
//! | `POST /ui/queues/{name}/{pause,resume}`, `/ui/schedules/{name}/{pause,resume,fire}` | queue and schedule commands (`fire` takes an optional `slot`: the next slot by default) |
//! | `POST /ui/cluster/drain` | drain this node: a confirmation, then (`confirm=yes`) the drain |
//! | `GET /ui/schedules/edit[?name=]`, `POST /ui/schedules/save` | add or edit a schedule (operators) |
//! | `GET /ui/live` | the SSE stream of the shared snapshot (`?task=<id>`: and of that task; `?bulk=<n>`: and of that bulk operation) |
//! | `GET`/`POST /ui/login`, `POST /ui/logout` | the session, when the node has a token |
//! | `GET /ui/assets/{path}` | the embedded CSS and JavaScript |
//!
//! Security: every page carries a strict Content-Security-Policy (scripts and styles only
//! from the node, no inline code); maud escapes every value. When the node has an API
//! token, the UI asks for it once and keeps a signed, HTTP-only, `SameSite=Strict` session
//! cookie; the operator token gives the `operator` role, [`UiConfig::viewer_token`] the
//! read-only `viewer` role. Every action checks the role and a CSRF token on the server
//! (and a form posted from another site, login included, is refused by its `Origin`),
//! and task commands are written into the task's events with the session's actor
//! (`ui:<name>`).
//!
//! Live updates: one snapshot (counts per state, queue load, the cluster's nodes) is built per tick, only while
//! at least one tab watches, and shared by every stream ([`tokio::sync::watch`]). The
//! throughput chart's marks (breaker trips, queue pauses and resumes, node joins) come
//! from a watcher that reads only the node's memory, once per tick, watched or not.

mod actions;
mod assets;
mod auth;
mod bulk;
mod chart;
mod cluster;
mod cron_words;
mod dst;
mod error;
mod format;
mod layout;
mod live;
mod marks;
mod metrics;
mod overview;
mod queues;
mod schedule_form;
mod schedules;
mod security;
mod task;
mod tasks;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::secret::Secret;
use crate::TaskSystem;

/// How often the live snapshot is rebuilt while someone watches (1 s).
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);

/// Settings of the dashboard.
#[derive(Clone, Debug)]
pub struct UiConfig {
    /// The node's API token: it logs in as `operator`. `None` leaves the UI open, and every
    /// visitor is an operator.
    pub operator_token: Option<Secret>,
    /// A read-only token: it logs in as `viewer`, who sees every page and may take no
    /// action. Only used together with an operator token.
    pub viewer_token: Option<Secret>,
    /// Mark the session cookie `Secure` on every response; without it, only when the
    /// request came over TLS (`X-Forwarded-Proto: https` from a proxy, or an `https` URI).
    pub secure_cookie: bool,
    /// How often the live snapshot is rebuilt (default [`DEFAULT_TICK`]).
    pub tick: Duration,
    /// The node's metrics recorder: the overview shows throughput and latency
    /// percentiles from it. `None` leaves them out.
    pub metrics: Option<PrometheusHandle>,
    /// The node's cluster membership: the cluster page shows its nodes and drains this
    /// one. `None` (a node alone) shows that the node is not in a cluster.
    pub cluster: Option<crate::cluster::Cluster>,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            operator_token: None,
            viewer_token: None,
            secure_cookie: false,
            tick: DEFAULT_TICK,
            metrics: None,
            cluster: None,
        }
    }
}

/// A dashboard over a running system: its router, and a switch that ends its live
/// streams so that the HTTP server can shut down gracefully.
#[derive(Clone)]
pub struct Dashboard {
    ui: Ui,
}

/// What every handler of the dashboard shares.
#[derive(Clone)]
pub(crate) struct Ui {
    system: TaskSystem,
    auth: Arc<auth::Auth>,
    live: Arc<live::Live>,
    bulk: Arc<bulk::Ops>,
    cluster: Option<crate::cluster::Cluster>,
}

impl Dashboard {
    /// A dashboard over `system`.
    pub fn new(system: TaskSystem, config: UiConfig) -> Self {
        let auth = auth::Auth::new(config.operator_token, config.viewer_token)
            .secure_cookie(config.secure_cookie);
        let live = live::Live::new(system.clone(), config.tick, config.metrics)
            .cluster(config.cluster.clone());
        live.watch_marks();
        Self {
            ui: Ui {
                system,
                auth: Arc::new(auth),
                live: Arc::new(live),
                bulk: Arc::default(),
                cluster: config.cluster,
            },
        }
    }

    /// The routes under `/ui`, to merge into the node's router.
    pub fn router(&self) -> Router {
        let pages = Router::new()
            .route("/ui", get(overview::page))
            .route("/ui/tasks", get(tasks::page))
            .route("/ui/tasks/{id}", get(task::page))
            .route("/ui/tasks/{id}/{action}", post(actions::task))
            .route("/ui/bulk", post(bulk::start))
            .route("/ui/bulk/{n}", get(bulk::page))
            .route("/ui/bulk/{n}/cancel", post(bulk::cancel))
            .route("/ui/queues", get(queues::page))
            .route("/ui/queues/{name}/{action}", post(actions::queue))
            .route("/ui/cluster", get(cluster::page))
            .route("/ui/cluster/drain", post(cluster::drain))
            .route("/ui/schedules", get(schedules::page))
            .route("/ui/schedules/edit", get(schedule_form::page))
            .route("/ui/schedules/save", post(schedule_form::save))
            .route("/ui/schedules/{name}/{action}", post(actions::schedule))
            .route("/ui/live", get(live::stream))
            .route("/ui/logout", post(auth::logout))
            .route_layer(axum::middleware::from_fn_with_state(
                self.ui.clone(),
                auth::guard,
            ));
        Router::new()
            .merge(pages)
            .route(
                "/ui/",
                get(|| async { axum::response::Redirect::permanent("/ui") }),
            )
            .route("/ui/login", get(auth::login_page).post(auth::login))
            .route("/ui/assets/{*path}", get(assets::serve))
            .layer(axum::middleware::from_fn(security::same_origin))
            .layer(axum::middleware::from_fn(security::headers))
            .with_state(self.ui.clone())
    }

    /// Ends every live stream now and refuses new ones: call it before the HTTP server's
    /// graceful shutdown, which waits for open streams.
    pub fn shutdown(&self) {
        self.ui.live.stop();
    }
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("namespace", &self.ui.system.namespace())
            .finish_non_exhaustive()
    }
}
