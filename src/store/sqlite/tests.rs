//! Tests of the SQLite store: round trips, uniqueness and group commit here; lists and
//! cleanup, failed writes, refused files and the 1M-task timing in `tests/`.

mod cleanup;
mod conformance;
mod failures;
mod files;
mod lists;
mod rows;
mod scale;

use crate::store::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde_json::json;

use super::{SqliteOptions, SqliteStore};
use crate::context::Progress;
use crate::runtime::{AttemptError, FailureKind};
use crate::store::{
    Crash, EventKind, Life, StoreError, TaskEvent, TaskFilter, TaskRecord, Write, WriteResult,
};
use crate::task::{TaskId, TaskState};

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tm-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(super) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A time with nanoseconds, `s` seconds into a fixed day.
pub(super) fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_700_000_000 + s, 123_456_789)
}

/// A pending task of `kind` created at `created`.
pub(super) fn record(kind: &str, created: SystemTime) -> TaskRecord {
    crate::store::conformance::record_of(kind, created)
}

pub(super) fn event(id: TaskId, kind: EventKind, when: SystemTime) -> TaskEvent {
    TaskEvent {
        task_id: id,
        at: when,
        kind,
        actor_id: Some("taskmesh".into()),
        correlation_id: None,
    }
}

pub(super) fn create(r: &TaskRecord) -> Write {
    let created = event(r.task.id, EventKind::Created, r.task.created_at);
    Write::Create(Box::new(r.clone()), created)
}

pub(super) fn update(id: TaskId, life: &Life, kind: EventKind) -> Write {
    Write::update(id, life.clone(), event(id, kind, life.updated_at))
}

pub(super) fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path).unwrap()
}

/// Blocks the writer thread until the sender is used (or dropped), so requests queued
/// meanwhile are committed together; the future resolves once the hold's group commits.
pub(super) fn hold(
    store: &SqliteStore,
) -> (Sender<()>, BoxFuture<'static, Result<(), StoreError>>) {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let holding = store.exec_on_writer(move |_| {
        let _ = held.recv();
        Ok(())
    });
    (release, holding)
}

#[tokio::test]
async fn a_created_task_round_trips_exactly_after_reopening() {
    let dir = TempDir::new();
    let path = dir.file("nested/dir/tasks.db");
    let mut r = record("email", at(1));
    r.task.unique_key = Some("welcome:42".into());
    r.task.run_at = Some(at(2));
    r.task.title = Some("Welcome é".into());
    r.task.metadata.actor_id = Some("ada".into());
    r.task.metadata.correlation_id = Some("req-7".into());
    let id = r.task.id;
    let mut running = r.life.clone();
    running.state = TaskState::Running;
    running.attempt = 1;
    running.phase = Some("render".into());
    running.progress = Some(Progress {
        percent: 40,
        message: "half".into(),
        at: at(3),
    });
    running.error = Some(AttemptError {
        attempt: 1,
        kind: FailureKind::Failed,
        message: "x".into(),
    });
    running.due_at = Some(at(4));
    running.updated_at = at(3);
    let crash = Crash {
        task_id: id,
        at: at(5),
        attempt: 1,
        kind: FailureKind::Panicked,
        reason: "boom".into(),
    };
    let failed = EventKind::AttemptFailed {
        error: running.error.clone().unwrap(),
    };
    let writes = vec![
        create(&r),
        update(
            id,
            &running,
            EventKind::Started {
                attempt: 1,
                worker: Some("w1".into()),
            },
        ),
        Write::Event(event(id, failed, at(5))),
        Write::Crash(crash.clone()),
    ];
    let store = open(&path);
    let done = store.write(writes.clone()).await.unwrap();
    assert_eq!(done, vec![WriteResult::Done; 4]);
    drop(store);

    let store = open(&path);
    let want = TaskRecord {
        task: r.task.clone(),
        life: running,
    };
    assert_eq!(store.get(id).await.unwrap(), Some(want.clone()));
    assert_eq!(store.open_tasks().await.unwrap(), vec![want]);
    assert_eq!(store.crashes(id).await.unwrap(), vec![crash]);
    assert_eq!(
        store.find_unique("welcome:42".into()).await.unwrap(),
        Some(id)
    );
    let events = store.events(id).await.unwrap();
    let written: Vec<TaskEvent> = writes
        .into_iter()
        .filter_map(|w| match w {
            Write::Create(_, e) | Write::Event(e) => Some(e),
            Write::Update(t) => t.events.into_iter().next(),
            Write::Crash(_) => None,
        })
        .collect();
    assert_eq!(
        events.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        written
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "{events:?}");
}

#[tokio::test]
async fn a_held_unique_key_yields_duplicate_with_the_holder_and_writes_nothing() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let keyed = |key: &str| {
        let mut r = record("k", at(1));
        r.task.unique_key = Some(key.into());
        r
    };
    let (a, b) = (keyed("k1"), keyed("k1"));
    assert_eq!(
        store.write(vec![create(&a)]).await.unwrap(),
        vec![WriteResult::Done]
    );
    let across = store.write(vec![create(&b)]).await.unwrap();
    assert_eq!(across, vec![WriteResult::Duplicate(a.task.id)]);

    let (c, d, e) = (keyed("k2"), keyed("k2"), record("k", at(2)));
    let within = store
        .write(vec![create(&c), create(&d), create(&e)])
        .await
        .unwrap();
    let want = vec![
        WriteResult::Done,
        WriteResult::Duplicate(c.task.id),
        WriteResult::Done,
    ];
    assert_eq!(within, want);
    let again = store.write(vec![create(&e)]).await.unwrap();
    assert_eq!(
        again,
        vec![WriteResult::Duplicate(e.task.id)],
        "the same id twice"
    );

    for loser in [&b, &d] {
        assert_eq!(store.get(loser.task.id).await.unwrap(), None);
        assert!(store.events(loser.task.id).await.unwrap().is_empty());
    }
    assert_eq!(store.events(e.task.id).await.unwrap().len(), 1);
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 3);
}

#[tokio::test]
async fn an_update_or_event_of_an_unknown_task_is_ignored() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let ghost = record("k", at(1));
    let id = ghost.task.id;
    let writes = vec![
        update(id, &ghost.life, EventKind::Paused),
        Write::Event(event(id, EventKind::Resumed, at(2))),
    ];
    let done = store.write(writes).await.unwrap();
    assert_eq!(done, vec![WriteResult::Done; 2]);
    assert_eq!(store.get(id).await.unwrap(), None);
    assert!(store.events(id).await.unwrap().is_empty());
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 0);
}

#[tokio::test]
async fn several_updates_of_a_task_in_one_batch_keep_the_last_life_and_every_event() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let r = record("k", at(1));
    let id = r.task.id;
    let (mut running, mut done) = (r.life.clone(), r.life.clone());
    running.state = TaskState::Running;
    done.state = TaskState::Succeeded;
    done.result = Some(json!(7));
    let writes = vec![
        create(&r),
        update(
            id,
            &running,
            EventKind::Started {
                attempt: 1,
                worker: None,
            },
        ),
        update(id, &done, EventKind::Succeeded { result: json!(7) }),
    ];
    store.write(writes).await.unwrap();
    assert_eq!(store.get(id).await.unwrap().unwrap().life, done);
    let names: Vec<_> = store
        .events(id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.kind.name())
        .collect();
    assert_eq!(names, ["created", "started", "succeeded"]);
    assert!(store.open_tasks().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_from_64_tasks_share_transactions_and_all_land() {
    let dir = TempDir::new();
    let store = open(&dir.file("t.db"));
    let (release, holding) = hold(&store);
    let queued = Arc::new(tokio::sync::Barrier::new(65));
    let mut tasks = Vec::new();
    for i in 0..64u64 {
        let (store, queued) = (store.clone(), Arc::clone(&queued));
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for j in 0..10 {
                let r = record("k", at(i * 10 + j));
                let done = store.write(vec![create(&r)]);
                if j == 0 {
                    queued.wait().await;
                }
                assert_eq!(done.await.unwrap(), vec![WriteResult::Done]);
                ids.push(r.task.id);
            }
            ids
        }));
    }
    queued.wait().await;
    let before = store.commits();
    release.send(()).unwrap();
    holding.await.unwrap();
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    let commits = store.commits() - before;
    assert!(commits < 640, "{commits} commits for 640 writes");
    assert!(
        commits <= 2 + 9 * 64,
        "the first 64 writes shared at most two commits: {commits}"
    );
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 640);
    for id in ids {
        assert!(store.get(id).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_batch_larger_than_max_batch_still_commits_whole() {
    let dir = TempDir::new();
    let options = SqliteOptions {
        readers: 1,
        max_batch: 2,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.file("t.db"), options).unwrap();
    let writes: Vec<Write> = (0..5).map(|i| create(&record("k", at(i)))).collect();
    store.write(writes).await.unwrap();
    assert_eq!(store.commits(), 1);
    assert_eq!(store.count(TaskFilter::default()).await.unwrap(), 5);
    store.check_writable().await.unwrap();
    assert_eq!(store.commits(), 2);
}

/// A deferred write is held while writes of other tasks commit on their own; a write of
/// its task commits it first, in the same transaction; an empty write commits what is held.
#[tokio::test]
async fn a_deferred_write_waits_for_a_write_of_its_task_or_an_empty_write() {
    let dir = TempDir::new();
    let options = SqliteOptions {
        max_defer: Duration::from_secs(3600),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.file("t.db"), options).unwrap();
    let (a, b, c) = (record("k", at(1)), record("k", at(2)), record("k", at(3)));
    store.write(vec![create(&a)]).await.unwrap();
    let before = store.commits();
    let progress = |id| {
        let kind = EventKind::Progress {
            percent: 50,
            message: String::new(),
            phase: None,
        };
        Write::Event(event(id, kind, at(4)))
    };
    let mut deferred = store.write_deferred(vec![progress(a.task.id)]);
    store.write(vec![create(&b)]).await.unwrap();
    assert_eq!(store.commits(), before + 1, "b committed on its own");
    assert!(futures::poll!(&mut deferred).is_pending(), "held");
    store.write(vec![progress(a.task.id)]).await.unwrap();
    deferred.await.unwrap();
    assert_eq!(store.commits(), before + 2, "a's writes in one commit");
    let names: Vec<_> = store
        .events(a.task.id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.kind.name())
        .collect();
    assert_eq!(names, ["created", "progress", "progress"]);

    let mut deferred = store.write_deferred(vec![create(&c)]);
    assert!(futures::poll!(&mut deferred).is_pending(), "held");
    store.write(Vec::new()).await.unwrap();
    assert!(
        futures::poll!(&mut deferred).is_ready(),
        "the empty write committed it"
    );
    assert_eq!(store.commits(), before + 3);
}

/// Alone, a deferred write still commits (after at most `MAX_DEFER`) and is durable.
#[tokio::test]
async fn a_lone_deferred_write_commits_by_itself() {
    let dir = TempDir::new();
    let path = dir.file("t.db");
    let store = open(&path);
    let a = record("k", at(1));
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        store.write_deferred(vec![create(&a)]),
    );
    assert_eq!(done.await.unwrap().unwrap(), vec![WriteResult::Done]);
    assert_eq!(store.commits(), 1);
    drop(store);
    assert!(open(&path).get(a.task.id).await.unwrap().is_some());
}
