//! From driver and pool errors to [`StoreError`]: serialization failures and deadlocks
//! are conflicts (retried by the writer), lost or refused connections make the store
//! unavailable, the rest failed reads or writes naming what failed. Messages never hold
//! the URL or the password.

use std::sync::Arc;

use tokio_postgres::error::SqlState;

use crate::store::StoreError;

/// What the store was doing, for the message.
#[derive(Clone, Copy, Debug)]
pub(super) enum Doing {
    /// Applying the migrations.
    Migrate,
    /// Committing a write batch.
    Write,
    /// A read.
    Read(&'static str),
    /// Another write outside the batches (prune, sweep, schedules, nodes).
    Other(&'static str),
}

impl std::fmt::Display for Doing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Doing::Migrate => f.write_str("migrating the schema"),
            Doing::Write => f.write_str("committing a write batch"),
            Doing::Read(what) | Doing::Other(what) => f.write_str(what),
        }
    }
}

/// How an error should be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A serialization failure or a deadlock: try again.
    Conflict,
    /// No connection, or the server is going away or not taking connections.
    Unavailable,
    /// The pool was closed.
    Closed,
    /// Anything else.
    Failed,
}

/// The kind of a driver error.
pub(super) fn kind(e: &tokio_postgres::Error) -> Kind {
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            Kind::Conflict
        }
        Some(c) if c.code().starts_with("08") || c.code().starts_with("57P") => Kind::Unavailable,
        Some(c) if *c == SqlState::TOO_MANY_CONNECTIONS => Kind::Unavailable,
        Some(_) => Kind::Failed,
        // No SQLSTATE: an I/O error, a closed connection, a timeout connecting.
        None if e.is_closed() || e.as_db_error().is_none() => Kind::Unavailable,
        None => Kind::Failed,
    }
}

/// A failure kept so that every request of a failed batch can get its own
/// [`StoreError`], each with the shared source.
#[derive(Clone, Debug)]
pub(super) struct Failure {
    kind: Kind,
    doing: Doing,
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    /// A driver error while `doing`.
    pub(super) fn new(doing: Doing, e: tokio_postgres::Error) -> Self {
        Self {
            kind: kind(&e),
            doing,
            message: describe(&e),
            source: Some(Arc::new(e)),
        }
    }

    /// No answer from the server within `waited` while `doing`: the connection is taken
    /// for lost (a request it carried may never have reached the server).
    pub(super) fn silent(doing: Doing, waited: std::time::Duration) -> Self {
        Self {
            kind: Kind::Unavailable,
            doing,
            message: format!(
                "no answer from the server within {waited:?}; the connection is dropped"
            ),
            source: None,
        }
    }

    /// A pool error while `doing`: no connection could be had.
    pub(super) fn pool(doing: Doing, e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => Self::new(doing, e),
            PoolError::Closed => Self {
                kind: Kind::Closed,
                doing,
                message: "the pool is closed".into(),
                source: None,
            },
            other => Self {
                kind: Kind::Unavailable,
                doing,
                message: format!("no connection: {other}"),
                source: Some(Arc::new(other)),
            },
        }
    }

    /// Worth trying again: a conflict, or a connection lost or not had.
    pub(super) fn retryable(&self) -> bool {
        matches!(self.kind, Kind::Conflict | Kind::Unavailable)
    }

    /// The store error for one caller.
    pub(super) fn to_store(&self) -> StoreError {
        let message = self.to_string();
        match (self.kind, self.doing) {
            (Kind::Conflict, _) => conflict(message),
            (Kind::Unavailable, _) => unavailable(message, self.source.clone()),
            (Kind::Closed, _) => StoreError::Closed,
            (Kind::Failed, Doing::Read(_)) => StoreError::ReadFailed(message),
            (Kind::Failed, _) => StoreError::WriteFailed(message),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.doing, self.message)
    }
}

/// A driver error as a store error.
pub(super) fn pg_error(doing: Doing, e: tokio_postgres::Error) -> StoreError {
    Failure::new(doing, e).to_store()
}

/// A pool error as a store error.
pub(super) fn pool_error(doing: Doing, e: deadpool_postgres::PoolError) -> StoreError {
    Failure::pool(doing, e).to_store()
}

/// The server's message with its detail, or the driver's chain of sources.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{} ({}): {detail}", db.message(), db.code().code()),
            None => format!("{} ({})", db.message(), db.code().code()),
        };
    }
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A conflict with a concurrent transaction.
fn conflict(message: String) -> StoreError {
    StoreError::Conflict {
        source: message.into(),
    }
}

/// The server cannot be reached; keeps the driver's error as the source.
fn unavailable(
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
) -> StoreError {
    StoreError::Unavailable {
        source: Box::new(Unreachable { message, source }),
    }
}

/// Why the server could not be reached: what the store was doing, and the driver's error.
#[derive(Debug)]
struct Unreachable {
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Unreachable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// The error of a statement that changes something while doing `what`.
pub(super) fn failed(what: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| pg_error(Doing::Other(what), e)
}

/// The error of a read while doing `what`.
pub(super) fn read_failed(what: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| pg_error(Doing::Read(what), e)
}

/// A pooled connection for a statement that changes something while doing `what`.
pub(super) async fn conn(
    pool: &deadpool_postgres::Pool,
    what: &'static str,
) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get()
        .await
        .map_err(|e| pool_error(Doing::Other(what), e))
}

/// A pooled connection for a read while doing `what`.
pub(super) async fn read_conn(
    pool: &deadpool_postgres::Pool,
    what: &'static str,
) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get()
        .await
        .map_err(|e| pool_error(Doing::Read(what), e))
}
