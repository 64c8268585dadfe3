//! The `[store]` section: which store the node uses, and how it takes part when several
//! nodes share one PostgreSQL database.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Where the node keeps its tasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `sqlite:PATH` (default `sqlite:{data_dir}/taskmesh.db`) or
    /// `postgres://user@host:port/database` (several nodes may share one database).
    /// Also `TASKMESH_STORE__URL` and `--store`.
    pub url: Option<String>,
    /// PostgreSQL connections for reads and coordination (the writers have their own).
    pub pool_size: usize,
    /// PostgreSQL writer tasks, each committing its share of the writes on a connection
    /// of its own (default: 2 on a node alone, 1 on a node of a cluster, where the
    /// other nodes' writers add their own commits; see [`StoreSettings::writers`]).
    pub writers: Option<usize>,
    /// A file holding the PostgreSQL password, if the URL has none.
    pub password_file: Option<PathBuf>,
    /// The PostgreSQL password itself: from `TASKMESH_STORE__PASSWORD` only.
    #[serde(skip_serializing)]
    pub password: Option<Secret>,
    /// The PostgreSQL schema of the tables (default `public`).
    pub schema: String,
    /// This node's name among the nodes sharing the database: unique, and the same
    /// across restarts (default `{namespace}@{host}:{http port}`).
    pub node_name: Option<String>,
    /// A node whose heartbeat is older than this is dead; its running tasks are rescued
    /// (default 15 000 ms).
    pub dead_after_ms: u64,
    /// How often a node renews its heartbeat (default 2 000 ms).
    pub heartbeat_ms: u64,
    /// How often free workers take waiting tasks from the shared pool (default 500 ms).
    pub poll_ms: u64,
    /// How long the cron leader's lease lasts in the database (default 10 000 ms): a new
    /// leader takes over within about this long of the old one's last renewal.
    pub cron_lease_ms: u64,
    /// How often the cron leader renews its lease, and other nodes try to take it
    /// (default 2 000 ms).
    pub cron_renew_ms: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 8,
            writers: None,
            password_file: None,
            password: None,
            schema: "public".into(),
            node_name: None,
            dead_after_ms: 15_000,
            heartbeat_ms: 2_000,
            poll_ms: 500,
            cron_lease_ms: 10_000,
            cron_renew_ms: 2_000,
        }
    }
}

/// The store a URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (the URL as given).
    Postgres(String),
}

/// Writers of a node alone on its database: two commits overlap, and batches stay full.
pub const WRITERS_ALONE: usize = 2;

/// Writers of a node in a cluster: the nodes share one database, and each node's writers
/// get only its share of the writes. Two per node split that share into batches a third
/// the size, and the server spends its time on per-commit work (measured: 3 nodes on
/// one 2-core machine reached 0.50–0.54× one node's throughput with two each, 0.75× and
/// more with one each).
pub const WRITERS_IN_CLUSTER: usize = 1;

impl StoreSettings {
    /// The writers to start: as configured, else by whether the node is in a cluster.
    pub fn writers(&self, clustered: bool) -> usize {
        self.writers.unwrap_or(if clustered {
            WRITERS_IN_CLUSTER
        } else {
            WRITERS_ALONE
        })
    }

    /// The store to open: the URL, or SQLite in `data_dir`. An unknown scheme is an error
    /// naming the key (the URL itself is not repeated: it may hold a password).
    pub fn target(&self, data_dir: &Path) -> Result<StoreUrl, String> {
        let Some(url) = self.url.as_deref().map(str::trim) else {
            return Ok(StoreUrl::Sqlite(data_dir.join("taskmesh.db")));
        };
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("store.url: expected sqlite:PATH with a file path".into());
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_string()));
        }
        Err("store.url: expected sqlite:PATH or postgres://user@host/database".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(url: &str) -> StoreSettings {
        StoreSettings {
            url: Some(url.into()),
            ..StoreSettings::default()
        }
    }

    #[test]
    fn a_store_url_names_sqlite_or_postgres_and_anything_else_is_refused() {
        let dir = Path::new("/srv/tm");
        let default = StoreSettings::default().target(dir).unwrap();
        assert_eq!(default, StoreUrl::Sqlite(dir.join("taskmesh.db")));
        assert_eq!(
            with("sqlite:/tmp/x.db").target(dir).unwrap(),
            StoreUrl::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            with("postgres://u@h/db").target(dir).unwrap(),
            StoreUrl::Postgres("postgres://u@h/db".into())
        );
        let err = with("mysql://u:hunter2@h/db").target(dir).unwrap_err();
        assert!(err.contains("store.url"), "{err}");
        assert!(!err.contains("hunter2"), "the URL is not repeated: {err}");
        assert!(with("sqlite:").target(dir).is_err());
    }
}
