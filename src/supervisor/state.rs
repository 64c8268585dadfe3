//! The supervisor's state and restart policy: which children run, which await a restart,
//! and the restart history that the intensity is measured on.

use std::collections::VecDeque;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use ractor::{ActorCell, ActorRef, RactorErr, SpawnErr};
use tokio::time::Instant;

use super::{ChildInfo, ChildSpec, Intensity, Restart, Strategy, SupervisorError, SupervisorMsg};
use crate::health::{HealthStatus, ServiceHealth};

/// One child's place in the start order. Invariant: a slot holds a running child
/// (`cell`) or awaits a restart (`pending`), never both and never neither.
struct Slot {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    /// The token of the restart timer that will start this child.
    pending: Option<u64>,
    restarts: u32,
}

/// A supervisor's state: its children in start order and its recent restarts.
pub struct SupervisorState {
    label: String,
    strategy: Strategy,
    intensity: Intensity,
    slots: Vec<Slot>,
    history: VecDeque<Instant>,
    next_token: u64,
}

impl SupervisorState {
    /// Starts every child in order. If one fails, stops those already started (in reverse
    /// order) and fails with the child's id.
    pub(super) async fn start(
        label: String,
        spec: super::SupervisorSpec,
        myself: &ActorCell,
    ) -> Result<Self, SupervisorError> {
        check_unique_ids(&spec.children)?;
        let mut state = Self {
            label,
            strategy: spec.strategy,
            intensity: spec.intensity,
            slots: Vec::with_capacity(spec.children.len()),
            history: VecDeque::new(),
            next_token: 0,
        };
        for spec in spec.children {
            match start_child(&spec, myself).await {
                Ok(cell) => state.slots.push(Slot {
                    spec,
                    cell: Some(cell),
                    pending: None,
                    restarts: 0,
                }),
                Err(source) => {
                    tracing::error!(supervisor = %state.label, child = %spec.id, error = %source,
                        "child failed to start; stopping the children already started");
                    state.stop_all().await;
                    return Err(SupervisorError::ChildStart {
                        id: spec.id,
                        source,
                    });
                }
            }
        }
        Ok(state)
    }

    /// The index of the running child `cell`; `None` for a cell the supervisor no longer
    /// tracks (e.g. one it stopped on purpose).
    pub(super) fn position(&self, cell: &ActorCell) -> Option<usize> {
        let id = cell.get_id();
        self.slots
            .iter()
            .position(|s| s.cell.as_ref().is_some_and(|c| c.get_id() == id))
    }

    /// Applies the child's restart type to its exit: restarts it (through the strategy and
    /// intensity) or removes it.
    pub(super) async fn child_exited(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        index: usize,
        failed: bool,
        reason: &str,
    ) -> Result<(), SupervisorError> {
        let slot = &mut self.slots[index];
        slot.cell = None;
        let restart = match slot.spec.restart {
            Restart::Permanent => true,
            Restart::Transient => failed,
            Restart::Temporary => false,
        };
        if !restart {
            tracing::info!(supervisor = %self.label, child = %slot.spec.id, failed, reason,
                "child exited and is not restarted");
            self.slots.remove(index);
            return Ok(());
        }
        tracing::warn!(supervisor = %self.label, child = %slot.spec.id, failed, reason,
            "child exited; scheduling a restart");
        self.restart(myself, index).await
    }

    /// Starts the children awaiting the restart `token`, in start order. A child that fails
    /// to start counts as a new failure.
    pub(super) async fn restart_due(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        token: u64,
    ) -> Result<(), SupervisorError> {
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if slot.pending != Some(token) {
                continue;
            }
            slot.pending = None;
            match start_child(&slot.spec, &myself.get_cell()).await {
                Ok(cell) => {
                    slot.cell = Some(cell);
                    slot.restarts += 1;
                    tracing::info!(supervisor = %self.label, child = %slot.spec.id,
                        restarts = slot.restarts, "child restarted");
                }
                Err(err) => {
                    tracing::warn!(supervisor = %self.label, child = %slot.spec.id,
                        error = %err, "child failed to restart");
                    return self.restart(myself, index).await;
                }
            }
        }
        Ok(())
    }

    /// Stops every running child in reverse start order, one at a time, and cancels the
    /// pending restarts.
    pub(super) async fn stop_all(&mut self) {
        let all = 0..self.slots.len();
        self.stop_range(all, None).await;
        for slot in &mut self.slots {
            slot.pending = None;
        }
    }

    /// Healthy, or degraded while a restart is pending or after a restart in the window.
    pub(super) fn health(&self) -> ServiceHealth {
        let now = Instant::now();
        let recent = self
            .history
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < self.intensity.within)
            .count();
        let pending = self.slots.iter().filter(|s| s.pending.is_some()).count();
        let running = self.slots.iter().filter(|s| s.cell.is_some()).count();
        let status = if recent == 0 && pending == 0 {
            HealthStatus::Healthy
        } else {
            HealthStatus::Degraded
        };
        let detail = format!(
            "{running} of {} children running, {pending} awaiting restart, \
             {recent} restarts in the last {:?}",
            self.slots.len(),
            self.intensity.within
        );
        ServiceHealth::new(format!("supervisor:{}", self.label), status, detail)
    }

    /// The children in start order.
    pub(super) fn children(&self) -> Vec<ChildInfo> {
        self.slots
            .iter()
            .map(|s| ChildInfo {
                id: s.spec.id.clone(),
                restart: s.spec.restart,
                running: s.cell.is_some(),
                restarts: s.restarts,
                cell: s.cell.clone(),
            })
            .collect()
    }

    /// Restarts the child at `index` and, per the strategy, its siblings: checks the
    /// intensity, stops the affected siblings and arms the backoff timer.
    async fn restart(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        index: usize,
    ) -> Result<(), SupervisorError> {
        let restarts = self.record_restart(index).await?;
        let affected = match self.strategy {
            Strategy::OneForOne => index..index + 1,
            Strategy::OneForAll => 0..self.slots.len(),
            Strategy::RestForOne => index..self.slots.len(),
        };
        self.stop_range(affected.clone(), Some(index)).await;
        self.next_token += 1;
        let token = self.next_token;
        for slot in &mut self.slots[affected] {
            if slot.spec.restart != Restart::Temporary {
                slot.pending = Some(token);
            }
        }
        self.slots
            .retain(|s| s.cell.is_some() || s.pending.is_some());
        let delay = self.intensity.backoff.ceiling(restarts);
        tracing::warn!(supervisor = %self.label, strategy = ?self.strategy, restarts,
            ?delay, "restart scheduled");
        myself.send_after(delay, move || SupervisorMsg::RestartDue(token));
        Ok(())
    }

    /// Counts a restart of the child at `index` in the window and returns the restarts in
    /// it; if that exceeds the intensity, stops every child and escalates instead.
    async fn record_restart(&mut self, index: usize) -> Result<u32, SupervisorError> {
        let now = Instant::now();
        let within = self.intensity.within;
        while let Some(oldest) = self.history.front() {
            if now.saturating_duration_since(*oldest) < within {
                break;
            }
            self.history.pop_front();
        }
        let restarts = u32::try_from(self.history.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        if restarts <= self.intensity.max_restarts {
            self.history.push_back(now);
            return Ok(restarts);
        }
        let err = SupervisorError::IntensityExceeded {
            restarts,
            max: self.intensity.max_restarts,
            within,
            id: self.slots[index].spec.id.clone(),
        };
        tracing::error!(supervisor = %self.label, child = %self.slots[index].spec.id,
            error = %err, "escalating: stopping every child and failing the supervisor");
        self.stop_all().await;
        Err(err)
    }

    /// Stops the running children in `range` (except `skip`) in reverse start order.
    async fn stop_range(&mut self, range: Range<usize>, skip: Option<usize>) {
        for index in range.rev().filter(|i| Some(*i) != skip) {
            let slot = &mut self.slots[index];
            if let Some(cell) = slot.cell.take() {
                stop_child(&self.label, &slot.spec, &cell).await;
            }
        }
    }
}

/// Rejects a spec where two children share an id.
fn check_unique_ids(children: &[ChildSpec]) -> Result<(), SupervisorError> {
    for (i, child) in children.iter().enumerate() {
        if children[..i].iter().any(|c| c.id == child.id) {
            return Err(SupervisorError::DuplicateChild(child.id.clone()));
        }
    }
    Ok(())
}

/// Runs the child's start function; a panic in it becomes a start failure.
async fn start_child(spec: &ChildSpec, myself: &ActorCell) -> Result<ActorCell, SpawnErr> {
    let start = spec.start.clone();
    let myself = myself.clone();
    AssertUnwindSafe(async move { start(myself).await })
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(SpawnErr::StartupFailed(
                format!("start function of child {:?} panicked", spec.id).into(),
            ))
        })
}

/// Stops a child gracefully within its shutdown time, killing it if it takes longer.
async fn stop_child(label: &str, spec: &ChildSpec, cell: &ActorCell) {
    let grace = spec.shutdown;
    match cell.stop_and_wait(None, Some(grace)).await {
        Ok(()) => return,
        // The stop port is gone: the child is already stopping; wait for it.
        Err(RactorErr::Messaging(_)) if cell.wait(Some(grace)).await.is_ok() => return,
        Err(_) => {}
    }
    tracing::warn!(supervisor = %label, child = %spec.id, ?grace,
        "child did not stop within its shutdown time; killing it");
    if cell.kill_and_wait(Some(KILL_WAIT)).await.is_err() {
        tracing::error!(supervisor = %label, child = %spec.id, "killed child did not exit");
    }
}

/// How long to wait for a killed child to exit.
const KILL_WAIT: Duration = Duration::from_secs(5);
