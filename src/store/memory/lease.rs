//! The memory store's leases. "Store time" is tokio's clock, so tests with paused time
//! can let a lease run out.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::{Inner, MemoryStore};
use crate::store::{Lease, LeaseFence, Leases, Owner, StoreError};

/// A lease as kept: its holder, epoch and when it runs out.
pub(super) struct Held {
    holder: Owner,
    epoch: u64,
    expires: Instant,
}

impl Held {
    fn lease(&self, name: &str, now: Instant) -> Lease {
        Lease {
            name: name.to_string(),
            holder: self.holder.clone(),
            epoch: self.epoch,
            remaining: self.expires.saturating_duration_since(now),
        }
    }

    fn matches(&self, fence: &LeaseFence, now: Instant) -> bool {
        self.holder == fence.holder && self.epoch == fence.epoch && self.expires > now
    }
}

impl Inner {
    /// True if the lease `fence` names is held as it says, with time left.
    pub(super) fn lease_held(&self, fence: &LeaseFence) -> bool {
        self.leases
            .get(&fence.name)
            .is_some_and(|h| h.matches(fence, Instant::now()))
    }

    fn acquire_lease(&mut self, name: String, holder: Owner, ttl: Duration) -> Option<Lease> {
        let now = Instant::now();
        let epoch = match self.leases.get(&name) {
            Some(h) if h.expires > now => return None,
            Some(h) => h.epoch + 1,
            None => 1,
        };
        let held = Held {
            holder,
            epoch,
            expires: now + ttl,
        };
        let lease = held.lease(&name, now);
        self.leases.insert(name, held);
        Some(lease)
    }

    fn renew_lease(&mut self, fence: &LeaseFence, ttl: Duration) -> Option<Lease> {
        let now = Instant::now();
        let held = self.leases.get_mut(&fence.name)?;
        if !held.matches(fence, now) {
            return None;
        }
        held.expires = now + ttl;
        Some(held.lease(&fence.name, now))
    }

    fn release_lease(&mut self, fence: &LeaseFence) -> bool {
        let now = Instant::now();
        match self.leases.get_mut(&fence.name) {
            Some(held) if held.matches(fence, now) => {
                held.expires = now;
                true
            }
            _ => false,
        }
    }
}

impl Leases for MemoryStore {
    fn acquire_lease(
        &self,
        name: String,
        holder: Owner,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, StoreError>> {
        self.with(|inner| inner.acquire_lease(name, holder, ttl))
    }

    fn renew_lease(
        &self,
        fence: LeaseFence,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Lease>, StoreError>> {
        self.with(|inner| inner.renew_lease(&fence, ttl))
    }

    fn release_lease(&self, fence: LeaseFence) -> BoxFuture<'static, Result<bool, StoreError>> {
        self.with(|inner| inner.release_lease(&fence))
    }

    fn lease(&self, name: String) -> BoxFuture<'static, Result<Option<Lease>, StoreError>> {
        self.with(|inner| {
            let now = Instant::now();
            inner.leases.get(&name).map(|h| h.lease(&name, now))
        })
    }
}
