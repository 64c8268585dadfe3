//! Configuring and starting a task system.

use foldhash::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::handle::TaskSystem;
use super::recover::recover;
use super::tree;
use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::cron::CronShared;
use crate::error::{SystemError, ValidationError};
use crate::handler::{ErasedHandler, Handler};
use crate::queue::QueueConfig;
use crate::ratelimit::{Limiter, RateLimit};
use crate::registry::Namespace;
use crate::runtime::journal::Journal;
use crate::runtime::CoordConfig;
use crate::runtime::{HandlerEntry, Housekeeping, QueueShared, Shared, TaskTable};
use crate::scheduler::lease::SharedLeader;
use crate::scheduler::{Clock, Leadership, LeaseConfig, LeaseLeader, SingleNode, SystemClock};
use crate::store::Store;
use crate::task::Limits;

/// Per-kind gates for a handler.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[must_use]
pub struct HandlerOptions {
    /// Opens after consecutive failures; the kind's tasks then wait for a probe.
    pub breaker: Option<BreakerConfig>,
    /// Attempts of this kind started per second.
    pub rate_limit: Option<RateLimit>,
}

impl HandlerOptions {
    /// Adds a circuit breaker.
    pub fn breaker(mut self, cfg: BreakerConfig) -> Self {
        self.breaker = Some(cfg);
        self
    }
    /// Adds a rate limit.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }
}

/// Builds a [`TaskSystem`]. Every setting has a default except the handlers.
#[must_use]
pub struct TaskSystemBuilder {
    namespace: String,
    queues: Vec<QueueConfig>,
    handlers: Vec<(&'static str, Arc<dyn ErasedHandler>, HandlerOptions)>,
    /// Gates set by configuration, applied over the handlers' own at start.
    kind_options: Vec<crate::config::KindConfig>,
    limits: Limits,
    cancel_grace: Duration,
    retention: Duration,
    retention_max: usize,
    store: Option<Arc<dyn Store>>,
    housekeeping: Housekeeping,
    clock: Arc<dyn Clock>,
    /// Set by the caller; unset, a shared store gets the lease leader, a single node
    /// always leads.
    leadership: Option<Arc<dyn Leadership>>,
    cron_lease: LeaseConfig,
    node: Option<String>,
    address: Option<String>,
    dead_after: Duration,
    heartbeat_every: Duration,
    poll_every: Duration,
}

impl Default for TaskSystemBuilder {
    fn default() -> Self {
        Self {
            namespace: "taskmesh".into(),
            queues: Vec::new(),
            handlers: Vec::new(),
            kind_options: Vec::new(),
            limits: Limits::default(),
            cancel_grace: Duration::from_secs(5),
            retention: Duration::from_secs(300),
            retention_max: 100_000,
            store: None,
            housekeeping: Housekeeping {
                keep_ended: Duration::from_secs(7 * 24 * 3600),
                keep_crashes: Duration::from_secs(24 * 3600),
                every: Duration::from_secs(3600),
            },
            clock: Arc::new(SystemClock),
            node: None,
            address: None,
            dead_after: Duration::from_secs(15),
            heartbeat_every: Duration::from_secs(2),
            poll_every: Duration::from_millis(500),
            leadership: None,
            cron_lease: LeaseConfig::default(),
        }
    }
}

impl TaskSystemBuilder {
    /// The namespace that prefixes every actor name and group (default `taskmesh`). Two
    /// systems in one process need different namespaces.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }
    /// Adds a queue. A queue named `default` exists even if not added.
    pub fn queue(mut self, queue: QueueConfig) -> Self {
        self.queues.push(queue);
        self
    }
    /// Registers a handler for its kind.
    pub fn handler<H: Handler>(self, handler: H) -> Self {
        self.handler_with(handler, HandlerOptions::default())
    }
    /// Registers a handler with a circuit breaker or rate limit.
    pub fn handler_with<H: Handler>(mut self, handler: H, options: HandlerOptions) -> Self {
        self.handlers.push((H::KIND, Arc::new(handler), options));
        self
    }
    /// Bounds on submitted tasks.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// How long a timed-out or cancelled handler gets to wind down before it is aborted
    /// (default 5 s).
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }
    /// How long ended tasks stay queryable, and at most how many (default 5 min, 100,000).
    pub fn retention(mut self, age: Duration, max: usize) -> Self {
        self.retention = age;
        self.retention_max = max;
        self
    }

    /// Takes every setting from `cfg` (handlers are still registered separately).
    pub fn config(mut self, cfg: crate::config::SystemConfig) -> Self {
        self.namespace = cfg.namespace;
        self.queues = cfg.queues;
        self.limits = cfg.limits;
        self.cancel_grace = cfg.cancel_grace;
        self.retention = cfg.retention;
        self.retention_max = cfg.retention_max;
        self.kind_options = cfg.kinds;
        self
    }

    /// Keeps tasks in `store`: submits return once the task is durable, every transition
    /// is journalled, and `start` recovers open tasks. Without a store, tasks live in
    /// memory only.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The clock cron reads slots from (default the system clock; tests use
    /// [`crate::scheduler::TokioClock`] with paused time).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Decides whether this node fires schedules. Default: always on a store only this
    /// process uses; on a store several processes share, the holder of the `cron` lease
    /// (see [`cron_lease`](Self::cron_lease)), whose firing the store checks.
    pub fn leadership(mut self, leadership: impl Leadership) -> Self {
        self.leadership = Some(Arc::new(leadership));
        self
    }

    /// How the `cron` lease is held on a store several processes share (default: lasts
    /// 10 s, renewed every 2 s, trusted until 1 s before it would run out).
    pub fn cron_lease(mut self, config: LeaseConfig) -> Self {
        self.cron_lease = config;
        self
    }

    /// How long the store keeps ended tasks (default 7 days).
    pub fn store_retention(mut self, age: Duration) -> Self {
        self.housekeeping.keep_ended = age;
        self
    }

    /// This process's node name, on a store several processes share (see
    /// [`Coordination`](crate::store::Coordination)). It must be unique among them and
    /// should stay the same across restarts, so that a restarted node rescues its own
    /// earlier tasks at once. Default: `{namespace}@{host}:{pid}`.
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node = Some(name.into());
        self
    }

    /// Where the other nodes of a cluster reach this one (its mesh address), registered
    /// with the node so that peers find it. A node that joins a cluster sets it to the
    /// cluster's advertised address (the cluster module checks that it does); nothing
    /// without a cluster.
    pub fn advertise(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// On a shared store: a process whose heartbeat is older than `dead_after` (store
    /// time) is dead, and its running tasks are rescued; heartbeats are renewed every
    /// `heartbeat_every`; free workers reserve waiting tasks every `poll_every`.
    /// Defaults: 15 s, 2 s, 500 ms.
    pub fn liveness(
        mut self,
        dead_after: Duration,
        heartbeat_every: Duration,
        poll_every: Duration,
    ) -> Self {
        self.dead_after = dead_after;
        self.heartbeat_every = heartbeat_every;
        self.poll_every = poll_every;
        self
    }

    /// How long crash history is kept (default 24 h) and how often the store is swept
    /// (default every hour).
    pub fn crash_history(mut self, keep: Duration, sweep_every: Duration) -> Self {
        self.housekeeping.keep_crashes = keep;
        self.housekeeping.every = sweep_every;
        self
    }

    /// Validates the configuration, recovers open tasks from the store, and starts the
    /// supervision tree.
    pub async fn start(self) -> Result<TaskSystem, SystemError> {
        let (shared, keeper) = self.build()?;
        let shared = Arc::new(shared);
        register(&shared).await?;
        let recovery = recover(&shared).await?;
        if recovery.loaded > 0 || recovery.orphaned > 0 {
            tracing::info!(
                loaded = recovery.loaded,
                interrupted = recovery.interrupted,
                orphaned = recovery.orphaned,
                "recovered tasks from the store"
            );
        }
        let root = tree::start(
            shared.clone(),
            janitor_period(shared.table_retention()),
            keeper,
        )
        .await?;
        kick_timers(&shared);
        Ok(TaskSystem::new(shared, root, recovery))
    }

    fn build(mut self) -> Result<(Shared, Option<Keeper>), ValidationError> {
        let namespace = Namespace::new(&self.namespace)?;
        let (leadership, keeper) = self.leader()?;
        if !self.queues.iter().any(|q| q.name == "default") {
            self.queues.push(QueueConfig::new("default"));
        }
        configure_kinds(&mut self.handlers, &self.kind_options)?;
        let kinds: Vec<&str> = self.handlers.iter().map(|(k, _, _)| *k).collect();
        let queues = build_queues(&self.queues, &kinds)?;
        let handlers = build_handlers(self.handlers, &queues)?;
        let table = TaskTable::new(self.retention, self.retention_max);
        if self.housekeeping.every.is_zero() {
            return Err(ValidationError::new(
                "crash_history",
                "expected a sweep interval above 0 ms, got 0",
            ));
        }
        if self.heartbeat_every.is_zero()
            || self.poll_every.is_zero()
            || self.dead_after <= self.heartbeat_every * 2
        {
            return Err(ValidationError::new(
                "liveness",
                format!(
                    "expected heartbeat and poll intervals above 0 and dead_after above two heartbeats, got dead_after {:?}, heartbeat {:?}, poll {:?}",
                    self.dead_after, self.heartbeat_every, self.poll_every
                ),
            ));
        }
        let coord = CoordConfig {
            node: self.node.unwrap_or_else(|| default_node(&self.namespace)),
            dead_after: self.dead_after,
            heartbeat_every: self.heartbeat_every,
            poll_every: self.poll_every,
            address: self.address,
        };
        let journal = Journal::new(self.store);
        let shared = Shared {
            namespace,
            table,
            handlers,
            queues,
            limits: self.limits,
            grace: self.cancel_grace,
            journal,
            housekeeping: self.housekeeping,
            cron: CronShared {
                book: Default::default(),
                clock: self.clock,
                leadership,
            },
            accepting: AtomicBool::new(true),
            root: std::sync::OnceLock::new(),
            coord,
            peers: std::sync::OnceLock::new(),
            draining: AtomicBool::new(false),
            claiming: parking_lot::RwLock::new(()),
        };
        Ok((shared, keeper))
    }
}

/// The lease keeper a system on a shared store starts: the leader it keeps, and how.
pub(super) type Keeper = (Arc<LeaseLeader>, LeaseConfig);

impl TaskSystemBuilder {
    /// The leadership: the caller's; else, on a shared store, the `cron` lease (with
    /// the keeper to start); else a single node's.
    fn leader(&mut self) -> Result<(Arc<dyn Leadership>, Option<Keeper>), ValidationError> {
        if let Some(leadership) = self.leadership.take() {
            return Ok((leadership, None));
        }
        if !self.store.as_ref().is_some_and(|s| s.shared()) {
            return Ok((Arc::new(SingleNode), None));
        }
        self.cron_lease
            .check()
            .map_err(|why| ValidationError::new("cron_lease", why))?;
        let leader = LeaseLeader::new();
        let leadership = Arc::new(SharedLeader(leader.clone()));
        Ok((leadership, Some((leader, self.cron_lease))))
    }
}

fn build_queues(
    configs: &[QueueConfig],
    kinds: &[&str],
) -> Result<HashMap<String, Arc<QueueShared>>, ValidationError> {
    let mut queues = HashMap::default();
    for q in configs {
        q.validate()?;
        let shared = Arc::new(QueueShared::new(q.clone(), kinds));
        if queues.insert(q.name.clone(), shared).is_some() {
            return Err(ValidationError::new(
                "queue.name",
                format!("queue {:?} is configured twice", q.name),
            ));
        }
    }
    Ok(queues)
}

/// Applies the configured gates over the handlers' own; a kind not registered is an error.
fn configure_kinds(
    handlers: &mut [(&'static str, Arc<dyn ErasedHandler>, HandlerOptions)],
    configured: &[crate::config::KindConfig],
) -> Result<(), ValidationError> {
    for kind in configured {
        let Some((_, _, options)) = handlers.iter_mut().find(|(k, _, _)| *k == kind.name) else {
            let known: Vec<&str> = handlers.iter().map(|(k, _, _)| *k).collect();
            return Err(ValidationError::new(
                "system.kinds.name",
                format!(
                    "kind {:?} is not registered (registered: {})",
                    kind.name,
                    known.join(", ")
                ),
            ));
        };
        if let Some(breaker) = kind.breaker {
            options.breaker = Some(breaker);
        }
        if let Some(limit) = kind.rate_limit {
            options.rate_limit = Some(limit);
        }
    }
    Ok(())
}

fn build_handlers(
    handlers: Vec<(&'static str, Arc<dyn ErasedHandler>, HandlerOptions)>,
    queues: &HashMap<String, Arc<QueueShared>>,
) -> Result<HashMap<String, HandlerEntry>, ValidationError> {
    let mut out = HashMap::default();
    for (kind, handler, options) in handlers {
        let defaults = handler.defaults();
        check_handler(kind, &defaults, queues)?;
        let entry = HandlerEntry {
            kind: kind.into(),
            handler,
            defaults,
            breaker: options.breaker.map(CircuitBreaker::new),
            limiter: options.rate_limit.map(Limiter::new),
        };
        if out.insert(kind.to_string(), entry).is_some() {
            return Err(ValidationError::new(
                "handler",
                format!("kind {kind:?} is registered twice"),
            ));
        }
    }
    Ok(out)
}

fn check_handler(
    kind: &str,
    d: &crate::handler::HandlerDefaults,
    queues: &HashMap<String, Arc<QueueShared>>,
) -> Result<(), ValidationError> {
    if kind.trim().is_empty() {
        return Err(ValidationError::new(
            "handler",
            "a handler's KIND must not be empty",
        ));
    }
    if !queues.contains_key(&d.queue) {
        return Err(ValidationError::new(
            "handler",
            format!(
                "kind {kind:?} uses queue {:?}, which is not configured",
                d.queue
            ),
        ));
    }
    if d.max_attempts == 0 || d.timeout.is_zero() {
        return Err(ValidationError::new(
            "handler",
            format!("kind {kind:?}: expected max_attempts >= 1 and timeout > 0"),
        ));
    }
    Ok(())
}

/// On a shared store, registers this process; its tasks are held under that name.
async fn register(shared: &Shared) -> Result<(), SystemError> {
    let Some(store) = shared.journal.store().filter(|s| s.shared()) else {
        return Ok(());
    };
    let owner = store
        .register(crate::coordinator::node_info(shared))
        .await
        .map_err(SystemError::Store)?;
    tracing::info!(%owner, "registered with the shared store");
    shared.journal.set_owner(owner);
    Ok(())
}

/// How often the runtime is nudged so that its timers keep firing (see [`kick_timers`]).
const KICK_EVERY: Duration = Duration::from_millis(50);

/// On a multi-thread runtime, a handler that blocks its thread (instead of awaiting) may
/// have taken the only runnable task while the other workers sleep without the timer
/// driver: no timer fires (the pool's tick that replaces stuck workers included) until
/// something outside the runtime wakes a worker. A plain thread does that: every
/// [`KICK_EVERY`] it spawns an empty task, which wakes a sleeping worker; that worker
/// then parks on the driver and the timers run. It ends once the system is gone.
fn kick_timers(shared: &Arc<Shared>) {
    let handle = tokio::runtime::Handle::current();
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return;
    }
    let system = Arc::downgrade(shared);
    let spawned = std::thread::Builder::new()
        .name("taskmesh-kick".into())
        .spawn(move || loop {
            std::thread::sleep(KICK_EVERY);
            match system.upgrade() {
                Some(s) if s.tree_alive() => drop(handle.spawn(async {})),
                _ => return,
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the timer kick thread");
    }
}

fn default_node(namespace: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    format!("{namespace}@{host}:{}", std::process::id())
}

fn janitor_period(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_millis(100), Duration::from_secs(10))
}
