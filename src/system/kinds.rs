//! The per-kind gates of the handle: each kind's circuit breaker and rate limit, as the
//! dashboard's queues page shows them.

use std::time::Duration;

use tokio::time::Instant;

use super::TaskSystem;
use crate::breaker::BreakerState;
use crate::ratelimit::RateLimit;

/// A kind's gates now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindGates {
    /// The task kind.
    pub kind: String,
    /// Its breaker's state, when it has one.
    pub breaker: Option<BreakerState>,
    /// While the breaker is open: how long until a probe is let through.
    pub next_probe: Option<Duration>,
    /// Its rate limit, when it has one.
    pub rate_limit: Option<RateLimit>,
    /// The admissions its rate limit would grant back to back now (an estimate, read
    /// without taking one; see [`Limiter::available`](crate::ratelimit::Limiter::available)).
    pub tokens: Option<u32>,
}

impl TaskSystem {
    /// Every registered kind's breaker and rate limit, sorted by kind.
    pub fn kind_gates(&self) -> Vec<KindGates> {
        let now = Instant::now();
        let mut out: Vec<KindGates> = self
            .shared
            .handlers
            .iter()
            .map(|(kind, e)| KindGates {
                kind: kind.clone(),
                breaker: e.breaker.as_ref().map(|b| b.state()),
                next_probe: e
                    .breaker
                    .as_ref()
                    .and_then(|b| b.probe_at())
                    .map(|t| t.saturating_duration_since(now)),
                rate_limit: e.limiter.as_ref().map(|l| l.limit()),
                tokens: e.limiter.as_ref().map(|l| l.available()),
            })
            .collect();
        out.sort_by(|a, b| a.kind.cmp(&b.kind));
        out
    }
}
