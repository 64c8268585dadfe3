//! The HTTP API: tasks, schedules, queues, health and metrics as JSON over HTTP.
//!
//! [`router`] builds an [`axum::Router`] over a running [`TaskSystem`]; [`serve`] runs it
//! over HTTP/1.1 on a listener until a shutdown future resolves, with a header-read timeout
//! and a connection limit (see [`HttpConfig`]). The binary wires the two together; tests
//! drive the router in-process.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /v1/tasks` | submits a task: 201, or 200 with `"duplicate": true` for a held unique key |
//! | `GET /v1/tasks` | lists tasks (`state`, `queue`, `kind`, `phase`, `created_by`, `node`, `created_after`, `created_before`, `limit`, `offset`) |
//! | `GET /v1/tasks/{id}` | one task |
//! | `GET /v1/tasks/{id}/events` | its event stream |
//! | `POST /v1/tasks/{id}/cancel`, `/pause`, `/resume`, `/restart` | commands on its execution |
//! | `GET /v1/schedules`, `PUT`/`GET`/`DELETE /v1/schedules/{name}` | cron schedules |
//! | `GET /v1/queues` | each queue's load, workers, breaker and rate limit |
//! | `GET /v1/openapi.json` | the OpenAPI 3.1 description of these routes (no token needed) |
//! | `GET /health/live`, `GET /health/ready` | liveness and readiness (no token needed) |
//! | `GET /metrics` | Prometheus text (no token needed) |
//!
//! Every error is `{"error": {"code": "...", "message": "..."}}`, also for malformed JSON,
//! oversized bodies and unknown routes. Codes: `invalid_json`, `invalid_request` (400),
//! `unauthorized` (401), `not_found` (404), `method_not_allowed` (405), `conflict` (409),
//! `request_timeout` (408), `payload_too_large` (413), `uri_too_long` (414),
//! `headers_too_large` (431), `overloaded` and `not_ready` (503, with `Retry-After: 1`).
//! Messages name the offending field or parameter.
//!
//! Numbers in `args` and results keep every digit they were sent with (serde_json's
//! `arbitrary_precision`): `100000000000000000000000000001` comes back as that, through the
//! store and across restarts.
//!
//! When [`HttpConfig::token`] is set, every `/v1` route needs `Authorization: Bearer
//! <token>`. The token is a [`Secret`]: it never appears in `Debug` output or logs, and it is
//! compared in constant time.

mod auth;
mod dto;
mod error;
mod extract;
mod head;
mod openapi;
mod routes;
mod serve;
#[cfg(test)]
mod tests;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use head::{MAX_HEADERS, MAX_HEADER_BYTES, MAX_URI_BYTES};
pub use serve::serve;

use crate::TaskSystem;

/// The token type: the crate's [`crate::secret::Secret`], re-exported here.
pub use crate::secret::Secret;

/// The default body limit: the largest args (1 MiB) plus room for the other fields.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// The default time a client gets to send a request head (10 s).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default time a request gets from its head to its answer (30 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The default limit on open connections (512).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Settings of the HTTP API.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// The bearer token every `/v1` route requires; `None` leaves the API open.
    pub token: Option<Secret>,
    /// The largest request body accepted (default [`DEFAULT_MAX_BODY_BYTES`]); larger
    /// bodies get 413.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request head, and how long a keep-alive
    /// connection may stay idle; then the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a request may take from its head to its answer, reading the body included;
    /// then it gets 408 `request_timeout`.
    pub request_timeout: Duration,
    /// The most connections open at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// The cluster this node is in, for `/v1/cluster`.
    pub cluster: Option<crate::cluster::Cluster>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            cluster: None,
        }
    }
}

/// What every handler shares: the system, the token, the metrics handle, the body limit.
#[derive(Clone)]
pub struct HttpState {
    system: TaskSystem,
    token: Option<Secret>,
    metrics: Option<PrometheusHandle>,
    max_body_bytes: usize,
    request_timeout: Duration,
    cluster: Option<crate::cluster::Cluster>,
}

impl HttpState {
    /// The state of a router over `system`.
    pub fn new(system: TaskSystem, config: HttpConfig, metrics: Option<PrometheusHandle>) -> Self {
        Self {
            system,
            token: config.token,
            metrics,
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout,
            cluster: config.cluster,
        }
    }

    /// The system the API drives.
    pub fn system(&self) -> &TaskSystem {
        &self.system
    }
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("namespace", &self.system.namespace())
            .field("token", &self.token)
            .field("metrics", &self.metrics.is_some())
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// The API's router over `system`. Pass the handle of an installed Prometheus recorder to
/// serve `GET /metrics`; without one that route answers 404.
pub fn router(system: TaskSystem, config: HttpConfig, metrics: Option<PrometheusHandle>) -> Router {
    let state = HttpState::new(system, config, metrics);
    let limit = state.max_body_bytes;
    let timeout =
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.request_timeout);
    routes::all(state.clone())
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(timeout)
        .layer(axum::middleware::from_fn(head::check))
        .layer(axum::middleware::map_response_with_state(
            state,
            error::json_errors,
        ))
        .layer(TraceLayer::new_for_http())
}
