//! Store faults and concurrency at the system level: a failing store refuses submits and
//! makes the system not ready without taking it down; concurrent creates with unique
//! keys make one task per key; an unusable database file is refused by name, untouched;
//! on a shared store, an attempt whose end was lost is retried by its own process.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{gate, next_start, task, unique_ns};
use futures::future::{BoxFuture, FutureExt};
use taskmesh::store::prelude::*;
use taskmesh::store::{
    MemoryStore, SqliteStore, StoreError, TaskFilter, TaskStore, Write, WriteResult,
};
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{HealthStatus, SubmitError, TaskError, TaskId, TaskState, TaskSystem};
use tokio::sync::{mpsc, oneshot};

/// Writes held by [`Flaky::write_deferred`], each with the sender of its result.
type Held = Vec<(
    Vec<Write>,
    oneshot::Sender<Result<Vec<WriteResult>, StoreError>>,
)>;

/// A memory store whose writes fail while `broken` is set, like a full disk. It takes
/// `write_deferred` at its strictest: a deferred batch waits until a write someone waits
/// on comes (a real store also commits it after `MAX_DEFER`), and each deferred batch
/// that ends a task is reported on `ended`.
#[derive(Clone, Default)]
struct Flaky {
    inner: MemoryStore,
    broken: Arc<AtomicBool>,
    /// The small readiness probe passes even while writes fail, as on a full disk where
    /// the WAL still has room for one page; only the recovery check fails then.
    probe_fits: Arc<AtomicBool>,
    held: Arc<Mutex<Held>>,
    /// How many of the next writes that end a task fail (a lost end).
    lose_ends: Arc<AtomicUsize>,
    ended: Arc<Mutex<Option<mpsc::UnboundedSender<TaskId>>>>,
    /// Commit a deferred batch after `MAX_DEFER` too, as a real store does (else it waits
    /// for a write someone waits on).
    commit_deferred: bool,
}

impl Flaky {
    /// Applies the held batches, in order.
    fn flush(&self) {
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        for (batch, reply) in held {
            let done = self.inner.write(batch).now_or_never();
            let _ = reply.send(done.expect("memory writes apply at once"));
        }
    }
}

taskmesh::delegate_coordination!(Flaky, inner);

impl TaskStore for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn durable(&self) -> bool {
        true
    }

    fn write(&self, batch: Vec<Write>) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        if self.broken.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::WriteFailed("disk full".into())) });
        }
        let ends = batch
            .iter()
            .any(|w| matches!(w, Write::Update(t) if t.life.state.is_terminal()));
        let lose = |n: usize| n.checked_sub(1);
        if ends
            && self
                .lose_ends
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, lose)
                .is_ok()
        {
            return Box::pin(async { Err(StoreError::WriteFailed("disk full".into())) });
        }
        self.flush();
        self.inner.write(batch)
    }

    fn write_deferred(
        &self,
        batch: Vec<Write>,
    ) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        let ends = batch.iter().find_map(|w| match w {
            Write::Update(t) if t.life.state.is_terminal() => Some(t.id),
            _ => None,
        });
        let (reply, result) = oneshot::channel();
        self.held.lock().unwrap().push((batch, reply));
        if self.commit_deferred {
            let store = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(taskmesh::store::MAX_DEFER).await;
                store.flush();
            });
        }
        if let (Some(id), Some(tx)) = (ends, &*self.ended.lock().unwrap()) {
            let _ = tx.send(id);
        }
        Box::pin(async move { result.await.unwrap_or(Err(StoreError::Closed)) })
    }

    taskmesh::task_store_reads!(inner);

    fn check_writable(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let broken = self.broken.load(Ordering::SeqCst) && !self.probe_fits.load(Ordering::SeqCst);
        Box::pin(async move {
            if broken {
                return Err(StoreError::WriteFailed("disk full".into()));
            }
            Ok(())
        })
    }

    fn check_recovered(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let broken = self.broken.load(Ordering::SeqCst);
        Box::pin(async move {
            if broken {
                return Err(StoreError::WriteFailed("disk full".into()));
            }
            Ok(())
        })
    }
}

taskmesh::delegate_event_log!(Flaky, inner);

taskmesh::delegate_schedule_store!(Flaky, inner);

/// A system in a namespace of its own over `store`, with the scripted handler `h`.
async fn on(store: &Flaky, prefix: &str, h: ScriptHandler) -> TaskSystem {
    TaskSystem::builder()
        .namespace(unique_ns(prefix))
        .store(store.clone())
        .handler(h)
        .start()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_refuses_submits_reports_not_ready_and_recovers() {
    let store = Flaky::default();
    let (h, _rx) = ScriptHandler::new();
    let sys = on(&store, "flaky", h).await;
    assert!(sys.ready().await.ready);
    store.broken.store(true, Ordering::SeqCst);
    let refused = sys.submit(task(Script::Ok { value: 1.into() })).await;
    assert!(
        matches!(&refused, Err(SubmitError::Store(StoreError::WriteFailed(m))) if m == "disk full"),
        "{refused:?}"
    );
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("could not be stored"));
    assert_eq!(
        sys.queues()[0].depth,
        0,
        "nothing unacknowledged was enqueued"
    );
    let readiness = sys.ready().await;
    assert!(!readiness.ready);
    assert!(
        readiness.failing.iter().any(|f| f.starts_with("store:")),
        "{readiness:?}"
    );
    let health = sys.health().await;
    let pool = health
        .services
        .iter()
        .find(|s| s.service == "pool:default")
        .unwrap();
    assert_eq!(pool.status, HealthStatus::Healthy, "the system stays up");

    store.broken.store(false, Ordering::SeqCst);
    assert!(sys.ready().await.ready);
    let r = sys
        .submit_and_wait(task(Script::Ok { value: 2.into() }))
        .await
        .unwrap();
    assert_eq!(r.state, TaskState::Succeeded);
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn readiness_stays_not_ready_while_writes_fail_though_a_small_probe_passes() {
    let store = Flaky::default();
    store.probe_fits.store(true, Ordering::SeqCst);
    let (h, _rx) = ScriptHandler::new();
    let sys = on(&store, "fullprobe", h).await;
    assert!(sys.ready().await.ready);
    store.broken.store(true, Ordering::SeqCst);
    let refused = sys.submit(task(Script::Ok { value: 1.into() })).await;
    assert!(refused.is_err(), "{refused:?}");
    for _ in 0..3 {
        let readiness = sys.ready().await;
        assert!(!readiness.ready, "a passing probe hid the failed write");
        assert!(
            readiness.failing.iter().any(|f| f.starts_with("store:")),
            "{readiness:?}"
        );
    }
    store.broken.store(false, Ordering::SeqCst);
    assert!(sys.ready().await.ready, "the recovery check passed");
    sys.submit_and_wait(task(Script::Ok { value: 2.into() }))
        .await
        .unwrap();
    sys.shutdown(Duration::from_secs(1)).await;
}

/// Commands are written first and applied after: one whose write fails returns the
/// error and leaves the task as it was, in memory and in the store.
#[tokio::test(start_paused = true)]
async fn a_command_whose_write_fails_changes_nothing() {
    let store = Flaky::default();
    let (h, _rx) = ScriptHandler::new();
    let sys = on(&store, "cmdfail", h).await;
    let paused = sys
        .submit(task(Script::Ok { value: 1.into() }).auto_start(false))
        .await
        .unwrap()
        .id;
    let later = SystemTime::now() + Duration::from_secs(60);
    let scheduled = sys
        .submit(task(Script::Ok { value: 2.into() }).run_at(later))
        .await
        .unwrap()
        .id;
    store.broken.store(true, Ordering::SeqCst);
    for (id, was) in [
        (paused, TaskState::Paused),
        (scheduled, TaskState::Scheduled),
    ] {
        let outcomes = [
            sys.cancel(id, "no").await,
            sys.complete(id, 9.into()).await,
            sys.resume(id).await,
            sys.pause(id).await,
        ];
        for outcome in outcomes {
            assert!(
                matches!(
                    outcome,
                    Err(TaskError::Store(_)) | Err(TaskError::Transition(_))
                ),
                "{outcome:?}"
            );
        }
        if was == TaskState::Paused {
            assert!(matches!(sys.restart(id).await, Err(TaskError::Store(_))));
        }
        assert_eq!(
            sys.status(id).unwrap().state,
            was,
            "nothing changed in memory"
        );
        let stored = store.inner.get(id).await.unwrap().unwrap();
        assert_eq!(stored.life.state, was, "nothing changed in the store");
    }
    store.broken.store(false, Ordering::SeqCst);
    let done = sys.wait(scheduled).await.unwrap();
    assert_eq!(
        done.state,
        TaskState::Succeeded,
        "the failed cancel left it to run"
    );
    sys.resume(paused).await.unwrap();
    assert_eq!(sys.wait(paused).await.unwrap().state, TaskState::Succeeded);
    sys.shutdown(Duration::from_secs(1)).await;
}

/// A command on a running task is a stop request, stored before the attempt's token
/// fires: if it cannot be stored, the caller gets the error and the attempt runs on.
#[tokio::test(start_paused = true)]
async fn a_stop_request_that_cannot_be_stored_leaves_the_attempt_running() {
    let store = Flaky::default();
    let (h, mut rx) = ScriptHandler::new();
    let sys = on(&store, "stopfail", h.clone()).await;
    let id = sys.submit(gate("g")).await.unwrap().id;
    next_start(&mut rx).await;
    store.broken.store(true, Ordering::SeqCst);
    for refused in [
        sys.cancel(id, "stop").await,
        sys.pause(id).await,
        sys.restart(id).await,
        sys.complete(id, 1.into()).await,
    ] {
        assert!(matches!(refused, Err(TaskError::Store(_))), "{refused:?}");
    }
    assert_eq!(sys.status(id).unwrap().state, TaskState::Running);
    store.broken.store(false, Ordering::SeqCst);
    h.open("g", 1);
    let done = sys.wait(id).await.unwrap();
    assert_eq!(
        done.state,
        TaskState::Succeeded,
        "no request reached the attempt"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

/// A stop request that was stored is not lost when the process dies before the attempt
/// stops: recovery applies it instead of running the task again.
#[tokio::test(start_paused = true)]
async fn a_stored_stop_request_is_applied_at_recovery() {
    let store = Flaky::default();
    let (h, mut rx) = ScriptHandler::new();
    let first = on(&store, "stopcrash", h).await;
    let id = first.submit(gate("g")).await.unwrap().id;
    next_start(&mut rx).await;
    assert_eq!(
        first.cancel(id, "operator").await.unwrap(),
        taskmesh::Control::Requested
    );
    // The process "dies" now: nothing it writes after the request is stored.
    store.broken.store(true, Ordering::SeqCst);
    let stored = store.inner.get(id).await.unwrap().unwrap();
    assert_eq!(stored.life.state, TaskState::Running);
    assert!(stored.life.intent.is_some(), "the request is stored");

    let (h, mut rx2) = ScriptHandler::new();
    let second = TaskSystem::builder()
        .namespace(unique_ns("stopcrash2"))
        .store(store.inner.clone())
        .handler(h)
        .start()
        .await
        .unwrap();
    let status = second.status(id).unwrap();
    assert_eq!(
        (status.state, status.cancel_reason.as_deref()),
        (TaskState::Cancelled, Some("operator"))
    );
    assert!(rx2.try_recv().is_err(), "the task did not run again");
    let names: Vec<&str> = second
        .events(id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.kind.name())
        .collect();
    assert!(names.contains(&"stop_requested"), "{names:?}");
    assert!(!names.contains(&"crashed"), "{names:?}");
    assert_eq!(names.last(), Some(&"cancelled"), "{names:?}");
    second.shutdown(Duration::from_secs(1)).await;
    first.shutdown(Duration::from_secs(1)).await;
}

/// A waiter is told a task ended only once its end is durable: when the write of the end
/// fails, the waiter (and every later one) is told the end could not be stored.
#[tokio::test(start_paused = true)]
async fn a_waiter_is_not_told_of_an_end_whose_write_failed() {
    let store = Flaky::default();
    let (h, mut rx) = ScriptHandler::new();
    let sys = on(&store, "endlost", h.clone()).await;
    let id = sys.submit(gate("g")).await.unwrap().id;
    next_start(&mut rx).await;
    let waiting = tokio::spawn({
        let sys = sys.clone();
        async move { sys.wait(id).await }
    });
    tokio::task::yield_now().await;
    store.broken.store(true, Ordering::SeqCst);
    h.open("g", 1);
    let told = waiting.await.unwrap();
    assert!(
        matches!(told, Err(TaskError::EndNotStored(t)) if t == id),
        "{told:?}"
    );
    let again = sys.wait(id).await;
    assert!(
        matches!(again, Err(TaskError::EndNotStored(_))),
        "{again:?}"
    );
    store.broken.store(false, Ordering::SeqCst);
    let stored = store.inner.get(id).await.unwrap().unwrap();
    assert!(
        !stored.life.state.is_terminal(),
        "the store never saw the end: {:?}",
        stored.life.state
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

/// On a store several processes share, an attempt whose end could not be stored stays
/// `running` there, held by this live process, so nobody else rescues it: the process
/// finds it on a later heartbeat and counts the attempt as crashed, and the task is
/// retried to its end; a waiter is told that end. Found by the chaos run.
#[tokio::test(start_paused = true)]
async fn on_a_shared_store_an_attempt_whose_end_was_lost_is_retried_by_its_own_process() {
    let store = Flaky {
        inner: MemoryStore::shared(),
        commit_deferred: true,
        ..Flaky::default()
    };
    let (h, mut rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("lostend"))
        .node_name("lostend")
        .store(store.clone())
        .handler(h.clone())
        .liveness(
            Duration::from_secs(5),
            Duration::from_millis(50),
            Duration::from_millis(50),
        )
        .start()
        .await
        .unwrap();
    let id = sys.submit(gate("g")).await.unwrap().id;
    assert_eq!(next_start(&mut rx).await.attempt, 1);
    // Waited on before it ends, so its end is written at once (not deferred).
    let waiting = tokio::spawn({
        let sys = sys.clone();
        async move { sys.wait(id).await }
    });
    tokio::task::yield_now().await;
    store.lose_ends.store(1, Ordering::SeqCst);
    h.open("g", 1);
    // A waiter that comes once the end was lost waits for the end in the store (the
    // attempt runs again; had this process been declared dead, it would run elsewhere).
    tokio::time::timeout(Duration::from_secs(10), async {
        while store.lose_ends.load(Ordering::SeqCst) != 0
            || !sys.status(id).is_ok_and(|s| s.state.is_terminal())
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the first attempt ended and its end was lost");
    let late = tokio::spawn({
        let sys = sys.clone();
        async move { sys.wait(id).await }
    });
    let again = tokio::time::timeout(Duration::from_secs(10), next_start(&mut rx))
        .await
        .expect("the attempt whose end was lost is retried");
    assert_eq!(
        store.lose_ends.load(Ordering::SeqCst),
        0,
        "the first end was lost"
    );
    assert_eq!(again.attempt, 2, "the lost attempt counted as crashed");
    h.open("g", 1);
    let done = waiting.await.unwrap().unwrap();
    assert_eq!((done.state, done.attempt), (TaskState::Succeeded, 2));
    let late = late
        .await
        .unwrap()
        .expect("not EndNotStored: the end came from the store");
    assert_eq!((late.state, late.attempt), (TaskState::Succeeded, 2));
    let crashed = store
        .inner
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind.name() == "crashed")
        .count();
    assert_eq!(crashed, 1, "one crashed attempt recorded");
    sys.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_with_shared_unique_keys_make_one_task_per_key() {
    let dir = std::env::temp_dir().join(format!("taskmesh-conc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(dir.join("t.db")).unwrap();
    let (h, _rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("conc"))
        .store(store)
        .handler(h)
        .start()
        .await
        .unwrap();
    let submits = (0..400).map(|i| {
        let sys = sys.clone();
        tokio::spawn(async move {
            let key = format!("key-{}", i % 10);
            sys.submit(task(Script::Ok { value: i.into() }).unique_key(key))
                .await
                .unwrap()
        })
    });
    let receipts: Vec<_> = futures::future::join_all(submits)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let mut firsts: Vec<TaskId> = receipts
        .iter()
        .filter(|r| !r.duplicate)
        .map(|r| r.id)
        .collect();
    firsts.sort();
    assert_eq!(firsts.len(), 10, "one task per key");
    let mut all: Vec<TaskId> = receipts.iter().map(|r| r.id).collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all, firsts,
        "every duplicate points at the task holding its key"
    );
    for id in firsts {
        sys.wait_timeout(id, Duration::from_secs(10)).await.unwrap();
    }
    assert_eq!(sys.count(TaskFilter::default()).await.unwrap(), 10);
    sys.shutdown(Duration::from_secs(1)).await;
    std::fs::remove_dir_all(&dir).ok();
}

/// Every answer to a submit of a held key points at a task that can be read at once,
/// as the HTTP API reads it to answer: the first submit may still be storing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submits_of_one_unique_key_all_answer_with_a_task_that_can_be_read() {
    let dir = std::env::temp_dir().join(format!("taskmesh-onekey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqliteStore::open(dir.join("t.db")).unwrap();
    let (h, _rx) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("onekey"))
        .store(store)
        .handler(h)
        .start()
        .await
        .unwrap();
    let submits = (0..200).map(|i| {
        let sys = sys.clone();
        tokio::spawn(async move {
            let new = task(Script::Ok { value: i.into() }).unique_key("the-one");
            let receipt = sys.submit(new).await.unwrap();
            let read = sys.status(receipt.id).map(|s| s.id);
            (receipt, read)
        })
    });
    let answers: Vec<_> = futures::future::join_all(submits)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let first: Vec<TaskId> = answers
        .iter()
        .filter(|(r, _)| !r.duplicate)
        .map(|(r, _)| r.id)
        .collect();
    assert_eq!(first.len(), 1, "exactly one task is created");
    for (receipt, read) in &answers {
        assert_eq!(receipt.id, first[0]);
        assert_eq!(read.as_ref().ok(), Some(&first[0]), "{read:?}");
    }
    sys.shutdown(Duration::from_secs(1)).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn an_unusable_database_file_is_refused_by_name_and_left_untouched() {
    let dir = std::env::temp_dir().join(format!("taskmesh-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notes.db");
    let bytes = b"these are my notes, not a database".repeat(200);
    std::fs::write(&path, &bytes).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("left untouched"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    std::fs::remove_dir_all(&dir).ok();
}

/// A task that ends while nobody waits has its end written deferred. A caller who then
/// waits is answered only once that end is durable, and its waiting makes the store
/// commit the end now rather than whenever company comes.
#[tokio::test(start_paused = true)]
async fn waiting_on_a_task_whose_end_is_not_durable_yet_hurries_the_write_and_waits_for_it() {
    let store = Flaky::default();
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    *store.ended.lock().unwrap() = Some(ended_tx);
    let (h, _rx) = ScriptHandler::new();
    let sys = on(&store, "deferred", h).await;
    let id = sys
        .submit(task(Script::Ok { value: 7.into() }))
        .await
        .unwrap()
        .id;
    assert_eq!(ended.recv().await, Some(id), "the end was written deferred");
    assert_eq!(sys.status(id).unwrap().state, TaskState::Succeeded);
    let stored = store.inner.get(id).await.unwrap().unwrap();
    assert!(
        !stored.life.state.is_terminal(),
        "the end is held: {:?}",
        stored.life.state
    );

    let result = sys.wait_timeout(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (result.state, result.result),
        (TaskState::Succeeded, Some(7.into()))
    );
    let stored = store.inner.get(id).await.unwrap().unwrap();
    assert_eq!(
        stored.life.state,
        TaskState::Succeeded,
        "durable when wait returned"
    );
    sys.shutdown(Duration::from_secs(1)).await;
}

/// Lists and counts read the store; they first commit what it holds back, so a task that
/// ended is listed by its end state at once.
#[tokio::test(start_paused = true)]
async fn a_list_right_after_an_end_sees_the_end_the_store_held_back() {
    let store = Flaky::default();
    let (ended_tx, mut ended) = mpsc::unbounded_channel();
    *store.ended.lock().unwrap() = Some(ended_tx);
    let (h, _rx) = ScriptHandler::new();
    let sys = on(&store, "listheld", h).await;
    let id = sys
        .submit(task(Script::Ok { value: 1.into() }))
        .await
        .unwrap()
        .id;
    assert_eq!(ended.recv().await, Some(id), "the end was written deferred");
    let succeeded = TaskFilter {
        state: Some(TaskState::Succeeded),
        ..TaskFilter::default()
    };
    let page = sys.list(succeeded.clone(), 10, 0).await.unwrap();
    let listed: Vec<TaskId> = page.tasks.iter().map(|t| t.id).collect();
    assert_eq!(listed, vec![id]);
    assert_eq!(sys.count(succeeded).await.unwrap(), 1);
    sys.shutdown(Duration::from_secs(1)).await;
}
