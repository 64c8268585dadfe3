//! What a supervisor supervises and how: child specs, restart strategy, restart intensity.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{ActorCell, SpawnErr};

use crate::task::Backoff;

/// Which children are restarted when one of them has to be restarted.
///
/// - [`OneForOne`](Strategy::OneForOne) when the children are independent.
/// - [`OneForAll`](Strategy::OneForAll) when every child depends on every other one.
/// - [`RestForOne`](Strategy::RestForOne) when each child depends on those started before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Restart only the child that exited.
    #[default]
    OneForOne,
    /// Stop every other child (in reverse start order), then restart all in start order.
    OneForAll,
    /// Stop the children started after the one that exited (in reverse start order), then
    /// restart it and them in start order.
    RestForOne,
}

/// When a child that exited is restarted (Erlang/OTP semantics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Always restarted, whether it failed or exited normally.
    #[default]
    Permanent,
    /// Restarted only after a failure; a normal exit removes it.
    Transient,
    /// Never restarted; any exit removes it, as does being stopped for a sibling's restart.
    Temporary,
}

/// How many restarts a supervisor tolerates before it gives up and fails itself, and how
/// long it waits before each restart.
///
/// More than `max_restarts` restarts within `within` escalate: the supervisor stops all its
/// children and fails, so its own parent decides what to do. The delay before the n-th
/// restart within the window is `backoff.ceiling(n)` (deterministic, no jitter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intensity {
    /// The most restarts allowed within `within`.
    pub max_restarts: u32,
    /// The sliding window the restarts are counted in.
    pub within: Duration,
    /// The delay before each restart.
    pub backoff: Backoff,
}

impl Default for Intensity {
    /// 3 restarts within 60 s; delays from 10 ms doubling up to 1 s.
    fn default() -> Self {
        Self {
            max_restarts: 3,
            within: Duration::from_secs(60),
            backoff: Backoff::new(Duration::from_millis(10), Duration::from_secs(1)),
        }
    }
}

impl Intensity {
    /// At most `max_restarts` restarts within `within`, with the default backoff.
    pub fn new(max_restarts: u32, within: Duration) -> Self {
        Self {
            max_restarts,
            within,
            ..Self::default()
        }
    }

    /// Replaces the backoff between restarts.
    #[must_use]
    pub fn backoff(self, backoff: Backoff) -> Self {
        Self { backoff, ..self }
    }
}

/// Starts one child: receives the supervisor's cell, spawns the child linked to it
/// (`Actor::spawn_linked(name, actor, args, supervisor)`) and returns the child's cell.
pub type StartFn =
    Arc<dyn Fn(ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>> + Send + Sync>;

/// One supervised child: its id, when to restart it, how long it may take to stop, and how
/// to start it.
#[derive(Clone)]
#[must_use]
pub struct ChildSpec {
    pub(crate) id: String,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Duration,
    pub(crate) start: StartFn,
}

impl ChildSpec {
    /// A permanent child named `id` (unique within its supervisor), stopped within 5 s.
    ///
    /// `start` must spawn the child linked to the cell it is given, or the supervisor never
    /// hears of its exit.
    pub fn new(
        id: impl Into<String>,
        start: impl Fn(ActorCell) -> BoxFuture<'static, Result<ActorCell, SpawnErr>>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self {
            id: id.into(),
            restart: Restart::default(),
            shutdown: Duration::from_secs(5),
            start: Arc::new(start),
        }
    }

    /// Sets when the child is restarted.
    pub fn restart(self, restart: Restart) -> Self {
        Self { restart, ..self }
    }

    /// Sets how long a graceful stop may take before the child is killed.
    pub fn shutdown(self, shutdown: Duration) -> Self {
        Self { shutdown, ..self }
    }

    /// The child's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

/// A supervisor's strategy, intensity and children (in start order).
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct SupervisorSpec {
    pub(crate) strategy: Strategy,
    pub(crate) intensity: Intensity,
    pub(crate) children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    /// A spec with `strategy`, the default intensity and no children.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            ..Self::default()
        }
    }

    /// Sets the restart intensity and backoff.
    pub fn intensity(self, intensity: Intensity) -> Self {
        Self { intensity, ..self }
    }

    /// Appends a child; children start in the order they are added.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }
}
