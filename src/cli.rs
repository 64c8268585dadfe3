//! The command-line client: talks to a node over its HTTP API.

mod bench;
mod client;
mod cluster_bench;
mod cluster_cron_bench;
mod exit;
mod output;

pub use bench::{bench_node, NodeBenchReport};
pub use client::{Client, ClientError};
pub use cluster_bench::{bench_cluster, ClusterBench, ClusterBenchReport, ClusterRun};
pub use cluster_cron_bench::{bench_cluster_cron, ClusterCronBench, ClusterCronReport};
pub use exit::{Exit, EXIT_CODES_HELP};
pub use output::OutputFormat;
