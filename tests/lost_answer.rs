//! A create whose commit happened but whose answer was lost (a connection dropped after
//! the commit): the submit reports the failure, yet the task is stored, held by the
//! process that accepted it. That process's coordinator finds it and runs it, so it is
//! never stranded. The store is a `MemoryStore::shared()` wrapped to lose one answer.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{task, unique_ns};
use futures::future::BoxFuture;
use taskmesh::store::prelude::*;
use taskmesh::store::{MemoryStore, StoreError, TaskQuery, TaskStore, Write, WriteResult};
use taskmesh::testing::{Script, ScriptHandler};
use taskmesh::{QueueConfig, TaskState, TaskSystem};

/// A shared memory store that, while `lose` is set, applies a write and then answers it
/// with an error, once.
#[derive(Clone)]
struct LostAnswer {
    inner: MemoryStore,
    lose: Arc<AtomicBool>,
}

taskmesh::delegate_coordination!(LostAnswer, inner);
taskmesh::delegate_event_log!(LostAnswer, inner);

impl TaskStore for LostAnswer {
    fn name(&self) -> &'static str {
        "lost-answer"
    }

    fn durable(&self) -> bool {
        true
    }

    fn write(&self, batch: Vec<Write>) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        let creates = batch.iter().any(|w| matches!(w, Write::Create(..)));
        let applied = self.inner.write(batch);
        if creates && self.lose.swap(false, Ordering::SeqCst) {
            return Box::pin(async move {
                applied.await?;
                Err(StoreError::Unavailable {
                    source: "the connection closed before the commit's answer came".into(),
                })
            });
        }
        applied
    }

    fn write_deferred(
        &self,
        batch: Vec<Write>,
    ) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        self.inner.write_deferred(batch)
    }

    taskmesh::task_store_reads!(inner);

    fn check_writable(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        self.inner.check_writable()
    }
}

taskmesh::delegate_schedule_store!(LostAnswer, inner);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_stored_by_a_create_whose_answer_was_lost_still_runs_once() {
    let store = LostAnswer {
        inner: MemoryStore::shared(),
        lose: Arc::new(AtomicBool::new(false)),
    };
    let (handler, mut events) = ScriptHandler::new();
    let sys = TaskSystem::builder()
        .namespace(unique_ns("lost"))
        .node_name("a")
        .queue(QueueConfig::new("default").workers(1, 2))
        .liveness(
            Duration::from_secs(3600),
            Duration::from_millis(50),
            Duration::from_millis(50),
        )
        .handler(handler)
        .store(store.clone())
        .start()
        .await
        .unwrap();
    store.lose.store(true, Ordering::SeqCst);
    let refused = sys.submit(task(Script::Ok { value: 1.into() })).await;
    assert!(refused.is_err(), "the submit reports the lost answer");
    // The task is in the store all the same, held by this process, and nobody has it.
    let all = TaskQuery {
        limit: 10,
        ..Default::default()
    };
    let stored = store.inner.list(all).await.unwrap().tasks;
    assert_eq!(stored.len(), 1);
    let id = stored[0].task.id;
    assert_eq!(
        stored[0].life.owner.as_ref().map(|o| o.node.as_str()),
        Some("a")
    );
    // The coordinator looks it up and runs it.
    let started = tokio::time::timeout(Duration::from_secs(10), common::next_start(&mut events))
        .await
        .expect("the stored task runs");
    assert_eq!(started.id, id);
    let done = tokio::time::timeout(Duration::from_secs(10), sys.wait(id))
        .await
        .expect("it ends")
        .unwrap();
    assert_eq!(done.state, TaskState::Succeeded);
    let events = store.inner.events(id).await.unwrap();
    let started = events.iter().filter(|e| e.event.kind.name() == "started");
    assert_eq!(started.count(), 1, "it ran once: {events:?}");
    sys.shutdown(Duration::from_secs(5)).await;
}
