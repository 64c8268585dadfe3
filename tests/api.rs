//! The HTTP API of a real `taskmesh` node on 127.0.0.1: slow clients under a small
//! open-file limit, and exact large numbers through the SQLite store. Real processes,
//! bounded time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_taskmesh");

/// A node started through `sh` with an open-file limit; killed when dropped.
struct Node {
    child: Child,
    url: String,
    addr: String,
    stderr: PathBuf,
}

impl Node {
    /// Starts a node on `dir` with `ulimit -n nofile` and the extra environment `env`.
    fn start(dir: &Path, nofile: u32, env: &[(&str, &str)]) -> Node {
        let stderr = dir.join("node.err");
        let script = format!("ulimit -n {nofile} && exec \"$0\" \"$@\"");
        let mut child = Command::new("sh")
            .args(["-c", &script, BIN, "node", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--http-addr", "127.0.0.1:0", "--log", "info"])
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("the node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("taskmesh node listening on ")
            .unwrap_or_else(|| panic!("{line:?}: {}", std::fs::read_to_string(&stderr).unwrap()))
            .to_string();
        let addr = url.trim_start_matches("http://").to_string();
        Node {
            child,
            url,
            addr,
            stderr,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Kills the node and waits for it.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("taskmesh-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Opens `n` connections that each send the start of a request head and nothing more.
async fn slow_clients(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr)
            .await
            .expect("the backlog takes it");
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: slow\r\n")
            .await
            .unwrap();
        all.push(s);
    }
    all
}

/// Waits until the server closes `s` (end of stream or reset), reading what it sends.
async fn closed_by_server(mut s: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

/// 300 slow clients against a node with `ulimit -n 128`; `/health/live` must answer
/// within a bounded time, and every slow client must be closed by the server.
async fn survive_slow_clients(name: &str, max_connections: &str) -> String {
    let dir = temp_dir(name);
    let env = [
        ("TASKMESH_HTTP__MAX_CONNECTIONS", max_connections),
        ("TASKMESH_HTTP__HEADER_READ_TIMEOUT_MS", "500"),
    ];
    let node = Node::start(&dir, 128, &env);
    let slow = slow_clients(&node.addr, 300).await;
    let live = reqwest::Client::new()
        .get(format!("{}/health/live", node.url))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap_or_else(|e| panic!("/health/live did not answer: {e}\n{}", node.logs()));
    assert_eq!(live.status(), 200);
    let closing = futures::future::join_all(slow.into_iter().map(closed_by_server));
    tokio::time::timeout(Duration::from_secs(60), closing)
        .await
        .expect("the server closes every slow client after its header timeout");
    let logs = node.logs();
    node.kill();
    let _ = std::fs::remove_dir_all(&dir);
    logs
}

#[tokio::test]
async fn slow_clients_are_closed_and_health_answers_under_a_small_file_limit() {
    let logs = survive_slow_clients("slow", "32").await;
    assert!(!logs.contains("accept failed"), "{logs}");
}

#[tokio::test]
async fn accept_errors_from_the_file_limit_back_off_instead_of_spinning() {
    let logs = survive_slow_clients("emfile", "10000").await;
    let failures = logs.matches("http accept failed").count();
    assert!(failures > 0, "the file limit was never reached: {logs}");
    assert!(failures < 100, "{failures} accept failures: the loop spins");
}

#[tokio::test]
async fn a_large_integer_arg_survives_the_sqlite_store_and_a_restart_exactly() {
    let dir = temp_dir("exact");
    let exact =
        r#"{"big":100000000000000000000000000001,"dec":0.1000000000000000055511151231257827}"#;
    let body = format!(r#"{{"kind":"echo","args":{exact},"auto_start":false}}"#);
    let node = Node::start(&dir, 4096, &[]);
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{}/v1/tasks", node.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("created").to_string();
    assert_eq!(created["args"].to_string(), exact);
    node.kill();

    let node = Node::start(&dir, 4096, &[]);
    let text = client
        .get(format!("{}/v1/tasks/{id}", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let got: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got["args"].to_string(), exact, "{text}");
    assert!(text.contains("100000000000000000000000000001"), "{text}");
    node.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `head` raw and reads the answer until the server closes or answers fully.
async fn raw_exchange(addr: &str, head: String) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer));
    read.await.expect("the server answers and closes").unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn oversized_heads_over_a_real_socket_get_431_and_414_in_the_error_shape() {
    let dir = temp_dir("heads");
    let node = Node::start(&dir, 4096, &[]);
    let headers: String = (0..70).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many =
        format!("GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n");
    let answer = raw_exchange(&node.addr, many).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.contains(r#""code":"headers_too_large""#), "{answer}");
    let long = format!(
        "GET /v1/tasks?queue={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "q".repeat(9000)
    );
    let answer = raw_exchange(&node.addr, long).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert!(answer.contains(r#""code":"uri_too_long""#), "{answer}");
    node.kill();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn run_at_outside_1970_to_2262_is_a_400_naming_run_at_with_the_sqlite_store() {
    let dir = temp_dir("run-at");
    let node = Node::start(&dir, 4096, &[]);
    let client = reqwest::Client::new();
    for at in ["1969-12-31T23:59:59Z", "2263-01-01T00:00:00Z"] {
        let body = format!(r#"{{"kind":"noop","run_at":"{at}"}}"#);
        let answer = client
            .post(format!("{}/v1/tasks", node.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{at}");
        assert!(answer.headers().get("retry-after").is_none(), "{at}");
        let text = answer.text().await.unwrap();
        assert!(text.contains("invalid run_at"), "{at}: {text}");
    }
    let logs = node.logs();
    node.kill();
    assert!(!logs.contains("store write failed"), "{logs}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn health_answers_while_slow_clients_hold_connections_which_then_are_closed() {
    let dir = temp_dir("hold");
    let env = [
        ("TASKMESH_HTTP__MAX_CONNECTIONS", "64"),
        ("TASKMESH_HTTP__HEADER_READ_TIMEOUT_MS", "2000"),
    ];
    let node = Node::start(&dir, 4096, &env);
    let slow = slow_clients(&node.addr, 40).await;
    let live = reqwest::get(format!("{}/health/live", node.url))
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let mut buf = [0u8; 16];
    let open = slow
        .iter()
        .filter(|s| matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock))
        .count();
    assert_eq!(
        open, 40,
        "the slow clients were still connected while health answered"
    );
    let closing = futures::future::join_all(slow.into_iter().map(closed_by_server));
    tokio::time::timeout(Duration::from_secs(30), closing)
        .await
        .expect("the server closes every slow client after its header timeout");
    node.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
