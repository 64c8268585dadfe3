//! A fresh PostgreSQL database for one bench run: `taskmesh_bench_<pid>_<n>`, created
//! through the admin URL the user gave (`--store postgres://…/postgres`), dropped after the
//! run with every connection still open to it. The store's tables live in its `public`
//! schema.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::error::BenchError;
use crate::store::{PgOptions, PASSWORD_ENV};

/// A database made for one run. Drop it with [`BenchDb::drop_db`].
#[derive(Debug)]
pub struct BenchDb {
    url: String,
    name: String,
    admin: Client,
}

impl BenchDb {
    /// Creates a fresh database on the server of `url` (connecting to `url`'s database
    /// to do so).
    pub async fn create(url: &str) -> Result<BenchDb, BenchError> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("taskmesh_bench_{}_{n}", std::process::id());
        let fail = |doing, source| BenchError::Database {
            doing,
            database: name.clone(),
            url: PgOptions::new(url).redacted_url(),
            source,
        };
        let admin = connect(url).await.map_err(|e| fail("connect to", e))?;
        // Separate statements: a multi-statement string is one transaction, which
        // neither command may run in.
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin
                .batch_execute(&sql)
                .await
                .map_err(|e| fail("create", e))?;
        }
        Ok(BenchDb {
            url: url.to_owned(),
            name,
            admin,
        })
    }

    /// Options for a store in this database (schema `public`).
    pub fn options(&self) -> PgOptions {
        let mut o = PgOptions::new(self.url.clone());
        o.database = Some(self.name.clone());
        o.connect_timeout = Duration::from_secs(10);
        o
    }

    /// The URL of this database (the admin URL with its database replaced), for nodes
    /// started as processes.
    pub fn url(&self) -> String {
        match reqwest::Url::parse(&self.url) {
            Ok(mut u) => {
                u.set_path(&self.name);
                u.to_string()
            }
            Err(_) => self.url.clone(),
        }
    }

    /// A connection to this database, for reading what the nodes did.
    pub async fn connect_db(&self) -> Result<Client, BenchError> {
        connect(&self.url())
            .await
            .map_err(|source| BenchError::Database {
                doing: "connect to",
                database: self.name.clone(),
                url: PgOptions::new(&self.url).redacted_url(),
                source,
            })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, ending the connections still open to it.
    pub async fn drop_db(self) -> Result<(), BenchError> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        self.admin
            .batch_execute(&sql)
            .await
            .map_err(|source| BenchError::Database {
                doing: "drop",
                database: self.name.clone(),
                url: PgOptions::new(&self.url).redacted_url(),
                source,
            })
    }
}

/// An admin connection to `url`, with the password of `TASKMESH_STORE__PASSWORD` when the
/// URL has none (as the store does).
async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    if config.get_password().is_none() {
        if let Ok(p) = std::env::var(PASSWORD_ENV) {
            config.password(p);
        }
    }
    config.connect_timeout(Duration::from_secs(10));
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}
