//! [`SqliteStore`]: the embedded, durable store.
//!
//! - One file in WAL mode with `synchronous=FULL`: a write resolves only once it is on disk.
//! - One writer thread owns the write connection and commits concurrent writes together
//!   (group commit, see `writer`), so many submitters share one fsync.
//! - Reads run on a small pool of read-only connections inside `spawn_blocking`, never on
//!   the async runtime's threads.
//! - Opening validates an existing file on a read-only connection first; a file that is
//!   not a taskmesh database, is corrupt, or comes from a newer schema is refused with
//!   [`StoreError::Unusable`] and left byte for byte as it was.
//!
//! | file | holds |
//! |---|---|
//! | `schema` | the application id and the versioned migrations |
//! | `open` | validation and the connections' pragmas |
//! | `rows` | time and JSON encoding of rows, and decoding that never panics |
//! | `writer` | the writer thread and group commit |
//! | `checkpoint` | WAL checkpoints on their own thread, off the writer's path |
//! | `read` | the reader pool and the queries |

mod checkpoint;
mod open;
mod read;
mod rows;
mod schedules;
mod schema;
#[cfg(test)]
mod tests;
mod writer;

#[doc(hidden)]
pub use rows::fuzz_decode_rows;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::{BoxFuture, FutureExt};

use crate::cron::schedule::ScheduleRecord;
use rusqlite::Connection;

use self::read::Readers;
use self::writer::{Job, Outcome, Writer};
use super::{
    Coordination, Crash, EventLog, History, NodeInfo, NodeRecord, Notifier, Owner, Page, Requested,
    ScheduleStore, StoreError, StoredEvent, TaskFilter, TaskQuery, TaskRecord, TaskStore, Write,
    WriteResult,
};
use crate::lockfile::LockFile;
use crate::task::TaskId;

/// How many tasks or crashes one prune or sweep transaction deletes, so a large cleanup
/// does not hold up writes for long.
const DELETE_CHUNK: u32 = 1_000;

/// Settings for [`SqliteStore::open_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Read-only connections for concurrent reads (at least 1; default 2).
    pub readers: usize,
    /// The most writes one transaction takes from the queue (default 4096). A single
    /// larger `write` batch is still applied whole, in one transaction.
    pub max_batch: usize,
    /// The longest a [`TaskStore::write_deferred`] batch waits for company before it is
    /// committed on its own (default [`MAX_DEFER`](crate::store::MAX_DEFER), the most a
    /// store may take).
    pub max_defer: std::time::Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            readers: 2,
            max_batch: 4096,
            max_defer: crate::store::MAX_DEFER,
        }
    }
}

/// What [`SqliteStore::open_locked`] opens.
type Parts = (Vec<Connection>, Writer, Arc<schedules::Schedules>);

/// The SQLite store. Cloning is cheap and shares the file, the writer thread and the
/// readers; dropping the last clone lets the writer finish queued work, then closes it
/// (blocking until that work is committed).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    readers: Arc<Readers>,
    writer: Writer,
    schedules: Arc<schedules::Schedules>,
    /// Held for the store's life; declared last, so it is released only after the
    /// writer has closed its connection.
    _lock: LockFile,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` with default options. Blocking: call it
    /// from `spawn_blocking` in async code.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (or creates) the database at `path`. A missing directory is created; an
    /// existing file is validated before anything is written to it. A file another
    /// process has open through a store is refused ([`StoreError::InUse`]): the store
    /// holds an exclusive lock on `<path>-lock` for its life. Blocking.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let fresh = !open::lock_path(&path).exists();
        let lock = open::lock(&path)?;
        match Self::open_locked(&path, options) {
            Ok((readers, writer, schedules)) => Ok(SqliteStore {
                inner: Arc::new(Inner {
                    path,
                    readers: Arc::new(Readers::new(readers)),
                    writer,
                    schedules,
                    _lock: lock,
                }),
            }),
            Err(e) => {
                // A refused file gets nothing new beside it.
                if fresh {
                    let _ = std::fs::remove_file(lock.path());
                }
                Err(e)
            }
        }
    }

    /// Opens the connections and starts the writer, under the lock.
    fn open_locked(path: &Path, options: SqliteOptions) -> Result<Parts, StoreError> {
        let conn = open::open_writer(path)?;
        let checkpoints = open::open_checkpointer(path)?;
        let readers = (0..options.readers.max(1))
            .map(|_| open::open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        let limits = writer::Limits {
            max_batch: options.max_batch.max(1),
            max_defer: options.max_defer,
        };
        let writer =
            Writer::spawn(conn, checkpoints, limits).map_err(|e| StoreError::Unusable {
                path: path.to_path_buf(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        let schedules = schedules::Schedules::open(path)?;
        Ok((readers, writer, schedules))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Write transactions committed since opening; with concurrent writers it grows more
    /// slowly than the number of writes (group commit).
    pub fn commits(&self) -> u64 {
        self.inner.writer.commits()
    }

    /// Runs `f` on a reader connection on a blocking thread.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let readers = Arc::clone(&self.inner.readers);
        async move {
            tokio::task::spawn_blocking(move || readers.with(f))
                .await
                .map_err(|e| StoreError::ReadFailed(format!("the read did not finish: {e}")))?
        }
        .boxed()
    }

    /// Queues `job` now and resolves with its outcome once committed.
    fn submit(&self, job: Job) -> BoxFuture<'static, Result<Outcome, StoreError>> {
        self.queue(job, false)
    }

    /// Queues `job` now (deferred if nobody waits on it yet) and resolves with its
    /// outcome once committed.
    fn queue(&self, job: Job, deferred: bool) -> BoxFuture<'static, Result<Outcome, StoreError>> {
        let answer = if deferred {
            self.inner.writer.submit_deferred(job)
        } else {
            self.inner.writer.submit(job)
        };
        async move { answer.await.unwrap_or(Err(StoreError::Closed)) }.boxed()
    }

    /// Encodes and queues `batch` now; deferred if nobody waits on it yet.
    fn write_as(
        &self,
        batch: Vec<Write>,
        deferred: bool,
    ) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        let done = rows::encode(batch).map(|rows| self.queue(Job::Write(rows), deferred));
        async move {
            match done?.await? {
                Outcome::Writes(results) => Ok(results),
                _ => Err(unexpected()),
            }
        }
        .boxed()
    }

    /// Queues a deleting job now, then repeats it until a chunk comes back short.
    fn delete_in_chunks(
        &self,
        job: fn(i64, u32) -> Job,
        before: SystemTime,
    ) -> BoxFuture<'static, Result<u64, StoreError>> {
        let before = rows::nanos(before);
        let first = self.submit(job(before, DELETE_CHUNK));
        let store = self.clone();
        async move {
            let mut n = count_of(first.await?)?;
            let mut total = n;
            while n == u64::from(DELETE_CHUNK) {
                n = count_of(store.submit(job(before, DELETE_CHUNK)).await?)?;
                total += n;
            }
            Ok(total)
        }
        .boxed()
    }

    /// Runs `f` on the write connection between transactions (test hook).
    #[cfg(test)]
    fn exec_on_writer(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let done = self.submit(Job::Exec(Box::new(f)));
        async move { done.await.map(drop) }.boxed()
    }
}

fn count_of(outcome: Outcome) -> Result<u64, StoreError> {
    match outcome {
        Outcome::Count(n) => Ok(n),
        _ => Err(unexpected()),
    }
}

fn unexpected() -> StoreError {
    StoreError::WriteFailed("the writer answered with an unexpected outcome".into())
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("commits", &self.commits())
            .finish()
    }
}

impl TaskStore for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn durable(&self) -> bool {
        true
    }

    fn write(&self, batch: Vec<Write>) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        self.write_as(batch, false)
    }

    fn write_deferred(
        &self,
        batch: Vec<Write>,
    ) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        self.write_as(batch, true)
    }

    fn get(&self, id: TaskId) -> BoxFuture<'static, Result<Option<TaskRecord>, StoreError>> {
        self.read(move |c| read::get(c, id))
    }

    fn list(&self, query: TaskQuery) -> BoxFuture<'static, Result<Page, StoreError>> {
        self.read(move |c| read::list(c, &query))
    }

    fn count(&self, filter: TaskFilter) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.read(move |c| read::count(c, &filter))
    }

    fn open_tasks(&self) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        self.read(|c| read::open_tasks(c))
    }

    fn find_unique(&self, key: String) -> BoxFuture<'static, Result<Option<TaskId>, StoreError>> {
        self.read(move |c| read::find_unique(c, &key))
    }

    fn prune_terminal(&self, before: SystemTime) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.delete_in_chunks(|before, limit| Job::Prune { before, limit }, before)
    }

    fn delete_ended(
        &self,
        ids: Vec<TaskId>,
    ) -> BoxFuture<'static, Result<Vec<TaskId>, StoreError>> {
        let done = self.submit(Job::Delete(ids));
        async move {
            match done.await? {
                Outcome::Ids(ids) => Ok(ids),
                _ => Err(unexpected()),
            }
        }
        .boxed()
    }

    fn check_writable(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let done = self.submit(Job::Probe);
        async move { done.await.map(drop) }.boxed()
    }

    fn check_recovered(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let done = self.submit(Job::Canary);
        async move { done.await.map(drop) }.boxed()
    }
}

impl EventLog for SqliteStore {
    fn history(&self, id: TaskId) -> BoxFuture<'static, Result<History, StoreError>> {
        self.read(move |c| read::history(c, id))
    }

    fn events(&self, id: TaskId) -> BoxFuture<'static, Result<Vec<StoredEvent>, StoreError>> {
        self.read(move |c| read::events(c, id))
    }

    fn crashes(&self, id: TaskId) -> BoxFuture<'static, Result<Vec<Crash>, StoreError>> {
        self.read(move |c| read::crashes(c, id))
    }

    fn sweep_crashes(&self, before: SystemTime) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.delete_in_chunks(|before, limit| Job::Sweep { before, limit }, before)
    }
}

impl ScheduleStore for SqliteStore {
    fn put_schedule(&self, record: ScheduleRecord) -> BoxFuture<'static, Result<(), StoreError>> {
        let s = self.inner.schedules.clone();
        blocking(move || s.put(&record))
    }

    fn put_schedules(
        &self,
        records: Vec<ScheduleRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        let s = self.inner.schedules.clone();
        blocking(move || s.put_all(&records))
    }

    fn delete_schedule(&self, name: String) -> BoxFuture<'static, Result<bool, StoreError>> {
        let s = self.inner.schedules.clone();
        blocking(move || s.delete(&name))
    }

    fn schedules(&self) -> BoxFuture<'static, Result<Vec<ScheduleRecord>, StoreError>> {
        let s = self.inner.schedules.clone();
        blocking(move || s.all())
    }
}

/// Runs SQLite work off the async runtime's threads.
fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> BoxFuture<'static, Result<T, StoreError>> {
    async move {
        tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
            Err(StoreError::WriteFailed(format!(
                "schedule task failed: {e}"
            )))
        })
    }
    .boxed()
}

/// One process per file (the file lock): no one to wake.
impl Notifier for SqliteStore {}

/// One process per database file: no leases (the cron leader of a single node needs none).
impl super::Leases for SqliteStore {}

/// One process per database file: its breakers are its own (a cluster-wide breaker acts
/// as a node's).
impl super::Breakers for SqliteStore {}

/// One process per file (the file lock): nothing to coordinate. The runtime never
/// reserves or rescues on a store that is not shared.
impl Coordination for SqliteStore {
    fn shared(&self) -> bool {
        false
    }

    fn register(&self, info: NodeInfo) -> BoxFuture<'static, Result<Owner, StoreError>> {
        futures::future::ready(Ok(Owner::new(info.name, 1))).boxed()
    }

    fn heartbeat(&self, _: Owner) -> BoxFuture<'static, Result<Vec<Requested>, StoreError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    fn nodes(&self) -> BoxFuture<'static, Result<Vec<NodeRecord>, StoreError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    fn dead(&self, _: Duration) -> BoxFuture<'static, Result<Vec<Owner>, StoreError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    fn bury(&self, _: Owner, _: Duration) -> BoxFuture<'static, Result<bool, StoreError>> {
        futures::future::ready(Ok(true)).boxed()
    }

    fn held(&self, _: Owner) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    fn release(&self, _: Owner) -> BoxFuture<'static, Result<u64, StoreError>> {
        futures::future::ready(Ok(0)).boxed()
    }

    fn reserve(
        &self,
        _: Owner,
        _: Vec<String>,
        _: u32,
    ) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    fn reserve_ids(
        &self,
        _: Owner,
        _: Vec<TaskId>,
    ) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }
}
