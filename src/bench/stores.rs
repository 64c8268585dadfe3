//! The store of one bench run: opened before the task systems start, closed (and a
//! PostgreSQL database dropped) after they stopped.

use super::error::BenchError;
use super::pgdb::BenchDb;
use crate::store::{PgStore, SqliteStore};
use crate::system::TaskSystemBuilder;

/// Where the bench keeps its tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BenchStore {
    /// No store: tasks live in memory only.
    Memory,
    /// A SQLite file (created fresh; removed afterwards when it was a temporary one).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL server, by an admin URL: each run creates a fresh database through it
    /// (see [`BenchDb`]) and drops it afterwards.
    Postgres(String),
}

impl BenchStore {
    /// The store's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            BenchStore::Memory => "memory",
            BenchStore::Sqlite(_) => "sqlite",
            BenchStore::Postgres(_) => "postgres",
        }
    }
}

/// A store opened for a run.
pub(crate) enum Opened {
    Memory,
    Sqlite(SqliteStore),
    /// One store (pool and writer) per node, as separate processes would have.
    Postgres(Vec<PgStore>, Box<BenchDb>),
}

impl Opened {
    /// Opens `store` for `nodes` task systems; more than one needs PostgreSQL.
    pub(crate) async fn open(store: &BenchStore, nodes: usize) -> Result<Opened, BenchError> {
        if nodes != 1 && !matches!(store, BenchStore::Postgres(_)) {
            let why = format!("expected --nodes 1 on {}, got {nodes}", store.name());
            return Err(BenchError::Invalid(why));
        }
        Ok(match store {
            BenchStore::Memory => Opened::Memory,
            BenchStore::Sqlite(path) => Opened::Sqlite(SqliteStore::open(path)?),
            BenchStore::Postgres(url) => {
                let db = BenchDb::create(url).await?;
                let mut stores = Vec::with_capacity(nodes);
                for _ in 0..nodes {
                    match PgStore::connect_with(db.options()).await {
                        Ok(s) => stores.push(s),
                        Err(e) => {
                            let _ = db.drop_db().await;
                            return Err(e.into());
                        }
                    }
                }
                Opened::Postgres(stores, Box::new(db))
            }
        })
    }

    /// Gives node `node`'s system its store, and on PostgreSQL its node name.
    pub(crate) fn attach(&self, node: usize, builder: TaskSystemBuilder) -> TaskSystemBuilder {
        match self {
            Opened::Memory => builder,
            Opened::Sqlite(s) => builder.store(s.clone()),
            Opened::Postgres(stores, _) => builder
                .node_name(format!("bench-{}-{node}", std::process::id()))
                .store(stores[node].clone()),
        }
    }

    /// Store transactions committed so far, over all nodes.
    pub(crate) fn commits(&self) -> Option<u64> {
        match self {
            Opened::Memory => None,
            Opened::Sqlite(s) => Some(s.commits()),
            Opened::Postgres(stores, _) => Some(stores.iter().map(PgStore::commits).sum()),
        }
    }

    /// Closes the stores; drops a PostgreSQL database.
    pub(crate) async fn close(self) -> Result<(), BenchError> {
        match self {
            Opened::Memory | Opened::Sqlite(_) => Ok(()),
            Opened::Postgres(stores, db) => {
                stores.iter().for_each(PgStore::close);
                db.drop_db().await
            }
        }
    }
}
