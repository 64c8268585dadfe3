//! The writer task and group commit, with commits pipelined.
//!
//! One task takes write requests from a queue, drains whatever else is queued (up to
//! `max_batch` writes) and runs the batch's first statements in one transaction (see
//! `batch`): the inserts and row locks, one round trip whatever its size. It then hands
//! the transaction to a committer task, which sends the row updates, the events and
//! the commit together, and goes on with the next batch while that one waits for its
//! fsync: up to [`IN_FLIGHT`] batches overlap, and PostgreSQL flushes their commits
//! together. A request is answered only once its batch committed.
//!
//! Order: batches run their first statements one after the other, and a batch holds
//! the row locks of every task it changes from then until it commits, so a later batch touching the same
//! task waits for that commit and sees its result. A task created by a batch still
//! committing is not visible to the next one, so a batch that touches such a task waits
//! for the commits in flight first.
//!
//! A conflict (serialization failure, deadlock) or a lost connection while running the
//! first statements rolls the batch back; it is retried on a fresh connection with
//! backoff, a few times, before every request of the batch gets the error. A failure in
//! the rest of the batch or its commit fails its requests (nothing acknowledged is
//! lost). Deferred writes (nobody waits on them
//! yet) are held up to `max_defer` for company.

mod batch;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

pub(super) use self::batch::WriteRow;
use super::errors::{Doing, Failure};
use crate::store::{StoreError, WriteResult};
use crate::task::TaskId;

/// How many commits may wait for their fsync at once (each on its own connection).
pub(super) const IN_FLIGHT: usize = 4;

/// How often a batch is tried before its requests get the error.
const TRIES: u32 = 4;

/// The first pause after a failed try; doubled each time.
const BACKOFF: Duration = Duration::from_millis(20);

type Answer = Result<Vec<WriteResult>, StoreError>;
type Reply = oneshot::Sender<Answer>;

struct Request {
    rows: Vec<WriteRow>,
    reply: Reply,
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
        let shared = Shared {
            pool,
            commits: Arc::clone(&commits),
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
            creating: Arc::new(Mutex::new(HashSet::new())),
        };
        tokio::spawn(run(shared, requests, limits));
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

/// What the writer and its committers share.
#[derive(Clone)]
struct Shared {
    pool: Pool,
    commits: Arc<AtomicU64>,
    /// One permit per commit in flight.
    slots: Arc<Semaphore>,
    /// Tasks created by batches still committing.
    creating: Arc<Mutex<HashSet<TaskId>>>,
}

async fn run(shared: Shared, mut requests: mpsc::UnboundedReceiver<Request>, limits: Limits) {
    let mut held: Vec<Request> = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let next = match deadline {
            None => requests.recv().await,
            Some(d) => match tokio::time::timeout_at(d, requests.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    deadline = None;
                    start(&shared, std::mem::take(&mut held)).await;
                    continue;
                }
            },
        };
        let Some(first) = next else {
            start(&shared, held).await;
            // Every commit in flight finishes before the writer is gone.
            let _ = shared.slots.acquire_many(IN_FLIGHT as u32).await;
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
            start(&shared, std::mem::take(&mut held)).await;
        } else if deadline.is_none() {
            deadline = Some(Instant::now() + limits.max_defer);
        }
    }
}

fn size_of(requests: &[Request]) -> usize {
    requests.iter().map(|r| r.rows.len().max(1)).sum()
}

/// Runs the group's statements (retrying conflicts and lost connections), then hands
/// the open transaction to a committer task; on failure answers every request.
async fn start(shared: &Shared, group: Vec<Request>) {
    if group.is_empty() {
        return;
    }
    let (batches, replies): (Vec<Vec<WriteRow>>, Vec<Reply>) =
        group.into_iter().map(|r| (r.rows, r.reply)).unzip();
    let Ok(slot) = Arc::clone(&shared.slots).acquire_owned().await else {
        return;
    };
    let depends = {
        let creating = shared.creating.lock();
        !creating.is_empty() && batch::touched(&batches).any(|id| creating.contains(&id))
    };
    if depends {
        let _ = shared.slots.acquire_many((IN_FLIGHT - 1) as u32).await;
    }
    let mut pause = BACKOFF;
    let mut tries = 0;
    loop {
        tries += 1;
        match statements(&shared.pool, &batches).await {
            Ok((client, results, tail)) => {
                let created: Vec<TaskId> = batch::created(&batches).collect();
                shared.creating.lock().extend(created.iter().copied());
                let shared = shared.clone();
                tokio::spawn(async move {
                    finish(&shared, client, results, tail, replies, &created).await;
                    drop(batches);
                    drop(slot);
                });
                return;
            }
            Err(f) if f.retryable() && tries < TRIES => {
                tracing::debug!(error = %f, tries, "postgres store retries a batch");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(f) => return fail(&f, replies),
        }
    }
}

/// Begins a transaction and runs the batch's locking statements, pipelined; rolls back
/// on error.
async fn statements(
    pool: &Pool,
    batches: &[Vec<WriteRow>],
) -> Result<(Object, Vec<Vec<WriteResult>>, batch::Tail), Failure> {
    let client = pool
        .get()
        .await
        .map_err(|e| Failure::pool(Doing::Write, e))?;
    let done = futures::try_join!(
        client.batch_execute("BEGIN"),
        batch::apply(&client, batches)
    );
    match done {
        Ok(((), (results, tail))) => Ok((client, results, tail)),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(Failure::new(Doing::Write, e))
        }
    }
}

/// Runs the rest of the batch with the commit, then answers every request.
async fn finish(
    shared: &Shared,
    client: Object,
    results: Vec<Vec<WriteResult>>,
    tail: batch::Tail,
    replies: Vec<Reply>,
    created: &[TaskId],
) {
    let committed = tail.commit(&client).await;
    if committed.is_err() {
        // The commit may not have been sent: leave no transaction open on the connection.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    {
        let mut creating = shared.creating.lock();
        for id in created {
            creating.remove(id);
        }
    }
    match committed {
        Ok(()) => {
            shared.commits.fetch_add(1, Ordering::Relaxed);
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Err(e) => fail(&Failure::new(Doing::Write, e), replies),
    }
}

fn fail(f: &Failure, replies: Vec<Reply>) {
    tracing::warn!(error = %f, requests = replies.len(), "postgres store failed a batch");
    for reply in replies {
        let _ = reply.send(Err(f.to_store()));
    }
}
