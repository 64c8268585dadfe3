//! The writer thread and group commit.
//!
//! One thread owns the read-write connection. It blocks for a request, drains whatever
//! else is queued (up to `max_batch` writes), applies all of it in one `BEGIN IMMEDIATE …
//! COMMIT`, and only then answers every request: concurrent submitters share one fsync.
//! If anything fails, the transaction rolls back and every request of the group gets
//! [`StoreError::WriteFailed`]; the thread goes on serving later requests.
//!
//! Deferred writes (nobody waits on them yet: an attempt started, progress, an end with
//! no waiter) are held, for at most `max_defer`, and committed together with later
//! writes (see `hold`): they cost no fsync of their own that a submit would wait behind.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{
    ffi, params, CachedStatement, Connection, OptionalExtension, Transaction, TransactionBehavior,
};
use tokio::sync::oneshot;

use self::hold::Held;
use super::checkpoint::{self, Nudge};
use super::rows::{nanos, CrashRow, Current, EventRow, LifeRow, TaskRow, TransitionRow, WriteRow};
use crate::store::Owner;
use crate::store::{StoreError, WriteResult};
use crate::task::TaskId;
use crate::task::TaskState;
use rusqlite::types::Type;

mod canary;
mod hold;

/// Work for the writer thread.
pub(super) enum Job {
    /// A `Store::write` batch, applied in order.
    Write(Vec<WriteRow>),
    /// Deletes up to `limit` terminal tasks last updated before `before` (ns).
    Prune { before: i64, limit: u32 },
    /// Deletes up to `limit` crashes older than `before` (ns).
    Sweep { before: i64, limit: u32 },
    /// Deletes these tasks if they have ended.
    Delete(Vec<TaskId>),
    /// Touches the probe row, so a commit really happens.
    Probe,
    /// After a failed write: checks that a write needing fresh space on disk goes
    /// through (see `canary`). Runs on its own, outside any transaction.
    Canary,
    /// Runs arbitrary code on the write connection, outside any transaction (test hook).
    #[cfg(test)]
    Exec(Hook),
}

/// Code a test runs on the write connection.
#[cfg(test)]
pub(super) type Hook = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;

impl Job {
    /// How many writes this counts for against `max_batch`.
    fn size(&self) -> usize {
        match self {
            Job::Write(rows) => rows.len().max(1),
            _ => 1,
        }
    }
}

/// What a job did, once its group has committed.
pub(super) enum Outcome {
    /// One result per write.
    Writes(Vec<WriteResult>),
    /// Rows deleted.
    Count(u64),
    /// The tasks deleted.
    Ids(Vec<TaskId>),
    /// Done.
    Unit,
}

type Reply = oneshot::Sender<Result<Outcome, StoreError>>;

struct Request {
    job: Job,
    reply: Reply,
    /// Nobody waits on it yet: it may wait for company (see the module docs).
    deferred: bool,
}

/// How much one group may take, and how long deferred writes wait for company.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    pub max_batch: usize,
    pub max_defer: Duration,
}

/// The handle to the writer thread. Dropping it lets the thread finish queued work, then
/// waits for it to exit, which closes the write connection.
pub(super) struct Writer {
    queue: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Starts the thread on `conn`, and the checkpointer on `checkpoints`.
    pub(super) fn spawn(
        conn: Connection,
        checkpoints: Connection,
        limits: Limits,
    ) -> io::Result<Self> {
        let (queue, requests) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        let (nudge, checkpointer) = checkpoint::spawn(checkpoints)?;
        let thread = thread::Builder::new()
            .name("taskmesh-sqlite-writer".into())
            .spawn(move || run(&conn, &requests, limits, &counter, &nudge))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            checkpointer: Some(checkpointer),
            commits,
        })
    }

    /// Queues `job` now (so jobs apply in submission order); the receiver resolves once its
    /// group has committed or failed, and with an error if the thread is gone.
    pub(super) fn submit(&self, job: Job) -> oneshot::Receiver<Result<Outcome, StoreError>> {
        self.send(job, false)
    }

    /// Like [`submit`](Self::submit), for a write nobody waits on yet; it may be held up
    /// to `max_defer` for company.
    pub(super) fn submit_deferred(
        &self,
        job: Job,
    ) -> oneshot::Receiver<Result<Outcome, StoreError>> {
        self.send(job, true)
    }

    fn send(&self, job: Job, deferred: bool) -> oneshot::Receiver<Result<Outcome, StoreError>> {
        let (reply, answer) = oneshot::channel();
        if let Some(queue) = &self.queue {
            // A send fails only if the thread is gone; dropping the reply then reports it.
            let _ = queue.send(Request {
                job,
                reply,
                deferred,
            });
        }
        answer
    }

    /// Transactions committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // The writer thread has dropped its nudge, so the checkpointer stops too.
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    conn: &Connection,
    requests: &Receiver<Request>,
    limits: Limits,
    commits: &AtomicU64,
    nudge: &Nudge,
) {
    let mut held = Held::default();
    loop {
        let first = match next_request(requests, held.deadline(limits)) {
            Next::Request(first) => first,
            Next::Deadline => {
                commit_groups(conn, held.take(), commits, nudge);
                continue;
            }
            Next::Closed => {
                commit_groups(conn, held.take(), commits, nudge);
                return;
            }
        };
        let mut size = held.size() + first.job.size();
        let mut incoming = vec![first];
        while size < limits.max_batch {
            let Ok(next) = requests.try_recv() else { break };
            size += next.job.size();
            incoming.push(next);
        }
        let group = hold::split(&mut held, incoming, Instant::now(), limits);
        commit_groups(conn, group, commits, nudge);
    }
}

/// How long the writer polls for the next request before it sleeps. A submitter that
/// got its acknowledgement sends its next write within tens of microseconds; waking a
/// sleeping thread costs about as much again (measured on a 2-core VM), on that write's
/// path. Polling yields the core, so it takes nothing from runnable threads.
const POLL: Duration = Duration::from_micros(200);

/// What the writer woke up to.
enum Next {
    Request(Request),
    /// The held writes' deadline passed.
    Deadline,
    /// Every sender is gone.
    Closed,
}

/// The next request, or the `deadline`; polls briefly, yielding, before it sleeps.
fn next_request(requests: &Receiver<Request>, deadline: Option<Instant>) -> Next {
    let poll_until = Instant::now() + POLL;
    loop {
        match requests.try_recv() {
            Ok(r) => return Next::Request(r),
            Err(TryRecvError::Disconnected) => return Next::Closed,
            Err(TryRecvError::Empty) => {}
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Next::Deadline;
        }
        if now < poll_until {
            thread::yield_now();
            continue;
        }
        let received = match deadline {
            None => requests.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(d) => requests.recv_timeout(d.saturating_duration_since(now)),
        };
        return match received {
            Ok(r) => Next::Request(r),
            Err(RecvTimeoutError::Timeout) => Next::Deadline,
            Err(RecvTimeoutError::Disconnected) => Next::Closed,
        };
    }
}

/// Commits the group; a job that runs on its own (the canary, a test hook) splits it and
/// runs outside any transaction, in order.
fn commit_groups(conn: &Connection, group: Vec<Request>, commits: &AtomicU64, nudge: &Nudge) {
    let mut rest = Vec::new();
    for request in group {
        match request.job {
            Job::Canary => {
                commit_group(conn, std::mem::take(&mut rest), commits, nudge);
                let done = canary::run(conn).map_err(|e| StoreError::WriteFailed(e.to_string()));
                let _ = request.reply.send(done.map(|()| Outcome::Unit));
            }
            #[cfg(test)]
            Job::Exec(f) => {
                commit_group(conn, std::mem::take(&mut rest), commits, nudge);
                let done = f(conn).map_err(|e| StoreError::WriteFailed(e.to_string()));
                let _ = request.reply.send(done.map(|()| Outcome::Unit));
            }
            _ => rest.push(request),
        }
    }
    commit_group(conn, rest, commits, nudge);
}

fn commit_group(conn: &Connection, group: Vec<Request>, commits: &AtomicU64, nudge: &Nudge) {
    if group.is_empty() {
        return;
    }
    let (jobs, replies): (Vec<Job>, Vec<Reply>) =
        group.into_iter().map(|r| (r.job, r.reply)).unzip();
    match apply_all(conn, jobs) {
        Ok(outcomes) => {
            commits.fetch_add(1, Ordering::Relaxed);
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            nudge.commit();
        }
        Err(e) => {
            tracing::warn!(error = %e, requests = replies.len(), "sqlite store rolled back a batch");
            for reply in replies {
                let _ = reply.send(Err(StoreError::WriteFailed(e.to_string())));
            }
        }
    }
}

/// One transaction for the whole group; dropping `tx` on an error rolls it back. A
/// transaction left open by a rollback that itself failed is rolled back first.
fn apply_all(conn: &Connection, jobs: Vec<Job>) -> rusqlite::Result<Vec<Outcome>> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let mut batch = Batch {
        conn,
        known: HashMap::new(),
        hot: Hot::prepare(conn)?,
        counts: HashMap::new(),
    };
    let outcomes = jobs
        .into_iter()
        .map(|job| batch.apply(job))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    batch.flush()?;
    batch.save_counts()?;
    drop(batch);
    tx.commit()?;
    Ok(outcomes)
}

/// A task the group has created or looked up: its internal key, and its row update if
/// one is deferred.
struct Known {
    n: i64,
    life: Option<LifeRow>,
    /// The row's fenced fields as of the group's last change, once read or written.
    current: Option<Current>,
}

/// A group being applied. Row updates are deferred to the end (or to the next prune), so
/// several updates of one task in a group cost one row update; events go in at once.
/// The statements every task's writes run, taken from the cache once per group rather
/// than once per row.
struct Hot<'c> {
    insert_task: CachedStatement<'c>,
    /// A row's state, queue and kind as stored (for the counts).
    stored: CachedStatement<'c>,
    insert_spec: CachedStatement<'c>,
    insert_event: CachedStatement<'c>,
    find: CachedStatement<'c>,
    current: CachedStatement<'c>,
    update: CachedStatement<'c>,
}

impl<'c> Hot<'c> {
    fn prepare(conn: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Self {
            insert_task: conn.prepare_cached(
                "INSERT INTO tasks (id, kind, queue, priority, state, phase, created_by, \
                 unique_key, created_at, updated_at, due_at, life) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?,
            insert_spec: conn.prepare_cached("INSERT INTO task_specs (n, task) VALUES (?1, ?2)")?,
            stored: conn.prepare_cached("SELECT state, queue, kind FROM tasks WHERE n = ?1")?,
            insert_event: conn.prepare_cached(
                "INSERT INTO events (task, at, type, actor_id, correlation_id, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            find: conn.prepare_cached("SELECT n FROM tasks WHERE id = ?1")?,
            current: conn.prepare_cached(
                "SELECT state, json_extract(life, '$.attempt'), \
                 json_extract(life, '$.owner.node'), json_extract(life, '$.owner.incarnation'), \
                 json_extract(life, '$.intent') IS NOT NULL \
                 FROM tasks WHERE n = ?1",
            )?,
            update: conn.prepare_cached(
                "UPDATE tasks SET state = ?2, phase = ?3, updated_at = ?4, due_at = ?5, \
                 life = ?6 WHERE n = ?1",
            )?,
        })
    }
}

struct Batch<'c> {
    conn: &'c Connection,
    known: HashMap<TaskId, Known>,
    hot: Hot<'c>,
    /// How the group changes `task_counts`, by (state, queue, kind); written once, at the
    /// end of the group, in its transaction.
    counts: Counts,
}

/// Changes of the task counts, by (state, queue, kind).
type Counts = HashMap<(String, String, String), i64>;

/// Adds `by` to the count of (`state`, `queue`, `kind`).
fn bump(counts: &mut Counts, state: &str, queue: &str, kind: &str, by: i64) {
    *counts
        .entry((state.to_owned(), queue.to_owned(), kind.to_owned()))
        .or_default() += by;
}

impl Batch<'_> {
    fn apply(&mut self, job: Job) -> rusqlite::Result<Outcome> {
        Ok(match job {
            Job::Write(rows) => Outcome::Writes(
                rows.into_iter()
                    .map(|row| self.write(row))
                    .collect::<rusqlite::Result<_>>()?,
            ),
            Job::Prune { before, limit } => Outcome::Count(self.prune(before, limit)?),
            Job::Sweep { before, limit } => Outcome::Count(self.sweep(before, limit)?),
            Job::Delete(ids) => Outcome::Ids(self.delete_ended(&ids)?),
            Job::Probe => self.probe().map(|()| Outcome::Unit)?,
            // `commit_groups` runs the canary on its own; inside a group it can only probe.
            Job::Canary => self.probe().map(|()| Outcome::Unit)?,
            #[cfg(test)]
            Job::Exec(f) => {
                self.flush()?;
                self.known.clear();
                f(self.conn).map(|()| Outcome::Unit)?
            }
        })
    }

    fn write(&mut self, row: WriteRow) -> rusqlite::Result<WriteResult> {
        match row {
            WriteRow::Create(task, event) => return self.create(&task, &event),
            WriteRow::Update(t) => return self.transition(*t),
            WriteRow::Event(event) => {
                if let Some(known) = self.find(event.task_id)? {
                    let n = known.n;
                    self.append(n, &event)?;
                }
            }
            WriteRow::Crash(crash) => self.crash(&crash)?,
        }
        Ok(WriteResult::Done)
    }

    /// A held unique key, or an id already present, makes the create a duplicate. The
    /// inserts are plain single-row inserts, so SQLite needs no statement journal; a
    /// taken id shows up as a unique-constraint error of the insert, which writes nothing.
    fn create(&mut self, t: &TaskRow, event: &EventRow) -> rusqlite::Result<WriteResult> {
        if let Some(key) = &t.unique_key {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id FROM tasks WHERE unique_key = ?1")?;
            if let Some(holder) = stmt.query_row([key], |r| r.get(0)).optional()? {
                return Ok(WriteResult::Duplicate(holder));
            }
        }
        if self.known.contains_key(&t.id) {
            return Ok(WriteResult::Duplicate(t.id));
        }
        let l = &t.life;
        let inserted = self.hot.insert_task.execute(params![
            t.id,
            t.kind,
            t.queue,
            t.priority,
            l.state,
            l.phase,
            t.created_by,
            t.unique_key,
            t.created_at,
            l.updated_at,
            l.due_at,
            l.life
        ]);
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) && self.find(t.id)?.is_some() => {
                return Ok(WriteResult::Duplicate(t.id));
            }
            Err(e) => return Err(e),
        }
        let n = self.conn.last_insert_rowid();
        self.hot.insert_spec.execute(params![n, t.task])?;
        bump(&mut self.counts, l.state, &t.queue, &t.kind, 1);
        let current = Some(t.life.current.clone());
        self.known.insert(
            t.id,
            Known {
                n,
                life: None,
                current,
            },
        );
        self.append(n, event).map(|()| WriteResult::Done)
    }

    /// Applies a transition if its fence holds.
    fn transition(&mut self, t: TransitionRow) -> rusqlite::Result<WriteResult> {
        let Some(n) = self.find(t.id)?.map(|k| k.n) else {
            return Ok(match t.fence {
                Some(_) => WriteResult::Fenced,
                None => WriteResult::Done,
            });
        };
        if let Some(fence) = &t.fence {
            let c = self.current(t.id, n)?;
            if !fence.admits(c.state, c.attempt, c.owner.as_ref(), c.requested) {
                return Ok(WriteResult::Fenced);
            }
        }
        if let Some(crash) = &t.crash {
            self.crash(crash)?;
        }
        for event in &t.events {
            self.append(n, event)?;
        }
        if let Some(known) = self.known.get_mut(&t.id) {
            known.current = Some(t.life.current.clone());
            known.life = Some(t.life);
        }
        Ok(WriteResult::Done)
    }

    /// The fenced fields of task `id` (internal key `n`): as the group last changed them,
    /// or as stored.
    fn current(&mut self, id: TaskId, n: i64) -> rusqlite::Result<Current> {
        if let Some(c) = self.known.get(&id).and_then(|k| k.current.clone()) {
            return Ok(c);
        }
        let c = self.hot.current.query_row([n], |r| {
            let state: String = r.get(0)?;
            let state = TaskState::ALL
                .into_iter()
                .find(|s| s.as_str() == state)
                .ok_or_else(|| rusqlite::Error::InvalidColumnType(0, state, Type::Text))?;
            let node: Option<String> = r.get(2)?;
            let incarnation: Option<i64> = r.get(3)?;
            Ok(Current {
                state,
                attempt: r.get(1)?,
                owner: node.zip(incarnation).map(|(n, i)| Owner::new(n, i as u64)),
                requested: r.get(4)?,
            })
        })?;
        if let Some(known) = self.known.get_mut(&id) {
            known.current = Some(c.clone());
        }
        Ok(c)
    }

    /// The task `id` if it exists, remembered for the rest of the group.
    fn find(&mut self, id: TaskId) -> rusqlite::Result<Option<&mut Known>> {
        if !self.known.contains_key(&id) {
            let n: Option<i64> = self.hot.find.query_row([id], |r| r.get(0)).optional()?;
            let Some(n) = n else { return Ok(None) };
            self.known.insert(
                id,
                Known {
                    n,
                    life: None,
                    current: None,
                },
            );
        }
        Ok(self.known.get_mut(&id))
    }

    /// Appends an event of the task with internal key `n` (which exists).
    fn append(&mut self, n: i64, e: &EventRow) -> rusqlite::Result<()> {
        self.hot
            .insert_event
            .execute(params![
                n,
                e.at,
                e.kind,
                e.actor_id,
                e.correlation_id,
                e.data
            ])
            .map(drop)
    }

    fn crash(&self, c: &CrashRow) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO crashes (task_id, at, attempt, kind, reason) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![c.task_id, c.at, c.attempt, c.kind, c.reason])
            .map(drop)
    }

    /// Writes the deferred row updates, in key order.
    fn flush(&mut self) -> rusqlite::Result<()> {
        let mut due: Vec<(i64, LifeRow)> = self
            .known
            .values_mut()
            .filter_map(|k| k.life.take().map(|l| (k.n, l)))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        due.sort_unstable_by_key(|(n, _)| *n);
        for (n, l) in due {
            let (was, queue, kind): (String, String, String) = self
                .hot
                .stored
                .query_row([n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            if was != l.state {
                bump(&mut self.counts, &was, &queue, &kind, -1);
                bump(&mut self.counts, l.state, &queue, &kind, 1);
            }
            let stmt = &mut self.hot.update;
            stmt.execute(params![n, l.state, l.phase, l.updated_at, l.due_at, l.life])?;
        }
        Ok(())
    }

    /// Writes the group's changes of the counts.
    fn save_counts(&mut self) -> rusqlite::Result<()> {
        let mut upsert = self.conn.prepare_cached(
            "INSERT INTO task_counts (state, queue, kind, n) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (state, queue, kind) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((state, queue, kind), by) in self.counts.drain().filter(|(_, by)| *by != 0) {
            upsert.execute(params![state, queue, kind, by])?;
        }
        Ok(())
    }

    fn prune(&mut self, before: i64, limit: u32) -> rusqlite::Result<u64> {
        self.flush()?;
        self.known.clear();
        type Doomed = (i64, String, (String, String, String));
        let doomed: Vec<Doomed> = self
            .conn
            .prepare_cached(
                "SELECT n, id, state, queue, kind FROM tasks INDEXED BY tasks_terminal \
                 WHERE (state = 'succeeded' OR state = 'failed' OR state = 'cancelled') \
                 AND updated_at < ?1 LIMIT ?2",
            )?
            .query_map(params![before, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, (r.get(2)?, r.get(3)?, r.get(4)?)))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut events = self
            .conn
            .prepare_cached("DELETE FROM events WHERE task = ?1")?;
        let mut crashes = self
            .conn
            .prepare_cached("DELETE FROM crashes WHERE task_id = ?1")?;
        let mut specs = self
            .conn
            .prepare_cached("DELETE FROM task_specs WHERE n = ?1")?;
        let mut tasks = self.conn.prepare_cached("DELETE FROM tasks WHERE n = ?1")?;
        for (n, id, (state, queue, kind)) in &doomed {
            events.execute([n])?;
            crashes.execute([id])?;
            specs.execute([n])?;
            tasks.execute([n])?;
            bump(&mut self.counts, state, queue, kind, -1);
        }
        Ok(doomed.len() as u64)
    }

    /// Deletes the tasks of `ids` that have ended (after the deferred row updates, so a
    /// task's newest state decides).
    fn delete_ended(&mut self, ids: &[TaskId]) -> rusqlite::Result<Vec<TaskId>> {
        self.flush()?;
        self.known.clear();
        let mut ended = self.conn.prepare_cached(
            "SELECT n, state, queue, kind FROM tasks WHERE id = ?1 \
             AND (state = 'succeeded' OR state = 'failed' OR state = 'cancelled')",
        )?;
        let mut gone = Vec::new();
        for id in ids {
            let text = id.to_string();
            let row: Option<(i64, String, String, String)> = ended
                .query_row([&text], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            let Some((n, state, queue, kind)) = row else {
                continue;
            };
            bump(&mut self.counts, &state, &queue, &kind, -1);
            self.conn
                .prepare_cached("DELETE FROM events WHERE task = ?1")?
                .execute([n])?;
            self.conn
                .prepare_cached("DELETE FROM crashes WHERE task_id = ?1")?
                .execute([&text])?;
            self.conn
                .prepare_cached("DELETE FROM task_specs WHERE n = ?1")?
                .execute([n])?;
            self.conn
                .prepare_cached("DELETE FROM tasks WHERE n = ?1")?
                .execute([n])?;
            gone.push(*id);
        }
        Ok(gone)
    }

    fn sweep(&self, before: i64, limit: u32) -> rusqlite::Result<u64> {
        self.conn
            .prepare_cached(
                "DELETE FROM crashes WHERE id IN \
                 (SELECT id FROM crashes WHERE at < ?1 ORDER BY at LIMIT ?2)",
            )?
            .execute(params![before, limit])
            .map(|n| n as u64)
    }

    fn probe(&self) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO probe (id, at) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at",
            )?
            .execute([nanos(SystemTime::now())])
            .map(drop)
    }
}

/// A UNIQUE or PRIMARY KEY constraint failed.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error().map(|e| e.extended_code),
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    )
}
