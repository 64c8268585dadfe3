//! A circuit breaker per task kind: after enough consecutive failures, tasks of that kind
//! stop running for a cooldown, then a single probe decides whether to resume.
//!
//! Tasks held back by an open breaker wait; they are not failed. Time is passed in, so the
//! breaker is pure logic and tests use explicit instants.

use std::fmt;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

/// The longest a task waits behind a probe in flight before asking again.
const PROBE_RECHECK: Duration = Duration::from_secs(1);

/// When a breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker. Default 5; 0 behaves like 1.
    pub failure_threshold: u32,
    /// How long the breaker stays open before a probe is let through. Default 30 s.
    #[serde(with = "crate::task::millis")]
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// The state of a breaker, as reported by health and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Tasks run normally.
    Closed,
    /// Tasks wait until the cooldown ends.
    Open,
    /// The cooldown ended; one probe decides between closed and open.
    HalfOpen,
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        })
    }
}

/// Whether a task may run now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Admission {
    /// Run it.
    Allowed,
    /// Run it as the single probe; its outcome closes or reopens the breaker.
    Probe,
    /// Do not run it; ask again at this instant.
    Wait(Instant),
}

/// The internal state, with what each state needs.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// A thread-safe circuit breaker; share it with `Arc`.
///
/// Outcomes carry no token, so any success closes the breaker and any failure while
/// half-open reopens it, whichever attempt reports it.
#[derive(Debug)]
pub struct CircuitBreaker {
    cfg: BreakerConfig,
    phase: Mutex<Phase>,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self::new(BreakerConfig::default())
    }
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        Self {
            cfg,
            phase: Mutex::new(Phase::Closed { failures: 0 }),
        }
    }

    /// Decides whether a task may run at `now`. Returning [`Admission::Probe`] reserves
    /// the probe slot until the attempt's outcome is recorded.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut phase = self.phase.lock();
        match *phase {
            Phase::Closed { .. } => Admission::Allowed,
            Phase::Open { until } if now < until => Admission::Wait(until),
            Phase::HalfOpen { probing: true } => {
                Admission::Wait(now + self.cfg.cooldown.min(PROBE_RECHECK))
            }
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => {
                *phase = Phase::HalfOpen { probing: true };
                Admission::Probe
            }
        }
    }

    /// An attempt succeeded: the breaker closes and the failure count resets.
    pub fn record_success(&self) {
        *self.phase.lock() = Phase::Closed { failures: 0 };
    }

    /// An attempt failed at `now`. Opens the breaker on the threshold-th consecutive
    /// failure, or again when half-open. A late failure while open changes nothing.
    pub fn record_failure(&self, now: Instant) {
        let mut phase = self.phase.lock();
        let open = Phase::Open {
            until: now + self.cfg.cooldown,
        };
        *phase = match *phase {
            Phase::Closed { failures } if failures + 1 >= self.cfg.failure_threshold => open,
            Phase::Closed { failures } => Phase::Closed {
                failures: failures + 1,
            },
            Phase::HalfOpen { .. } => open,
            Phase::Open { until } => Phase::Open { until },
        };
    }

    /// An attempt ended neither in success nor failure (cancelled or snoozed). If it was
    /// the probe, the probe slot is freed for the next task.
    pub fn record_neutral(&self) {
        let mut phase = self.phase.lock();
        if let Phase::HalfOpen { probing: true } = *phase {
            *phase = Phase::HalfOpen { probing: false };
        }
    }

    /// While open: the instant from which the next probe is let through.
    pub fn probe_at(&self) -> Option<Instant> {
        match *self.phase.lock() {
            Phase::Open { until } => Some(until),
            _ => None,
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        match *self.phase.lock() {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(10);

    fn breaker(threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: threshold,
            cooldown: COOLDOWN,
        })
    }

    /// A breaker opened at `t0` by `threshold` failures.
    fn opened(t0: Instant) -> CircuitBreaker {
        let b = breaker(3);
        (0..3).for_each(|_| b.record_failure(t0));
        b
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures() {
        let (t0, b) = (Instant::now(), breaker(3));
        b.record_failure(t0);
        b.record_failure(t0);
        assert_eq!(
            (b.state(), b.admit(t0)),
            (BreakerState::Closed, Admission::Allowed)
        );
        b.record_failure(t0);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let (t0, b) = (Instant::now(), breaker(3));
        b.record_failure(t0);
        b.record_failure(t0);
        b.record_success();
        b.record_failure(t0);
        b.record_failure(t0);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn tasks_wait_until_the_cooldown_ends() {
        let t0 = Instant::now();
        let b = opened(t0);
        let almost = t0 + COOLDOWN - Duration::from_millis(1);
        assert_eq!(b.admit(almost), Admission::Wait(t0 + COOLDOWN));
        b.record_failure(almost);
        assert_eq!(b.admit(almost), Admission::Wait(t0 + COOLDOWN));
    }

    #[test]
    fn one_probe_runs_after_the_cooldown_while_others_wait() {
        let t0 = Instant::now();
        let (b, end) = (opened(t0), t0 + COOLDOWN);
        assert_eq!(b.admit(end), Admission::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let recheck = end + Duration::from_secs(1);
        assert_eq!(b.admit(end), Admission::Wait(recheck));
        assert_eq!(b.admit(end), Admission::Wait(recheck));
    }

    #[test]
    fn a_successful_probe_closes_the_breaker() {
        let t0 = Instant::now();
        let (b, end) = (opened(t0), t0 + COOLDOWN);
        assert_eq!(b.admit(end), Admission::Probe);
        b.record_success();
        assert_eq!(
            (b.state(), b.admit(end)),
            (BreakerState::Closed, Admission::Allowed)
        );
    }

    #[test]
    fn a_failed_probe_reopens_the_breaker_for_a_full_cooldown() {
        let t0 = Instant::now();
        let (b, end) = (opened(t0), t0 + COOLDOWN);
        assert_eq!(b.admit(end), Admission::Probe);
        let failed_at = end + Duration::from_secs(2);
        b.record_failure(failed_at);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(failed_at), Admission::Wait(failed_at + COOLDOWN));
    }

    #[test]
    fn a_neutral_probe_frees_the_probe_slot() {
        let t0 = Instant::now();
        let (b, end) = (opened(t0), t0 + COOLDOWN);
        assert_eq!(b.admit(end), Admission::Probe);
        b.record_neutral();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(end), Admission::Probe);
    }

    #[test]
    fn a_neutral_outcome_while_closed_keeps_the_count() {
        let (t0, b) = (Instant::now(), breaker(2));
        b.record_failure(t0);
        b.record_neutral();
        b.record_failure(t0);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_short_cooldown_bounds_the_wait_behind_a_probe() {
        let t0 = Instant::now();
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 1,
            cooldown: Duration::from_millis(200),
        });
        b.record_failure(t0);
        let end = t0 + Duration::from_millis(200);
        assert_eq!(b.admit(end), Admission::Probe);
        assert_eq!(
            b.admit(end),
            Admission::Wait(end + Duration::from_millis(200))
        );
    }

    #[test]
    fn states_display_and_serialize_in_snake_case() {
        let json = serde_json::to_string(&BreakerState::HalfOpen).unwrap();
        assert_eq!(
            (json.as_str(), BreakerState::HalfOpen.to_string()),
            ("\"half_open\"", "half_open".into())
        );
    }
}
