//! The memory store's shared breakers. "Store time" is tokio's clock, so tests with
//! paused time can let a cooldown or a probe's claim run out.

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::{Inner, MemoryStore};
use crate::breaker::BreakerState;
use crate::store::{BreakerWrite, Breakers, Owner, ProbeOutcome, SharedBreaker, StoreError};

/// A breaker as kept.
pub(super) struct Kept {
    version: u64,
    phase: Phase,
}

enum Phase {
    Closed,
    Open { until: Instant },
    Probing { holder: Owner, until: Instant },
}

impl Kept {
    fn shared(&self, name: &str, now: Instant) -> SharedBreaker {
        let (state, until, probe) = match &self.phase {
            Phase::Closed => (BreakerState::Closed, now, None),
            Phase::Open { until } => (BreakerState::Open, *until, None),
            Phase::Probing { holder, until } => {
                (BreakerState::HalfOpen, *until, Some(holder.clone()))
            }
        };
        SharedBreaker {
            name: name.to_string(),
            version: self.version,
            state,
            remaining: until.saturating_duration_since(now),
            probe,
        }
    }

    /// The phase `write` leads to, if it applies.
    fn next(&self, write: &BreakerWrite, now: Instant) -> Option<Phase> {
        match (write, &self.phase) {
            (BreakerWrite::Trip { cooldown }, Phase::Closed) => Some(Phase::Open {
                until: now + *cooldown,
            }),
            (BreakerWrite::Trip { .. }, _) => None,
            (BreakerWrite::Probe { version, .. }, _) if *version != self.version => None,
            (
                BreakerWrite::Probe {
                    holder, deadline, ..
                },
                Phase::Open { until } | Phase::Probing { until, .. },
            ) if *until <= now => Some(Phase::Probing {
                holder: holder.clone(),
                until: now + *deadline,
            }),
            (BreakerWrite::Probe { .. }, _) => None,
            (
                BreakerWrite::EndProbe {
                    version,
                    holder,
                    outcome,
                },
                Phase::Probing { holder: h, .. },
            ) if *version == self.version && h == holder => Some(match outcome {
                ProbeOutcome::Succeeded => Phase::Closed,
                ProbeOutcome::Failed(cooldown) => Phase::Open {
                    until: now + *cooldown,
                },
                ProbeOutcome::Neutral => Phase::Open { until: now },
            }),
            (BreakerWrite::EndProbe { .. }, _) => None,
        }
    }
}

impl Inner {
    fn write_breaker(&mut self, name: String, write: BreakerWrite) -> SharedBreaker {
        let now = Instant::now();
        let kept = self.breakers.entry(name.clone()).or_insert(Kept {
            version: 0,
            phase: Phase::Closed,
        });
        if let Some(phase) = kept.next(&write, now) {
            kept.phase = phase;
            kept.version += 1;
        }
        kept.shared(&name, now)
    }
}

impl Breakers for MemoryStore {
    fn write_breaker(
        &self,
        name: String,
        write: BreakerWrite,
    ) -> BoxFuture<'static, Result<SharedBreaker, StoreError>> {
        self.with(|inner| inner.write_breaker(name, write))
    }

    fn free_probes(&self, holder: Owner) -> BoxFuture<'static, Result<u64, StoreError>> {
        self.with(|inner| {
            let now = Instant::now();
            let mut freed = 0;
            for kept in inner.breakers.values_mut() {
                if matches!(&kept.phase, Phase::Probing { holder: h, .. } if *h == holder) {
                    kept.phase = Phase::Open { until: now };
                    kept.version += 1;
                    freed += 1;
                }
            }
            freed
        })
    }

    fn breakers(&self) -> BoxFuture<'static, Result<Vec<SharedBreaker>, StoreError>> {
        self.with(|inner| {
            let now = Instant::now();
            let mut all: Vec<_> = inner
                .breakers
                .iter()
                .map(|(name, kept)| kept.shared(name, now))
                .collect();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            all
        })
    }
}
