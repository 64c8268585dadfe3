//! Checks a loaded configuration must pass before a node starts (and before
//! `--print-config` prints it): the same checks for both, so a printed configuration is
//! one the node accepts.

use std::io::ErrorKind;
use std::path::Path;

use super::{ConfigError, NodeConfig};

/// The variables of the command-line client (`taskmesh submit …`). They share the
/// `TASKMESH_` prefix with the node's settings, so the node ignores them by design: a
/// shell set up for the client can start a node.
const CLIENT_VARIABLES: [&str; 2] = ["TASKMESH_URL", "TASKMESH_TOKEN"];

/// Variables of the test suite's crash harness, not settings either.
const TEST_VARIABLES: [&str; 5] = [
    "TASKMESH_CRASH_CHILD",
    "TASKMESH_REQUIRE_PG",
    "TASKMESH_TEST_DATABASE_URL",
    "TASKMESH_CHAOS_SECS",
    "TASKMESH_CHAOS_SEED",
];

/// The names (without the `TASKMESH_` prefix) the node's environment provider skips.
pub(super) fn ignored_keys() -> Vec<&'static str> {
    CLIENT_VARIABLES
        .iter()
        .chain(&TEST_VARIABLES)
        .map(|v| &v["TASKMESH_".len()..])
        .collect()
}

/// `--config` must name a readable file; a directory is called one.
pub(super) fn config_file(path: &Path) -> Result<(), ConfigError> {
    let (kind, why) = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => (ErrorKind::IsADirectory, "is a directory, not a file"),
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => (ErrorKind::NotFound, "no such file"),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.into(),
                source,
            })
        }
    };
    Err(ConfigError::Read {
        path: path.into(),
        source: std::io::Error::new(kind, why),
    })
}

/// Values that parse but that the node cannot work with.
pub(super) fn values(cfg: &NodeConfig) -> Result<(), ConfigError> {
    if cfg.http.max_body_bytes == 0 {
        return Err(invalid("http.max_body_bytes must be at least 1, got 0"));
    }
    if cfg
        .http
        .token
        .as_ref()
        .is_some_and(|t| t.expose().trim().is_empty())
    {
        return Err(invalid(
            "TASKMESH_HTTP__TOKEN (http.token) is empty: set a token or unset the variable",
        ));
    }
    cfg.exec
        .validate()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    cfg.system
        .queues
        .iter()
        .try_for_each(|q| q.validate())
        .map_err(|e| ConfigError::Invalid(e.to_string()))
}

fn invalid(why: &str) -> ConfigError {
    ConfigError::Invalid(why.to_string())
}

/// The data directory, or the nearest of its ancestors that exists (where it will be
/// created), must be a directory this process can write to. Writes a probe file and
/// removes it; creates nothing else.
pub fn data_dir(path: &Path) -> Result<(), ConfigError> {
    let refuse = |reason: &str, source| ConfigError::DataDir {
        path: path.into(),
        reason: reason.into(),
        source,
    };
    let existing = nearest_existing(path);
    if !existing.is_dir() {
        let source = std::io::Error::new(ErrorKind::NotADirectory, existing.display().to_string());
        return Err(refuse("is not a directory", source));
    }
    probe_write(existing).map_err(|e| match e.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => refuse(
            "is read-only for this process: no permission to write in it",
            e,
        ),
        _ => refuse("cannot be written to", e),
    })
}

/// `path` itself if it exists, else its nearest existing ancestor (`.` for a relative
/// path none of whose parts exist).
fn nearest_existing(path: &Path) -> &Path {
    path.ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .unwrap_or(Path::new("."))
}

/// Creates and removes a file in `dir`.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".taskmesh-probe-{}", std::process::id()));
    std::fs::File::create(&probe)?;
    std::fs::remove_file(&probe)
}

/// The secret in the file at `path`, named by the setting `key`, trimmed: an error names
/// the key (never the contents) when the file cannot be read or is empty.
pub(super) fn secret_file(key: &str, path: &Path) -> Result<crate::secret::Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match text.trim() {
        "" => Err(ConfigError::Invalid(format!(
            "{key} {} is empty",
            path.display()
        ))),
        secret => Ok(crate::secret::Secret::new(secret)),
    }
}
