//! Leases: a named right (the cron leader's) that one process holds at a time, for a
//! time the store measures, with an epoch that grows with every new holder.
//!
//! - **Acquire** takes a lease nobody holds or whose time ran out, and bumps its epoch;
//!   a lease another process holds in time is left alone.
//! - **Renew** extends it only if the caller is still its holder, with the same epoch,
//!   and its time has not run out (a holder that lost it never gets it back by renewing:
//!   oban #1488 renewed by name only and fired every schedule twice for 19 days).
//! - **Release** ends it at once (a graceful stop), so the next holder need not wait.
//!
//! Times are the store's (PostgreSQL's `now()`), never a node's clock. The holder trusts
//! its lease on its own monotonic clock until the start of its last successful renewal
//! plus the time to live minus a margin (see `cron::lease`): it stops before anyone can
//! take over. Every write made under a lease names its epoch; the store checks it in
//! the same transaction ([`ScheduleStore::fire_slots`](super::ScheduleStore::fire_slots)).

use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Owner, StoreError};

/// A lease as the store saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Its name (`cron` for the cron leader).
    pub name: String,
    /// Who holds it.
    pub holder: Owner,
    /// Grows by one with every new holder; never goes back.
    pub epoch: u64,
    /// How long it has left, by the store's clock at the read (zero once expired).
    pub remaining: Duration,
}

/// What a write made under a lease must find in the store, in its own transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseFence {
    /// The lease.
    pub name: String,
    /// Its holder, as the writer believes.
    pub holder: Owner,
    /// Its epoch, as the writer believes.
    pub epoch: u64,
}

impl Lease {
    /// The fence of writes made under this lease.
    pub fn fence(&self) -> LeaseFence {
        LeaseFence {
            name: self.name.clone(),
            holder: self.holder.clone(),
            epoch: self.epoch,
        }
    }
}

/// Leases with epochs, in store time. A store only one process uses has no need of
/// them: the defaults refuse, saying so.
pub trait Leases: Send + Sync + 'static {
    /// Takes `name` for `holder` for `ttl` if nobody holds it or its time ran out, with
    /// the next epoch. `None` if another holder has it in time (or `holder` itself under
    /// an older epoch: it renews, it does not re-acquire).
    fn acquire_lease(
        &self,
        name: String,
        holder: Owner,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, StoreError>> {
        let _ = (name, holder, ttl);
        Box::pin(async { Err(unshared()) })
    }

    /// Extends the lease by `ttl` from now if `fence` still matches it (holder and
    /// epoch) and its time has not run out. `None` if it was lost.
    fn renew_lease(
        &self,
        fence: LeaseFence,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, StoreError>> {
        let _ = (fence, ttl);
        Box::pin(async { Err(unshared()) })
    }

    /// Ends the lease now if `fence` still matches it. True if it did.
    fn release_lease(&self, fence: LeaseFence) -> BoxFuture<'static, Result<bool, StoreError>> {
        let _ = fence;
        Box::pin(async { Err(unshared()) })
    }

    /// The lease `name` as it stands (also an expired one), if it was ever taken.
    fn lease(&self, name: String) -> BoxFuture<'static, Result<Option<Lease>, StoreError>> {
        let _ = name;
        Box::pin(async { Err(unshared()) })
    }
}

fn unshared() -> StoreError {
    StoreError::ReadFailed("leases need a store several processes share".into())
}
