//! Logs through `tracing`: human-readable or JSON, level from `RUST_LOG` or the config.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::{LogFormat, LogSettings};

/// Installs the global subscriber, writing to stderr. `RUST_LOG` wins over `level`.
/// Colours only when stderr is a terminal (and `NO_COLOR` is unset), so redirected logs
/// hold no escape codes.
pub fn init(settings: &LogSettings) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => {
            EnvFilter::try_new(&v).map_err(|e| format!("invalid RUST_LOG {v:?}: {e}"))?
        }
        _ => EnvFilter::try_new(&settings.level)
            .map_err(|e| format!("invalid log level {:?}: {e}", settings.level))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(std::io::stderr().is_terminal()))
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| format!("cannot install the log subscriber: {e}"))
}

/// Whether to colour: on a terminal, unless `NO_COLOR` is set to anything non-empty.
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
