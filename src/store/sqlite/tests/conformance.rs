//! The shared store conformance suite and model property, run against SQLite files.

use super::TempDir;
use crate::store::conformance::{model_property, run_all, Harness};
use crate::store::prelude::*;
use crate::store::sqlite::SqliteStore;

/// Each fresh store is a new file in one temporary directory; reopening drops the store
/// (closing the file) and opens the same file again.
struct SqliteHarness {
    dir: TempDir,
    next: usize,
}

impl SqliteHarness {
    fn new() -> Self {
        Self {
            dir: TempDir::new(),
            next: 0,
        }
    }
}

impl Harness for SqliteHarness {
    type S = SqliteStore;
    async fn fresh(&mut self) -> SqliteStore {
        self.next += 1;
        SqliteStore::open(self.dir.file(&format!("{}.db", self.next))).unwrap()
    }
    async fn reopen(&mut self, s: SqliteStore) -> SqliteStore {
        let path = s.path().to_path_buf();
        drop(s);
        SqliteStore::open(path).unwrap()
    }
}

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite() {
    let mut h = SqliteHarness::new();
    let store = h.fresh().await;
    assert_eq!((store.name(), store.durable()), ("sqlite", true));
    run_all(&mut h).await;
}

#[test]
fn sqlite_store_matches_the_model_across_reopenings() {
    model_property(&mut SqliteHarness::new());
}
