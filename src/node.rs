//! `taskmesh node`: the process operators run. Configuration, logging, the task system on
//! a SQLite store, the HTTP API, and graceful shutdown on SIGTERM and SIGINT.

mod config;
pub mod logging;
mod run;

pub use config::{
    ConfigError, HttpSettings, LogFormat, LogSettings, NodeConfig, ShutdownSettings, StoreSettings,
    StoreUrl, UiSettings,
};
pub use run::{run, signal, NodeError};
