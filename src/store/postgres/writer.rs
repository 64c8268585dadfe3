//! The writer task and group commit.
//!
//! One task takes write requests from a queue, drains whatever else is queued (up to
//! `max_batch` writes), applies all of it in one transaction with a few multi-row
//! statements (see `batch`), commits once, and only then answers every request.
//! Concurrent submitters share one commit and one fsync.
//!
//! - A conflict (serialization failure, deadlock) or a lost connection rolls the batch
//!   back; it is retried on a fresh connection with backoff, a few times, before every
//!   request of the batch gets the error. Nothing of a failed batch was applied.
//! - Deferred writes (nobody waits on them yet) are held up to `max_defer` for company.
//! - Writes are applied in the order they were queued, so one task's writes keep their
//!   order; there is one writer per store for that reason.

mod batch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub(super) use self::batch::WriteRow;
use super::errors::{Doing, Failure};
use crate::store::{StoreError, WriteResult};

/// How often a batch is tried before its requests get the error.
const TRIES: u32 = 4;

/// The first pause after a failed try; doubled each time.
const BACKOFF: Duration = Duration::from_millis(20);

type Answer = Result<Vec<WriteResult>, StoreError>;

struct Request {
    rows: Vec<WriteRow>,
    reply: oneshot::Sender<Answer>,
    deferred: bool,
}

/// How much one batch may take, and how long deferred writes wait for company.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub max_batch: usize,
    pub max_defer: Duration,
}

/// The handle to the writer task. Dropping every handle lets it finish queued work.
pub(super) struct Writer {
    queue: mpsc::UnboundedSender<Request>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer task on the current runtime.
    pub(super) fn spawn(pool: Pool, limits: Limits) -> Self {
        let (queue, requests) = mpsc::unbounded_channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        tokio::spawn(run(pool, requests, limits, counter));
        Self { queue, commits }
    }

    /// Queues `rows` now; the receiver resolves once their batch committed or failed.
    pub(super) fn submit(&self, rows: Vec<WriteRow>, deferred: bool) -> oneshot::Receiver<Answer> {
        let (reply, answer) = oneshot::channel();
        // A send fails only if the task is gone; dropping the reply then reports it.
        let _ = self.queue.send(Request {
            rows,
            reply,
            deferred,
        });
        answer
    }

    /// Transactions committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

async fn run(
    pool: Pool,
    mut requests: mpsc::UnboundedReceiver<Request>,
    limits: Limits,
    commits: Arc<AtomicU64>,
) {
    let mut held: Vec<Request> = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let next = match deadline {
            None => requests.recv().await,
            Some(d) => match tokio::time::timeout_at(d, requests.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    deadline = None;
                    commit(&pool, std::mem::take(&mut held), &commits).await;
                    continue;
                }
            },
        };
        let Some(first) = next else {
            commit(&pool, held, &commits).await;
            return;
        };
        let mut size = size_of(&held) + first.rows.len().max(1);
        let mut incoming = vec![first];
        while size < limits.max_batch {
            let Ok(next) = requests.try_recv() else { break };
            size += next.rows.len().max(1);
            incoming.push(next);
        }
        let waited_on = incoming.iter().any(|r| !r.deferred);
        held.extend(incoming);
        if waited_on || size >= limits.max_batch {
            deadline = None;
            commit(&pool, std::mem::take(&mut held), &commits).await;
        } else if deadline.is_none() {
            deadline = Some(Instant::now() + limits.max_defer);
        }
    }
}

fn size_of(requests: &[Request]) -> usize {
    requests.iter().map(|r| r.rows.len().max(1)).sum()
}

/// Applies the group in one transaction (retrying conflicts and lost connections), then
/// answers every request.
async fn commit(pool: &Pool, group: Vec<Request>, commits: &AtomicU64) {
    if group.is_empty() {
        return;
    }
    let (batches, replies): (Vec<Vec<WriteRow>>, Vec<_>) =
        group.into_iter().map(|r| (r.rows, r.reply)).unzip();
    let mut pause = BACKOFF;
    let mut tries = 0;
    let outcome = loop {
        tries += 1;
        match try_commit(pool, &batches).await {
            Ok(results) => break Ok(results),
            Err(f) if f.retryable() && tries < TRIES => {
                tracing::debug!(error = %f, tries, "postgres store retries a batch");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(f) => break Err(f),
        }
    };
    match outcome {
        Ok(results) => {
            commits.fetch_add(1, Ordering::Relaxed);
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Err(f) => {
            tracing::warn!(error = %f, requests = replies.len(), "postgres store failed a batch");
            for reply in replies {
                let _ = reply.send(Err(f.to_store()));
            }
        }
    }
}

async fn try_commit(
    pool: &Pool,
    batches: &[Vec<WriteRow>],
) -> Result<Vec<Vec<WriteResult>>, Failure> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| Failure::pool(Doing::Write, e))?;
    let failed = |e| Failure::new(Doing::Write, e);
    let tx = client.transaction().await.map_err(failed)?;
    let results = batch::apply(&tx, batches).await.map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    Ok(results)
}
