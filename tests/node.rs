//! End to end: the real `taskmesh` binary on a free port on 127.0.0.1, driven over HTTP and
//! through its CLI. Real processes, bounded time.

#[path = "support/node.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use support::{cli, http, temp_dir, wait_exit, Node, BIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_runs_tasks_submitted_with_the_cli_and_with_http() {
    let dir = temp_dir("basic");
    let node = Node::start(&dir, &[], &[]);
    let url = node.url.clone();
    let (code, task, _) = cli(
        &url,
        None,
        &["submit", "echo", "--args", r#"{"hi": 1}"#, "--wait"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        (task["state"].clone(), task["result"].clone()),
        (json!("succeeded"), json!({"hi": 1}))
    );
    let (status, _, body) = http(
        "POST",
        &format!("{url}/v1/tasks"),
        None,
        Some(r#"{"kind": "noop", "args": 7, "priority": "high"}"#.into()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let wait = format!("{url}/v1/tasks/{id}/wait?timeout_ms=20000");
    let (status, _, done) = http("GET", &wait, None, None).await;
    assert_eq!(
        (status, &done["state"]),
        (200, &json!("succeeded")),
        "{done}"
    );
    let (_, list, _) = cli(&url, None, &["list", "--state", "succeeded"]);
    assert!(list["total"].as_u64().unwrap() >= 2, "{list}");
    let (_, events, _) = cli(&url, None, &["events", &id]);
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "started", "succeeded"]);
    let (code, _, err) = cli(&url, None, &["cancel", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("409 conflict"), "{err}");
    let (status, _, metrics) = http("GET", &format!("{url}/metrics"), None, None).await;
    assert_eq!(status, 200);
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("taskmesh_tasks_succeeded_total"),
        "{metrics}"
    );
    let (_, health, _) = cli(&url, None, &["health"]);
    assert_eq!(health["ready"]["ready"], json!(true));
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_back_in_one_shape_with_the_right_status() {
    let dir = temp_dir("errors");
    let config = dir.join("node.toml");
    std::fs::write(&config, "[http]\nmax_body_bytes = 2000\n[[system.queues]]\nname = \"default\"\nmin_workers = 1\nmax_workers = 1\nbound = 1\n").unwrap();
    let node = Node::start(&dir, &[], &["--config", config.to_str().unwrap()]);
    let tasks = format!("{}/v1/tasks", node.url);
    let (s, _, b) = http("POST", &tasks, None, Some("{not json".into())).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("invalid_json")),
        "{b}"
    );
    let (s, _, b) = http(
        "POST",
        &tasks,
        None,
        Some(r#"{"kind": "noop", "max_attempts": 0}"#.into()),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_attempts"),
        "{b}"
    );
    let (s, _, b) = http(
        "POST",
        &tasks,
        None,
        Some(format!(
            r#"{{"kind": "echo", "args": "{}"}}"#,
            "x".repeat(5000)
        )),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{b}"
    );
    let (s, _, b) = http(
        "GET",
        &format!("{tasks}/01a20483-1c03-73fe-a67f-86630f214e10"),
        None,
        None,
    )
    .await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
    let sleep = Some(r#"{"kind": "sleep", "args": {"ms": 5000}}"#.to_string());
    assert_eq!(http("POST", &tasks, None, sleep.clone()).await.0, 201);
    let mut saw = None;
    for _ in 0..3 {
        let (s, retry, b) = http("POST", &tasks, None, sleep.clone()).await;
        if s == 503 {
            saw = Some((retry, b));
            break;
        }
    }
    let (retry, b) = saw.expect("the third submit finds the queue full");
    assert_eq!(
        (retry.as_deref(), b["error"]["code"].as_str()),
        (Some("1"), Some("overloaded")),
        "{b}"
    );
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_the_api_and_never_appears_in_logs() {
    let dir = temp_dir("token");
    let node = Node::start(&dir, &[("TASKMESH_HTTP__TOKEN", "s3cret-t0ken")], &[]);
    let queues = format!("{}/v1/queues", node.url);
    assert_eq!(http("GET", &queues, None, None).await.0, 401);
    let (s, _, b) = http("GET", &queues, Some("wrong"), None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(
        http("GET", &queues, Some("s3cret-t0ken"), None).await.0,
        200
    );
    assert_eq!(
        http("GET", &format!("{}/health/live", node.url), None, None)
            .await
            .0,
        200
    );
    let (code, _, _) = cli(&node.url, Some("s3cret-t0ken"), &["queues"]);
    assert_eq!(code, 0);
    let (code, _, err) = cli(&node.url, None, &["queues"]);
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    let url = node.url.clone();
    let logs = node.logs();
    assert_eq!(node.terminate(), 0);
    assert!(
        !logs.contains("s3cret-t0ken"),
        "the token leaked into the logs"
    );
    let printed = Command::new(BIN)
        .args(["node", "--print-config"])
        .env("TASKMESH_HTTP__TOKEN", "s3cret-t0ken")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&printed.stdout).contains("s3cret-t0ken"));
    let _ = url;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_tasks_finish_reports_not_ready_and_exits_zero() {
    let dir = temp_dir("sigterm");
    let config = dir.join("node.toml");
    std::fs::write(&config, "[exec]\nallow = [\"sh\"]\n").unwrap();
    let grace = [("TASKMESH_SHUTDOWN__GRACE_MS", "10000")];
    let node = Node::start(&dir, &grace, &["--config", config.to_str().unwrap()]);
    let url = node.url.clone();
    // The task says it runs by writing to a fifo, which the test reads.
    let fifo = dir.join("started");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let script = r#"echo started > "$0"; sleep 1.5"#;
    let body = json!({"kind": "exec", "args": {"command": "sh", "args": ["-c", script, &fifo]}});
    let (_, _, task) = http(
        "POST",
        &format!("{url}/v1/tasks"),
        None,
        Some(body.to_string()),
    )
    .await;
    let id = task["id"].as_str().unwrap().to_string();
    let started = tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo));
    let started = tokio::time::timeout(Duration::from_secs(20), started).await;
    assert_eq!(started.unwrap().unwrap().unwrap().trim(), "started");
    let pid = node.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    node.wait_log("intake stopped", Duration::from_secs(20));
    let (ready, _, _) = http("GET", &format!("{url}/health/ready"), None, None).await;
    assert_eq!(ready, 503, "not ready once intake stopped");
    let (s, retry, _) = http(
        "POST",
        &format!("{url}/v1/tasks"),
        None,
        Some(r#"{"kind": "noop"}"#.into()),
    )
    .await;
    assert_eq!(
        (s, retry.as_deref()),
        (503, Some("1")),
        "no new work during shutdown"
    );
    let mut node = node;
    assert_eq!(wait_exit(&mut node.child, Duration::from_secs(30)), 0);
    drop(node);
    let again = Node::start(&dir, &[], &[]);
    let (_, _, t) = http("GET", &format!("{}/v1/tasks/{id}", again.url), None, None).await;
    assert_eq!(
        t["state"],
        json!("succeeded"),
        "it finished within the grace period: {t}"
    );
    assert_eq!(again.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_finds_its_tasks_and_schedules() {
    let dir = temp_dir("restart");
    let node = Node::start(&dir, &[], &[]);
    let url = node.url.clone();
    let (_, _, held) = http(
        "POST",
        &format!("{url}/v1/tasks"),
        None,
        Some(r#"{"kind": "noop", "auto_start": false}"#.into()),
    )
    .await;
    let id = held["id"].as_str().unwrap().to_string();
    let (code, sched, err) = cli(
        &url,
        None,
        &[
            "schedule",
            "add",
            "nightly",
            "--cron",
            "0 30 2 * * *",
            "--kind",
            "noop",
            "--timezone",
            "Europe/Berlin",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(sched["name"], json!("nightly"));
    assert_eq!(node.terminate(), 0);

    let again = Node::start(&dir, &[], &[]);
    let (_, _, t) = http("GET", &format!("{}/v1/tasks/{id}", again.url), None, None).await;
    assert_eq!(t["state"], json!("paused"));
    let (_, list, _) = cli(&again.url, None, &["schedule", "list"]);
    let names: Vec<&str> = list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nightly"]);
    assert_eq!(list["schedules"][0]["timezone"], json!("Europe/Berlin"));
    assert_eq!(again.terminate(), 0);
}

/// `taskmesh node …` that is expected to refuse to start: exit code and stderr (bounded).
fn refused_node(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    refused_node_as(Command::new(BIN), args, env)
}

fn refused_node_as(mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = temp_dir("refused");
    let err_path = dir.join("stderr");
    let mut child = cmd
        .arg("node")
        .args(args)
        .args(["--http-addr", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let code = wait_exit(&mut child, Duration::from_secs(30));
    (code, std::fs::read_to_string(err_path).unwrap())
}

#[test]
fn print_config_runs_the_nodes_checks_and_fails_for_a_config_the_node_refuses() {
    let (code, err) = refused_node(&["--print-config"], &[("TASKMESH_HTTP__TOKEN", "")]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("TASKMESH_HTTP__TOKEN (http.token) is empty"),
        "{err}"
    );
    let dir = temp_dir("print-config");
    let file = dir.join("zero.toml");
    std::fs::write(&file, "[http]\nmax_body_bytes = 0\n").unwrap();
    let (code, err) = refused_node(&["--print-config", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("http.max_body_bytes must be at least 1"),
        "{err}"
    );
    let (code, err) = refused_node(&["--print-config", "--config", dir.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("is a directory, not a file"), "{err}");
}

#[test]
fn a_read_only_data_dir_is_refused_up_front_saying_so() {
    let dir = temp_dir("read-only");
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    let status = Command::new("chmod").arg("555").arg(&data).status();
    assert!(status.unwrap().success());
    let cmd = if rustix::process::geteuid().is_root() {
        // root writes anywhere: run the node as nobody, for whom 0555 is read-only
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        cmd
    } else {
        Command::new(BIN)
    };
    let (code, err) = refused_node_as(cmd, &["--data-dir", data.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("data_dir {} is read-only", data.display())),
        "{err}"
    );
}

#[test]
fn a_refused_corrupt_database_gets_no_wal_or_shm_files_beside_it() {
    let dir = temp_dir("corrupt");
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("taskmesh.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (x TEXT)").unwrap();
        for i in 0..2000 {
            conn.execute("INSERT INTO t VALUES (?1)", [i.to_string().repeat(100)])
                .unwrap();
        }
    }
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[3 * 4096..3 * 4096 + 200].fill(0xff);
    std::fs::write(&db, bytes).unwrap();
    let (code, err) = refused_node(&["--data-dir", data.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{err}");
    let mut left: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    // The data directory's own lock file stays (see docs/DEPLOYMENT.md); nothing is made
    // beside the database.
    assert_eq!(left, ["taskmesh.db", "taskmesh.lock"], "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_redirected_to_a_file_hold_no_colour_codes() {
    let dir = temp_dir("colour");
    let logs_path = dir.join("stderr");
    let mut child = Command::new(BIN)
        .args(["node", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--http-addr", "127.0.0.1:0", "--log", "info"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&logs_path).unwrap())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert!(ready.starts_with("taskmesh node listening on"), "{ready}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)), 0);
    let logs = std::fs::read_to_string(logs_path).unwrap();
    assert!(logs.contains("node ready"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "escape codes in {logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_child_of_a_node_never_sees_the_nodes_token() {
    let dir = temp_dir("exec-env");
    let config = dir.join("node.toml");
    std::fs::write(&config, "[exec]\nallow = [\"printenv\"]\n").unwrap();
    let env = [("TASKMESH_HTTP__TOKEN", "s3cret-t0ken")];
    let node = Node::start(&dir, &env, &["--config", config.to_str().unwrap()]);
    let (code, task, err) = cli(
        &node.url,
        Some("s3cret-t0ken"),
        &[
            "submit",
            "exec",
            "--args",
            r#"{"command": "printenv"}"#,
            "--wait",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let stdout = task["result"]["stdout"].as_str().unwrap();
    assert!(stdout.contains("PATH="), "{stdout}");
    assert!(
        !stdout.contains("s3cret-t0ken") && !stdout.contains("TASKMESH"),
        "{stdout}"
    );
    assert_eq!(node.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_right_after_ready_is_a_graceful_shutdown_not_a_kill() {
    let dir = temp_dir("early-term");
    let node = Node::start(&dir, &[], &[]);
    assert_eq!(node.terminate(), 0, "exit 0, not killed by the signal");
}

#[test]
fn print_config_into_a_closed_pipe_exits_zero_without_a_panic() {
    let mut child = Command::new(BIN)
        .args(["node", "--print-config", "--data-dir"])
        .arg(temp_dir("closed-pipe").join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
