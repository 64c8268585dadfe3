//! The cron leader on a store several processes share: the holder of the `cron` lease.
//! It trusts its lease on its own monotonic clock until the start of its last successful
//! renewal plus the time to live minus a margin, and past that does not lead, whatever
//! else happens: it has stopped firing before the lease runs out in the store and anyone
//! else can take it. The keeper actor (`keeper`) takes and renews the lease.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::cron::leader::Leadership;
use crate::store::Lease;

/// The name of the cron leader's lease.
pub const CRON_LEASE: &str = "cron";

/// How the cron lease is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a taken or renewed lease lasts, in store time (default 10 s).
    pub ttl: Duration,
    /// How often the holder renews it, and others try to take it (default 2 s).
    pub renew_every: Duration,
    /// The holder stops trusting its lease this long before the lease runs out by its
    /// own clock (default 1 s), for clocks that run at slightly different rates.
    pub margin: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            renew_every: Duration::from_secs(2),
            margin: Duration::from_secs(1),
        }
    }
}

impl LeaseConfig {
    /// The window a renewal that began at `start` is trusted for: the lease lasts `ttl`
    /// from a moment after `start` in store time, so `start + ttl - margin` is before
    /// anyone else can take it.
    pub(crate) fn trusted_until(&self, start: Instant) -> Instant {
        start + self.ttl.saturating_sub(self.margin)
    }

    /// Renewing must leave time to renew again before trust runs out.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.renew_every.is_zero() || self.ttl <= self.margin + self.renew_every * 2 {
            return Err(format!(
                "expected ttl above margin plus two renewals, got ttl {:?}, renew every {:?}, margin {:?}",
                self.ttl, self.renew_every, self.margin
            ));
        }
        Ok(())
    }
}

/// Leadership by the `cron` lease: the lease the keeper (`cron::keeper`) last won, and
/// until when this process trusts it on its own monotonic clock. Past that instant it
/// does not lead, whatever the keeper is doing, so it has stopped firing before anyone
/// else can take the lease.
#[derive(Debug, Default)]
pub struct LeaseLeader {
    held: Mutex<Option<(Lease, Instant)>>,
}

impl LeaseLeader {
    /// A leader that holds nothing yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The lease held and trusted now, if any.
    pub fn lease(&self) -> Option<Lease> {
        let held = self.held.lock();
        held.as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(lease, _)| lease.clone())
    }

    /// The lease held, trusted or not (the keeper renews it while the store has it).
    pub(crate) fn held(&self) -> Option<Lease> {
        self.held.lock().as_ref().map(|(lease, _)| lease.clone())
    }

    /// Trusts `lease` until `until`. True if this is a new epoch (this process just
    /// became the leader).
    pub(crate) fn trust(&self, lease: Lease, until: Instant) -> bool {
        let mut held = self.held.lock();
        let new = held.as_ref().is_none_or(|(l, _)| l.epoch != lease.epoch);
        *held = Some((lease, until));
        new
    }

    /// Forgets the lease (lost, or released). True if there was one.
    pub(crate) fn drop_lease(&self) -> bool {
        self.held.lock().take().is_some()
    }
}

impl Leadership for LeaseLeader {
    fn is_leader(&self) -> bool {
        self.lease().is_some()
    }

    fn epoch(&self) -> Option<u64> {
        self.lease().map(|l| l.epoch)
    }
}

/// The leadership a system on a shared store uses by default: this leader, kept by the
/// keeper actor.
#[derive(Clone, Debug)]
pub(crate) struct SharedLeader(pub Arc<LeaseLeader>);

impl Leadership for SharedLeader {
    fn is_leader(&self) -> bool {
        self.0.is_leader()
    }

    fn epoch(&self) -> Option<u64> {
        self.0.epoch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Owner;

    fn lease(epoch: u64) -> Lease {
        Lease {
            name: CRON_LEASE.into(),
            holder: Owner::new("a", 1),
            epoch,
            remaining: Duration::from_secs(10),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_is_trusted_only_until_its_window_ends() {
        let config = LeaseConfig::default();
        let leader = LeaseLeader::new();
        assert!(!leader.is_leader(), "nothing held yet");
        let start = Instant::now();
        assert!(leader.trust(lease(1), config.trusted_until(start)));
        assert!(leader.is_leader());
        assert_eq!(leader.epoch(), Some(1));
        tokio::time::advance(Duration::from_millis(8_999)).await;
        assert!(leader.is_leader(), "within ttl - margin");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!leader.is_leader(), "ttl - margin reached: stopped");
        assert_eq!(leader.epoch(), None);
        assert!(leader.held().is_some(), "still held, to renew");
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_extends_trust_and_a_new_epoch_is_reported() {
        let config = LeaseConfig::default();
        let leader = LeaseLeader::new();
        assert!(leader.trust(lease(1), config.trusted_until(Instant::now())));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!leader.trust(lease(1), config.trusted_until(Instant::now())));
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(leader.is_leader(), "renewed at 2 s: trusted until 11 s");
        assert!(leader.trust(lease(2), config.trusted_until(Instant::now())));
        assert!(leader.drop_lease());
        assert!(!leader.is_leader());
    }

    #[test]
    fn a_config_that_cannot_renew_in_time_is_refused() {
        assert!(LeaseConfig::default().check().is_ok());
        let tight = LeaseConfig {
            ttl: Duration::from_secs(4),
            ..LeaseConfig::default()
        };
        assert!(tight.check().unwrap_err().contains("ttl"));
    }
}
