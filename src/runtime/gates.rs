//! Cluster-wide circuit breakers on this node: the worker claims the probe in the store
//! and reports trips and probe ends; the coordinator mirrors every shared record on each
//! poll. A breaker of node scope, or any breaker on a store only this process uses,
//! never touches the store.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{HandlerEntry, Shared};
use crate::breaker::{CircuitBreaker, Ended, Report, Scope, Seen};
use crate::store::{BreakerWrite, Owner, ProbeOutcome, SharedBreaker, Store};

/// What a node mirrors of a shared record.
fn seen(b: &SharedBreaker) -> Seen {
    Seen {
        version: b.version,
        state: b.state,
        remaining: b.remaining,
    }
}

/// The shared store and this process's name in it, if `breaker` holds across the cluster.
fn cluster<'a>(
    shared: &'a Shared,
    breaker: &CircuitBreaker,
) -> Option<(&'a Arc<dyn Store>, Owner)> {
    if breaker.config().scope != Scope::Cluster {
        return None;
    }
    let store = shared.journal.store().filter(|s| s.shared())?;
    Some((store, shared.journal.owner()?))
}

/// The longest a worker waits for the store to take a trip, a claim or a probe's end.
fn deadline(shared: &Shared) -> Duration {
    shared.coord.store_deadline()
}

/// Claims the probe of `entry`'s breaker, which let this node's task through as the probe.
/// True if the task runs: the claim won, or the breaker is this node's own. The claim
/// holds for `holds` (the attempt's timeout and grace): a node that dies frees it then.
pub(crate) async fn claim_probe(shared: &Shared, entry: &HandlerEntry, holds: Duration) -> bool {
    let Some(breaker) = &entry.breaker else {
        return true;
    };
    let Some((store, owner)) = cluster(shared, breaker) else {
        return true;
    };
    let version = breaker.version();
    let write = BreakerWrite::Probe {
        version,
        holder: owner.clone(),
        deadline: holds,
    };
    let claimed = tokio::time::timeout(
        deadline(shared),
        store.write_breaker(entry.kind.to_string(), write),
    );
    let now = Instant::now();
    match claimed.await {
        Ok(Ok(b)) if b.version == version + 1 && b.probe.as_ref() == Some(&owner) => {
            breaker.mirror(seen(&b), now);
            true
        }
        Ok(Ok(b)) => {
            breaker.claim_lost(Some(seen(&b)), now);
            false
        }
        Ok(Err(e)) => {
            tracing::warn!(kind = %entry.kind, error = %e, "could not claim the breaker's probe");
            breaker.claim_lost(None, now);
            false
        }
        Err(_) => {
            tracing::warn!(kind = %entry.kind, "claiming the breaker's probe took too long");
            breaker.claim_lost(None, now);
            false
        }
    }
}

/// Records how an attempt of `entry`'s kind ended (`probe`: it ran as the probe) and, for
/// a cluster-wide breaker, writes what the store must learn: a trip, or the probe's end.
pub(crate) async fn report(shared: &Shared, entry: &HandlerEntry, ended: Ended, probe: bool) {
    let Some(breaker) = &entry.breaker else {
        return;
    };
    let Some(report) = breaker.record(ended, probe, Instant::now()) else {
        return;
    };
    let Some((store, owner)) = cluster(shared, breaker) else {
        return;
    };
    let cooldown = breaker.config().cooldown;
    let write = match report {
        Report::Trip => BreakerWrite::Trip { cooldown },
        Report::EndProbe(ended) => BreakerWrite::EndProbe {
            version: breaker.version(),
            holder: owner,
            outcome: match ended {
                Ended::Succeeded => ProbeOutcome::Succeeded,
                Ended::Failed => ProbeOutcome::Failed(cooldown),
                Ended::Neutral => ProbeOutcome::Neutral,
            },
        },
    };
    let written = tokio::time::timeout(
        deadline(shared),
        store.write_breaker(entry.kind.to_string(), write),
    );
    match written.await {
        Ok(Ok(b)) => {
            if report == Report::Trip && b.state == crate::breaker::BreakerState::Open {
                tracing::warn!(kind = %entry.kind, version = b.version, "circuit breaker open across the cluster");
            }
            breaker.mirror(seen(&b), Instant::now());
        }
        // The node keeps its own view; the record catches up at the next write or poll
        // (a probe's claim that is never ended runs out at its deadline).
        Ok(Err(e)) => {
            tracing::warn!(kind = %entry.kind, error = %e, "could not write the shared breaker")
        }
        Err(_) => tracing::warn!(kind = %entry.kind, "writing the shared breaker took too long"),
    }
}

/// Reads every shared breaker and mirrors those of this node's cluster-wide kinds.
pub(crate) async fn mirror_all(shared: &Shared) {
    let mirrored: Vec<&HandlerEntry> = shared
        .handlers
        .values()
        .filter(|e| {
            e.breaker
                .as_ref()
                .is_some_and(|b| cluster(shared, b).is_some())
        })
        .collect();
    if mirrored.is_empty() {
        return;
    }
    let Some(store) = shared.journal.store() else {
        return;
    };
    let read = tokio::time::timeout(deadline(shared), store.breakers()).await;
    let records = match read {
        Ok(Ok(records)) => records,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not read the shared breakers");
            return;
        }
        Err(_) => {
            tracing::warn!("reading the shared breakers took too long");
            return;
        }
    };
    let now = Instant::now();
    for record in &records {
        let entry = mirrored.iter().find(|e| *e.kind == *record.name);
        if let Some(breaker) = entry.and_then(|e| e.breaker.as_ref()) {
            breaker.mirror(seen(record), now);
        }
    }
}
