//! Allocations per task on the in-memory hot path, counted by a counting global
//! allocator: a system with no store runs no-op tasks (args a number, no result) from 16
//! submitters, first to warm up (workers started, maps and queues grown, retention full),
//! then a measured round. Prints allocations and bytes allocated per task, for a plain
//! submit (the submitter does not wait) and for `submit_and_wait`.
//!
//! `cargo bench --bench allocations`. Issue 14's target is no allocation per task in
//! steady state beyond the args and the result; the README gives the figure.

use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use taskmesh::{Handler, HandlerResult, NewTask, Outcome, QueueConfig, TaskContext, TaskSystem};
use tokio::sync::Semaphore;

/// The system allocator, counting every allocation (stats_alloc's instrumented wrapper).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

struct Noop(Arc<Semaphore>);

impl Handler for Noop {
    const KIND: &'static str = "noop";
    type Args = u64;
    type Output = ();
    async fn perform(&self, _: TaskContext, _: u64) -> HandlerResult<()> {
        self.0.add_permits(1);
        Ok(Outcome::Succeeded(()))
    }
}

const SUBMITTERS: u64 = 16;
const RETAINED: usize = 10_000;

/// Runs `n` tasks from [`SUBMITTERS`] submitters and waits for all of them to end.
async fn round(sys: &TaskSystem, done: &Semaphore, n: u64, wait: bool) {
    let each = n / SUBMITTERS;
    let subs = (0..SUBMITTERS).map(|_| {
        let sys = sys.clone();
        tokio::spawn(async move {
            for i in 0..each {
                let task = NewTask::new("noop", i.into());
                if wait {
                    sys.submit_and_wait(task).await.expect("the task ends");
                } else {
                    sys.submit(task).await.expect("the submit is accepted");
                }
            }
        })
    });
    for s in futures::future::join_all(subs).await {
        s.expect("a submitter does not panic");
    }
    let all = u32::try_from(each * SUBMITTERS).expect("a round fits a u32");
    done.acquire_many(all)
        .await
        .expect("the semaphore stays open")
        .forget();
}

/// Allocations (reallocations included) and bytes allocated per task over a measured
/// round of `n` tasks.
async fn measure(sys: &TaskSystem, done: &Semaphore, n: u64, wait: bool) -> (f64, f64) {
    let region = Region::new(GLOBAL);
    round(sys, done, n, wait).await;
    let stats = region.change();
    #[allow(clippy::cast_precision_loss)]
    let per = |x: usize| x as f64 / n as f64;
    let grown = usize::try_from(stats.bytes_reallocated).unwrap_or(0);
    (
        per(stats.allocations + stats.reallocations),
        per(stats.bytes_allocated + grown),
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let done = Arc::new(Semaphore::new(0));
        let sys = TaskSystem::builder()
            .namespace("alloc-bench")
            .queue(QueueConfig::new("default").bound(1_000_000))
            .retention(Duration::from_secs(3600), RETAINED)
            .handler(Noop(done.clone()))
            .start()
            .await
            .expect("the bench system starts");
        let n = 100_000;
        // Warm: retention full (each end now also lets an old task go), maps grown.
        round(&sys, &done, 2 * RETAINED as u64, false).await;
        let (allocs, bytes) = measure(&sys, &done, n, false).await;
        println!("submit, 16 submitters, {n} no-op tasks: {allocs:.2} allocations and {bytes:.0} bytes allocated per task");
        let (allocs, bytes) = measure(&sys, &done, n, true).await;
        println!("submit_and_wait, 16 submitters, {n} no-op tasks: {allocs:.2} allocations and {bytes:.0} bytes allocated per task");
        sys.shutdown(Duration::from_secs(5)).await;
    });
}
