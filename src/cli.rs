//! The command-line client: talks to a node over its HTTP API.

mod bench;
mod client;
mod exit;
mod output;

pub use bench::{bench_node, NodeBenchReport};
pub use client::{Client, ClientError};
pub use exit::{Exit, EXIT_CODES_HELP};
pub use output::OutputFormat;
