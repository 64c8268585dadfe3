//! The `exec` kind's isolation: a clean environment, and a process group that dies with
//! the attempt. Real child processes, bounded time.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::unique_ns;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use serde_json::json;
use taskmesh::builtin::{self, ExecConfig};
use taskmesh::{Control, NewTask, TaskId, TaskState, TaskSystem};

async fn system(allow: &[&str], env: &[(&str, &str)]) -> TaskSystem {
    let exec = ExecConfig {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ExecConfig::default()
    };
    start(exec, TaskSystem::builder()).await
}

async fn start(exec: ExecConfig, builder: taskmesh::TaskSystemBuilder) -> TaskSystem {
    builtin::register(builder.namespace(unique_ns("exec")), exec)
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_exec_child_sees_only_the_minimal_environment_and_exec_env() {
    assert!(
        std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
        "cargo gives the test process variables a child must not see"
    );
    let sys = system(&["printenv"], &[("GREETING", "hello")]).await;
    let r = sys
        .submit_and_wait(NewTask::new("exec", json!({"command": "printenv"})))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Succeeded, "{:?}", r.error);
    let stdout = r.result.unwrap()["stdout"].as_str().unwrap().to_string();
    let vars: BTreeMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once('=')).collect();
    let allowed = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "GREETING"];
    assert!(
        vars.keys().all(|k| allowed.contains(k)),
        "unexpected variables: {stdout}"
    );
    assert_eq!(vars.get("GREETING"), Some(&"hello"));
    assert!(vars.contains_key("PATH"), "{stdout}");
    sys.shutdown(Duration::from_secs(1)).await;
}

/// A FIFO the command writes its two grandchildren's pids to; reading it waits for them.
fn fifo(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("taskmesh-exec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    path
}

/// `sh` starting two background sleeps, writing their pids to `fifo`, and waiting.
fn two_grandchildren(fifo: &Path) -> NewTask {
    sh_with_grandchildren("", fifo)
}

/// Like [`two_grandchildren`], after the `prelude` commands.
fn sh_with_grandchildren(prelude: &str, fifo: &Path) -> NewTask {
    let script =
        format!(r#"{prelude}sleep 301 & a=$!; sleep 302 & b=$!; echo "$a $b" > "$0"; wait"#);
    NewTask::new(
        "exec",
        json!({"command": "sh", "args": ["-c", script, fifo.to_str().unwrap()]}),
    )
}

async fn read_pids(fifo: PathBuf) -> Vec<i32> {
    let text = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || std::fs::read_to_string(fifo).unwrap()),
    )
    .await
    .expect("the command writes its grandchildren's pids")
    .unwrap();
    let pids: Vec<i32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{text:?}");
    pids
}

/// Waits (bounded) for `pid` to exit, on its pidfd: the event, not a poll of its state.
fn exits_within(pid: i32, limit: Duration) -> bool {
    let Ok(fd) = pidfd_open(Pid::from_raw(pid).unwrap(), PidfdFlags::empty()) else {
        return true; // ESRCH: gone and reaped already
    };
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let timeout = rustix::event::Timespec {
        tv_sec: limit.as_secs() as i64,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&timeout)).unwrap() == 1
}

async fn assert_grandchildren_gone(sys: &TaskSystem, id: TaskId, pids: &[i32]) -> TaskState {
    let r = sys.wait_timeout(id, Duration::from_secs(20)).await.unwrap();
    for &pid in pids {
        assert!(
            exits_within(pid, Duration::from_secs(10)),
            "grandchild {pid} outlived its task"
        );
    }
    r.state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_exec_kills_its_grandchildren_too() {
    let sys = system(&["sh"], &[]).await;
    let fifo = fifo("cancel");
    let id = sys.submit(two_grandchildren(&fifo)).await.unwrap().id;
    let pids = read_pids(fifo.clone()).await;
    assert_eq!(sys.cancel(id, "enough").await.unwrap(), Control::Requested);
    let state = assert_grandchildren_gone(&sys, id, &pids).await;
    assert_eq!(state, TaskState::Cancelled);
    let _ = std::fs::remove_file(fifo);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_exec_kills_its_grandchildren_too() {
    let sys = system(&["sh"], &[]).await;
    let fifo = fifo("timeout");
    let task = two_grandchildren(&fifo).timeout(Duration::from_millis(300));
    let id = sys.submit(task).await.unwrap().id;
    let pids = read_pids(fifo.clone()).await;
    let state = assert_grandchildren_gone(&sys, id, &pids).await;
    assert_eq!(state, TaskState::Failed);
    let _ = std::fs::remove_file(fifo);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_aborted_after_the_grace_kills_its_group_even_when_it_ignores_sigterm() {
    let exec = ExecConfig {
        allow: vec!["sh".into()],
        kill_grace_ms: 600_000,
        ..ExecConfig::default()
    };
    let builder = TaskSystem::builder().cancel_grace(Duration::from_millis(200));
    let sys = start(exec, builder).await;
    let fifo = fifo("abort");
    let id = sys
        .submit(sh_with_grandchildren("trap '' TERM; ", &fifo))
        .await
        .unwrap()
        .id;
    let pids = read_pids(fifo.clone()).await;
    assert_eq!(sys.cancel(id, "enough").await.unwrap(), Control::Requested);
    let state = assert_grandchildren_gone(&sys, id, &pids).await;
    assert_eq!(state, TaskState::Cancelled);
    let _ = std::fs::remove_file(fifo);
    sys.shutdown(Duration::from_secs(1)).await;
}
