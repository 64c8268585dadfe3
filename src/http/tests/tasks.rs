//! Submitting, reading, listing and commanding tasks.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{call, open, start, stop};

/// A task in the paused queue `held`: it stays pending.
fn held(kind: &str) -> Value {
    json!({"kind": kind, "args": {"n": 1}, "queue": "held"})
}

#[tokio::test]
async fn a_submitted_task_is_created_and_can_be_read_back() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = json!({
        "kind": "echo", "args": {"x": 1}, "priority": "high", "timeout_ms": 5000,
        "max_attempts": 2, "title": "hello", "correlation_id": "req-1", "actor_id": "alice",
        "run_at": "2199-01-01T00:00:00Z",
    });
    let created = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let task = &created.body;
    assert_eq!(task["kind"], "echo");
    assert_eq!(task["args"], json!({"x": 1}));
    assert_eq!(task["queue"], "default");
    assert_eq!(task["priority"], "high");
    assert_eq!(task["state"], "scheduled");
    assert_eq!(task["max_attempts"], 2);
    assert_eq!(task["title"], "hello");
    assert_eq!(task["correlation_id"], "req-1");
    assert_eq!(task["created_by"], "alice");
    assert!(task["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(task.get("duplicate").is_none() && task.get("result").is_none());

    let id = task["id"].as_str().unwrap();
    let got = call(&app, Method::GET, &format!("/v1/tasks/{id}"), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["id"], id);
    assert_eq!(got.body["updated_at"].as_str().unwrap().len(), 24);
    stop(system).await;
}

#[tokio::test]
async fn a_finished_task_shows_its_result() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = json!({"kind": "echo", "args": {"x": 1}});
    let created = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    let id: crate::TaskId = created.body["id"].as_str().unwrap().parse().unwrap();
    system.wait(id).await.unwrap();
    let got = call(&app, Method::GET, &format!("/v1/tasks/{id}"), None).await;
    assert_eq!(got.body["state"], "succeeded");
    assert_eq!(got.body["result"], json!({"x": 1}));
    stop(system).await;
}

#[tokio::test]
async fn a_held_unique_key_returns_the_existing_task_as_a_duplicate() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = json!({"kind": "noop", "args": {}, "unique_key": "once", "queue": "held"});
    let first = call(&app, Method::POST, "/v1/tasks", Some(body.clone())).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["duplicate"], true);
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(second.body["unique_key"], "once");
    stop(system).await;
}

#[tokio::test]
async fn lists_filter_page_and_count() {
    let system = start(|b| b).await;
    let app = open(&system);
    for (kind, actor) in [("noop", "alice"), ("noop", "alice"), ("echo", "bob")] {
        let body = json!({"kind": kind, "args": {}, "actor_id": actor, "auto_start": false});
        assert_eq!(
            call(&app, Method::POST, "/v1/tasks", Some(body))
                .await
                .status,
            StatusCode::CREATED
        );
    }
    let total = |uri: &'static str| {
        let app = app.clone();
        async move {
            let answer = call(&app, Method::GET, uri, None).await;
            assert_eq!(answer.status, StatusCode::OK, "{uri}: {:?}", answer.body);
            (
                answer.body["total"].as_u64().unwrap(),
                answer.body["tasks"].as_array().unwrap().len(),
            )
        }
    };
    assert_eq!(total("/v1/tasks").await, (3, 3));
    assert_eq!(total("/v1/tasks?kind=noop").await, (2, 2));
    assert_eq!(total("/v1/tasks?created_by=bob&state=paused").await, (1, 1));
    assert_eq!(total("/v1/tasks?state=running").await, (0, 0));
    assert_eq!(
        total("/v1/tasks?queue=default&limit=1&offset=1").await,
        (3, 1)
    );
    assert_eq!(
        total("/v1/tasks?created_after=2000-01-01T00:00:00Z").await,
        (3, 3)
    );
    assert_eq!(
        total("/v1/tasks?created_before=2000-01-01T00:00:00%2B01:00").await,
        (0, 0)
    );

    for (uri, name) in [
        ("/v1/tasks?state=bogus", "state"),
        ("/v1/tasks?limit=5000", "limit"),
        ("/v1/tasks?offset=-1", "offset"),
        ("/v1/tasks?created_after=yesterday", "created_after"),
        ("/v1/tasks?colour=red", "colour"),
    ] {
        let answer = call(&app, Method::GET, uri, None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(answer.code(), "invalid_request");
        assert!(
            answer.message().contains(name),
            "{uri}: {}",
            answer.message()
        );
    }
    stop(system).await;
}

#[tokio::test]
async fn events_show_the_history_of_a_task() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = json!({"kind": "noop", "args": {}, "actor_id": "alice", "correlation_id": "flow-7", "queue": "held"});
    let created = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let cancel = json!({"reason": "changed my mind"});
    let uri = format!("/v1/tasks/{id}/cancel");
    assert_eq!(
        call(&app, Method::POST, &uri, Some(cancel)).await.status,
        StatusCode::OK
    );

    let answer = call(&app, Method::GET, &format!("/v1/tasks/{id}/events"), None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let events = answer.body["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["created", "cancelled"]);
    assert_eq!(events[0]["actor_id"], "alice");
    assert_eq!(events[0]["correlation_id"], "flow-7");
    assert!(events[0]["seq"].as_u64().unwrap() < events[1]["seq"].as_u64().unwrap());
    assert!(events[0]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(events[1]["data"]["reason"], "changed my mind");
    stop(system).await;
}

#[tokio::test]
async fn commands_pause_resume_restart_and_cancel_a_waiting_task() {
    let system = start(|b| b).await;
    let app = open(&system);
    let created = call(&app, Method::POST, "/v1/tasks", Some(held("noop"))).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let run = |cmd: &'static str, body: Option<Value>| {
        let (app, uri) = (app.clone(), format!("/v1/tasks/{id}/{cmd}"));
        async move { call(&app, Method::POST, &uri, body).await }
    };

    let paused = run("pause", None).await;
    assert_eq!(paused.status, StatusCode::OK, "{:?}", paused.body);
    assert_eq!(paused.body["result"], "done");
    assert_eq!(paused.body["task"]["state"], "paused");
    let resumed = run("resume", None).await;
    assert_eq!(resumed.body["task"]["state"], "pending");
    let again = run("resume", None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "conflict");
    let restarted = run("restart", None).await;
    assert_eq!(restarted.status, StatusCode::OK);
    assert_eq!(restarted.body["task"]["state"], "pending");

    let cancelled = run("cancel", None).await;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(cancelled.body["result"], "done");
    assert_eq!(cancelled.body["task"]["state"], "cancelled");
    assert_eq!(
        cancelled.body["task"]["cancel_reason"],
        "cancelled through the HTTP API"
    );
    for cmd in ["cancel", "pause"] {
        let ended = run(cmd, Some(json!({}))).await;
        assert_eq!(ended.status, StatusCode::CONFLICT, "{cmd}");
        assert!(
            ended.message().contains("already cancelled"),
            "{}",
            ended.message()
        );
    }
    stop(system).await;
}

#[tokio::test]
async fn large_integers_and_long_decimals_in_args_come_back_exactly_as_args_and_result() {
    let system = start(|b| b).await;
    let app = open(&system);
    let exact = r#"{"big":100000000000000000000000000001,"dec":0.1000000000000000055511151231257827,"neg":-98765432109876543210}"#;
    let body = format!(r#"{{"kind":"echo","args":{exact}}}"#);
    let req = super::raw(Method::POST, "/v1/tasks", Some("application/json"), body);
    let created = super::send(&app, req).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["args"].to_string(), exact);
    let id: crate::TaskId = created.body["id"].as_str().unwrap().parse().unwrap();
    system.wait(id).await.expect("echo succeeds");
    let got = call(&app, Method::GET, &format!("/v1/tasks/{id}"), None).await;
    assert_eq!(got.body["state"], "succeeded", "{:?}", got.body);
    assert_eq!(got.body["args"].to_string(), exact);
    assert_eq!(got.body["result"].to_string(), exact);
    stop(system).await;
}

/// A wait answers as soon as the task ends: the sleep ends at 30 s of paused time, and
/// the wait, asked for up to 20 s at 15 s, answers then with the ended task.
#[tokio::test(start_paused = true)]
async fn a_wait_answers_once_the_task_ends_and_with_its_state_when_it_runs_out() {
    let system = start(|b| b).await;
    let app = open(&system);
    let body = json!({"kind": "sleep", "args": {"ms": 30_000}});
    let created = call(&app, Method::POST, "/v1/tasks", Some(body)).await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let ran_out = call(
        &app,
        Method::GET,
        &format!("/v1/tasks/{id}/wait?timeout_ms=15000"),
        None,
    )
    .await;
    assert_eq!(ran_out.status, StatusCode::OK, "{:?}", ran_out.body);
    assert_eq!(ran_out.body["state"], "running");
    let started = tokio::time::Instant::now();
    let ended = call(
        &app,
        Method::GET,
        &format!("/v1/tasks/{id}/wait?timeout_ms=20000"),
        None,
    )
    .await;
    assert_eq!(ended.body["state"], "succeeded");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "answered at the end"
    );
    let bad = call(
        &app,
        Method::GET,
        &format!("/v1/tasks/{id}/wait?timeout_ms=soon"),
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.message().contains("timeout_ms"), "{}", bad.message());
    stop(system).await;
}
