//! One node per data directory: a second `taskmesh node` on a directory in use is refused
//! before it touches the store, with an error naming the directory and the holder's pid.
//! Real processes on 127.0.0.1, bounded time, and a checker that reads the store after.

#[path = "support/node.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;
use taskmesh::store::prelude::*;

use support::{cli, temp_dir, wait_exit, Node, BIN};
use taskmesh::store::SqliteStore;
use taskmesh::TaskId;

fn submit_sleep(url: &str) -> TaskId {
    let args = [
        "submit",
        "sleep",
        "--args",
        r#"{"ms": 20000}"#,
        "--output",
        "json",
    ];
    let (code, task, err) = cli(url, None, &args);
    assert_eq!(code, 0, "{err}");
    task["id"]
        .as_str()
        .expect("the receipt's id")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_second_node_on_a_data_dir_in_use_is_refused_and_changes_nothing() {
    let dir = temp_dir("twonodes");
    let data = dir.join("data");
    let grace = [("TASKMESH_SHUTDOWN__GRACE_MS", "100")];
    let first = Node::start(&dir, &grace, &[]);
    let ids: Vec<TaskId> = (0..3).map(|_| submit_sleep(&first.url)).collect();

    let mut second = Command::new(BIN)
        .args(["node", "--data-dir"])
        .arg(&data)
        .args(["--http-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = wait_exit(&mut second, Duration::from_secs(30));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&data.display().to_string()), "{err}");
    assert!(err.contains(&format!("pid {}", first.child.id())), "{err}");
    assert!(err.contains("in use"), "{err}");

    assert_eq!(first.terminate(), 0);
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
