//! One writer: a connection of its own and a pipeline of batches on it.
//!
//! The writer gathers a batch, runs its first statements (one round trip: see `batch`),
//! then hands the open transaction to a committer task, which sends the rest with the
//! commit. Once they are sent, the writer goes on with the next batch on the same
//! connection: its statements queue behind the commit on the server, so it waits for
//! that commit's fsync (it would anyway, to see the batch's rows) but not for a round
//! trip to the client.
//!
//! The writer's connection is its own, taken out of the pool, and it waits at most
//! `answer_within` for the server: a request lost on the way (a network black hole that kept
//! the connection open) would otherwise leave every later batch queued behind it for
//! good. Past that, the connection is dropped; a batch whose commit was not yet sent is
//! retried on a new one, and one whose commit got no answer fails its requests (it may
//! have committed or not: nothing of it is acknowledged).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{ClientWrapper, Object, Pool};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::batch::{self, WriteRow};
use super::{Limits, Reply, Request};
use crate::store::postgres::errors::{Doing, Failure};
use crate::store::WriteResult;

/// How often a batch is tried before its requests get the error.
const TRIES: u32 = 4;

/// The first pause after a failed try; doubled each time.
const BACKOFF: Duration = Duration::from_millis(20);

/// What a writer needs.
pub(super) struct Shared {
    pub pool: Pool,
    pub commits: Arc<AtomicU64>,
}

/// A writer's connection (out of the pool: see the module's docs) and its last commit
/// in flight.
struct Line {
    conn: Option<Arc<ClientWrapper>>,
    committing: Option<JoinHandle<()>>,
}

pub(super) async fn run(
    shared: Shared,
    mut requests: mpsc::UnboundedReceiver<Request>,
    limits: Limits,
) {
    let mut line = Line {
        conn: None,
        committing: None,
    };
    let mut held: Vec<Request> = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let next = match deadline {
            None => requests.recv().await,
            Some(d) => match tokio::time::timeout_at(d, requests.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    deadline = None;
                    start(
                        &shared,
                        &mut line,
                        std::mem::take(&mut held),
                        limits.answer_within,
                    )
                    .await;
                    continue;
                }
            },
        };
        let Some(first) = next else {
            start(&shared, &mut line, held, limits.answer_within).await;
            // The last commit finishes before the writer is gone.
            if let Some(committing) = line.committing.take() {
                let _ = committing.await;
            }
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
            start(
                &shared,
                &mut line,
                std::mem::take(&mut held),
                limits.answer_within,
            )
            .await;
        } else if deadline.is_none() {
            deadline = Some(Instant::now() + limits.max_defer);
        }
    }
}

fn size_of(requests: &[Request]) -> usize {
    requests.iter().map(|r| r.rows.len().max(1)).sum()
}

/// Runs the group's first statements (retrying conflicts and lost connections), then
/// hands the open transaction to a committer task and returns once its commit is on
/// the way; on failure answers every request.
async fn start(shared: &Shared, line: &mut Line, group: Vec<Request>, within: Duration) {
    if group.is_empty() {
        return;
    }
    let (batches, replies): (Vec<Vec<WriteRow>>, Vec<Reply>) =
        group.into_iter().map(|r| (r.rows, r.reply)).unzip();
    let mut pause = BACKOFF;
    let mut tries = 0;
    loop {
        tries += 1;
        let done = match connection(shared, line).await {
            Ok(client) => match tokio::time::timeout(within, statements(&client, &batches)).await {
                Ok(done) => done.map(|(results, tail)| (client, results, tail)),
                Err(_) => {
                    line.conn = None;
                    Err(Failure::silent(Doing::Write, within))
                }
            },
            Err(f) => Err(f),
        };
        match done {
            Ok((client, results, tail)) => {
                let (sent, on_the_way) = oneshot::channel();
                let commits = Arc::clone(&shared.commits);
                line.committing = Some(tokio::spawn(async move {
                    let committed =
                        match tokio::time::timeout(within, tail.commit(&client, sent)).await {
                            Ok(committed) => committed.map_err(|e| Failure::new(Doing::Write, e)),
                            Err(_) => Err(Failure::silent(Doing::Write, within)),
                        };
                    answer(committed, &commits, results, replies);
                    drop(batches);
                }));
                // Dropped unsent if the committer panicked or gave up waiting; nothing to
                // wait for then.
                let _ = on_the_way.await;
                return;
            }
            Err(f) if f.retryable() && tries < TRIES => {
                // A closed connection is replaced by `connection` on the next try.
                tracing::debug!(error = %f, tries, "postgres store retries a batch");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(f) => return fail(&f, replies),
        }
    }
}

/// The writer's connection, a fresh one if it has none or it closed. A fresh one is
/// taken out of the pool: dropped, it closes instead of going back, so a connection
/// given up for silent never serves anyone again.
async fn connection(shared: &Shared, line: &mut Line) -> Result<Arc<ClientWrapper>, Failure> {
    if let Some(conn) = &line.conn {
        if !conn.is_closed() {
            return Ok(Arc::clone(conn));
        }
    }
    line.conn = None;
    let conn = shared
        .pool
        .get()
        .await
        .map_err(|e| Failure::pool(Doing::Write, e))?;
    let conn = Arc::new(Object::take(conn));
    line.conn = Some(Arc::clone(&conn));
    Ok(conn)
}

/// Begins a transaction and runs the batch's locking statements, pipelined; rolls back
/// on error.
async fn statements(
    client: &ClientWrapper,
    batches: &[Vec<WriteRow>],
) -> Result<(Vec<Vec<WriteResult>>, batch::Tail), Failure> {
    let done = futures::try_join!(client.batch_execute("BEGIN"), batch::apply(client, batches));
    match done {
        Ok(((), (results, tail))) => Ok((results, tail)),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(Failure::new(Doing::Write, e))
        }
    }
}

/// Answers every request of a batch once its commit is known.
fn answer(
    committed: Result<(), Failure>,
    commits: &AtomicU64,
    results: Vec<Vec<WriteResult>>,
    replies: Vec<Reply>,
) {
    match committed {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(Ok(result));
            }
        }
        Err(f) => fail(&f, replies),
    }
}

fn fail(f: &Failure, replies: Vec<Reply>) {
    tracing::warn!(error = %f, requests = replies.len(), "postgres store failed a batch");
    for reply in replies {
        let _ = reply.send(Err(f.to_store()));
    }
}
