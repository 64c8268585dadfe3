//! Rate limits (per queue or per task kind) with governor's GCRA, on tokio time.
//!
//! The limiter reads [`tokio::time::Instant`], so it follows paused time in tests and its
//! refusals name a tokio instant that a timer can wait for.
//!
//! A limit of [`Scope::Cluster`] holds across every node sharing a store: each node
//! admits its share, the rate (and burst) divided by the number of live nodes that the
//! store's registry lists (for a queue's limit, those serving the queue). The coordinator
//! reads the registry at every heartbeat and calls [`Limiter::share_among`]; a new share
//! starts with an empty bucket, so a change of shares never adds a burst. The store
//! splits the rate, not a leader: no message has to reach anyone, and a node cut off
//! from the store stops starting tasks anyway (its trust window).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use crate::scope::Scope;

/// A sustained rate with an allowance for bursts. Zero is rejected when deserializing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Admissions per second, sustained.
    pub per_second: NonZeroU32,
    /// Admissions allowed back to back after an idle period.
    pub burst: NonZeroU32,
    /// Whether the limit holds on each node or across the cluster (default `node`).
    #[serde(default)]
    pub scope: Scope,
}

impl RateLimit {
    /// `n` per second, with a burst of `n`, on each node.
    pub fn per_second(n: NonZeroU32) -> Self {
        Self {
            per_second: n,
            burst: n,
            scope: Scope::Node,
        }
    }

    /// The same limit, held across the cluster.
    pub fn cluster_wide(self) -> Self {
        Self {
            scope: Scope::Cluster,
            ..self
        }
    }
}

/// Governor's clock on tokio time: the time elapsed since the limiter was built.
#[derive(Clone, Copy, Debug)]
struct TokioClock {
    epoch: Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// A thread-safe limiter for one [`RateLimit`]; share it with `Arc`.
pub struct Limiter {
    limit: RateLimit,
    epoch: Instant,
    /// How many nodes share a cluster-wide limit (1 for a node's own).
    sharing: AtomicU32,
    inner: RwLock<Gcra>,
    /// The GCRA's theoretical arrival time (ns since `epoch`), mirrored from every
    /// admission: governor's own cannot be read without taking one, and
    /// [`Limiter::available`] reads this.
    tat: AtomicU64,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("limit", &self.limit)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter with its full burst available (of its share: a cluster-wide limit
    /// starts as if this node were alone).
    pub fn new(limit: RateLimit) -> Self {
        let epoch = Instant::now();
        Self {
            limit,
            epoch,
            sharing: AtomicU32::new(1),
            inner: RwLock::new(gcra(limit, 1, epoch)),
            tat: AtomicU64::new(0),
        }
    }

    /// Sets how many live nodes share this limit, if it is cluster-wide (a node's own
    /// limit ignores it). A changed share starts with an empty bucket.
    pub fn share_among(&self, nodes: u32) {
        let nodes = nodes.max(1);
        if self.limit.scope != Scope::Cluster || self.sharing.swap(nodes, Ordering::AcqRel) == nodes
        {
            return;
        }
        let fresh = gcra(self.limit, nodes, self.epoch);
        let burst = burst_share(self.limit, nodes);
        // Emptied: the nodes that shared the old rate may have used their bursts.
        let _ = fresh.check_n(burst);
        *self.inner.write() = fresh;
        let full = u64::from(burst.get()) * nanos(period_of(self.limit, nodes));
        self.tat.store(self.now() + full, Ordering::Release);
    }

    /// How many nodes share it now.
    pub fn sharing(&self) -> u32 {
        self.sharing.load(Ordering::Acquire)
    }

    /// The limit it enforces.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one admission now.
    ///
    /// # Errors
    ///
    /// When the limit is reached: the earliest instant at which a retry can succeed (if no
    /// one else takes the admission first).
    pub fn check(&self) -> Result<(), Instant> {
        self.inner
            .read()
            .check()
            .map_err(|not_until| self.epoch + not_until.earliest_possible())?;
        let (now, period) = (self.now(), nanos(self.period()));
        let _ = self
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                Some(tat.max(now) + period)
            });
        Ok(())
    }

    /// How many admissions [`check`](Limiter::check) would grant back to back now (0 to
    /// the burst of this node's share), read without taking one. An estimate: it mirrors
    /// the GCRA's state from each admission, so admissions racing with the read may make
    /// it off by one.
    pub fn available(&self) -> u32 {
        let burst = burst_share(self.limit, self.sharing()).get();
        let ahead = self.tat.load(Ordering::Acquire).saturating_sub(self.now());
        let used = ahead.div_ceil(nanos(self.period()).max(1));
        burst.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }

    /// Nanoseconds since `epoch`, on tokio time.
    fn now(&self) -> u64 {
        nanos(Instant::now().saturating_duration_since(self.epoch))
    }

    /// The interval between two admissions of this node's share.
    fn period(&self) -> Duration {
        period_of(self.limit, self.sharing())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The interval between two admissions of `limit` divided among `nodes`.
fn period_of(limit: RateLimit, nodes: u32) -> Duration {
    Duration::from_secs_f64(f64::from(nodes) / f64::from(limit.per_second.get()))
}

/// `limit`'s burst divided among `nodes` (at least one).
fn burst_share(limit: RateLimit, nodes: u32) -> NonZeroU32 {
    NonZeroU32::new(limit.burst.get() / nodes).unwrap_or(NonZeroU32::MIN)
}

/// A GCRA for `limit` divided among `nodes`: one admission every `nodes / per_second`.
fn gcra(limit: RateLimit, nodes: u32, epoch: Instant) -> Gcra {
    let period = period_of(limit, nodes);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(limit.per_second))
        .allow_burst(burst_share(limit, nodes));
    RateLimiter::direct_with_clock(quota, TokioClock { epoch })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn limiter(per_second: u32, burst: u32) -> Limiter {
        Limiter::new(RateLimit {
            per_second: nz(per_second),
            burst: nz(burst),
            scope: Scope::Node,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_admitted_then_the_next_is_refused_until_its_instant() {
        let l = limiter(2, 3);
        (0..3).for_each(|_| assert_eq!(l.check(), Ok(())));
        let retry_at = l.check().unwrap_err();
        assert_eq!(retry_at, Instant::now() + Duration::from_millis(500));
        tokio::time::advance(retry_at - Instant::now() - Duration::from_millis(1)).await;
        assert_eq!(l.check(), Err(retry_at));
        tokio::time::advance(retry_at - Instant::now()).await;
        assert_eq!(l.check(), Ok(()));
        assert!(l.check().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokens_left_are_read_without_taking_one() {
        let l = limiter(2, 3);
        assert_eq!(
            (l.available(), l.available()),
            (3, 3),
            "reading takes nothing"
        );
        (0..3).for_each(|_| assert_eq!(l.check(), Ok(())));
        assert_eq!(l.available(), 0);
        assert!(l.check().is_err(), "as the read said");
        tokio::time::advance(Duration::from_millis(499)).await;
        assert_eq!(l.available(), 0);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(l.available(), 1);
        assert_eq!(l.check(), Ok(()));
        assert_eq!(l.available(), 0);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(l.available(), 3, "idle time refills at most the burst");
        let shared = Limiter::new(
            RateLimit {
                per_second: nz(2),
                burst: nz(2),
                scope: Scope::Node,
            }
            .cluster_wide(),
        );
        shared.share_among(2);
        assert_eq!(shared.available(), 0, "a new share starts empty");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            shared.available(),
            1,
            "half the rate: one a second, a burst of one"
        );
        assert_eq!(shared.check(), Ok(()));
        assert!(shared.check().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_refills_the_burst() {
        let l = Limiter::new(RateLimit::per_second(nz(4)));
        (0..4).for_each(|_| assert_eq!(l.check(), Ok(())));
        assert!(l.check().is_err());
        tokio::time::advance(Duration::from_secs(5)).await;
        (0..4).for_each(|_| assert_eq!(l.check(), Ok(())));
        assert!(l.check().is_err());
    }

    /// Admissions in `secs` seconds of steady demand, one try per millisecond.
    async fn admitted_in(l: &Limiter, secs: u64) -> u32 {
        let mut n = 0;
        for _ in 0..secs * 1000 {
            n += u32::from(l.check().is_ok());
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        n
    }

    #[tokio::test(start_paused = true)]
    async fn a_cluster_wide_limit_admits_its_share_and_a_new_share_adds_no_burst() {
        let limit = RateLimit::per_second(nz(30)).cluster_wide();
        let l = Limiter::new(limit);
        l.share_among(3);
        assert_eq!(l.sharing(), 3);
        // 10 per second here, no burst left over from the change.
        let n = admitted_in(&l, 10).await;
        assert!((99..=101).contains(&n), "{n} in 10 s");
        l.share_among(2);
        let n = admitted_in(&l, 10).await;
        assert!((149..=151).contains(&n), "{n} in 10 s once two share it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_nodes_own_limit_ignores_the_share() {
        let l = Limiter::new(RateLimit::per_second(nz(10)));
        l.share_among(5);
        assert_eq!(l.sharing(), 1);
        let n = admitted_in(&l, 10).await;
        assert!(
            (100..=111).contains(&n),
            "{n}: its own 10 per second (and its burst)"
        );
    }

    #[test]
    fn the_scope_reads_from_config_and_defaults_to_the_node() {
        let cluster: RateLimit =
            serde_json::from_str(r#"{"per_second":5,"burst":5,"scope":"cluster"}"#).unwrap();
        assert_eq!(cluster.scope, Scope::Cluster);
        let node: RateLimit = serde_json::from_str(r#"{"per_second":5,"burst":5}"#).unwrap();
        assert_eq!(node.scope, Scope::Node);
        let bad = serde_json::from_str::<RateLimit>(r#"{"per_second":5,"burst":5,"scope":"x"}"#);
        assert!(bad.unwrap_err().to_string().contains("unknown variant"));
    }

    #[test]
    fn a_zero_rate_is_rejected_when_deserializing() {
        let ok: RateLimit = serde_json::from_str(r#"{"per_second":5,"burst":10}"#).unwrap();
        assert_eq!((ok.per_second.get(), ok.burst.get()), (5, 10));
        let err = serde_json::from_str::<RateLimit>(r#"{"per_second":0,"burst":1}"#);
        assert!(err.is_err());
    }
}
