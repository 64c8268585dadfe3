//! One node per data directory: a second `taskmesh node` on a directory in use is refused
//! before it touches the store, with an error naming the directory and the holder's pid.
//! Real processes on 127.0.0.1, bounded time, and a checker that reads the store after.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use taskmesh::store::{SqliteStore, Store};
use taskmesh::TaskId;

const BIN: &str = env!("CARGO_BIN_EXE_taskmesh");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("taskmesh-dd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn node(data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["node", "--data-dir"])
        .arg(data)
        .args(["--http-addr", "127.0.0.1:0", "--log", "warn"])
        .env("TASKMESH_SHUTDOWN__GRACE_MS", "100")
        .env_remove("RUST_LOG");
    cmd
}

/// Starts a node and returns it with its URL, read from its first line of output.
fn start(data: &Path) -> (Child, String) {
    let mut child = node(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("taskmesh node listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    (child, url)
}

fn wait_exit(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::yield_now();
    }
}

fn submit_sleep(url: &str) -> TaskId {
    let out = Command::new(BIN)
        .args(["submit", "sleep", "--args", r#"{"ms": 20000}"#, "--quiet"])
        .env("TASKMESH_URL", url)
        .env_remove("TASKMESH_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_second_node_on_a_data_dir_in_use_is_refused_and_changes_nothing() {
    let dir = temp_dir("two");
    let data = dir.join("data");
    let (mut first, url) = start(&data);
    let ids: Vec<TaskId> = (0..3).map(|_| submit_sleep(&url)).collect();

    let mut second = node(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_exit(&mut second, Duration::from_secs(30));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&data.display().to_string()), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(err.contains("in use"), "{err}");

    Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_exit(&mut first, Duration::from_secs(30)), 0);

    let store = SqliteStore::open(data.join("taskmesh.db")).unwrap();
    for id in ids {
        let events = store.events(id).await.unwrap();
        let names: Vec<&str> = events.iter().map(|e| e.event.kind.name()).collect();
        assert!(!names.contains(&"crashed"), "{id}: {names:?}");
        let starts = names.iter().filter(|n| **n == "started").count();
        assert!(starts <= 1, "{id} started {starts} times: {names:?}");
    }
    drop(store);
    std::fs::remove_dir_all(&dir).ok();
}
