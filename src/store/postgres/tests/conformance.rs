//! The shared store conformance suite and model property, run against PostgreSQL.

use crate::store::conformance::{
    model_property, run_all, run_breakers, run_leases, run_shared, Harness,
};
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::testing::pg::TestDb;

/// Each fresh store is a new schema of one test database; reopening drops the store
/// (its pool and writer) and connects to the same schema again.
struct PgHarness {
    db: TestDb,
    next: usize,
}

impl PgHarness {
    async fn new(test: &str) -> Option<Self> {
        Some(Self {
            db: TestDb::create(test).await?,
            next: 0,
        })
    }

    async fn connect(&self, schema: &str) -> PgStore {
        PgStore::connect_with(self.db.options().schema(schema))
            .await
            .expect("connect")
    }
}

impl Harness for PgHarness {
    type S = PgStore;
    async fn fresh(&mut self) -> PgStore {
        self.next += 1;
        self.connect(&format!("s{}", self.next)).await
    }
    async fn reopen(&mut self, s: PgStore) -> PgStore {
        let schema = s.schema().to_owned();
        s.close();
        drop(s);
        self.connect(&schema).await
    }
}

#[tokio::test]
async fn postgres_store_passes_the_conformance_suite() {
    let Some(mut h) = PgHarness::new("conformance").await else {
        return;
    };
    let store = h.fresh().await;
    assert_eq!((store.name(), store.durable()), ("postgres", true));
    run_all(&mut h).await;
    run_shared(&mut h).await;
    run_leases(&mut h).await;
    run_breakers(&mut h).await;
}

#[test]
fn postgres_store_matches_the_model_across_reopenings() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(mut h) = rt.block_on(PgHarness::new("model")) else {
        return;
    };
    drop(rt);
    model_property(&mut h);
}
