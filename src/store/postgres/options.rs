//! Connection settings: the URL, the pool, the batch limits, and the password, which is a
//! secret (read from the options, a file, or `TASKMESH_STORE__PASSWORD`; never printed).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::secret::Secret;
use crate::store::StoreError;

/// The environment variable the password is read from when neither the URL nor the
/// options give one.
pub const PASSWORD_ENV: &str = "TASKMESH_STORE__PASSWORD";

/// Settings for [`PgStore::connect_with`](super::PgStore::connect_with). `Debug` never
/// shows a password: the one in the URL is masked, and [`password`](Self::password) is a
/// [`Secret`].
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/database[?…]`, or a key=value string.
    pub url: String,
    /// Connections for reads and coordination (at least 1; default 8). The writers have
    /// one more each.
    pub pool_size: usize,
    /// Writer tasks, each committing its share of the writes (by task id) on its own
    /// connection (at least 1; default 2). On the 2-core machine of the README's figures,
    /// 2 gave both the lowest acknowledgement latency and the highest throughput: 1
    /// serialises every commit, 4 splits the same writes into twice the commits.
    pub writers: usize,
    /// The password, if not in the URL. Takes precedence over the file and the
    /// environment.
    pub password: Option<Secret>,
    /// A file holding the password (one line; surrounding whitespace is ignored).
    pub password_file: Option<PathBuf>,
    /// The database, instead of the URL's.
    pub database: Option<String>,
    /// The schema the tables live in (created if missing; default `public`). Stores on
    /// different schemas of one database are independent.
    pub schema: String,
    /// The most writes one transaction takes from the queue (default 4096).
    pub max_batch: usize,
    /// The longest a deferred write waits for company (default
    /// [`MAX_DEFER`](crate::store::MAX_DEFER)).
    pub max_defer: Duration,
    /// How long to wait for a connection (default 5 s); past it an operation fails with
    /// [`StoreError::Unavailable`].
    pub connect_timeout: Duration,
    /// How long a writer waits for the server's answer to a batch's statements or its
    /// commit (default 15 s: longer than any row lock a stopped process can hold, which
    /// the server ends after 5 s idle in a transaction). Past it the writer drops the
    /// connection: a request lost on the way would otherwise hold every later batch.
    pub answer_within: Duration,
}

impl PgOptions {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 8,
            writers: 2,
            password: None,
            password_file: None,
            database: None,
            schema: "public".into(),
            max_batch: 4096,
            max_defer: crate::store::MAX_DEFER,
            connect_timeout: Duration::from_secs(5),
            answer_within: Duration::from_secs(15),
        }
    }

    /// Sets the schema.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the pool size.
    #[must_use]
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// Sets the number of writers.
    #[must_use]
    pub fn writers(mut self, n: usize) -> Self {
        self.writers = n;
        self
    }

    /// The driver's configuration: the URL parsed, the password resolved, the schema on
    /// the search path. Errors never repeat the URL (it may hold a password).
    pub(super) fn driver_config(&self) -> Result<tokio_postgres::Config, StoreError> {
        let mut config =
            tokio_postgres::Config::from_str(&self.url).map_err(|e| StoreError::Unusable {
                path: PathBuf::from("<postgres url>"),
                reason: format!("not a valid PostgreSQL URL: {e}"),
            })?;
        if config.get_password().is_none() {
            if let Some(password) = self.resolve_password()? {
                config.password(password.expose());
            }
        }
        if let Some(db) = &self.database {
            config.dbname(db);
        }
        check_schema(&self.schema)?;
        config.options(self.session_options(Planning::PerExecution));
        config.connect_timeout(self.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("taskmesh");
        }
        Ok(config)
    }

    /// The writers' configuration: as [`Self::driver_config`], planning each statement
    /// once per connection (see [`Planning::Once`]).
    pub(super) fn writer_config(&self) -> Result<tokio_postgres::Config, StoreError> {
        let mut config = self.driver_config()?;
        config.options(self.session_options(Planning::Once));
        Ok(config)
    }

    /// The settings every connection of the store starts with.
    fn session_options(&self, planning: Planning) -> String {
        // A process stopped (SIGSTOP, a long pause) inside a transaction would hold its
        // row locks until it continues, and block the survivors' rescue of its tasks: the
        // server ends such a transaction after IDLE_IN_TRANSACTION. Ours last
        // milliseconds; one that is cut is retried.
        let plans = match planning {
            Planning::PerExecution => "-c plan_cache_mode=force_custom_plan",
            Planning::Once => "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off",
        };
        format!(
            "-c search_path={} -c idle_in_transaction_session_timeout={} {plans}",
            self.schema,
            IDLE_IN_TRANSACTION.as_millis()
        )
    }

    /// The explicit password, else the file's, else the environment's.
    fn resolve_password(&self) -> Result<Option<Secret>, StoreError> {
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|e| StoreError::Unusable {
                path: path.clone(),
                reason: format!("cannot read the password file: {e}"),
            })?;
            return Ok(Some(Secret::new(text.trim())));
        }
        Ok(std::env::var(PASSWORD_ENV).ok().map(Secret::new))
    }

    /// The URL with any password replaced by `***`, for logs and `Debug`.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

/// The longest a connection may sit idle inside a transaction before the server ends it.
pub const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(5);

/// A schema name we put on the search path unquoted: lowercase letters, digits and `_`.
fn check_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && !schema.starts_with(|c: char| c.is_ascii_digit())
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Unusable {
            path: PathBuf::from("<postgres schema>"),
            reason: format!(
                "expected a schema name of lowercase letters, digits and _, got {schema:?}"
            ),
        })
    }
}

/// Masks the password of a `postgres://user:password@…` URL, and any `password=` of a
/// key=value string or query.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme) = out.find("://") {
        let rest = scheme + 3;
        let end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    while let Some(i) = out
        .find("password=")
        .filter(|&i| !out[i + 9..].starts_with("***"))
    {
        let start = i + 9;
        let end = out[start..]
            .find([' ', '&'])
            .map_or(out.len(), |e| start + e);
        out.replace_range(start..end, "***");
    }
    out
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &self.redacted_url())
            .field("pool_size", &self.pool_size)
            .field("writers", &self.writers)
            .field("password", &self.password)
            .field("password_file", &self.password_file)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("max_batch", &self.max_batch)
            .field("max_defer", &self.max_defer)
            .field("connect_timeout", &self.connect_timeout)
            .field("answer_within", &self.answer_within)
            .finish()
    }
}

/// How a connection plans the statements it has prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Planning {
    /// Each execution is planned for its parameters (reads, coordination, maintenance).
    ///
    /// Every statement is prepared once per connection and runs for its life, while the
    /// tables grow from empty: a generic plan chosen while they were small (a sequential
    /// scan) stays until the next ANALYZE. Measured on the cluster bench: runs fell in a
    /// slow regime (3.3k tasks/s on one node, two backends at 90% CPU) about half the
    /// time; with custom plans, none did (7.7–10.1k/s). A filtered listing also wants
    /// the plan for its actual filter.
    PerExecution,
    /// Each statement is planned once, on its first execution (the writers). Planning was
    /// a third of the server's time on the writers' statements, every batch. It is safe
    /// for them alone: each reads `tasks` only through its primary or unique key, for the
    /// keys its batch names (the row update names them twice, so that its join is
    /// bounded however it is planned), and sequential scans are off, so no plan made on a
    /// small table scans a large one later.
    Once,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_every_password() {
        let mut o = PgOptions::new("postgres://u:hunter2@db:5432/x?password=hunter3");
        o.password = Some(Secret::new("hunter4"));
        let shown = format!("{o:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("postgres://u:***@db:5432/x"), "{shown}");
        let kv = PgOptions::new("host=db password=hunter2 user=u");
        assert_eq!(kv.redacted_url(), "host=db password=*** user=u");
    }

    #[test]
    fn the_password_comes_from_the_options_then_the_file() {
        let dir = std::env::temp_dir().join(format!("tm-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pass");
        std::fs::write(&file, "from-file\n").unwrap();
        let mut o = PgOptions::new("postgres://u@db/x");
        o.password_file = Some(file.clone());
        let c = o.driver_config().unwrap();
        assert_eq!(c.get_password(), Some(&b"from-file"[..]));
        o.password = Some(Secret::new("explicit"));
        assert_eq!(
            o.driver_config().unwrap().get_password(),
            Some(&b"explicit"[..])
        );
        let in_url = PgOptions::new("postgres://u:url@db/x");
        assert_eq!(
            in_url.driver_config().unwrap().get_password(),
            Some(&b"url"[..])
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_writers_plan_once_and_never_scan_while_the_others_plan_each_execution() {
        let o = PgOptions::new("postgres://u@db/x").schema("tm");
        let reads = o.driver_config().unwrap();
        let reads = reads.get_options().unwrap();
        assert!(
            reads.contains("plan_cache_mode=force_custom_plan"),
            "{reads}"
        );
        assert!(reads.contains("search_path=tm"), "{reads}");
        let writes = o.writer_config().unwrap();
        let writes = writes.get_options().unwrap();
        assert!(
            writes.contains("plan_cache_mode=force_generic_plan"),
            "{writes}"
        );
        assert!(writes.contains("enable_seqscan=off"), "{writes}");
        assert!(writes.contains("search_path=tm"), "{writes}");
        assert!(
            writes.contains("idle_in_transaction_session_timeout"),
            "{writes}"
        );
    }

    #[test]
    fn a_bad_url_or_schema_is_refused_without_echoing_the_url() {
        let e = PgOptions::new("postgres://u:hunter2@db:notaport/x")
            .driver_config()
            .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = PgOptions::new("postgres://db/x")
            .schema("x; drop table tasks")
            .driver_config()
            .unwrap_err();
        assert!(e.to_string().contains("schema"), "{e}");
    }
}
