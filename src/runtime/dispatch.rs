//! The dispatch state of one queue, shared by submitters, workers, the timer and the pool.

use foldhash::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use ractor::{ActorId, ActorRef};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::messages::{PoolMsg, TimerMsg, WorkerMsg};
use super::slot::WorkerSlot;
use super::TaskCell;
use crate::error::SubmitError;
use crate::queue::{PriorityQueue, QueueConfig};
use crate::ratelimit::Limiter;
use crate::task::TaskState;
use crate::telemetry::{KindMetrics, QueueMetrics};

struct Inner {
    tasks: PriorityQueue<Arc<TaskCell>>,
    idle: Vec<ActorRef<WorkerMsg>>,
    /// The deadline the timer is armed for.
    armed: Option<Instant>,
}

/// One queue's tasks, idle workers and counters.
pub(crate) struct QueueShared {
    pub config: QueueConfig,
    pub name: Arc<str>,
    inner: Mutex<Inner>,
    /// Tasks admitted and not yet started (ready, delayed, retrying).
    queued: AtomicUsize,
    running: AtomicUsize,
    /// Workers alive, kept by the pool.
    pub workers: AtomicUsize,
    closed: AtomicBool,
    paused: AtomicBool,
    grow_requested: AtomicBool,
    pub limiter: Option<Limiter>,
    pub metrics: QueueMetrics,
    kind_metrics: HashMap<Arc<str>, KindMetrics>,
    timer: Mutex<Option<ActorRef<TimerMsg>>>,
    pool: Mutex<Option<ActorRef<PoolMsg>>>,
    /// Signalled whenever an attempt ends, for shutdown to wait on.
    pub idle_signal: Notify,
    /// The slots of the pool's workers; they outlive a pool that died, so its successor
    /// can settle the attempts they were running.
    slots: Mutex<Vec<Arc<WorkerSlot>>>,
}

impl QueueShared {
    pub fn new(config: QueueConfig, kinds: &[&str]) -> Self {
        let name: Arc<str> = config.name.as_str().into();
        let kind_metrics = kinds
            .iter()
            .map(|k| (Arc::<str>::from(*k), KindMetrics::new(&name, k)))
            .collect();
        Self {
            limiter: config.rate_limit.map(Limiter::new),
            metrics: QueueMetrics::new(&name),
            name,
            config,
            inner: Mutex::new(Inner {
                tasks: PriorityQueue::new(),
                idle: Vec::new(),
                armed: None,
            }),
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            grow_requested: AtomicBool::new(false),
            kind_metrics,
            timer: Mutex::new(None),
            pool: Mutex::new(None),
            idle_signal: Notify::new(),
            slots: Mutex::new(Vec::new()),
        }
    }

    /// Reserves room for one task, or refuses at the bound.
    pub fn admit(&self) -> Result<(), SubmitError> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.config.bound {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.metrics.rejected.increment(1);
            return Err(SubmitError::Overloaded {
                queue: self.name.to_string(),
                bound: self.config.bound,
            });
        }
        Ok(())
    }

    /// Enqueues an admitted task, now or at `at`.
    pub fn push(&self, cell: Arc<TaskCell>, at: Option<Instant>) {
        match at {
            Some(at) if at > Instant::now() => self.push_delayed(cell, at),
            _ => self.push_ready(cell),
        }
    }

    /// Puts back a task that ran (retry, snooze, interrupt): it counts as queued again.
    pub fn requeue(&self, cell: Arc<TaskCell>, at: Option<Instant>) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.push(cell, at);
    }

    /// Holds a task that a gate (breaker, rate limit) did not let through until `at`.
    pub fn park(&self, cell: Arc<TaskCell>, at: Instant) {
        self.push_delayed(cell, at);
    }

    fn push_ready(&self, cell: Arc<TaskCell>) {
        let priority = cell.task.priority;
        let idle = {
            let mut inner = self.inner.lock();
            inner.tasks.push(priority, cell);
            inner.idle.pop()
        };
        match idle {
            Some(worker) => self.wake(worker),
            None => self.request_growth(),
        }
    }

    fn push_delayed(&self, cell: Arc<TaskCell>, at: Instant) {
        let priority = cell.task.priority;
        let arm = {
            let mut inner = self.inner.lock();
            inner.tasks.push_delayed(at, priority, cell);
            let earlier = inner.armed.is_none_or(|a| at < a);
            if earlier {
                inner.armed = Some(at);
            }
            earlier
        };
        if arm {
            if let Some(timer) = self.timer.lock().as_ref() {
                let _ = timer.cast(TimerMsg::Arm(at));
            }
        }
    }

    /// The next task for `worker`, or `None` after parking the worker as idle. A closed
    /// queue hands out nothing and parks no one.
    pub fn pop(&self, worker: &ActorRef<WorkerMsg>) -> Option<Arc<TaskCell>> {
        if self.closed.load(Ordering::Acquire) || self.paused.load(Ordering::Acquire) {
            return None;
        }
        let mut inner = self.inner.lock();
        if inner.tasks.delayed_len() > 0 {
            inner.tasks.release_due(Instant::now());
        }
        let next = inner.tasks.pop();
        if next.is_none() && !inner.idle.iter().any(|w| w.get_id() == worker.get_id()) {
            inner.idle.push(worker.clone());
        }
        next
    }

    /// Moves due delayed tasks to ready and wakes idle workers for them. Returns the next
    /// deadline, which the timer arms for.
    pub fn release_due(&self, now: Instant) -> Option<Instant> {
        let (wake, next) = {
            let mut inner = self.inner.lock();
            let released = inner.tasks.release_due(now);
            let n = released.min(inner.idle.len());
            let at = inner.idle.len() - n;
            let wake: Vec<_> = inner.idle.drain(at..).collect();
            inner.armed = inner.tasks.next_deadline();
            (wake, inner.armed)
        };
        let woke = wake.len();
        for w in wake {
            self.wake(w);
        }
        if woke == 0 && self.ready_len() > 0 {
            self.request_growth();
        }
        next
    }

    /// Wakes `worker`; if it is gone, tries the next idle one.
    fn wake(&self, mut worker: ActorRef<WorkerMsg>) {
        while worker.cast(WorkerMsg::Drain).is_err() {
            match self.inner.lock().idle.pop() {
                Some(next) => worker = next,
                None => return,
            }
        }
    }

    /// Asks the pool for more workers, at most once until it has looked.
    fn request_growth(&self) {
        if self.workers.load(Ordering::Relaxed) >= self.config.max_workers
            || self.grow_requested.swap(true, Ordering::AcqRel)
        {
            return;
        }
        if let Some(pool) = self.pool.lock().as_ref() {
            let _ = pool.cast(PoolMsg::Grow);
        }
    }

    pub fn growth_seen(&self) {
        self.grow_requested.store(false, Ordering::Release);
    }

    /// Removes a stopping worker from the idle list.
    pub fn forget_worker(&self, id: ActorId) -> bool {
        let mut inner = self.inner.lock();
        let before = inner.idle.len();
        inner.idle.retain(|w| w.get_id() != id);
        inner.idle.len() != before
    }

    /// Takes an idle worker out of the idle list (to retire it).
    pub fn take_idle(&self, id: ActorId) -> bool {
        self.forget_worker(id)
    }

    pub fn idle_ids(&self) -> Vec<ActorId> {
        self.inner.lock().idle.iter().map(|w| w.get_id()).collect()
    }

    pub fn ready_len(&self) -> usize {
        self.inner.lock().tasks.ready_len()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.inner.lock().tasks.next_deadline()
    }

    /// Tasks waiting (ready, delayed, retrying), excluding cancelled ones.
    pub fn depth(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// A queued task was taken out of the queue's count without starting (cancelled).
    pub fn dequeued(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// A task recovered in the running state, about to be settled.
    pub fn adopt_running(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    /// A queued task started.
    pub fn started(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    /// An attempt ended with the task in `state`.
    pub fn finished(&self, kind: &str, state: TaskState) {
        self.running.fetch_sub(1, Ordering::AcqRel);
        if let Some(m) = self.kind_metrics.get(kind) {
            match state {
                TaskState::Succeeded => m.succeeded.increment(1),
                TaskState::Failed => m.failed.increment(1),
                TaskState::Cancelled => m.cancelled.increment(1),
                TaskState::Retrying => m.retried.increment(1),
                _ => {}
            }
        }
        if self.closed.load(Ordering::Acquire) {
            self.idle_signal.notify_waiters();
        }
    }

    pub fn kind_metrics(&self, kind: &str) -> Option<&KindMetrics> {
        self.kind_metrics.get(kind)
    }

    /// Stops handing out tasks (graceful shutdown).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.inner.lock().idle.clear();
    }

    /// Holds dispatch: tasks are still accepted but no worker takes one.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    /// Resumes dispatch. The caller wakes the workers.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    pub fn set_timer(&self, timer: Option<ActorRef<TimerMsg>>) {
        *self.timer.lock() = timer;
    }

    pub fn set_pool(&self, pool: Option<ActorRef<PoolMsg>>) {
        *self.pool.lock() = pool;
    }

    /// Samples the gauges.
    pub fn sample_gauges(&self) {
        self.metrics.depth.set(self.depth() as f64);
        self.metrics.running.set(self.running() as f64);
        self.metrics
            .workers
            .set(self.workers.load(Ordering::Relaxed) as f64);
    }

    pub fn register_slot(&self, slot: Arc<WorkerSlot>) {
        self.slots.lock().push(slot);
    }

    pub fn unregister_slot(&self, slot: &Arc<WorkerSlot>) {
        self.slots.lock().retain(|s| !Arc::ptr_eq(s, slot));
    }

    /// Takes every registered slot (a new pool recovering its predecessor's).
    pub fn take_slots(&self) -> Vec<Arc<WorkerSlot>> {
        std::mem::take(&mut *self.slots.lock())
    }

    /// The attempts running in this queue's workers.
    pub fn running_slots(&self) -> Vec<Arc<WorkerSlot>> {
        self.slots.lock().clone()
    }
}
