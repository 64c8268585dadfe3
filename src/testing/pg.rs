//! A fresh PostgreSQL database per test, dropped after it (not part of the API).
//!
//! The server comes from `TASKMESH_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When no server answers, [`TestDb::create`]
//! prints `skipped: <reason>` and returns `None`, so the test returns early; with
//! `TASKMESH_REQUIRE_PG=1` (as in CI) it panics instead, so the test fails.
//!
//! ```no_run
//! # async fn t() {
//! use taskmesh::testing::pg::TestDb;
//! let Some(db) = TestDb::create("my_test").await else { return };
//! let store = taskmesh::store::PgStore::connect_with(db.options()).await.unwrap();
//! # }
//! ```

pub use super::proxy::Proxy;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_postgres::NoTls;

use crate::store::PgOptions;

/// The variable naming the test server.
pub const URL_ENV: &str = "TASKMESH_TEST_DATABASE_URL";

/// The variable that turns a missing server into a failure.
pub const REQUIRE_ENV: &str = "TASKMESH_REQUIRE_PG";

/// The server tests use when [`URL_ENV`] is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database made for one test; dropped (connections and all) when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    name: String,
}

impl TestDb {
    /// Creates a fresh database named after `test`, or says why not: `None` (after
    /// printing `skipped: <reason>`) if no server answers, a panic if
    /// `TASKMESH_REQUIRE_PG=1` or if the server answers but refuses.
    pub async fn create(test: &str) -> Option<TestDb> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let url = std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let admin = match admin(&url).await {
            Ok(admin) => admin,
            Err(reason) => return skip(&reason),
        };
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            drop_leftovers(&admin).await;
        }
        let mut name = format!("tm_{}_{n}_{}", std::process::id(), sanitize(test));
        name.truncate(63);
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            if let Err(e) = admin.batch_execute(&sql).await {
                let why = e
                    .as_db_error()
                    .map_or(e.to_string(), |d| d.message().to_owned());
                panic!("cannot create test database {name}: {why}");
            }
        }
        Some(TestDb { url, name })
    }

    /// Options for a store in this database (schema `public`).
    pub fn options(&self) -> PgOptions {
        let mut o = PgOptions::new(self.url.clone());
        o.database = Some(self.name.clone());
        o.connect_timeout = Duration::from_secs(10);
        o
    }

    /// Options for a store in this database reached through `addr` (a [`Proxy`]), as
    /// the test server's user.
    pub fn options_via(&self, addr: std::net::SocketAddr) -> PgOptions {
        let config: tokio_postgres::Config = self.url.parse().expect("checked at create");
        let user = config.get_user().unwrap_or("postgres");
        let mut o = PgOptions::new(format!("postgres://{user}@{addr}/{}", self.name));
        if let Some(p) = config.get_password() {
            o.password = Some(crate::secret::Secret::new(String::from_utf8_lossy(p)));
        }
        o.connect_timeout = Duration::from_secs(2);
        o
    }

    /// The test server's address (the first host and port of the URL).
    pub fn server(&self) -> std::net::SocketAddr {
        let config: tokio_postgres::Config = self.url.parse().expect("checked at create");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let host = if host == "localhost" {
            "127.0.0.1".to_owned()
        } else {
            host
        };
        format!("{host}:{port}")
            .parse()
            .expect("an IP address and port")
    }

    /// A plain connection to this database, for a test to inspect or break things.
    pub async fn client(&self) -> tokio_postgres::Client {
        let mut config: tokio_postgres::Config = self.url.parse().expect("checked at create");
        config.dbname(&self.name);
        let (client, connection) = config.connect(NoTls).await.expect("connect to the test db");
        tokio::spawn(connection);
        client
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    /// Drops the database from a thread of its own (a test's runtime may be shutting
    /// down), ending any connection still open to it.
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async move {
                let admin = admin(&url).await.ok()?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        });
        let _ = dropped.join();
    }
}

/// A connection to the server's `url` database, or why none.
async fn admin(url: &str) -> Result<tokio_postgres::Client, String> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("{URL_ENV} is not a PostgreSQL URL: {e}"))?;
    config.connect_timeout(Duration::from_secs(3));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("no PostgreSQL server answers at {}: {e}", redact(url)))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Drops test databases left by test processes that are gone (killed before their
/// `TestDb`s were dropped), so they do not pile up on a long-lived server.
async fn drop_leftovers(admin: &tokio_postgres::Client) {
    if !std::path::Path::new("/proc/self").exists() {
        return; // no way to tell which processes are gone
    }
    let Ok(rows) = admin
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'tm\\_%'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        let gone = pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists());
        if gone {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

fn skip(reason: &str) -> Option<TestDb> {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{REQUIRE_ENV}=1 but {reason}");
    }
    println!("skipped: {reason}");
    None
}

fn sanitize(test: &str) -> String {
    test.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn redact(url: &str) -> String {
    PgOptions::new(url).redacted_url()
}
