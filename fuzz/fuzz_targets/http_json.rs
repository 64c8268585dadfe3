//! The HTTP API's request decoders (JSON bodies, paths, query strings) through the real
//! router: a request gets an answer, never a panic or a 500.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use taskmesh::http::{router, HttpConfig};
use taskmesh::TaskSystem;
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// One system and router per fuzzing process (no handlers, no store).
static APP: LazyLock<(Runtime, Router)> = LazyLock::new(|| {
    let rt = Runtime::new().expect("a runtime");
    let system = rt.block_on(async {
        let ns = format!("fuzz-{}", std::process::id());
        TaskSystem::builder().namespace(ns).start().await
    });
    let app = router(system.expect("a system"), HttpConfig::default(), None);
    (rt, app)
});

/// Which request the input becomes.
#[derive(Arbitrary, Debug)]
enum Call {
    Submit(Vec<u8>),
    PutSchedule(String, Vec<u8>),
    List(String),
    Task(String, String),
}

fn request(call: Call) -> Option<Request<Body>> {
    let (method, uri, body) = match call {
        Call::Submit(body) => (Method::POST, "/v1/tasks".to_string(), body),
        Call::PutSchedule(name, body) => (Method::PUT, format!("/v1/schedules/{name}"), body),
        Call::List(query) => (Method::GET, format!("/v1/tasks?{query}"), vec![]),
        Call::Task(id, action) => (Method::POST, format!("/v1/tasks/{id}/{action}"), vec![]),
    };
    Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .ok()
}

fuzz_target!(|call: Call| {
    let Some(req) = request(call) else {
        return;
    };
    let (rt, app) = &*APP;
    let answer = rt.block_on(app.clone().oneshot(req)).expect("infallible");
    assert_ne!(answer.status().as_u16(), 500, "a request got 500");
});
