//! Retry delays: capped exponential backoff with full jitter.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::ValidationError;

/// Capped exponential backoff with full jitter: the delay before attempt `n + 1` is drawn
/// uniformly from `[0, min(max, base × 2^(n-1))]`. Full jitter spreads retries of many
/// tasks that failed together, so they do not hammer a recovering dependency in lockstep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// The ceiling of the first delay.
    #[serde(with = "crate::task::model::millis")]
    pub base: Duration,
    /// No delay exceeds this.
    #[serde(with = "crate::task::model::millis")]
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// A backoff from `base`, capped at `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// No delay at all; useful in tests.
    pub fn none() -> Self {
        Self::new(Duration::ZERO, Duration::ZERO)
    }

    /// The upper bound of the delay after `attempt` (1-based) failed.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay after `attempt` (1-based) failed, drawn with full jitter from `rng`.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceiling = self.ceiling(attempt).as_micros() as u64;
        if ceiling == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(rng.random_range(0..=ceiling))
    }

    /// Rejects a base larger than the cap.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.base > self.max {
            return Err(ValidationError::new(
                "backoff",
                format!(
                    "expected base <= max, got base {:?} and max {:?}",
                    self.base, self.max
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let ceilings: Vec<u64> = (1..=6).map(|a| b.ceiling(a).as_millis() as u64).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn a_base_above_the_cap_is_rejected() {
        let err = Backoff::new(Duration::from_secs(2), Duration::from_secs(1))
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "backoff");
    }

    #[test]
    fn jitter_spreads_delays_across_the_range() {
        let b = Backoff::new(Duration::from_millis(1000), Duration::from_secs(10));
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(1, &mut rng)).collect();
        assert!(delays.iter().any(|d| *d < Duration::from_millis(250)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(750)));
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_the_ceiling_or_the_cap(
            base_ms in 0u64..5_000, extra_ms in 0u64..100_000, attempt in 1u32..100, seed: u64,
        ) {
            let b = Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(base_ms + extra_ms));
            let mut rng = StdRng::seed_from_u64(seed);
            let d = b.delay(attempt, &mut rng);
            prop_assert!(d <= b.ceiling(attempt));
            prop_assert!(d <= b.max);
        }
    }
}
