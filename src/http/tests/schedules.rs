//! Schedules through the API.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::{call, open, start, stop};

#[tokio::test]
async fn schedules_can_be_put_read_listed_and_deleted() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = json!({
        "cron": "0 30 2 * * *",
        "timezone": "Europe/Berlin",
        "task": {"kind": "noop", "args": {"scope": "eu"}, "priority": "low", "timeout_ms": 1000},
        "dst": {"gap": "skip", "fold": "twice"},
        "catch_up": "all",
        "catch_up_max": 5,
        "overlap": "skip",
    });
    let put = call(&app, Method::PUT, "/v1/schedules/nightly", Some(body)).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    let s = &put.body;
    assert_eq!(s["name"], "nightly");
    assert_eq!(s["timezone"], "Europe/Berlin");
    assert_eq!(s["dst"], json!({"gap": "skip", "fold": "twice"}));
    assert_eq!(
        (s["catch_up"].as_str(), s["catch_up_max"].as_u64()),
        (Some("all"), Some(5))
    );
    assert_eq!(s["overlap"], "skip");
    assert_eq!(s["paused"], false);
    assert_eq!(s["last_slot"], serde_json::Value::Null);
    assert!(s["next"].as_str().unwrap().ends_with('Z'));
    assert_eq!(s["task"]["kind"], "noop");
    assert_eq!(s["task"]["priority"], "low");
    assert_eq!(s["task"]["timeout_ms"], 1000);

    let got = call(&app, Method::GET, "/v1/schedules/nightly", None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["cron"], "0 30 2 * * *");
    let list = call(&app, Method::GET, "/v1/schedules", None).await;
    assert_eq!(list.body["schedules"].as_array().unwrap().len(), 1);

    let gone = call(&app, Method::DELETE, "/v1/schedules/nightly", None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let missing = call(&app, Method::GET, "/v1/schedules/nightly", None).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let again = call(&app, Method::DELETE, "/v1/schedules/nightly", None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    stop(system).await;
}

#[tokio::test]
async fn a_bad_schedule_is_refused_naming_the_field() {
    let system = start(|b| b).await;
    let app = open(&system);
    let task = json!({"kind": "noop", "args": {}});
    let cases = [
        (json!({"cron": "0 0 25 * * *", "task": task}), "hour"),
        (json!({"cron": "0 0 * * *", "task": task}), "cron"),
        (
            json!({"cron": "@daily", "timezone": "Mars/Base", "task": task}),
            "timezone",
        ),
        (
            json!({"cron": "@daily", "task": {"kind": "nope", "args": {}}}),
            "task.kind",
        ),
        (
            json!({"cron": "@daily", "task": {"kind": "noop", "args": {}, "priority": "x"}}),
            "task.priority",
        ),
        (
            json!({"cron": "@daily", "task": task, "catch_up": "some"}),
            "catch_up",
        ),
        (
            json!({"cron": "@daily", "task": task, "catch_up_max": 0}),
            "catch_up_max",
        ),
    ];
    for (body, field) in cases {
        let answer = call(&app, Method::PUT, "/v1/schedules/bad", Some(body.clone())).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            answer.body
        );
        assert_eq!(answer.code(), "invalid_request");
        assert!(
            answer.message().contains(field),
            "{body}: {}",
            answer.message()
        );
    }
    let answer = call(
        &app,
        Method::PUT,
        "/v1/schedules/b%20d",
        Some(json!({"cron": "@daily", "task": task})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.message().contains("name"), "{}", answer.message());
    stop(system).await;
}
