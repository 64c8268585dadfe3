//! A circuit breaker per task kind: after enough consecutive failures, tasks of that kind
//! stop running for a cooldown, then a single probe decides whether to resume.
//!
//! Tasks held back by an open breaker wait; they are not failed. Time is passed in, so the
//! breaker is pure logic and tests use explicit instants.
//!
//! A breaker of [`Scope::Cluster`] is, on each node, a mirror of one record in the shared
//! store (the `Breakers` store trait): a node counts its own consecutive failures and,
//! at the threshold, trips the shared record; every node applies each newer version of it
//! ([`CircuitBreaker::mirror`]), so all open within one poll; the probe is claimed in the
//! store, so it runs on one node. [`CircuitBreaker::record`] says what the store must
//! learn after an attempt.

use std::fmt;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

pub use crate::scope::Scope;

/// The longest a task waits behind a probe in flight before asking again.
const PROBE_RECHECK: Duration = Duration::from_secs(1);

/// When a breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker. Default 5; 0 behaves like 1.
    pub failure_threshold: u32,
    /// How long the breaker stays open before a probe is let through. Default 30 s.
    #[serde(with = "crate::task::millis", rename = "cooldown_ms")]
    pub cooldown: Duration,
    /// On each node by itself (default), or across the cluster: opens on every node,
    /// probes on one.
    #[serde(default)]
    pub scope: Scope,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown: Duration::from_secs(30),
            scope: Scope::Node,
        }
    }
}

impl BreakerConfig {
    /// The same breaker, shared by every node of the cluster.
    pub fn cluster_wide(self) -> Self {
        Self {
            scope: Scope::Cluster,
            ..self
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

/// The phase, and for a cluster-wide breaker what the node knows of the shared record.
#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// The version of the shared record last applied.
    version: u64,
    /// This node handed out the probe and has not yet recorded its end.
    probing_here: bool,
}

/// How an attempt of a gated kind ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It succeeded.
    Succeeded,
    /// It failed.
    Failed,
    /// Neither (cancelled, snoozed, or it never ran).
    Neutral,
}

/// What the shared store must learn after an attempt of a cluster-wide breaker's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Report {
    /// This node's failures reached the threshold: open the shared breaker.
    Trip,
    /// The probe this node claimed ended so.
    EndProbe(Ended),
}

/// The shared record of a cluster-wide breaker as a node read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Its version; older versions than the one applied are ignored.
    pub version: u64,
    /// Its state.
    pub state: BreakerState,
    /// Open: until a probe may be claimed. Half-open: until the probe's claim runs out.
    pub remaining: Duration,
}

/// A thread-safe circuit breaker; share it with `Arc`.
///
/// Outcomes carry no token, so on a node-wide breaker any success closes it and any
/// failure while half-open reopens it, whichever attempt reports it. On a cluster-wide
/// one only the probe's outcome moves it out of open or half-open.
#[derive(Debug)]
pub struct CircuitBreaker {
    cfg: BreakerConfig,
    inner: Mutex<Inner>,
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
            inner: Mutex::new(Inner {
                phase: Phase::Closed { failures: 0 },
                version: 0,
                probing_here: false,
            }),
        }
    }

    /// Its settings.
    pub fn config(&self) -> BreakerConfig {
        self.cfg
    }

    /// Decides whether a task may run at `now`. Returning [`Admission::Probe`] reserves
    /// the probe slot until the attempt's outcome is recorded.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut inner = self.inner.lock();
        match inner.phase {
            Phase::Closed { .. } => Admission::Allowed,
            Phase::Open { until } if now < until => Admission::Wait(until),
            Phase::HalfOpen { probing: true } => {
                Admission::Wait(now + self.cfg.cooldown.min(PROBE_RECHECK))
            }
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => {
                inner.phase = Phase::HalfOpen { probing: true };
                inner.probing_here = true;
                Admission::Probe
            }
        }
    }

    /// An attempt succeeded: the breaker closes and the failure count resets.
    pub fn record_success(&self) {
        let mut inner = self.inner.lock();
        inner.phase = Phase::Closed { failures: 0 };
        inner.probing_here = false;
    }

    /// An attempt failed at `now`. Opens the breaker on the threshold-th consecutive
    /// failure, or again when half-open. A late failure while open changes nothing.
    pub fn record_failure(&self, now: Instant) {
        let mut inner = self.inner.lock();
        let open = Phase::Open {
            until: now + self.cfg.cooldown,
        };
        inner.phase = match inner.phase {
            Phase::Closed { failures } if failures + 1 >= self.cfg.failure_threshold => open,
            Phase::Closed { failures } => Phase::Closed {
                failures: failures + 1,
            },
            Phase::HalfOpen { .. } => open,
            Phase::Open { until } => Phase::Open { until },
        };
        inner.probing_here = false;
    }

    /// An attempt ended neither in success nor failure (cancelled or snoozed). If it was
    /// the probe, the probe slot is freed for the next task.
    pub fn record_neutral(&self) {
        let mut inner = self.inner.lock();
        if let Phase::HalfOpen { probing: true } = inner.phase {
            inner.phase = Phase::HalfOpen { probing: false };
        }
        inner.probing_here = false;
    }

    /// Records how an attempt ended (`probe`: it was admitted as the probe) and, for a
    /// cluster-wide breaker, says what the shared store must learn. A node-wide breaker
    /// never reports. A cluster-wide breaker's other attempts only count failures while
    /// closed: opening, closing and the probe are the shared record's.
    pub fn record(&self, ended: Ended, probe: bool, now: Instant) -> Option<Report> {
        if self.cfg.scope == Scope::Node || probe {
            match ended {
                Ended::Succeeded => self.record_success(),
                Ended::Failed => self.record_failure(now),
                Ended::Neutral => self.record_neutral(),
            }
            let shared = self.cfg.scope == Scope::Cluster;
            return shared.then_some(Report::EndProbe(ended));
        }
        let mut inner = self.inner.lock();
        let Phase::Closed { failures } = inner.phase else {
            return None;
        };
        match ended {
            Ended::Succeeded => inner.phase = Phase::Closed { failures: 0 },
            Ended::Failed if failures + 1 >= self.cfg.failure_threshold => {
                inner.phase = Phase::Open {
                    until: now + self.cfg.cooldown,
                };
                return Some(Report::Trip);
            }
            Ended::Failed => {
                inner.phase = Phase::Closed {
                    failures: failures + 1,
                }
            }
            Ended::Neutral => {}
        }
        None
    }

    /// Applies the shared record as read at `now`, if it is newer than the one last
    /// applied (or the same one, half-open with its probe's claim run out while no probe
    /// runs here: the probe is free to claim). While closed, the local failure count stays.
    pub fn mirror(&self, seen: Seen, now: Instant) {
        let mut inner = self.inner.lock();
        let claim_over =
            seen.state == BreakerState::HalfOpen && seen.remaining.is_zero() && !inner.probing_here;
        if seen.version > inner.version || (seen.version == inner.version && claim_over) {
            apply(&mut inner, seen, now);
        }
    }

    /// This node's claim of the probe did not win (another node's claim, or the store's
    /// cooldown not yet over by its clock): the probe slot is given back and the record
    /// the store returned is applied, even at the version already applied. Without a
    /// record (the store did not answer), the breaker stays open for a probe's recheck.
    pub fn claim_lost(&self, seen: Option<Seen>, now: Instant) {
        let mut inner = self.inner.lock();
        inner.probing_here = false;
        match seen {
            Some(seen) if seen.version >= inner.version => apply(&mut inner, seen, now),
            Some(_) => {}
            None => {
                inner.phase = Phase::Open {
                    until: now + self.cfg.cooldown.min(PROBE_RECHECK),
                }
            }
        }
    }

    /// The version of the shared record last applied (0 before any).
    pub fn version(&self) -> u64 {
        self.inner.lock().version
    }

    /// While open: the instant from which the next probe is let through.
    pub fn probe_at(&self) -> Option<Instant> {
        match self.inner.lock().phase {
            Phase::Open { until } => Some(until),
            _ => None,
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        match self.inner.lock().phase {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// Takes the shared record's state; a half-open record whose claim ran out (with no probe
/// running here) lets the next task claim the probe.
fn apply(inner: &mut Inner, seen: Seen, now: Instant) {
    let claim_over = seen.remaining.is_zero() && !inner.probing_here;
    inner.version = seen.version;
    inner.phase = match (seen.state, inner.phase) {
        (BreakerState::Closed, Phase::Closed { failures }) => Phase::Closed { failures },
        (BreakerState::Closed, _) => Phase::Closed { failures: 0 },
        (BreakerState::Open, _) => Phase::Open {
            until: now + seen.remaining,
        },
        (BreakerState::HalfOpen, _) if claim_over => Phase::Open { until: now },
        (BreakerState::HalfOpen, _) => Phase::HalfOpen { probing: true },
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_secs(10);

    fn breaker(threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: threshold,
            cooldown: COOLDOWN,
            ..BreakerConfig::default()
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
            ..BreakerConfig::default()
        });
        b.record_failure(t0);
        let end = t0 + Duration::from_millis(200);
        assert_eq!(b.admit(end), Admission::Probe);
        assert_eq!(
            b.admit(end),
            Admission::Wait(end + Duration::from_millis(200))
        );
    }

    fn shared(threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(
            BreakerConfig {
                failure_threshold: threshold,
                cooldown: COOLDOWN,
                ..BreakerConfig::default()
            }
            .cluster_wide(),
        )
    }

    fn seen(version: u64, state: BreakerState, remaining: Duration) -> Seen {
        Seen {
            version,
            state,
            remaining,
        }
    }

    #[test]
    fn a_cluster_wide_breaker_reports_a_trip_at_its_own_threshold() {
        let (t0, b) = (Instant::now(), shared(2));
        assert_eq!(b.record(Ended::Failed, false, t0), None);
        assert_eq!(b.record(Ended::Failed, false, t0), Some(Report::Trip));
        assert_eq!(b.state(), BreakerState::Open, "open here at once");
        assert_eq!(b.record(Ended::Failed, false, t0), None, "one trip");
    }

    #[test]
    fn a_node_wide_breaker_never_reports() {
        let (t0, b) = (Instant::now(), breaker(1));
        assert_eq!(b.record(Ended::Failed, false, t0), None);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(t0 + COOLDOWN), Admission::Probe);
        assert_eq!(b.record(Ended::Succeeded, true, t0 + COOLDOWN), None);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn only_the_probe_moves_a_cluster_wide_breaker_out_of_open() {
        let (t0, b) = (Instant::now(), shared(3));
        b.mirror(seen(1, BreakerState::Open, COOLDOWN), t0);
        assert_eq!(b.record(Ended::Succeeded, false, t0), None);
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a late success is not the probe"
        );
        assert_eq!(b.admit(t0 + COOLDOWN), Admission::Probe);
        let end = b.record(Ended::Succeeded, true, t0 + COOLDOWN);
        assert_eq!(end, Some(Report::EndProbe(Ended::Succeeded)));
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_newer_shared_record_is_applied_and_an_older_one_ignored() {
        let (t0, b) = (Instant::now(), shared(3));
        b.mirror(seen(2, BreakerState::Open, COOLDOWN), t0);
        assert_eq!((b.state(), b.version()), (BreakerState::Open, 2));
        assert_eq!(b.admit(t0), Admission::Wait(t0 + COOLDOWN));
        b.mirror(seen(1, BreakerState::Closed, Duration::ZERO), t0);
        assert_eq!(b.state(), BreakerState::Open, "older: ignored");
        b.mirror(seen(3, BreakerState::HalfOpen, COOLDOWN), t0);
        assert_eq!(b.state(), BreakerState::HalfOpen, "another node probes");
        assert!(matches!(b.admit(t0), Admission::Wait(_)));
        b.mirror(seen(4, BreakerState::Closed, Duration::ZERO), t0);
        assert_eq!(b.admit(t0), Admission::Allowed, "its probe closed it");
    }

    #[test]
    fn a_closed_record_keeps_the_local_failure_count() {
        let (t0, b) = (Instant::now(), shared(2));
        assert_eq!(b.record(Ended::Failed, false, t0), None);
        b.mirror(seen(4, BreakerState::Closed, Duration::ZERO), t0);
        assert_eq!(b.record(Ended::Failed, false, t0), Some(Report::Trip));
    }

    #[test]
    fn a_probe_claim_that_ran_out_elsewhere_frees_the_probe_here() {
        let (t0, b) = (Instant::now(), shared(3));
        b.mirror(seen(3, BreakerState::HalfOpen, COOLDOWN), t0);
        assert!(matches!(b.admit(t0), Admission::Wait(_)));
        b.mirror(seen(3, BreakerState::HalfOpen, Duration::ZERO), t0);
        assert_eq!(
            b.admit(t0),
            Admission::Probe,
            "the dead holder's claim ran out"
        );
        b.mirror(seen(3, BreakerState::HalfOpen, Duration::ZERO), t0);
        assert!(
            matches!(b.admit(t0), Admission::Wait(_)),
            "while this node claims, the same record does not hand out a second probe"
        );
    }

    #[test]
    fn a_lost_claim_gives_the_probe_back_and_takes_the_stores_record() {
        let (t0, b) = (Instant::now(), shared(3));
        b.mirror(seen(1, BreakerState::Open, Duration::ZERO), t0);
        assert_eq!(b.admit(t0), Admission::Probe);
        let early = Duration::from_millis(5);
        b.claim_lost(Some(seen(1, BreakerState::Open, early)), t0);
        assert_eq!(
            b.admit(t0),
            Admission::Wait(t0 + early),
            "the store's cooldown"
        );
        assert_eq!(b.admit(t0 + early), Admission::Probe);
        b.claim_lost(None, t0 + early);
        let recheck = t0 + early + Duration::from_secs(1);
        assert_eq!(b.admit(t0 + early), Admission::Wait(recheck), "no answer");
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
