//! Inputs the API refuses with a 400 naming the field: reserved namespaces, times outside
//! the stores' range, oversized metadata (issue 9, items 10, 12 and 16).

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{call, open, start, stop, Answer};

/// Asserts a 400 `invalid_request` whose message names `field`.
fn assert_refused(answer: &Answer, field: &str, what: &impl std::fmt::Display) {
    assert_eq!(
        answer.status,
        StatusCode::BAD_REQUEST,
        "{what}: {:?}",
        answer.body
    );
    assert_eq!(answer.code(), "invalid_request", "{what}");
    assert!(
        answer.message().contains(field),
        "{what}: {}",
        answer.message()
    );
}

fn submit_with(field: &str, value: Value) -> Value {
    let mut body = json!({"kind": "noop", "args": {}});
    body[field] = value;
    body
}

#[tokio::test]
async fn keys_and_actors_in_the_system_namespaces_are_refused_naming_the_field() {
    let system = start(|b| b).await;
    let app = open(&system);
    let cases = [
        ("unique_key", "cron:victim:2030-01-01T00:00:00Z"),
        ("unique_key", "system:x"),
        ("actor_id", "cron:heartbeat"),
        ("actor_id", "taskmesh"),
        ("actor_id", "taskmesh:runtime"),
    ];
    for (field, value) in cases {
        let body = submit_with(field, json!(value));
        let answer = call(&app, Method::POST, "/v1/tasks", Some(body.clone())).await;
        assert_refused(&answer, field, &body);
        assert!(
            answer.message().contains("reserved"),
            "{}",
            answer.message()
        );
    }
    let body = submit_with("actor_id", json!("alice:cron:x"));
    let answer = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    assert_eq!(answer.body["created_by"], "alice:cron:x");
    stop(system).await;
}

#[tokio::test]
async fn run_at_before_1970_or_after_2262_is_a_400_naming_run_at() {
    let system = start(|b| b).await;
    let app = open(&system);
    for at in [
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "2262-04-12T00:00:00Z",
        "9999-12-31T23:59:59Z",
    ] {
        let body = submit_with("run_at", json!(at));
        let answer = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
        assert_refused(&answer, "run_at", &at);
        assert!(answer.message().contains("1970"), "{}", answer.message());
    }
    let body = submit_with("run_at", json!("2262-04-11T00:00:00Z"));
    let answer = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    assert_eq!(answer.body["state"], "scheduled");
    stop(system).await;
}

#[tokio::test]
async fn list_time_filters_outside_1970_to_2262_are_a_400_naming_the_parameter() {
    let system = start(|b| b).await;
    let app = open(&system);
    for param in ["created_after", "created_before"] {
        for at in ["1969-12-31T23:59:59Z", "2300-01-01T00:00:00Z"] {
            let uri = format!("/v1/tasks?{param}={at}");
            let answer = call(&app, Method::GET, &uri, None).await;
            assert_refused(&answer, param, &uri);
        }
    }
    stop(system).await;
}

#[tokio::test]
async fn correlation_and_actor_ids_over_256_bytes_are_refused_naming_the_field() {
    let system = start(|b| b).await;
    let app = open(&system);
    for field in ["correlation_id", "actor_id"] {
        let body = submit_with(field, json!("x".repeat(257)));
        let answer = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
        assert_refused(&answer, field, &field);
        assert!(
            answer.message().contains("256 bytes"),
            "{}",
            answer.message()
        );
        let body = submit_with(field, json!("é".repeat(128)));
        let answer = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{field}: {:?}",
            answer.body
        );
    }
    stop(system).await;
}

#[tokio::test]
async fn a_timeout_over_365_days_or_an_offset_over_i64_max_is_a_400_naming_it() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = submit_with("timeout_ms", json!(9_223_372_036_854_775_808_u64));
    let answer = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    assert_refused(&answer, "timeout_ms", &"timeout_ms");
    let schedule =
        json!({"cron": "0 0 * * * *", "task": {"kind": "noop", "timeout_ms": 31_536_000_001_u64}});
    let answer = call(&app, Method::PUT, "/v1/schedules/long", Some(schedule)).await;
    assert_refused(&answer, "task.timeout_ms", &"task.timeout_ms");
    let uri = "/v1/tasks?offset=9223372036854775808";
    let answer = call(&app, Method::GET, uri, None).await;
    assert_refused(&answer, "offset", &uri);
    stop(system).await;
}

#[tokio::test]
async fn a_cancel_with_a_null_body_is_a_cancel_without_a_reason() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = json!({"kind": "noop", "args": {}, "queue": "held"});
    let created = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let uri = format!("/v1/tasks/{id}/cancel");
    let req = super::raw(Method::POST, &uri, Some("application/json"), "null");
    let answer = super::send(&app, req).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["task"]["state"], "cancelled");
    stop(system).await;
}
