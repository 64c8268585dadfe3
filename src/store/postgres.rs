//! [`PgStore`]: the PostgreSQL store, which several processes can share.
//!
//! - A pool of connections (deadpool-postgres) for reads, coordination and maintenance.
//! - Writer tasks (two by default) commit concurrent writes together (group commit, see `writer`),
//!   each on its own connection, a task's writes always through the same one: each
//!   batch is a handful of multi-row statements over arrays, one transaction and one
//!   commit, whatever its size, and the next batch follows on the connection without
//!   waiting for the client. A write resolves only once its batch committed.
//! - Hints between processes (`LISTEN`/`NOTIFY` on a connection of its own, off the hot
//!   path: see `notify`).
//! - The schema is versioned (`taskmesh_migrations`), migrated at connect under a
//!   transaction-scoped advisory lock.
//! - TLS to the server with the `postgres-tls` feature (rustls; the URL's `sslmode`
//!   decides); without it, connections are plain and `sslmode=require` is refused.
//! - The password comes from the URL, [`PgOptions`], a file or `TASKMESH_STORE__PASSWORD`,
//!   and is never printed.
//!
//! Contention and ordering:
//! - Every transition is a conditional write decided under the task's row lock (see
//!   `writer/batch`): of two processes settling or claiming one task, one wins and the
//!   other gets [`WriteResult::Fenced`](crate::store::WriteResult::Fenced).
//! - Unique keys are enforced by a unique index alone (`ON CONFLICT DO NOTHING`).
//! - Reservations take waiting tasks with `FOR UPDATE SKIP LOCKED` in one statement.
//!   No session advisory lock is ever used for ownership.
//! - Time for due tasks, heartbeats and liveness is the database's `now()`.
//! - Serialization failures, deadlocks and lost connections are retried by the writer
//!   with backoff, then reported as [`StoreError::Conflict`] or
//!   [`StoreError::Unavailable`] (which keep their source); readiness
//!   ([`check_writable`](crate::store::TaskStore::check_writable)) fails while the server
//!   is unreachable and passes again once it answers, with no reconnect by the caller.
//!
//! Vacuum and bloat under churn: the hot `tasks` row is small (the task JSON lives in
//! `task_specs`, written once), `tasks` keeps 30% of each page free (`fillfactor = 70`)
//! and is vacuumed after 2% of its rows changed rather than PostgreSQL's default 20%,
//! without cost delay, so dead row versions left by claims and settles are reclaimed
//! while they are few. Indexes on rarely set columns are partial, so updates do not grow
//! them. Events are append-only. Ended tasks leave with their events and crashes by
//! retention ([`prune_terminal`](crate::store::TaskStore::prune_terminal)), in chunks of
//! 1,000, each its own short transaction; the store never holds a transaction open
//! across an await on anything but the server, which would hold back vacuum.
//!
//! | file | holds |
//! |---|---|
//! | `options` | connection settings and the password |
//! | `schema` | the migrations |
//! | `errors` | driver errors to store errors |
//! | `rows` | encoding and decoding of rows |
//! | `writer` | the writers and group commit; `writer/shard` one writer's pipeline, `writer/batch` its SQL |
//! | `notify` | hints over `LISTEN`/`NOTIFY` |
//! | `read` | the queries |
//! | `maint` | prune, sweep, probes |
//! | `schedules` | cron schedules |
//! | `coord` | the node registry, heartbeats, reservations |

mod breakers;
mod coord;
mod errors;
mod lease;
mod maint;
mod notify;
mod options;
mod read;
mod rows;
mod schedules;
mod schema;
#[cfg(test)]
mod tests;
#[cfg(feature = "postgres-tls")]
mod tls;
mod writer;

pub use options::{PgOptions, PASSWORD_ENV};

use std::sync::Arc;
use std::time::SystemTime;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::future::{BoxFuture, FutureExt};
#[cfg(not(feature = "postgres-tls"))]
use tokio_postgres::NoTls;

use self::errors::{pool_error, Doing};
use self::writer::{Limits, WriteRow, Writer};
use super::{
    Crash, EventLog, Fired, Firing, History, Page, ScheduleStore, StoreError, StoredEvent,
    TaskFilter, TaskQuery, TaskRecord, TaskStore, Write, WriteResult,
};
use crate::cron::schedule::ScheduleRecord;
use crate::task::TaskId;

/// A pool of at most `size` connections made with `config`.
fn pool_of(
    config: tokio_postgres::Config,
    size: usize,
    options: &PgOptions,
) -> Result<Pool, StoreError> {
    let recycling = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    #[cfg(feature = "postgres-tls")]
    let manager = Manager::from_config(config, tls::connector()?, recycling);
    #[cfg(not(feature = "postgres-tls"))]
    let manager = Manager::from_config(config, NoTls, recycling);
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.connect_timeout))
        .create_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|e| StoreError::Unusable {
            path: "<postgres pool>".into(),
            reason: format!("cannot build the connection pool: {e}"),
        })
}

/// The PostgreSQL store. Cloning is cheap and shares the pool and the writer.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The writers' connections, which plan their statements once (see `Planning`).
    writer_pool: Pool,
    writer: Writer,
    hints: notify::Hints,
    options: PgOptions,
    /// The `application_name` of every connection of this store.
    session: String,
}

impl PgStore {
    /// Connects with default options (see [`PgOptions::new`]), migrating the schema.
    pub async fn connect(url: impl Into<String>) -> Result<PgStore, StoreError> {
        Self::connect_with(PgOptions::new(url)).await
    }

    /// Connects, creates the schema if missing and applies pending migrations. Must run
    /// inside a tokio runtime, which the store's connections and writer then live on.
    pub async fn connect_with(options: PgOptions) -> Result<PgStore, StoreError> {
        // Every connection of this store carries one tag, so that the server can tell
        // whether any connection of this process is still open (see `bury_gone`).
        let session = format!("taskmesh/{}", uuid::Uuid::now_v7().simple());
        let mut config = options.driver_config()?;
        config.application_name(&session);
        let pool = pool_of(config, options.pool_size.max(1), &options)?;
        let mut writer_config = options.writer_config()?;
        writer_config.application_name(&session);
        let writer_pool = pool_of(writer_config, options.writers.max(1), &options)?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| pool_error(Doing::Migrate, e))?;
        schema::migrate(&mut client, &options.schema).await?;
        drop(client);
        let limits = Limits {
            writers: options.writers.max(1),
            max_batch: options.max_batch.max(1),
            max_defer: options.max_defer,
            answer_within: options.answer_within,
        };
        let writer = Writer::spawn(writer_pool.clone(), limits);
        let mut hints_config = options.driver_config()?;
        hints_config.application_name(&session);
        let hints = notify::Hints::new(hints_config, options.schema.clone());
        tracing::debug!(url = %options.redacted_url(), schema = %options.schema, "postgres store connected");
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                writer_pool,
                writer,
                hints,
                options,
                session,
            }),
        })
    }

    /// Write transactions committed since connecting.
    pub fn commits(&self) -> u64 {
        self.inner.writer.commits()
    }

    /// Closes the pools: later operations fail with [`StoreError::Closed`] or
    /// unavailability, as after losing the server.
    pub fn close(&self) {
        self.inner.pool.close();
        self.inner.writer_pool.close();
    }

    /// The schema the store's tables are in.
    pub fn schema(&self) -> &str {
        &self.inner.options.schema
    }

    /// Gathers the planner's statistics of the store's tables now (`ANALYZE`), as
    /// autovacuum does once enough rows changed: useful right after a bulk load.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        let doing = Doing::Other("analyzing the tables");
        let c = self.pool().get().await.map_err(|e| pool_error(doing, e))?;
        c.batch_execute("ANALYZE tasks, task_specs, events, task_counts")
            .await
            .map_err(|e| errors::pg_error(doing, e))
    }

    /// The pool, for the store's own modules and tests.
    fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The `application_name` every connection of this store carries.
    pub(crate) fn session(&self) -> &str {
        &self.inner.session
    }

    fn write_as(
        &self,
        batch: Vec<Write>,
        deferred: bool,
    ) -> BoxFuture<'static, Result<Vec<WriteResult>, StoreError>> {
        let answer = encode(batch).map(|rows| self.inner.writer.submit(rows, deferred));
        async move { answer?.await.unwrap_or(Err(StoreError::Closed)) }.boxed()
    }

    /// Runs `f` with a clone of the pool as a `'static` future.
    fn with_pool<T, F>(
        &self,
        f: impl FnOnce(Pool) -> F,
    ) -> BoxFuture<'static, Result<T, StoreError>>
    where
        F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        f(self.pool().clone()).boxed()
    }
}

/// Encodes a batch on the caller's task; fails (naming the task) if a value cannot be
/// serialised.
fn encode(batch: Vec<Write>) -> Result<Vec<WriteRow>, StoreError> {
    batch
        .into_iter()
        .map(|w| {
            Ok(match w {
                Write::Create(record, event) => {
                    WriteRow::Create(Box::new(rows::task_row(&record)?), rows::event_row(event)?)
                }
                Write::Update(t) => WriteRow::Update(Box::new(rows::transition_row(*t)?)),
                Write::Event(event) => WriteRow::Event(rows::event_row(event)?),
                Write::Crash(c) => WriteRow::Crash(rows::crash_row(c)?),
            })
        })
        .collect()
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.inner.options.redacted_url())
            .field("schema", &self.inner.options.schema)
            .field("commits", &self.commits())
            .finish()
    }
}

impl TaskStore for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
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
        self.with_pool(move |p| async move { read::get(&p, id).await })
    }

    fn list(&self, query: TaskQuery) -> BoxFuture<'static, Result<Page, StoreError>> {
        self.with_pool(move |p| async move { read::list(&p, &query).await })
    }

    fn count(&self, filter: TaskFilter) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.with_pool(move |p| async move { read::count(&p, &filter).await })
    }

    fn open_tasks(&self) -> BoxFuture<'static, Result<Vec<TaskRecord>, StoreError>> {
        self.with_pool(|p| async move { read::open_tasks(&p).await })
    }

    fn find_unique(&self, key: String) -> BoxFuture<'static, Result<Option<TaskId>, StoreError>> {
        self.with_pool(move |p| async move { read::find_unique(&p, &key).await })
    }

    fn prune_terminal(&self, before: SystemTime) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.with_pool(move |p| async move { maint::prune(&p, before).await })
    }

    fn delete_ended(
        &self,
        ids: Vec<TaskId>,
    ) -> BoxFuture<'static, Result<Vec<TaskId>, StoreError>> {
        self.with_pool(move |p| async move { maint::delete_ended(&p, ids).await })
    }

    fn check_writable(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        self.with_pool(|p| async move { maint::probe(&p).await })
    }
}

impl EventLog for PgStore {
    fn events(&self, id: TaskId) -> BoxFuture<'static, Result<Vec<StoredEvent>, StoreError>> {
        self.with_pool(move |p| async move { read::events(&p, id).await })
    }

    fn crashes(&self, id: TaskId) -> BoxFuture<'static, Result<Vec<Crash>, StoreError>> {
        self.with_pool(move |p| async move { read::crashes(&p, id).await })
    }

    fn history(&self, id: TaskId) -> BoxFuture<'static, Result<History, StoreError>> {
        self.with_pool(move |p| async move { read::history(&p, id).await })
    }

    fn sweep_crashes(&self, before: SystemTime) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.with_pool(move |p| async move { maint::sweep(&p, before).await })
    }
}

impl ScheduleStore for PgStore {
    fn put_schedule(&self, record: ScheduleRecord) -> BoxFuture<'static, Result<(), StoreError>> {
        self.with_pool(move |p| async move { schedules::put_all(&p, &[record]).await })
    }

    fn put_schedules(
        &self,
        records: Vec<ScheduleRecord>,
    ) -> BoxFuture<'static, Result<(), StoreError>> {
        self.with_pool(move |p| async move { schedules::put_all(&p, &records).await })
    }

    fn delete_schedule(&self, name: String) -> BoxFuture<'static, Result<bool, StoreError>> {
        self.with_pool(move |p| async move { schedules::delete(&p, &name).await })
    }

    fn schedules(&self) -> BoxFuture<'static, Result<Vec<ScheduleRecord>, StoreError>> {
        self.with_pool(|p| async move { schedules::all(&p).await })
    }

    fn put_schedule_if(
        &self,
        record: ScheduleRecord,
    ) -> BoxFuture<'static, Result<Option<u64>, StoreError>> {
        self.with_pool(move |p| async move { schedules::put_if(&p, record).await })
    }

    fn fire_slots(&self, firing: Firing) -> BoxFuture<'static, Result<Fired, StoreError>> {
        let rows = encode(firing.writes.clone());
        self.with_pool(move |p| async move { schedules::fire(&p, rows?, firing).await })
    }
}
