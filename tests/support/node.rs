//! Helpers for the end-to-end tests: the real `taskmesh` binary on a free port on
//! 127.0.0.1, driven over HTTP and through its CLI. Real processes, bounded time.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_taskmesh");

/// A running node; killed if the test ends without stopping it. Its log lines (stderr)
/// go to a file and, as they come, to a channel that [`Node::wait_log`] reads.
pub struct Node {
    pub child: Child,
    pub url: String,
    pub stderr: PathBuf,
    lines: Receiver<String>,
    copier: Option<std::thread::JoinHandle<()>>,
}

impl Node {
    pub fn start(dir: &Path, env: &[(&str, &str)], extra: &[&str]) -> Node {
        let stderr = dir.join(format!("node-{}.err", std::process::id()));
        let mut cmd = Command::new(BIN);
        cmd.args(["node", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--http-addr", "127.0.0.1:0", "--log", "info"]);
        cmd.args(extra)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the node starts");
        let (lines, copier) = copy_lines(child.stderr.take().unwrap(), &stderr);
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("taskmesh node listening on ")
            .unwrap_or_else(|| panic!("{line:?}"))
            .to_string();
        Node {
            child,
            url,
            stderr,
            lines,
            copier: Some(copier),
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> i32 {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = wait_exit(&mut self.child, Duration::from_secs(30));
        self.finish_logs();
        status
    }

    /// Waits (at most `limit`) for the next log line containing `needle`, and returns it.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {needle:?} within {limit:?}: {e}"),
            }
        }
    }

    /// Everything the node logged so far (all of it once it has exited).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until every log line of an exited node is in the file.
    pub fn finish_logs(&mut self) {
        if let Some(copier) = self.copier.take() {
            copier.join().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish_logs();
    }
}

/// Copies the lines of `from` into the file `to` and onto a channel, until it closes.
fn copy_lines(from: ChildStderr, to: &Path) -> (Receiver<String>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let mut file = std::fs::File::create(to).unwrap();
    let copier = std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            let _ = writeln!(file, "{line}");
            let _ = tx.send(line);
        }
    });
    (rx, copier)
}

/// Waits for `child` to exit (at most `limit`, then it is killed and the test fails) and
/// returns its exit code. A watchdog thread keeps the time; nothing polls.
pub fn wait_exit(child: &mut Child, limit: Duration) -> i32 {
    let pid = child.id().to_string();
    let (exited, done) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let late = matches!(done.recv_timeout(limit), Err(RecvTimeoutError::Timeout));
        if late {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        late
    });
    let status = child.wait().unwrap();
    let _ = exited.send(());
    let late = watchdog.join().unwrap();
    assert!(!late, "the process did not exit within {limit:?}");
    status.code().unwrap_or(-1)
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("taskmesh-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a CLI command against `url`; returns the exit code, stdout as JSON, and stderr.
pub fn cli(url: &str, token: Option<&str>, args: &[&str]) -> (i32, Value, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["--url", url])
        .env_remove("TASKMESH_TOKEN");
    if let Some(t) = token {
        cmd.env("TASKMESH_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One HTTP call; returns the status, the Retry-After header and the JSON body.
pub async fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, Option<String>, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    (
        status,
        retry,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
