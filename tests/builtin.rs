//! The built-in task kinds.

mod common;

use std::time::Duration;

use common::unique_ns;
use serde_json::json;
use taskmesh::builtin::{self, ExecConfig};
use taskmesh::{NewTask, TaskState, TaskSystem};

async fn system(allow: &[&str], max_output_bytes: usize) -> TaskSystem {
    let exec = ExecConfig {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        max_output_bytes,
        ..ExecConfig::default()
    };
    builtin::register(TaskSystem::builder().namespace(unique_ns("builtin")), exec)
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn noop_echo_and_fail_behave_as_documented() {
    let sys = system(&[], 1024).await;
    let noop = sys
        .submit_and_wait(NewTask::new("noop", json!({"x": 1})))
        .await
        .unwrap();
    assert_eq!(
        (noop.state, noop.result),
        (TaskState::Succeeded, Some(serde_json::Value::Null))
    );
    let echo = sys
        .submit_and_wait(NewTask::new("echo", json!({"hello": [1, 2]})))
        .await
        .unwrap();
    assert_eq!(echo.result, Some(json!({"hello": [1, 2]})));
    let fail = sys
        .submit_and_wait(
            NewTask::new("fail", json!({"message": "nope"}))
                .max_attempts(2)
                .backoff(taskmesh::Backoff::none()),
        )
        .await
        .unwrap();
    assert_eq!((fail.state, fail.attempt), (TaskState::Failed, 2));
    assert_eq!(fail.error.unwrap().message, "nope");
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn sleep_waits_and_stops_early_when_cancelled() {
    let sys = system(&[], 1024).await;
    let t0 = tokio::time::Instant::now();
    let r = sys
        .submit_and_wait(NewTask::new("sleep", json!({"ms": 1500})))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Succeeded);
    assert!(t0.elapsed() >= Duration::from_millis(1500));
    let bad = sys
        .submit_and_wait(NewTask::new("sleep", json!({"seconds": 1})))
        .await
        .unwrap();
    assert_eq!(bad.state, TaskState::Failed, "unknown field");
    assert!(bad
        .error
        .unwrap()
        .message
        .contains("unknown field `seconds`"));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn exec_runs_allowlisted_commands_and_captures_their_output() {
    let sys = system(&["echo", "false", "head", "sleep"], 1000).await;
    let ok = sys
        .submit_and_wait(NewTask::new(
            "exec",
            json!({"command": "echo", "args": ["hi", "there"]}),
        ))
        .await
        .unwrap();
    assert_eq!(ok.state, TaskState::Succeeded);
    let out = ok.result.unwrap();
    assert_eq!(
        (
            out["status"].clone(),
            out["stdout"].clone(),
            out["truncated"].clone()
        ),
        (json!(0), json!("hi there\n"), json!(false))
    );

    let big = sys
        .submit_and_wait(NewTask::new(
            "exec",
            json!({"command": "head", "args": ["-c", "5000", "/dev/zero"]}),
        ))
        .await
        .unwrap();
    let out = big.result.unwrap();
    assert_eq!(out["truncated"], json!(true));
    assert_eq!(out["stdout"].as_str().unwrap().len(), 1000);

    let failed = sys
        .submit_and_wait(NewTask::new("exec", json!({"command": "false"})))
        .await
        .unwrap();
    assert_eq!(failed.state, TaskState::Failed);
    assert!(failed
        .error
        .unwrap()
        .message
        .contains("exited with status 1"));
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn exec_refuses_commands_outside_the_allowlist() {
    let sys = system(&["echo"], 1000).await;
    let r = sys
        .submit_and_wait(NewTask::new(
            "exec",
            json!({"command": "rm", "args": ["-rf", "/"]}),
        ))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Cancelled);
    assert_eq!(
        r.cancel_reason.as_deref(),
        Some("command \"rm\" is not in the exec allowlist")
    );
    sys.shutdown(Duration::from_secs(1)).await;
}
