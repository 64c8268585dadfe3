//! Durability across `kill -9`: a child process submits tasks durably while it runs them,
//! is killed with SIGKILL in the middle of the load, and a new system on the same store
//! must bring every acknowledged task to a terminal state.
//!
//! The child is this test binary itself, re-run with `TASKMESH_CRASH_CHILD` set, so the
//! test needs no extra binary. Real processes, no network, bounded time.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use taskmesh::store::SqliteStore;
use taskmesh::{
    Handler, HandlerResult, NewTask, Outcome, QueueConfig, TaskContext, TaskId, TaskState,
    TaskSystem,
};

const CHILD_ENV: &str = "TASKMESH_CRASH_CHILD";

/// Takes a few milliseconds, so tasks are running when the child is killed.
struct Work;

impl Handler for Work {
    const KIND: &'static str = "work";
    type Args = u64;
    type Output = u64;
    async fn perform(&self, _: TaskContext, n: u64) -> HandlerResult<u64> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok(Outcome::Succeeded(n))
    }
}

async fn system(path: &PathBuf, ns: &str) -> TaskSystem {
    let store = SqliteStore::open(path).expect("the store opens");
    TaskSystem::builder()
        .namespace(ns)
        .queue(QueueConfig::new("default").workers(2, 8))
        .store(store)
        .handler(Work)
        .start()
        .await
        .expect("the system starts")
}

/// The child's workload: 8 submitters forever, printing each acknowledged id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_workload() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // only meaningful as the child of the test below
    };
    let sys = system(&PathBuf::from(path), "crash-child").await;
    let subs = (0..8u64).map(|s| {
        let sys = sys.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let r = sys
                    .submit(NewTask::new("work", (s * 1_000_000 + i).into()))
                    .await;
                println!("ACK {}", r.expect("submit").id);
            }
        })
    });
    futures::future::join_all(subs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_task_survives_a_sigkill_and_ends() {
    let dir = std::env::temp_dir().join(format!("taskmesh-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tasks.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_workload",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked: Vec<TaskId> = vec![];
    while acked.len() < 2_000 {
        let line = lines.next().expect("the child is still running").unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.parse().unwrap());
        }
    }
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    child.wait().unwrap();
    for line in lines {
        if let Some(id) = line.unwrap().strip_prefix("ACK ") {
            acked.push(id.parse().unwrap());
        }
    }

    let sys = system(&path, "crash-parent").await;
    let recovery = sys.recovery();
    assert!(
        recovery.loaded > 0,
        "the kill left unfinished tasks: {recovery:?}"
    );
    for id in &acked {
        let r = sys.wait_timeout(*id, Duration::from_secs(60)).await;
        let r = r.unwrap_or_else(|e| panic!("acknowledged task {id} was lost: {e}"));
        assert_eq!(r.state, TaskState::Succeeded, "{id}");
    }
    sys.shutdown(Duration::from_secs(5)).await;
    std::fs::remove_dir_all(&dir).ok();
}
