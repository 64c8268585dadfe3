//! What can stop a bench run.

use crate::error::SystemError;
use crate::store::StoreError;

/// A bench run that could not be set up or finished.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A task system failed to start.
    #[error(transparent)]
    System(#[from] SystemError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bench's PostgreSQL database could not be created or dropped through the admin
    /// connection.
    #[error("cannot {doing} the bench database {database} at {url}")]
    Database {
        /// "connect to", "create" or "drop".
        doing: &'static str,
        /// The database's name.
        database: String,
        /// The admin URL, password masked.
        url: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The settings do not make a run.
    #[error("invalid bench settings: {0}")]
    Invalid(String),
    /// Tasks stopped completing before all of them did.
    #[error("expected {expected} tasks to complete, got {completed} (none for {stalled_s} s)")]
    Stalled {
        /// Tasks acknowledged.
        expected: usize,
        /// Tasks whose handler ran.
        completed: usize,
        /// Seconds without a completion before giving up.
        stalled_s: u64,
    },
}
