//! Rate limits (per queue or per task kind) with governor's GCRA, on tokio time.
//!
//! The limiter reads [`tokio::time::Instant`], so it follows paused time in tests and its
//! refusals name a tokio instant that a timer can wait for.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// A sustained rate with an allowance for bursts. Zero is rejected when deserializing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Admissions per second, sustained.
    pub per_second: NonZeroU32,
    /// Admissions allowed back to back after an idle period.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `n` per second, with a burst of `n`.
    pub fn per_second(n: NonZeroU32) -> Self {
        Self {
            per_second: n,
            burst: n,
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

/// A thread-safe limiter for one [`RateLimit`]; share it with `Arc`.
pub struct Limiter {
    limit: RateLimit,
    epoch: Instant,
    inner: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>,
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
    /// A limiter with its full burst available.
    pub fn new(limit: RateLimit) -> Self {
        let epoch = Instant::now();
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self {
            limit,
            epoch,
            inner: RateLimiter::direct_with_clock(quota, TokioClock { epoch }),
        }
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
            .check()
            .map_err(|not_until| self.epoch + not_until.earliest_possible())
    }
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
    async fn idle_time_refills_the_burst() {
        let l = Limiter::new(RateLimit::per_second(nz(4)));
        (0..4).for_each(|_| assert_eq!(l.check(), Ok(())));
        assert!(l.check().is_err());
        tokio::time::advance(Duration::from_secs(5)).await;
        (0..4).for_each(|_| assert_eq!(l.check(), Ok(())));
        assert!(l.check().is_err());
    }

    #[test]
    fn a_zero_rate_is_rejected_when_deserializing() {
        let ok: RateLimit = serde_json::from_str(r#"{"per_second":5,"burst":10}"#).unwrap();
        assert_eq!((ok.per_second.get(), ok.burst.get()), (5, 10));
        let err = serde_json::from_str::<RateLimit>(r#"{"per_second":0,"burst":1}"#);
        assert!(err.is_err());
    }
}
