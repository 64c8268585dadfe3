//! The command-line client: talks to a node over its HTTP API.

mod bench;
mod client;

pub use bench::{bench_node, NodeBenchReport};
pub use client::{Client, ClientError};
