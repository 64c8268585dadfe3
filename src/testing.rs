//! Helpers for testing code that uses taskmesh, and for taskmesh's own tests.
//!
//! - [`ScriptHandler`] runs a [`Script`] given as the task's args: succeed, fail, panic,
//!   hang, sleep, snooze, cancel, fail N times then succeed, or wait at a gate. It reports
//!   each start and end on a channel, so tests wait on events instead of sleeping.
//! - [`crash_worker`] injects a worker crash, for supervision tests.
//! - [`run_inline`] runs one handler call without a system.
//! - [`proxy::Proxy`] sits between two processes and passes, black-holes, resets or
//!   delays their bytes, for fault-injection tests.

#[doc(hidden)]
#[cfg(feature = "postgres")]
pub mod pg;
pub mod proxy;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};

use crate::context::TaskContext;
use crate::handler::{Handler, HandlerResult, Outcome};
use crate::runtime::TaskCell;
use crate::system::TaskSystem;
use crate::task::{Backoff, Priority, Task, TaskId, TaskState};

/// What a scripted task does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Script {
    /// Succeed with `value`.
    Ok {
        /// The result.
        #[serde(default)]
        value: serde_json::Value,
    },
    /// Fail (retryable) with `message`.
    Fail {
        /// The error.
        message: String,
    },
    /// Panic with `message`.
    Panic {
        /// The panic message.
        message: String,
    },
    /// Never finish, ignoring cancellation.
    Hang,
    /// Sleep `ms` (on tokio time), then succeed.
    Sleep {
        /// Milliseconds.
        ms: u64,
    },
    /// Snooze `ms` on the first attempt, then succeed.
    SnoozeOnce {
        /// Milliseconds.
        ms: u64,
    },
    /// Cancel the task.
    Cancel {
        /// The reason.
        reason: String,
    },
    /// Fail the first `n` attempts, then succeed.
    FailTimes {
        /// Failing attempts.
        n: u32,
    },
    /// Wait until the test opens `gate` (one permit per task), or until cancelled.
    Gate {
        /// The gate's name.
        gate: String,
    },
}

/// A start or end of a scripted attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptEvent {
    /// The task.
    pub id: TaskId,
    /// The attempt.
    pub attempt: u32,
    /// True at the start, false at the end.
    pub started: bool,
}

/// Runs [`Script`]s. Clone it to keep a handle on its gates after registering it.
#[derive(Clone)]
pub struct ScriptHandler {
    events: mpsc::UnboundedSender<ScriptEvent>,
    gates: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    timeout: Duration,
    max_attempts: u32,
    backoff: Backoff,
}

impl ScriptHandler {
    /// A handler and the receiver of its events. Defaults: timeout 10 s, 3 attempts, no
    /// backoff delay.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<ScriptEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let h = Self {
            events: tx,
            gates: Arc::default(),
            timeout: Duration::from_secs(10),
            max_attempts: 3,
            backoff: Backoff::none(),
        };
        (h, rx)
    }

    /// Sets the default timeout.
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Sets the default max attempts.
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Sets the default backoff.
    pub fn with_backoff(mut self, b: Backoff) -> Self {
        self.backoff = b;
        self
    }

    /// Lets `n` tasks waiting at (or arriving at) `gate` through.
    pub fn open(&self, gate: &str, n: usize) {
        self.gate(gate).add_permits(n);
    }

    fn gate(&self, name: &str) -> Arc<Semaphore> {
        self.gates
            .lock()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(0)))
            .clone()
    }

    fn emit(&self, ctx: &TaskContext, started: bool) {
        let _ = self.events.send(ScriptEvent {
            id: ctx.task_id(),
            attempt: ctx.attempt(),
            started,
        });
    }

    async fn play(&self, ctx: &TaskContext, script: Script) -> HandlerResult<serde_json::Value> {
        match script {
            Script::Ok { value } => Ok(Outcome::Succeeded(value)),
            Script::Fail { message } => Err(message.into()),
            Script::Panic { message } => panic!("{message}"),
            Script::Hang => std::future::pending().await,
            Script::Sleep { ms } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(Outcome::Succeeded(ms.into()))
            }
            Script::SnoozeOnce { ms } if ctx.attempt() == 1 => {
                Ok(Outcome::Snooze(Duration::from_millis(ms)))
            }
            Script::SnoozeOnce { .. } => Ok(Outcome::Succeeded("woke".into())),
            Script::Cancel { reason } => Ok(Outcome::Cancel(reason)),
            Script::FailTimes { n } if ctx.attempt() <= n => {
                Err(format!("planned failure {} of {n}", ctx.attempt()).into())
            }
            Script::FailTimes { .. } => Ok(Outcome::Succeeded(ctx.attempt().into())),
            Script::Gate { gate } => {
                let gate = self.gate(&gate);
                tokio::select! {
                    permit = gate.acquire() => permit.map(|p| p.forget()).map_err(|e| e.to_string())?,
                    _ = ctx.cancelled() => return Err("cancelled at the gate".into()),
                }
                Ok(Outcome::Succeeded("passed".into()))
            }
        }
    }
}

impl Handler for ScriptHandler {
    const KIND: &'static str = "script";
    type Args = Script;
    type Output = serde_json::Value;

    async fn perform(&self, ctx: TaskContext, script: Script) -> HandlerResult<serde_json::Value> {
        self.emit(&ctx, true);
        let out = self.play(&ctx, script).await;
        self.emit(&ctx, false);
        out
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
    fn backoff(&self) -> Backoff {
        self.backoff
    }
}

/// The args of a scripted task.
pub fn script(s: Script) -> serde_json::Value {
    serde_json::to_value(s).expect("a script always encodes")
}

/// Makes one worker of `queue` die abruptly (it is killed mid-attempt, as a crash would
/// end it). Returns false when the queue has no worker. The worker is found through the
/// queue's process group.
pub fn crash_worker(system: &TaskSystem, queue: &str) -> bool {
    let ns = &system.shared.namespace;
    let members = ractor::pg::get_scoped_local_members(&ns.scope(), &ns.worker_group(queue));
    let Some(worker) = members.into_iter().next() else {
        return false;
    };
    worker.kill();
    true
}

/// Runs `handler` once on `args`, outside any system, as attempt 1.
pub async fn run_inline<H: Handler>(handler: &H, args: H::Args) -> HandlerResult<H::Output> {
    let task = Task {
        id: TaskId::new(),
        kind: H::KIND.into(),
        args: serde_json::Value::Null,
        queue: "inline".into(),
        priority: Priority::Normal,
        timeout: handler.timeout(),
        max_attempts: handler.max_attempts(),
        backoff: handler.backoff(),
        unique_key: None,
        run_at: None,
        metadata: Default::default(),
        title: None,
        auto_restart: 0,
        created_at: SystemTime::now(),
    };
    let cell = Arc::new(TaskCell::new(
        task,
        TaskState::Running,
        handler.max_attempts(),
    ));
    let ctx = TaskContext::new(cell, 1, Default::default(), Default::default());
    handler.perform(ctx, args).await
}

/// Implements [`ScheduleStore`](crate::store::ScheduleStore) for a test store wrapper by
/// delegating every method to one of its fields: `delegate_schedule_store!(Wrapper, inner);`.
#[macro_export]
macro_rules! delegate_schedule_store {
    ($ty:ty, $field:ident) => {
        impl $crate::store::ScheduleStore for $ty {
            fn put_schedule(
                &self,
                r: $crate::scheduler::ScheduleRecord,
            ) -> ::futures::future::BoxFuture<'static, Result<(), $crate::store::StoreError>> {
                self.$field.put_schedule(r)
            }
            fn delete_schedule(
                &self,
                name: String,
            ) -> ::futures::future::BoxFuture<'static, Result<bool, $crate::store::StoreError>>
            {
                self.$field.delete_schedule(name)
            }
            fn schedules(
                &self,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::scheduler::ScheduleRecord>, $crate::store::StoreError>,
            > {
                self.$field.schedules()
            }
            fn put_schedule_if(
                &self,
                r: $crate::scheduler::ScheduleRecord,
            ) -> ::futures::future::BoxFuture<'static, Result<Option<u64>, $crate::store::StoreError>>
            {
                self.$field.put_schedule_if(r)
            }
            fn fire_slots(
                &self,
                firing: $crate::store::Firing,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<$crate::store::Fired, $crate::store::StoreError>,
            > {
                self.$field.fire_slots(firing)
            }
        }
    };
}

/// The reads of [`TaskStore`](crate::store::TaskStore) for a test store wrapper, written
/// inside its `impl TaskStore` block (so the wrapper writes only what it changes):
/// `get`, `list`, `count`, `open_tasks`, `find_unique` and `prune_terminal`, each
/// delegated to one of its fields: `taskmesh::task_store_reads!(inner);`.
#[macro_export]
macro_rules! task_store_reads {
    ($field:ident) => {
        fn get(
            &self,
            id: $crate::TaskId,
        ) -> ::futures::future::BoxFuture<
            'static,
            Result<Option<$crate::store::TaskRecord>, $crate::store::StoreError>,
        > {
            self.$field.get(id)
        }
        fn list(
            &self,
            query: $crate::store::TaskQuery,
        ) -> ::futures::future::BoxFuture<
            'static,
            Result<$crate::store::Page, $crate::store::StoreError>,
        > {
            self.$field.list(query)
        }
        fn count(
            &self,
            filter: $crate::store::TaskFilter,
        ) -> ::futures::future::BoxFuture<'static, Result<u64, $crate::store::StoreError>> {
            self.$field.count(filter)
        }
        fn open_tasks(
            &self,
        ) -> ::futures::future::BoxFuture<
            'static,
            Result<Vec<$crate::store::TaskRecord>, $crate::store::StoreError>,
        > {
            self.$field.open_tasks()
        }
        fn find_unique(
            &self,
            key: String,
        ) -> ::futures::future::BoxFuture<
            'static,
            Result<Option<$crate::TaskId>, $crate::store::StoreError>,
        > {
            self.$field.find_unique(key)
        }
        fn prune_terminal(
            &self,
            before: ::std::time::SystemTime,
        ) -> ::futures::future::BoxFuture<'static, Result<u64, $crate::store::StoreError>> {
            self.$field.prune_terminal(before)
        }
        fn delete_ended(
            &self,
            ids: Vec<$crate::TaskId>,
        ) -> ::futures::future::BoxFuture<
            'static,
            Result<Vec<$crate::TaskId>, $crate::store::StoreError>,
        > {
            self.$field.delete_ended(ids)
        }
    };
}

/// Implements [`Coordination`](crate::store::Coordination),
/// [`Leases`](crate::store::Leases), [`Breakers`](crate::store::Breakers) and
/// [`Notifier`](crate::store::Notifier) for a test store wrapper by
/// delegating every method to one of its fields: `delegate_coordination!(Wrapper, inner);`.
#[macro_export]
macro_rules! delegate_coordination {
    ($ty:ty, $field:ident) => {
        impl $crate::store::Notifier for $ty {
            fn notify(
                &self,
                queues: Vec<String>,
            ) -> ::futures::future::BoxFuture<'static, Result<(), $crate::store::StoreError>> {
                self.$field.notify(queues)
            }
            fn listen(&self) -> Option<::tokio::sync::broadcast::Receiver<String>> {
                self.$field.listen()
            }
        }
        impl $crate::store::Coordination for $ty {
            fn shared(&self) -> bool {
                self.$field.shared()
            }
            fn register(
                &self,
                info: $crate::store::NodeInfo,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<$crate::store::Owner, $crate::store::StoreError>,
            > {
                self.$field.register(info)
            }
            fn heartbeat(
                &self,
                owner: $crate::store::Owner,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::store::Requested>, $crate::store::StoreError>,
            > {
                self.$field.heartbeat(owner)
            }
            fn nodes(
                &self,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::store::NodeRecord>, $crate::store::StoreError>,
            > {
                self.$field.nodes()
            }
            fn dead(
                &self,
                dead_after: ::std::time::Duration,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::store::Owner>, $crate::store::StoreError>,
            > {
                self.$field.dead(dead_after)
            }
            fn bury(
                &self,
                owner: $crate::store::Owner,
                dead_after: ::std::time::Duration,
            ) -> ::futures::future::BoxFuture<'static, Result<bool, $crate::store::StoreError>>
            {
                self.$field.bury(owner, dead_after)
            }
            fn held(
                &self,
                owner: $crate::store::Owner,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::store::TaskRecord>, $crate::store::StoreError>,
            > {
                self.$field.held(owner)
            }
            fn release(
                &self,
                owner: $crate::store::Owner,
            ) -> ::futures::future::BoxFuture<'static, Result<u64, $crate::store::StoreError>> {
                self.$field.release(owner)
            }
            fn reserve(
                &self,
                owner: $crate::store::Owner,
                queues: Vec<String>,
                limit: u32,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::store::TaskRecord>, $crate::store::StoreError>,
            > {
                self.$field.reserve(owner, queues, limit)
            }
            fn reserve_ids(
                &self,
                owner: $crate::store::Owner,
                ids: Vec<$crate::task::TaskId>,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::store::TaskRecord>, $crate::store::StoreError>,
            > {
                self.$field.reserve_ids(owner, ids)
            }
            fn bury_gone(
                &self,
                owner: $crate::store::Owner,
                silent_for: ::std::time::Duration,
            ) -> ::futures::future::BoxFuture<'static, Result<bool, $crate::store::StoreError>>
            {
                self.$field.bury_gone(owner, silent_for)
            }
            fn held_since(
                &self,
                owner: $crate::store::Owner,
                since: ::std::time::SystemTime,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::store::TaskRecord>, $crate::store::StoreError>,
            > {
                self.$field.held_since(owner, since)
            }
        }
        impl $crate::store::Leases for $ty {
            fn acquire_lease(
                &self,
                name: String,
                holder: $crate::store::Owner,
                ttl: ::std::time::Duration,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Option<$crate::store::Lease>, $crate::store::StoreError>,
            > {
                self.$field.acquire_lease(name, holder, ttl)
            }
            fn renew_lease(
                &self,
                fence: $crate::store::LeaseFence,
                ttl: ::std::time::Duration,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Option<$crate::store::Lease>, $crate::store::StoreError>,
            > {
                self.$field.renew_lease(fence, ttl)
            }
            fn release_lease(
                &self,
                fence: $crate::store::LeaseFence,
            ) -> ::futures::future::BoxFuture<'static, Result<bool, $crate::store::StoreError>>
            {
                self.$field.release_lease(fence)
            }
            fn lease(
                &self,
                name: String,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Option<$crate::store::Lease>, $crate::store::StoreError>,
            > {
                self.$field.lease(name)
            }
        }
        impl $crate::store::Breakers for $ty {
            fn write_breaker(
                &self,
                name: String,
                write: $crate::store::BreakerWrite,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<$crate::store::SharedBreaker, $crate::store::StoreError>,
            > {
                self.$field.write_breaker(name, write)
            }
            fn free_probes(
                &self,
                holder: $crate::store::Owner,
            ) -> ::futures::future::BoxFuture<'static, Result<u64, $crate::store::StoreError>> {
                self.$field.free_probes(holder)
            }
            fn breakers(
                &self,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::store::SharedBreaker>, $crate::store::StoreError>,
            > {
                self.$field.breakers()
            }
        }
    };
}

/// Implements [`EventLog`](crate::store::EventLog) for a test store wrapper by
/// delegating every method to one of its fields: `delegate_event_log!(Wrapper, inner);`.
#[macro_export]
macro_rules! delegate_event_log {
    ($ty:ty, $field:ident) => {
        impl $crate::store::EventLog for $ty {
            fn events(
                &self,
                id: $crate::task::TaskId,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::store::StoredEvent>, $crate::store::StoreError>,
            > {
                self.$field.events(id)
            }
            fn crashes(
                &self,
                id: $crate::task::TaskId,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<Vec<$crate::store::Crash>, $crate::store::StoreError>,
            > {
                self.$field.crashes(id)
            }
            fn history(
                &self,
                id: $crate::task::TaskId,
            ) -> ::futures::future::BoxFuture<
                'static,
                Result<$crate::store::History, $crate::store::StoreError>,
            > {
                self.$field.history(id)
            }
            fn sweep_crashes(
                &self,
                before: ::std::time::SystemTime,
            ) -> ::futures::future::BoxFuture<'static, Result<u64, $crate::store::StoreError>> {
                self.$field.sweep_crashes(before)
            }
        }
    };
}
