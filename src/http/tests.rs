//! The API driven in-process with `tower::ServiceExt::oneshot`: no sockets, no sleeps.

mod cluster;
mod errors;
mod inputs;
mod openapi;
mod props;
mod schedules;
mod tasks;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use super::{router, HttpConfig, Secret};
use crate::builtin::{self, ExecConfig};
use crate::store::MemoryStore;
use crate::{QueueConfig, TaskId, TaskSystem, TaskSystemBuilder};

/// A system with the built-in kinds, a memory store, and a paused queue `held` (bound 1)
/// whose tasks stay queued; `extra` adds to the builder.
async fn start(extra: impl FnOnce(TaskSystemBuilder) -> TaskSystemBuilder) -> TaskSystem {
    let ns = format!("http-{}", TaskId::new());
    let builder = TaskSystem::builder()
        .namespace(ns)
        .store(MemoryStore::new())
        .queue(QueueConfig::new("held").bound(1));
    let system = builtin::register(extra(builder), ExecConfig::default())
        .start()
        .await
        .expect("system starts");
    system.pause_queue("held").unwrap();
    system
}

/// The router over `system` with no token and the default body limit.
fn open(system: &TaskSystem) -> Router {
    router(system.clone(), HttpConfig::default(), None)
}

/// The router over `system` requiring `token`.
fn guarded(system: &TaskSystem, token: &str) -> Router {
    let config = HttpConfig {
        token: Some(Secret::new(token)),
        ..HttpConfig::default()
    };
    router(system.clone(), config, None)
}

/// One answer: status, headers, and the body as JSON (`Null` when empty or not JSON).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    /// The error code of an error answer.
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The error message of an error answer.
    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

/// Sends `req` through a clone of `app`.
async fn send(app: &Router, req: Request<Body>) -> Answer {
    let response = app.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Sends a request with an optional JSON body.
async fn call(app: &Router, method: Method, uri: &str, body: Option<Value>) -> Answer {
    send(app, request(method, uri, body, None)).await
}

/// A request with an optional JSON body and bearer token.
fn request(method: Method, uri: &str, body: Option<Value>, token: Option<&str>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    req.body(body).unwrap()
}

/// A request whose body is `raw` bytes with the given content type.
fn raw(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    raw: impl Into<Body>,
) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    req.body(raw.into()).unwrap()
}

async fn stop(system: TaskSystem) {
    let report = system.shutdown(Duration::from_secs(5)).await;
    assert!(report.interrupted.is_empty(), "{report:?}");
}

#[test]
fn secrets_never_show_in_debug_or_display_output() {
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(secret.to_string(), "***");
    let config = HttpConfig {
        token: Some(secret.clone()),
        ..HttpConfig::default()
    };
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(secret.matches("hunter2"));
    for wrong in ["", "hunter", "hunter22", "hunter3", "Hunter2"] {
        assert!(!secret.matches(wrong), "{wrong}");
    }
    assert_eq!(secret, Secret::new("hunter2"));
}

#[tokio::test]
async fn health_is_live_always_and_ready_until_shutdown() {
    let system = start(|b| b).await;
    let app = guarded(&system, "s3cret");
    let live = call(&app, Method::GET, "/health/live", None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.body["status"], "live");
    let ready = call(&app, Method::GET, "/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.body);
    assert_eq!(ready.body["ready"], true);

    system.shutdown(Duration::from_secs(5)).await;
    let ready = call(&app, Method::GET, "/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["ready"], false);
    let failing = ready.body["failing"].as_array().unwrap();
    assert!(failing
        .iter()
        .any(|f| f.as_str().unwrap().contains("shutting down")));
    let live = call(&app, Method::GET, "/health/live", None).await;
    assert_eq!(live.status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_prometheus_text_without_a_token_and_404_without_a_handle() {
    let system = start(|b| b).await;
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let config = HttpConfig {
        token: Some(Secret::new("s3cret")),
        ..HttpConfig::default()
    };
    let app = router(system.clone(), config, Some(recorder.handle()));
    let answer = send(&app, request(Method::GET, "/metrics", None, None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header(header::CONTENT_TYPE),
        "text/plain; version=0.0.4"
    );

    let without = call(&open(&system), Method::GET, "/metrics", None).await;
    assert_eq!(without.status, StatusCode::NOT_FOUND);
    assert_eq!(without.code(), "not_found");
    stop(system).await;
}

#[tokio::test]
async fn queues_show_depth_workers_breaker_and_rate_limit() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = serde_json::json!({"kind": "noop", "args": {}, "queue": "held"});
    assert_eq!(
        call(&app, Method::POST, "/v1/tasks", Some(body))
            .await
            .status,
        StatusCode::CREATED
    );
    let answer = call(&app, Method::GET, "/v1/queues", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let queues = answer.body["queues"].as_array().unwrap();
    let held = queues.iter().find(|q| q["name"] == "held").unwrap();
    assert_eq!(held["depth"], 1);
    assert_eq!(held["bound"], 1);
    assert_eq!(held["paused"], true);
    assert_eq!(held["breaker"], "closed");
    assert_eq!(held["rate_limit"], Value::Null);
    assert!(held["workers"]["min"].is_u64() && held["workers"]["max"].is_u64());
    assert!(queues.iter().any(|q| q["name"] == "default"));
    stop(system).await;
}
