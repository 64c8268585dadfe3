//! SQLite store (being written).
use super::*;
/// SQLite store.
pub struct SqliteStore;
