//! The benchmark harness behind `taskmesh bench`: N no-op tasks from C concurrent
//! submitters end to end, beside a raw-tokio baseline measured in the same run.
//!
//! The baseline is what PERFORMANCE.md defines: per unit, one `tokio::spawn` whose result
//! comes back over a oneshot, driven by the same number of submitters.

mod cron;
mod harness;
mod listing;
mod report;

pub use cron::{run_cron, CronBench, CronReport};
pub use harness::{run, run_queued, BenchConfig, BenchStore};
pub use listing::{fill_list_store, list_page_filter, run_list_page, ListReport};
pub use report::{BenchReport, Latency, QueuedReport};
