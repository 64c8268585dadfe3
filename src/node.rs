//! `taskmesh node`: the process operators run. Configuration, logging, the task system on
//! a SQLite store, the HTTP API, and graceful shutdown on SIGTERM and SIGINT.

mod config;
pub mod logging;

pub use config::{ConfigError, HttpSettings, LogFormat, LogSettings, NodeConfig, ShutdownSettings};
