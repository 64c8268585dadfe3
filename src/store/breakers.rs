//! Circuit breakers shared by the nodes of a cluster: one record per breaker (a task
//! kind), in store time, that every node mirrors.
//!
//! - A node whose own count of consecutive failures reaches the threshold **trips** the
//!   breaker: a closed record opens until now + cooldown; an open one is left as it is.
//! - Once the cooldown has run out, a node **claims the probe**: the record becomes
//!   half-open, held by that node until a deadline. Only one claim matches the record's
//!   version, so the probe runs on one node only; a holder that dies frees it at the
//!   deadline.
//! - The holder **ends the probe**: closed on success, open for a new cooldown on
//!   failure, open with the probe free at once when the attempt ended otherwise.
//!
//! A rescuer that buries a dead node frees the probes it held (`free_probes`).
//!
//! Every write bumps the record's version; nodes read all records on each poll and
//! ignore one older than what they applied. Only a store several processes share has
//! them: the defaults refuse, saying so.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

use super::{Owner, StoreError};
use crate::breaker::BreakerState;

/// A breaker as the store saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharedBreaker {
    /// Its name: the task kind.
    pub name: String,
    /// Grows with every write; never goes back.
    pub version: u64,
    /// Closed, open, or half-open (a probe claimed).
    pub state: BreakerState,
    /// Open: how long until a probe may be claimed. Half-open: how long until the probe's
    /// claim runs out. By the store's clock at the read; zero once past.
    pub remaining: Duration,
    /// Half-open: the node running the probe.
    pub probe: Option<Owner>,
}

impl SharedBreaker {
    /// A breaker never written: closed, at version 0.
    pub fn closed(name: String) -> Self {
        Self {
            name,
            version: 0,
            state: BreakerState::Closed,
            remaining: Duration::ZERO,
            probe: None,
        }
    }
}

/// A change to a shared breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreakerWrite {
    /// Opens a closed (or never written) breaker for `cooldown`; an open or half-open one
    /// is left as it is.
    Trip {
        /// How long it stays open.
        cooldown: Duration,
    },
    /// Claims the probe if the record is still at `version` and either open with its
    /// cooldown over, or half-open with the last probe's claim run out.
    Probe {
        /// The version the caller saw.
        version: u64,
        /// Who runs the probe.
        holder: Owner,
        /// How long the claim holds (the probe attempt's timeout and grace).
        deadline: Duration,
    },
    /// Ends the probe `holder` claimed at `version`, if the claim still stands.
    EndProbe {
        /// The version of the claim.
        version: u64,
        /// Who ran the probe.
        holder: Owner,
        /// What the probe found.
        outcome: ProbeOutcome,
    },
}

/// How a probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// It succeeded: the breaker closes.
    Succeeded,
    /// It failed: the breaker opens again for this cooldown.
    Failed(Duration),
    /// It ended otherwise (cancelled, snoozed, not started): the probe is free again.
    Neutral,
}

/// Breakers in store time, shared by every node.
pub trait Breakers: Send + Sync + 'static {
    /// Applies `write` to the breaker `name` and returns the record as it stands after
    /// (changed or not: a write that did not match changes nothing).
    fn write_breaker(
        &self,
        name: String,
        write: BreakerWrite,
    ) -> BoxFuture<'static, Result<SharedBreaker, StoreError>> {
        let _ = (name, write);
        Box::pin(async { Err(unshared()) })
    }

    /// Frees every probe `holder` claimed: it was found dead (and removed from the
    /// registry), so its probes will never end. Each such breaker is open with its probe
    /// free at once, and the next node claims it without waiting for the claim to run
    /// out. Returns how many were freed.
    fn free_probes(&self, holder: Owner) -> BoxFuture<'static, Result<u64, StoreError>> {
        let _ = holder;
        Box::pin(async { Ok(0) })
    }

    /// Every breaker ever written, as it stands.
    fn breakers(&self) -> BoxFuture<'static, Result<Vec<SharedBreaker>, StoreError>> {
        Box::pin(async { Err(unshared()) })
    }
}

fn unshared() -> StoreError {
    StoreError::ReadFailed("cluster-wide breakers need a store several processes share".into())
}
