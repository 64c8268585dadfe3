//! The writers: group commit on a few connections, each a pipeline.
//!
//! Writes are spread over `writers` writer tasks by task id, so every write of one task
//! goes through one writer, in the order it was submitted. Each writer (see `shard`)
//! owns a connection, takes the requests queued for it (up to `max_batch` writes) and
//! runs them as one transaction: the inserts and row locks in one round trip, the
//! decisions in memory, then the row updates, the events and the commit sent together
//! without waiting. The next batch's statements follow on the same connection at once,
//! so the server runs it right after the commit: nothing waits for the client between
//! batches, a batch always sees what the previous one on its connection wrote (a task's
//! create before its claim, its claim before its settle), and the writers' commits
//! overlap on their own connections. A request is answered only once its batch
//! committed.
//!
//! A request naming tasks of several writers is split among them, except one that only
//! creates tasks (and writes to the tasks it creates): nothing else can touch a task
//! before its create is answered, so such a request (a batch submit) goes to one writer
//! whole and stays one transaction, where the first create of a unique key wins.
//! An empty request (a flush) goes to every writer and is answered when all are done.
//!
//! A conflict (serialization failure, deadlock) or a lost connection while running a
//! batch's first statements rolls the batch back; it is retried (on a fresh connection
//! if the old one is gone) with backoff, a few times, before every request of the batch
//! gets the error. A failure in the rest of the batch or its commit fails its requests
//! (nothing acknowledged is lost). Deferred writes (nobody waits on them yet) are held
//! up to `max_defer` for company.

mod batch;
mod shard;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures::future::join_all;
use tokio::sync::{mpsc, oneshot};

pub(super) use self::batch::{apply, Tail, WriteRow};
use crate::store::{StoreError, WriteResult};
use crate::task::TaskId;

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
    pub writers: usize,
    pub max_batch: usize,
    pub max_defer: Duration,
    pub answer_within: Duration,
}

/// The handle to the writer tasks. Dropping every handle lets them finish queued work.
pub(super) struct Writer {
    shards: Vec<mpsc::UnboundedSender<Request>>,
    n: usize,
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the writer tasks on the current runtime.
    pub(super) fn spawn(pool: Pool, limits: Limits) -> Self {
        let commits = Arc::new(AtomicU64::new(0));
        let n = limits.writers.max(1);
        let shards = (0..n)
            .map(|_| {
                let (queue, requests) = mpsc::unbounded_channel();
                let shared = shard::Shared {
                    pool: pool.clone(),
                    commits: Arc::clone(&commits),
                };
                tokio::spawn(shard::run(shared, requests, limits));
                queue
            })
            .collect();
        Self { shards, n, commits }
    }

    /// Queues `rows` now; the receiver resolves once their batch (or batches) committed
    /// or failed.
    pub(super) fn submit(&self, rows: Vec<WriteRow>, deferred: bool) -> oneshot::Receiver<Answer> {
        if rows.is_empty() {
            let answers = (0..self.n)
                .map(|s| self.send(s, Vec::new(), deferred))
                .collect();
            return join(answers, Vec::new());
        }
        let first = shard_of(rows[0].task(), self.n);
        let created: HashSet<TaskId> = rows
            .iter()
            .filter(|r| matches!(r, WriteRow::Create(..)))
            .map(WriteRow::task)
            .collect();
        let whole = rows.iter().all(|r| created.contains(&r.task()))
            || rows.iter().all(|r| shard_of(r.task(), self.n) == first);
        if whole {
            return self.send(first, rows, deferred);
        }
        let mut parts: Vec<Vec<WriteRow>> = (0..self.n).map(|_| Vec::new()).collect();
        let mut places = Vec::with_capacity(rows.len());
        for row in rows {
            let s = shard_of(row.task(), self.n);
            places.push((s, parts[s].len()));
            parts[s].push(row);
        }
        let answers = parts
            .into_iter()
            .enumerate()
            .filter(|(_, part)| !part.is_empty())
            .map(|(s, part)| (s, self.send(s, part, deferred)))
            .collect::<Vec<_>>();
        let (shards, answers): (Vec<usize>, Vec<_>) = answers.into_iter().unzip();
        let places = places
            .into_iter()
            .map(|(s, i)| (shards.iter().position(|&x| x == s).unwrap_or(0), i))
            .collect();
        join(answers, places)
    }

    /// Transactions committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn send(&self, shard: usize, rows: Vec<WriteRow>, deferred: bool) -> oneshot::Receiver<Answer> {
        let (reply, answer) = oneshot::channel();
        // A send fails only if the writer is gone; dropping the reply then reports it.
        let _ = self.shards[shard].send(Request {
            rows,
            reply,
            deferred,
        });
        answer
    }
}

/// The writer of a task: a task's writes all go through one.
fn shard_of(id: TaskId, n: usize) -> usize {
    let v = id.0.as_u128();
    ((v as u64 ^ (v >> 64) as u64) % n as u64) as usize
}

/// Waits for the parts of a split request and answers with the results in the order
/// of the request: `places[i]` is (part, index in part) of the request's `i`-th write.
fn join(
    parts: Vec<oneshot::Receiver<Answer>>,
    places: Vec<(usize, usize)>,
) -> oneshot::Receiver<Answer> {
    let (reply, answer) = oneshot::channel();
    tokio::spawn(async move {
        let mut results = Vec::with_capacity(parts.len());
        for part in join_all(parts).await {
            match part {
                Ok(Ok(r)) => results.push(r),
                Ok(Err(e)) => return drop(reply.send(Err(e))),
                Err(_) => return drop(reply.send(Err(StoreError::Closed))),
            }
        }
        let out = places
            .into_iter()
            .map(|(p, i)| results.get(p).and_then(|r| r.get(i)).cloned())
            .collect::<Option<Vec<_>>>();
        let _ = reply.send(out.ok_or(StoreError::Closed));
    });
    answer
}
