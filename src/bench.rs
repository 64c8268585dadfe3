//! The benchmark harness behind `taskmesh bench`: N no-op tasks from C concurrent
//! submitters end to end, beside a raw-tokio baseline measured in the same run.
//!
//! The baseline is what PERFORMANCE.md defines: per unit, one `tokio::spawn` whose result
//! comes back over a oneshot, driven by the same number of submitters.

//!
//! | mode | what it measures |
//! |---|---|
//! | [`run`] (closed loop) | C submitters, each submitting one task and waiting for its end |
//! | [`run_open_loop`] | C producers submitting without waiting; the clock stops at the N-th completion |
//! | [`NodesReport`] | the open loop on one node, then on several sharing a PostgreSQL database |
//! | [`run_queued`], [`run_list_page`], [`run_cron`] | memory per queued task, a filtered page, cron lateness |
//!
//! Every mode takes a [`BenchStore`]: memory, a SQLite file, or a PostgreSQL server on
//! which each run creates a fresh database ([`BenchDb`]) and drops it afterwards.

mod cron;
mod error;
mod harness;
mod listing;
mod open_loop;
mod open_report;
mod pgdb;
mod report;
mod stores;
#[cfg(test)]
mod tests;

pub use cron::{run_cron, CronBench, CronReport};
pub use error::BenchError;
pub use harness::{run, run_queued, BenchConfig};
pub use listing::{fill_list_store, list_page_filter, run_list_page, run_list_page_pg, ListReport};
pub use open_loop::{run_open_loop, OpenLoopConfig};
pub use open_report::{NodesReport, OpenLoopReport};
pub use pgdb::BenchDb;
pub use report::{BenchReport, Latency, QueuedReport};
pub use stores::BenchStore;
