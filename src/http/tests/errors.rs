//! Every error code, in the one error shape.

use axum::body::Body;
use axum::http::{header, Method, StatusCode};
use serde_json::json;

use super::{call, guarded, open, raw, request, router, send, start, stop};
use crate::http::HttpConfig;

#[tokio::test]
async fn malformed_json_is_invalid_json() {
    let system = start(|b| b).await;
    let app = open(&system);
    let req = raw(
        Method::POST,
        "/v1/tasks",
        Some("application/json"),
        "{\"kind\": ",
    );
    let answer = send(&app, req).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.code(), "invalid_json");
    assert!(
        answer.message().starts_with("malformed JSON"),
        "{}",
        answer.message()
    );
    stop(system).await;
}

#[tokio::test]
async fn wrong_types_and_invalid_fields_are_invalid_requests_naming_the_field() {
    let system = start(|b| b).await;
    let app = open(&system);
    let cases = [
        (
            json!({"kind": "noop", "args": {}, "max_attempts": "x"}),
            "max_attempts",
        ),
        (
            json!({"kind": "noop", "args": {}, "max_attempts": 0}),
            "max_attempts",
        ),
        (
            json!({"kind": "noop", "args": {}, "timeout_ms": 0}),
            "timeout_ms",
        ),
        (
            json!({"kind": "noop", "args": {}, "priority": "urgent"}),
            "priority",
        ),
        (
            json!({"kind": "noop", "args": {}, "run_at": "tomorrow"}),
            "run_at",
        ),
        (
            json!({"kind": "noop", "args": {}, "unique_key": ""}),
            "unique_key",
        ),
        (
            json!({"kind": "noop", "args": {}, "colour": "red"}),
            "colour",
        ),
        (json!({"args": 1}), "kind"),
        (json!({"kind": "nope", "args": {}}), "kind"),
        (
            json!({"kind": "noop", "args": {}, "queue": "nope"}),
            "queue",
        ),
        (json!({"kind": 5, "args": {}}), "kind"),
    ];
    for (body, field) in cases {
        let answer = call(&app, Method::POST, "/v1/tasks", Some(body.clone())).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.code(), "invalid_request", "{body}");
        assert!(
            answer.message().contains(field),
            "{body}: {}",
            answer.message()
        );
    }
    let answer = call(&app, Method::GET, "/v1/tasks/not-a-uuid", None).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert!(answer.message().contains("id"), "{}", answer.message());
    stop(system).await;
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_an_invalid_request() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = json!({"kind": "noop", "args": {}}).to_string();
    let answer = send(&app, raw(Method::POST, "/v1/tasks", None, body)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.code(), "invalid_request");
    assert!(
        answer.message().contains("Content-Type"),
        "{}",
        answer.message()
    );
    stop(system).await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthorized() {
    let system = start(|b| b).await;
    let app = guarded(&system, "s3cret");
    for token in [None, Some("wrong"), Some("")] {
        let answer = send(&app, request(Method::GET, "/v1/tasks", None, token)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(answer.code(), "unauthorized");
        assert_eq!(answer.header(header::WWW_AUTHENTICATE), "Bearer");
        assert!(!answer.message().contains("s3cret"));
    }
    let body = json!({"kind": "noop", "args": {}});
    let answer = send(&app, request(Method::POST, "/v1/tasks", Some(body), None)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let answer = send(
        &app,
        request(Method::GET, "/v1/queues", None, Some("s3cret")),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = send(&app, request(Method::GET, "/health/live", None, None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    stop(system).await;
}

#[tokio::test]
async fn unknown_tasks_routes_and_methods_come_back_in_the_error_shape() {
    let system = start(|b| b).await;
    let app = open(&system);
    let id = crate::TaskId::new();
    for uri in [
        format!("/v1/tasks/{id}"),
        format!("/v1/tasks/{id}/events"),
        "/nope".into(),
    ] {
        let answer = call(&app, Method::GET, &uri, None).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{uri}"
        );
    }
    let answer = call(&app, Method::POST, &format!("/v1/tasks/{id}/cancel"), None).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let answer = call(&app, Method::DELETE, "/v1/tasks", None).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.code(), "method_not_allowed");
    assert_eq!(answer.header(header::CONTENT_TYPE), "application/json");
    stop(system).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_payload_too_large() {
    let system = start(|b| b).await;
    let config = HttpConfig {
        max_body_bytes: 1024,
        ..HttpConfig::default()
    };
    let app = router(system.clone(), config, None);
    let big = json!({"kind": "noop", "args": "x".repeat(4096)}).to_string();
    let declared = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/v1/tasks")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let streamed = raw(Method::POST, "/v1/tasks", Some("application/json"), big);
    for req in [declared, streamed] {
        let answer = send(&app, req).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer.code(), "payload_too_large");
        assert!(
            answer.message().contains("1024 bytes"),
            "{}",
            answer.message()
        );
        assert_eq!(answer.header(header::CONTENT_TYPE), "application/json");
    }
    stop(system).await;
}

#[tokio::test]
async fn a_full_queue_is_overloaded_with_retry_after() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = json!({"kind": "noop", "args": {}, "queue": "held"});
    let first = call(&app, Method::POST, "/v1/tasks", Some(body.clone())).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.code(), "overloaded");
    assert!(second.message().contains("held"), "{}", second.message());
    assert_eq!(second.header(header::RETRY_AFTER), "1");
    stop(system).await;
}

#[tokio::test]
async fn submits_after_shutdown_are_not_ready_with_retry_after() {
    let system = start(|b| b).await;
    let app = open(&system);
    system.shutdown(std::time::Duration::from_secs(5)).await;
    let body = json!({"kind": "noop", "args": {}});
    let answer = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.code(), "not_ready");
    assert_eq!(answer.header(header::RETRY_AFTER), "1");
}

#[tokio::test(start_paused = true)]
async fn a_request_whose_body_never_finishes_gets_408_in_the_error_shape() {
    let system = start(|b| b).await;
    let config = HttpConfig {
        request_timeout: std::time::Duration::from_millis(500),
        ..HttpConfig::default()
    };
    let app = router(system.clone(), config, None);
    let never = futures::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
    let req = raw(
        Method::POST,
        "/v1/tasks",
        Some("application/json"),
        Body::from_stream(never),
    );
    let answer = send(&app, req).await;
    assert_eq!(answer.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(answer.code(), "request_timeout");
    assert!(answer.message().contains("500 ms"), "{}", answer.message());
    assert_eq!(answer.header(header::CONTENT_TYPE), "application/json");
    stop(system).await;
}

#[tokio::test]
async fn an_overlong_target_is_414_in_the_error_shape() {
    let system = start(|b| b).await;
    let app = open(&system);
    let uri = format!("/v1/tasks?queue={}", "q".repeat(crate::http::MAX_URI_BYTES));
    let answer = call(&app, Method::GET, &uri, None).await;
    assert_eq!(answer.status, StatusCode::URI_TOO_LONG);
    assert_eq!(answer.code(), "uri_too_long");
    assert!(answer.message().contains("8192"), "{}", answer.message());
    stop(system).await;
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_431_in_the_error_shape() {
    let system = start(|b| b).await;
    let app = open(&system);
    let mut many = axum::http::Request::builder().uri("/health/live");
    for i in 0..=crate::http::MAX_HEADERS {
        many = many.header(format!("x-h{i}"), "v");
    }
    let large = axum::http::Request::builder()
        .uri("/health/live")
        .header("x-big", "b".repeat(crate::http::MAX_HEADER_BYTES));
    for (req, says) in [(many, "headers"), (large, "bytes")] {
        let answer = send(&app, req.body(Body::empty()).unwrap()).await;
        assert_eq!(answer.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(answer.code(), "headers_too_large");
        assert!(answer.message().contains(says), "{}", answer.message());
    }
    stop(system).await;
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_a_400_naming_the_parameter() {
    let system = start(|b| b).await;
    let app = open(&system);
    for uri in ["/v1/schedules/%FF", "/v1/tasks/%FF", "/v1/tasks/%FF/cancel"] {
        let method = match uri.ends_with("cancel") {
            true => Method::POST,
            false => Method::GET,
        };
        let answer = call(&app, method, uri, None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(answer.code(), "invalid_request", "{uri}");
        let message = answer.message();
        assert!(
            message.contains("name") || message.contains("id"),
            "{uri}: {message}"
        );
        assert!(message.contains("UTF-8"), "{uri}: {message}");
    }
    stop(system).await;
}
