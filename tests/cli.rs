//! The `taskmesh` command line against a real node: flags, exit codes, output, encoding.
//! Real processes on 127.0.0.1, bounded time.

#[path = "support/node.rs"]
mod support;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};

use serde_json::{json, Value};
use support::{cli, temp_dir, Node, BIN};

/// Runs `taskmesh args…` with no client variables set; returns exit code, stdout, stderr.
/// Bounded: a command that does not exit within 30 s (a node that took a flag it should
/// have refused, say) is killed and the test fails.
fn run(args: &[&str]) -> (i32, String, String) {
    let child = Command::new(BIN)
        .args(args)
        .env_remove("TASKMESH_TOKEN")
        .env_remove("TASKMESH_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = Pid::from_child(&child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let Ok(out) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = kill_process(pid, Signal::KILL);
        panic!("taskmesh {args:?} did not exit within 30 s");
    };
    let out = out.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn node_refuses_a_token_flag_and_shows_no_client_flags() {
    let data = temp_dir("cli-node-token").join("data");
    let (code, _, err) = run(&[
        "node",
        "--token",
        "x",
        "--http-addr",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unexpected argument '--token'"), "{err}");
    for command in ["node", "demo"] {
        let (_, help, _) = run(&[command, "--help"]);
        assert!(
            !help.contains("--token") && !help.contains("--url"),
            "{command} --help offers client flags: {help}"
        );
    }
    let (_, help, _) = run(&["node", "--help"]);
    assert!(help.contains("TASKMESH_HTTP__TOKEN"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_take_the_token_as_a_flag_and_from_the_environment() {
    let dir = temp_dir("cli-token");
    let node = Node::start(&dir, &[("TASKMESH_HTTP__TOKEN", "t0ken")], &[]);
    let (code, _, err) = run(&["queues", "--url", &node.url, "--token", "t0ken"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&node.url, Some("t0ken"), &["schedule", "list"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["queues", "--url", &node.url]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401 unauthorized"), "{err}");
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_variables_neither_stop_nor_configure_the_node() {
    let dir = temp_dir("cli-vars");
    let env = [
        ("TASKMESH_TOKEN", "abc"),
        ("TASKMESH_URL", "http://127.0.0.1:1"),
    ];
    let node = Node::start(&dir, &env, &[]);
    let (code, _, err) = run(&["queues", "--url", &node.url]);
    assert_eq!(code, 0, "the client's token is not the node's: {err}");
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_wait_exits_with_a_code_for_each_way_a_task_ends() {
    let dir = temp_dir("cli-exit");
    let node = Node::start(&dir, &[], &[]);
    let url = node.url.as_str();
    let wait = |args: &[&str]| cli(url, None, &[&["submit"], args, &["--wait"]].concat()).0;
    assert_eq!(wait(&["echo", "--args", "1"]), 0, "succeeded");
    let fail = r#"{"message": "no"}"#;
    assert_eq!(
        wait(&["fail", "--args", fail, "--max-attempts", "1"]),
        4,
        "failed"
    );
    let refused = r#"{"command": "rm"}"#;
    assert_eq!(
        wait(&["exec", "--args", refused]),
        5,
        "cancelled: rm is not in the allowlist"
    );
    let (code, _, err) = cli(url, None, &["get", "01a20483-1c03-73fe-a67f-86630f214e10"]);
    assert_eq!(code, 1, "an HTTP error");
    assert!(err.contains("404 not_found"), "the real status: {err}");
    let (code, _, err) = run(&["get", "x", "--url", "http://127.0.0.1:1"]);
    assert_eq!(code, 3, "unreachable: {err}");
    assert!(err.contains("Connection refused"), "the cause: {err}");
    let (code, _, err) = cli(url, None, &["submit", "noop", "--args", "{bad"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: --args is not valid JSON"),
        "no made-up status: {err}"
    );
    let (_, help, _) = run(&["submit", "--help"]);
    assert!(
        help.contains("Exit codes:") && help.contains("5  with --wait: the task was cancelled")
    );
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_and_names_are_sent_as_one_encoded_path_segment() {
    let dir = temp_dir("cli-encode");
    let node = Node::start(&dir, &[], &[]);
    let url = node.url.as_str();
    let add = [
        "schedule",
        "add",
        "a/b",
        "--cron",
        "0 0 * * * *",
        "--kind",
        "noop",
    ];
    let (code, _, err) = cli(url, None, &add);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("400") && !err.contains("no route"),
        "the name reaches the schedule route: {err}"
    );
    let (code, out, err) = cli(url, None, &["get", "../../metrics"]);
    assert_eq!((code, out), (1, Value::Null), "{err}");
    assert!(err.contains("400"), "{err}");
    let (code, _, err) = cli(url, None, &["get", ".."]);
    assert_eq!(code, 2);
    assert!(err.contains("\"..\" is not a valid task id"), "{err}");
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_output_quietly() {
    let dir = temp_dir("cli-pipe");
    let node = Node::start(&dir, &[], &[]);
    let mut child = Command::new(BIN)
        .args(["list", "--url", &node.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before anything is written
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_list_restart_and_schedule_add_take_every_documented_flag() {
    let dir = temp_dir("cli-flags");
    let node = Node::start(&dir, &[], &[]);
    let url = node.url.as_str();
    let submit = [
        "submit",
        "noop",
        "--run-at",
        "2199-01-01T00:00:00Z",
        "--timeout-ms",
        "1500",
        "--max-attempts",
        "7",
        "--title",
        "later",
        "--priority",
        "high",
    ];
    let (code, task, err) = cli(url, None, &submit);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        [
            &task["max_attempts"],
            &task["title"],
            &task["priority"],
            &task["state"]
        ],
        [
            &json!(7),
            &json!("later"),
            &json!("high"),
            &json!("scheduled")
        ]
    );
    let id = task["id"].as_str().unwrap();
    let (_, page, _) = cli(url, None, &["list", "--offset", "1"]);
    assert_eq!(
        (page["total"].clone(), page["tasks"].clone()),
        (json!(1), json!([]))
    );
    assert_eq!(cli(url, None, &["pause", id]).0, 0);
    let (code, restarted, err) = cli(url, None, &["restart", id]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(restarted["task"]["state"], json!("paused"), "{restarted}");
    let add = [
        "schedule",
        "add",
        "hourly",
        "--cron",
        "0 0 * * * *",
        "--kind",
        "noop",
        "--overlap",
        "skip",
        "--catch-up",
        "all",
        "--dst-gap",
        "skip",
        "--dst-fold",
        "twice",
    ];
    let (code, s, err) = cli(url, None, &add);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        [&s["overlap"], &s["catch_up"], &s["dst"]],
        [
            &json!("skip"),
            &json!("all"),
            &json!({"gap": "skip", "fold": "twice"})
        ]
    );
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_table_prints_columns_and_json_stays_the_default_in_a_pipe() {
    let dir = temp_dir("cli-table");
    let node = Node::start(&dir, &[], &[]);
    let (_, task, _) = cli(&node.url, None, &["submit", "noop", "--wait"]);
    let (code, text, err) = run(&["list", "--url", &node.url, "--output", "table"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].trim_start().starts_with("ID"), "{text}");
    assert!(lines[1].contains(task["id"].as_str().unwrap()), "{text}");
    let (_, json, _) = run(&["list", "--url", &node.url]);
    assert!(serde_json::from_str::<Value>(&json).is_ok(), "{json}");
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_a_schedule_from_the_cli_keeps_every_other_setting() {
    let dir = temp_dir("cli-pause");
    let node = Node::start(&dir, &[], &[]);
    let url = node.url.as_str();
    let spec = json!({"cron": "0 0 * * * *", "catch_up": "all", "catch_up_max": 7,
        "overlap": "skip", "task": {"kind": "noop", "title": "t", "max_attempts": 3}});
    let at = format!("{url}/v1/schedules/keep");
    let put = support::http("PUT", &at, None, Some(spec.to_string())).await;
    assert_eq!(put.0, 200, "{:?}", put.2);
    let (code, paused, err) = cli(url, None, &["schedule", "pause", "keep"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        [
            &paused["paused"],
            &paused["catch_up_max"],
            &paused["overlap"]
        ],
        [&json!(true), &json!(7), &json!("skip")]
    );
    assert_eq!(
        [&paused["task"]["title"], &paused["task"]["max_attempts"]],
        [&json!("t"), &json!(3)]
    );
    assert_eq!(node.terminate(), 0);
}
