//! Queues, health and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::breaker::BreakerState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::HttpState;
use crate::QueueStats;

/// Every queue.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueList {
    queues: Vec<QueueJson>,
}

/// A queue's load, workers, breaker and rate limit.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueJson {
    name: String,
    /// Tasks waiting.
    depth: u64,
    /// Attempts running.
    running: u64,
    workers: WorkersJson,
    paused: bool,
    /// The most tasks that may wait.
    bound: u64,
    /// The worst breaker of the queue's kinds: closed, half_open or open.
    breaker: String,
    /// Its rate limit, if any.
    #[schema(value_type = Option<Object>)]
    rate_limit: Option<serde_json::Value>,
    /// In a cluster: the queue on every node that serves it and answers (this one
    /// included), as last gossiped.
    #[serde(skip_serializing_if = "Option::is_none")]
    nodes: Option<Vec<QueueNodeJson>>,
}

/// A queue's load on one node of the cluster.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueNodeJson {
    node: String,
    running: u32,
    /// Tasks waiting there.
    depth: u32,
    /// Workers free there.
    free_slots: u32,
}

/// A queue's workers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkersJson {
    current: u64,
    idle: u64,
    min: u64,
    max: u64,
}

/// `GET /v1/queues`: each queue's load, workers, breaker and rate limit.
#[utoipa::path(get, path = "/v1/queues", tag = "system",
    responses(
        (status = 200, description = "every queue", body = QueueList),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
    ))]
pub(crate) async fn queues(State(state): State<HttpState>) -> Json<QueueList> {
    let mut across = match &state.cluster {
        Some(c) => Some(c.queues().await),
        None => None,
    };
    let queues = state
        .system
        .queues()
        .into_iter()
        .map(|q| {
            let nodes = across.as_mut().map(|a| {
                a.remove(&q.name)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|n| QueueNodeJson {
                        node: n.node,
                        running: n.running,
                        depth: n.queued,
                        free_slots: n.free_slots,
                    })
                    .collect()
            });
            QueueJson {
                nodes,
                ..queue_json(&state, q)
            }
        })
        .collect();
    Json(QueueList { queues })
}

fn queue_json(state: &HttpState, q: QueueStats) -> QueueJson {
    let shared = &state.system.shared;
    let rate_limit = shared.queues.get(&q.name).and_then(|s| s.config.rate_limit);
    QueueJson {
        breaker: worst_breaker(state, &q.name).to_string(),
        name: q.name,
        depth: q.depth as u64,
        running: q.running as u64,
        workers: WorkersJson {
            current: q.workers as u64,
            idle: q.idle as u64,
            min: q.min_workers as u64,
            max: q.max_workers as u64,
        },
        paused: q.paused,
        bound: q.bound as u64,
        rate_limit: rate_limit.and_then(|r| serde_json::to_value(r).ok()),
        nodes: None,
    }
}

/// The worst breaker state among the kinds whose default queue is `queue` (open, then
/// half-open, then closed; closed when none has a breaker).
fn worst_breaker(state: &HttpState, queue: &str) -> BreakerState {
    let rank = |s: &BreakerState| match s {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    };
    state
        .system
        .shared
        .handlers
        .values()
        .filter(|h| h.defaults.queue == queue)
        .filter_map(|h| h.breaker.as_ref().map(|b| b.state()))
        .max_by_key(rank)
        .unwrap_or(BreakerState::Closed)
}

/// The answer of `GET /health/live`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Live {
    /// Always `live`.
    status: String,
}

/// The answer of `GET /health/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ready {
    ready: bool,
    /// The failing checks, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    failing: Option<Vec<String>>,
}

/// `GET /health/live`: the process answers.
#[utoipa::path(get, path = "/health/live", tag = "system",
    responses((status = 200, description = "the process answers", body = Live)))]
pub(crate) async fn live() -> Json<Live> {
    Json(Live {
        status: "live".into(),
    })
}

/// `GET /health/ready`: 200 when the system should receive work, else 503 with the
/// failing checks.
#[utoipa::path(get, path = "/health/ready", tag = "system",
    responses(
        (status = 200, description = "ready for work", body = Ready),
        (status = 503, description = "not ready, with the failing checks", body = Ready),
    ))]
pub(crate) async fn ready(State(state): State<HttpState>) -> Response {
    let r = state.system.ready().await;
    if r.ready {
        let body = Ready {
            ready: true,
            failing: None,
        };
        return Json(body).into_response();
    }
    let body = Json(Ready {
        ready: false,
        failing: Some(r.failing),
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        body,
    )
        .into_response()
}

/// `GET /metrics`: the Prometheus text exposition, or 404 without a recorder handle.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses(
        (status = 200, description = "Prometheus text", content_type = "text/plain", body = String),
        (status = 404, description = "metrics are not enabled", body = ErrorBody),
    ))]
pub(crate) async fn metrics(State(state): State<HttpState>) -> Result<Response, ApiError> {
    let Some(handle) = &state.metrics else {
        return Err(ApiError::not_found("metrics are not enabled on this node"));
    };
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    Ok((content_type, handle.render()).into_response())
}
