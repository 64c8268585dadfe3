//! Queues, health and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::breaker::BreakerState;
use crate::http::error::ApiError;
use crate::http::HttpState;
use crate::QueueStats;

/// `GET /v1/queues`: each queue's load, workers, breaker and rate limit.
pub(super) async fn queues(State(state): State<HttpState>) -> Json<Value> {
    let queues: Vec<Value> = state
        .system
        .queues()
        .into_iter()
        .map(|q| queue_json(&state, q))
        .collect();
    Json(json!({"queues": queues}))
}

fn queue_json(state: &HttpState, q: QueueStats) -> Value {
    let shared = &state.system.shared;
    let rate_limit = shared.queues.get(&q.name).and_then(|s| s.config.rate_limit);
    json!({
        "name": q.name,
        "depth": q.depth,
        "running": q.running,
        "workers": {"current": q.workers, "idle": q.idle, "min": q.min_workers, "max": q.max_workers},
        "paused": q.paused,
        "bound": q.bound,
        "breaker": worst_breaker(state, &q.name).to_string(),
        "rate_limit": rate_limit,
    })
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

/// `GET /health/live`: the process answers.
pub(super) async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// `GET /health/ready`: 200 when the system should receive work, else 503 with the
/// failing checks.
pub(super) async fn ready(State(state): State<HttpState>) -> Response {
    let r = state.system.ready().await;
    if r.ready {
        return Json(json!({"ready": true})).into_response();
    }
    let body = Json(json!({"ready": false, "failing": r.failing}));
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        body,
    )
        .into_response()
}

/// `GET /metrics`: the Prometheus text exposition, or 404 without a recorder handle.
pub(super) async fn metrics(State(state): State<HttpState>) -> Result<Response, ApiError> {
    let Some(handle) = &state.metrics else {
        return Err(ApiError::not_found("metrics are not enabled on this node"));
    };
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    Ok((content_type, handle.render()).into_response())
}
