//! Graceful shutdown: stop taking tasks, let running attempts finish within a grace
//! period, interrupt the rest, then stop the supervision tree in order.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::TaskSystem;
use crate::runtime::{settle, AttemptOutcome, Current, QueueShared};
use crate::store::Intent;
use crate::task::TaskId;

/// What a shutdown left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownReport {
    /// Tasks whose attempt was still running when the grace period ended. They were cut
    /// off and are back in the pending state (a durable store re-runs them at the next
    /// start).
    pub interrupted: Vec<TaskId>,
    /// Tasks still waiting in the queues (including the interrupted ones).
    pub left_queued: usize,
}

impl TaskSystem {
    /// Shuts the system down:
    ///
    /// 1. new submits fail with `ShuttingDown`, and workers take no new tasks;
    /// 2. running attempts get `grace` to finish;
    /// 3. attempts still running are cancelled through their token and cut off, and
    ///    reported as interrupted;
    /// 4. the supervision tree stops in reverse start order; no actor of the system
    ///    remains afterwards.
    ///
    /// Callers still waiting on a task that did not end get `TaskError::SystemStopped`.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let shared = &self.shared;
        shared.stop_accepting();
        tracing::info!(namespace = %shared.namespace, "intake stopped: submits are refused and readiness reports not ready");
        let queues: Vec<_> = shared.queues.values().cloned().collect();
        for q in &queues {
            q.close();
        }
        let deadline = Instant::now() + grace;
        for q in &queues {
            wait_idle(q, deadline).await;
        }
        let cut: Vec<(Current, &QueueShared)> = queues
            .iter()
            .flat_map(|q| {
                q.running_slots()
                    .into_iter()
                    .filter_map(|s| s.current())
                    .map(move |c| (c, &**q))
            })
            .collect();
        for (c, _) in &cut {
            let mut s = c.cell.status.lock();
            s.intent.get_or_insert(Intent::Shutdown);
            if let Some(token) = &s.token {
                token.cancel();
            }
        }
        let _ = self
            .root
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(30)))
            .await;
        let interrupted = cut.iter().map(|(c, _)| c.cell.task.id).collect();
        for (c, q) in cut {
            settle(shared, q, &c.cell, c.run, AttemptOutcome::Stopped);
        }
        for cell in shared.table.cells() {
            let mut s = cell.status.lock();
            if !s.state.is_terminal() {
                s.waiters.clear();
            }
        }
        release_held(shared).await;
        ShutdownReport {
            interrupted,
            left_queued: queues.iter().map(|q| q.depth()).sum(),
        }
    }
}

/// Waits until no attempt runs in `q`, or until `deadline`.
async fn wait_idle(q: &QueueShared, deadline: Instant) {
    loop {
        let notified = q.idle_signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if q.running() == 0 {
            return;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return;
        }
    }
}

/// On a shared store: once this process's last writes are durable, gives its waiting
/// tasks back to the shared pool, so that other processes run them now rather than
/// after this one is found dead, then leaves the registry, so that the others stop
/// counting it (the shares of cluster-wide limits move at their next heartbeat).
async fn release_held(shared: &crate::runtime::Shared) {
    let (Some(store), Some(owner)) = (shared.journal.store(), shared.journal.owner()) else {
        return;
    };
    if !store.shared() {
        return;
    }
    shared.journal.flush().await;
    match store.release(owner.clone()).await {
        Ok(n) => {
            tracing::info!(%owner, released = n, "gave waiting tasks back to the shared pool");
            if n > 0 {
                crate::coordinator::hint(shared, vec![String::new()]).await;
            }
        }
        Err(e) => {
            tracing::warn!(%owner, error = %e, "could not give waiting tasks back; they are rescued once this process is found dead");
            return;
        }
    }
    // Nothing more is written under this incarnation: the tree has stopped and the
    // journal is flushed. Anything it still names is rescued like a dead process's.
    match store.bury(owner.clone(), Duration::ZERO).await {
        Ok(_) => tracing::info!(%owner, "left the registry"),
        Err(e) => {
            tracing::warn!(%owner, error = %e, "could not leave the registry; the others find this process dead after dead_after")
        }
    }
}
