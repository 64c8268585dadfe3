//! One writer: a connection of its own and a pipeline of batches on it.
//!
//! The writer gathers a batch, runs its first statements (one round trip: see `batch`),
//! then hands the open transaction to a committer task, which sends the rest with the
//! commit. Once they are sent, the writer goes on with the next batch on the same
//! connection: its statements queue behind the commit on the server, so it waits for
//! that commit's fsync (it would anyway, to see the batch's rows) but not for a round
//! trip to the client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Object, Pool};
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

/// A writer's connection and its last commit in flight.
struct Line {
    conn: Option<Arc<Object>>,
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
                    start(&shared, &mut line, std::mem::take(&mut held)).await;
                    continue;
                }
            },
        };
        let Some(first) = next else {
            start(&shared, &mut line, held).await;
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
            start(&shared, &mut line, std::mem::take(&mut held)).await;
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
async fn start(shared: &Shared, line: &mut Line, group: Vec<Request>) {
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
            Ok(client) => statements(&client, &batches)
                .await
                .map(|(results, tail)| (client, results, tail)),
            Err(f) => Err(f),
        };
        match done {
            Ok((client, results, tail)) => {
                let (sent, on_the_way) = oneshot::channel();
                let commits = Arc::clone(&shared.commits);
                line.committing = Some(tokio::spawn(async move {
                    let committed = tail.commit(&client, sent).await;
                    answer(committed, &commits, results, replies);
                    drop(batches);
                }));
                // Dropped unsent only if the committer panicked; nothing to wait for then.
                let _ = on_the_way.await;
                return;
            }
            Err(f) if f.retryable() && tries < TRIES => {
                tracing::debug!(error = %f, tries, "postgres store retries a batch");
                if line.conn.as_ref().is_some_and(|c| c.is_closed()) {
                    line.conn = None;
                }
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(f) => return fail(&f, replies),
        }
    }
}

/// The writer's connection, a fresh one from the pool if it has none or it closed.
async fn connection(shared: &Shared, line: &mut Line) -> Result<Arc<Object>, Failure> {
    if let Some(conn) = &line.conn {
        if !conn.is_closed() {
            return Ok(Arc::clone(conn));
        }
    }
    let conn = shared
        .pool
        .get()
        .await
        .map_err(|e| Failure::pool(Doing::Write, e))?;
    let conn = Arc::new(conn);
    line.conn = Some(Arc::clone(&conn));
    Ok(conn)
}

/// Begins a transaction and runs the batch's locking statements, pipelined; rolls back
/// on error.
async fn statements(
    client: &Object,
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
    committed: Result<(), tokio_postgres::Error>,
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
        Err(e) => fail(&Failure::new(Doing::Write, e), replies),
    }
}

fn fail(f: &Failure, replies: Vec<Reply>) {
    tracing::warn!(error = %f, requests = replies.len(), "postgres store failed a batch");
    for reply in replies {
        let _ = reply.send(Err(f.to_store()));
    }
}
