//! Conformance checks of cluster-wide breakers, for stores several processes share (a
//! shared memory store, PostgreSQL).

use std::time::Duration;

use super::Harness;
use crate::breaker::BreakerState;
use crate::store::prelude::*;
use crate::store::{BreakerWrite, NodeInfo, Owner, ProbeOutcome, SharedBreaker};

const COOLDOWN: Duration = Duration::from_secs(60);
/// Run out by the next call (a cooldown or claim of zero).
const GONE: Duration = Duration::ZERO;

/// Runs every breaker check; panics on the first failure.
pub(crate) async fn run_breakers<H: Harness>(h: &mut H) {
    a_trip_opens_a_closed_breaker_once(h).await;
    one_node_claims_the_probe_and_only_after_the_cooldown(h).await;
    the_probes_holder_alone_ends_it(h).await;
    a_failed_probe_reopens_and_a_neutral_one_frees_the_probe(h).await;
    a_probe_whose_claim_ran_out_goes_to_another_node(h).await;
    a_dead_holders_probes_are_freed_at_once(h).await;
}

async fn owner<S: Store>(s: &S, name: &str) -> Owner {
    let info = NodeInfo {
        name: name.into(),
        ..NodeInfo::default()
    };
    s.register(info).await.unwrap()
}

async fn trip<S: Store>(s: &S, cooldown: Duration) -> SharedBreaker {
    let write = BreakerWrite::Trip { cooldown };
    s.write_breaker("k".into(), write).await.unwrap()
}

async fn probe<S: Store>(s: &S, seen: &SharedBreaker, holder: &Owner) -> SharedBreaker {
    let write = BreakerWrite::Probe {
        version: seen.version,
        holder: holder.clone(),
        deadline: COOLDOWN,
    };
    s.write_breaker("k".into(), write).await.unwrap()
}

async fn end<S: Store>(
    s: &S,
    claim: &SharedBreaker,
    holder: &Owner,
    outcome: ProbeOutcome,
) -> SharedBreaker {
    let write = BreakerWrite::EndProbe {
        version: claim.version,
        holder: holder.clone(),
        outcome,
    };
    s.write_breaker("k".into(), write).await.unwrap()
}

/// A breaker tripped with a cooldown already over, and its probe claimed by `holder`.
async fn probing<S: Store>(s: &S, holder: &Owner) -> SharedBreaker {
    let open = trip(s, GONE).await;
    let claim = probe(s, &open, holder).await;
    assert_eq!(
        (claim.state, claim.probe.as_ref()),
        (BreakerState::HalfOpen, Some(holder))
    );
    claim
}

async fn a_trip_opens_a_closed_breaker_once<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    assert_eq!(s.breakers().await.unwrap(), vec![], "never written");
    let open = trip(&s, COOLDOWN).await;
    assert_eq!((open.state, open.version), (BreakerState::Open, 1));
    assert!(
        open.remaining > COOLDOWN - Duration::from_secs(5),
        "{open:?}"
    );
    let again = trip(&s, COOLDOWN * 2).await;
    assert_eq!(
        (again.state, again.version),
        (BreakerState::Open, 1),
        "an open breaker is left as it is"
    );
    assert!(again.remaining <= COOLDOWN, "not extended: {again:?}");
    assert_eq!(s.breakers().await.unwrap().len(), 1);
    assert_eq!(s.breakers().await.unwrap()[0].name, "k");
}

async fn one_node_claims_the_probe_and_only_after_the_cooldown<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (owner(&s, "a").await, owner(&s, "b").await);
    let open = trip(&s, COOLDOWN).await;
    let early = probe(&s, &open, &a).await;
    assert_eq!(
        early,
        SharedBreaker {
            remaining: early.remaining,
            ..open
        },
        "too early"
    );
    let s = h.fresh().await;
    let open = trip(&s, GONE).await;
    let claim = probe(&s, &open, &a).await;
    assert_eq!(
        (claim.state, claim.version, claim.probe.as_ref()),
        (BreakerState::HalfOpen, 2, Some(&a))
    );
    let late = probe(&s, &open, &b).await;
    assert_eq!(
        late.probe.as_ref(),
        Some(&a),
        "the same version: one claim wins"
    );
    let second = probe(&s, &claim, &b).await;
    assert_eq!(
        (second.version, second.probe.as_ref()),
        (2, Some(&a)),
        "a claim in time is not taken"
    );
    assert_eq!(
        trip(&s, COOLDOWN).await.version,
        2,
        "a trip leaves a probe alone"
    );
}

async fn the_probes_holder_alone_ends_it<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (owner(&s, "a").await, owner(&s, "b").await);
    let claim = probing(&s, &a).await;
    let other = end(&s, &claim, &b, ProbeOutcome::Succeeded).await;
    assert_eq!(other.state, BreakerState::HalfOpen, "not its probe");
    let closed = end(&s, &claim, &a, ProbeOutcome::Succeeded).await;
    assert_eq!(
        (closed.state, closed.version, closed.probe),
        (BreakerState::Closed, claim.version + 1, None)
    );
    let twice = end(&s, &claim, &a, ProbeOutcome::Failed(COOLDOWN)).await;
    assert_eq!(twice.state, BreakerState::Closed, "a claim ends once");
    let reopened = trip(&s, COOLDOWN).await;
    assert_eq!(
        (reopened.state, reopened.version),
        (BreakerState::Open, closed.version + 1)
    );
}

async fn a_failed_probe_reopens_and_a_neutral_one_frees_the_probe<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (owner(&s, "a").await, owner(&s, "b").await);
    let claim = probing(&s, &a).await;
    let failed = end(&s, &claim, &a, ProbeOutcome::Failed(COOLDOWN)).await;
    assert_eq!((failed.state, &failed.probe), (BreakerState::Open, &None));
    assert!(
        failed.remaining > COOLDOWN - Duration::from_secs(5),
        "{failed:?}"
    );
    assert_eq!(
        probe(&s, &failed, &b).await.state,
        BreakerState::Open,
        "cooling down"
    );
    let s = h.fresh().await;
    let claim = probing(&s, &a).await;
    let freed = end(&s, &claim, &a, ProbeOutcome::Neutral).await;
    assert_eq!(
        (freed.state, freed.remaining),
        (BreakerState::Open, Duration::ZERO)
    );
    let next = probe(&s, &freed, &b).await;
    assert_eq!(next.probe.as_ref(), Some(&b), "the probe is free at once");
}

async fn a_probe_whose_claim_ran_out_goes_to_another_node<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (owner(&s, "a").await, owner(&s, "b").await);
    let open = trip(&s, GONE).await;
    let short = BreakerWrite::Probe {
        version: open.version,
        holder: a.clone(),
        deadline: GONE,
    };
    let claim = s.write_breaker("k".into(), short).await.unwrap();
    assert_eq!(claim.probe.as_ref(), Some(&a));
    let taken = probe(&s, &claim, &b).await;
    assert_eq!(
        (taken.state, taken.probe.as_ref()),
        (BreakerState::HalfOpen, Some(&b))
    );
    let stale = end(&s, &claim, &a, ProbeOutcome::Succeeded).await;
    assert_eq!(
        stale.probe.as_ref(),
        Some(&b),
        "the first holder's end is fenced"
    );
}

async fn a_dead_holders_probes_are_freed_at_once<H: Harness>(h: &mut H) {
    let s = h.fresh().await;
    let (a, b) = (owner(&s, "a").await, owner(&s, "b").await);
    let claim = probing(&s, &a).await;
    assert_eq!(s.free_probes(b.clone()).await.unwrap(), 0, "b holds none");
    assert_eq!(s.free_probes(a.clone()).await.unwrap(), 1);
    let freed = s.breakers().await.unwrap().remove(0);
    assert_eq!(
        (freed.state, freed.remaining, freed.probe.clone()),
        (BreakerState::Open, Duration::ZERO, None)
    );
    assert!(freed.version > claim.version);
    let next = probe(&s, &freed, &b).await;
    assert_eq!(
        next.probe.as_ref(),
        Some(&b),
        "claimed at once, long before its deadline"
    );
    assert_eq!(s.free_probes(a).await.unwrap(), 0, "nothing left to free");
}
