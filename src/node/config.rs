//! The node's configuration: defaults, then a TOML file (`--config`), then `TASKMESH_…`
//! environment variables (`TASKMESH_HTTP__ADDR` sets `http.addr`), then flags. Unknown keys
//! and bad values are rejected with the key named. The client's own variables
//! (`TASKMESH_URL`, `TASKMESH_TOKEN`) are not settings and are ignored.

mod check;
mod cluster;
mod store;

pub use cluster::ClusterSettings;
pub use store::{StoreSettings, StoreUrl};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::builtin::ExecConfig;
use crate::config::SystemConfig;
use crate::secret::Secret;

/// The whole configuration of a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The node's own files: its lock, and the SQLite store by default
    /// (`{data_dir}/taskmesh.db`). One node per data dir.
    pub data_dir: PathBuf,
    /// The store: SQLite (default) or a PostgreSQL database several nodes share.
    pub store: StoreSettings,
    /// The HTTP API.
    pub http: HttpSettings,
    /// Logging.
    pub log: LogSettings,
    /// Graceful shutdown.
    pub shutdown: ShutdownSettings,
    /// The `exec` built-in kind.
    pub exec: ExecConfig,
    /// The task system: namespace, queues, limits, retention.
    pub system: SystemConfig,
    /// The web dashboard at `/ui`.
    pub ui: UiSettings,
    /// The cluster this node joins, if any.
    pub cluster: ClusterSettings,
}

/// The web dashboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiSettings {
    /// Serve the dashboard at `/ui` (default true).
    pub enabled: bool,
    /// A file holding a read-only token: it logs into the dashboard as `viewer`. Only
    /// used when `http.token` is set.
    pub viewer_token_file: Option<PathBuf>,
    /// The read-only token itself: from `TASKMESH_UI__VIEWER_TOKEN` only, never a file.
    #[serde(skip_serializing)]
    pub viewer_token: Option<Secret>,
    /// Mark the session cookie `Secure` on every response (default false: only when the
    /// request came over TLS, as a proxy's `X-Forwarded-Proto: https` says).
    pub secure_cookie: bool,
}

impl Default for UiSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            viewer_token_file: None,
            viewer_token: None,
            secure_cookie: false,
        }
    }
}

/// The HTTP listener and its auth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Where to listen (default 127.0.0.1:7700: loopback unless told otherwise).
    pub addr: SocketAddr,
    /// The largest request body (default 1 MiB + 64 KiB).
    pub max_body_bytes: usize,
    /// How long a client may take to send a request head, or keep an idle connection
    /// (default 10 000 ms).
    pub header_read_timeout_ms: u64,
    /// How long a request may take, body included, before it gets 408 (default 30 000 ms).
    pub request_timeout_ms: u64,
    /// The most HTTP connections open at once (default 512); keep it well below the
    /// process's open-file limit.
    pub max_connections: usize,
    /// A file holding the bearer token that guards `/v1`.
    pub token_file: Option<PathBuf>,
    /// The bearer token itself: from `TASKMESH_HTTP__TOKEN` only, never from a file.
    #[serde(skip_serializing)]
    pub token: Option<Secret>,
}

/// Log format and level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// "text" (human-readable) or "json".
    pub format: LogFormat,
    /// A `tracing` filter such as "info" or "taskmesh=debug"; `RUST_LOG` wins if set.
    pub level: String,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Graceful shutdown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSettings {
    /// How long running tasks get to finish after SIGTERM/SIGINT (default 30 s).
    pub grace_ms: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            store: StoreSettings::default(),
            http: HttpSettings::default(),
            log: LogSettings::default(),
            shutdown: ShutdownSettings { grace_ms: 30_000 },
            exec: ExecConfig::default(),
            system: SystemConfig::default(),
            ui: UiSettings::default(),
            cluster: ClusterSettings::default(),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 7700)),
            max_body_bytes: 1024 * 1024 + 64 * 1024,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_connections: 512,
            token_file: None,
            token: None,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self { grace_ms: 30_000 }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is unknown or a value has the wrong type or form.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The data directory cannot be used.
    #[error("data_dir {path} {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl NodeConfig {
    /// Loads defaults, then `file` (if given), then the environment (`TASKMESH_…`, with
    /// `__` between levels; the client's `TASKMESH_URL` and `TASKMESH_TOKEN` are ignored). Then reads the
    /// token file, if one is set, and checks the values the node cannot work with.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, Env::prefixed("TASKMESH_").split("__"))
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(NodeConfig::default()));
        if let Some(path) = file {
            check::config_file(path)?;
            fig = fig.merge(Toml::file_exact(path));
        }
        let fig = fig.merge(env.ignore(&check::ignored_keys()));
        refuse_token_in_file(&fig)?;
        let mut cfg: NodeConfig = fig
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        cfg.read_token_file()?;
        cfg.read_viewer_token_file()?;
        cfg.cluster.read_cookie_file()?;
        if cfg.ui.viewer_token.is_some() && cfg.http.token.is_none() {
            let why = "ui.viewer_token needs http.token: without a token the dashboard is open to everyone";
            return Err(ConfigError::Invalid(why.into()));
        }
        check::values(&cfg)?;
        check_http_limits(&cfg.http)?;
        check_store(&cfg)?;
        Ok(cfg)
    }

    /// Checks that the data directory (or the ancestor it will be created in) is a
    /// directory this process can write to, with an error that says so when it is not.
    pub fn check_data_dir(&self) -> Result<(), ConfigError> {
        check::data_dir(&self.data_dir)
    }

    fn read_token_file(&mut self) -> Result<(), ConfigError> {
        if let (Some(path), None) = (&self.http.token_file, &self.http.token) {
            self.http.token = Some(check::secret_file("http.token_file", path)?);
        }
        Ok(())
    }

    fn read_viewer_token_file(&mut self) -> Result<(), ConfigError> {
        if let (Some(path), None) = (&self.ui.viewer_token_file, &self.ui.viewer_token) {
            self.ui.viewer_token = Some(check::secret_file("ui.viewer_token_file", path)?);
        }
        Ok(())
    }

    /// Checks the cluster settings against the store (a cluster needs PostgreSQL) and the
    /// node name (one name, whichever section gives it). Run again after flags change
    /// them.
    pub fn check_cluster(&self) -> Result<(), ConfigError> {
        let postgres = matches!(self.store.target(&self.data_dir), Ok(StoreUrl::Postgres(_)));
        self.cluster.check(postgres)?;
        if let (Some(a), Some(b)) = (&self.cluster.node_name, &self.store.node_name) {
            if a != b {
                return Err(ConfigError::Invalid(format!(
                    "cluster.node_name {a:?} and store.node_name {b:?} differ: set one"
                )));
            }
        }
        Ok(())
    }

    /// This node's name among the nodes sharing the store, if configured.
    pub fn node_name(&self) -> Option<&str> {
        self.cluster
            .node_name
            .as_deref()
            .or(self.store.node_name.as_deref())
    }

    /// The configuration as TOML, with secrets left out.
    pub fn dump(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// The connection limits must be positive: a zero timeout would cut off every client.
fn check_http_limits(http: &HttpSettings) -> Result<(), ConfigError> {
    let keys = [
        ("http.header_read_timeout_ms", http.header_read_timeout_ms),
        ("http.request_timeout_ms", http.request_timeout_ms),
        ("http.max_connections", http.max_connections as u64),
    ];
    match keys.iter().find(|(_, v)| *v == 0) {
        Some((key, _)) => Err(ConfigError::Invalid(format!(
            "{key} must be at least 1, got 0"
        ))),
        None => Ok(()),
    }
}

/// The token must come from the environment or a token file, never from a config file.
fn refuse_token_in_file(fig: &Figment) -> Result<(), ConfigError> {
    let secrets = [
        ("http.token", "TASKMESH_HTTP__TOKEN or http.token_file"),
        (
            "ui.viewer_token",
            "TASKMESH_UI__VIEWER_TOKEN or ui.viewer_token_file",
        ),
        (
            "store.password",
            "TASKMESH_STORE__PASSWORD or store.password_file",
        ),
        (
            "cluster.cookie",
            "TASKMESH_CLUSTER__COOKIE or cluster.cookie_file",
        ),
    ];
    for (key, instead) in secrets {
        let from_file = fig
            .find_metadata(key)
            .is_some_and(|m| m.name.contains("TOML"));
        if from_file {
            let why = format!("{key} must not be written in a config file: set {instead}");
            return Err(ConfigError::Invalid(why));
        }
    }
    Ok(())
}

/// The store URL must name a store we have, and the liveness intervals must leave a
/// trust window: a dead node is one that missed more than two heartbeats.
fn check_store(cfg: &NodeConfig) -> Result<(), ConfigError> {
    let s = &cfg.store;
    s.target(&cfg.data_dir).map_err(ConfigError::Invalid)?;
    if s.heartbeat_ms == 0 || s.poll_ms == 0 || s.pool_size == 0 || s.writers == Some(0) {
        return Err(ConfigError::Invalid(
            "store.heartbeat_ms, store.poll_ms, store.pool_size and store.writers must be at least 1"
                .into(),
        ));
    }
    if s.dead_after_ms <= 2 * s.heartbeat_ms {
        return Err(ConfigError::Invalid(format!(
            "store.dead_after_ms must be more than two heartbeats ({} ms), got {}",
            2 * s.heartbeat_ms,
            s.dead_after_ms
        )));
    }
    cron_lease(s).check().map_err(|why| {
        ConfigError::Invalid(format!(
            "store.cron_lease_ms must leave time for two renewals (store.cron_renew_ms) and a second of margin: {why}"
        ))
    })
}

/// The cron lease as configured.
pub(crate) fn cron_lease(s: &store::StoreSettings) -> crate::scheduler::LeaseConfig {
    let ms = std::time::Duration::from_millis;
    crate::scheduler::LeaseConfig {
        ttl: ms(s.cron_lease_ms),
        renew_every: ms(s.cron_renew_ms),
        ..Default::default()
    }
}

/// Figment's message, reworded as "expected X, got Y at key Z" where it can be.
fn describe(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let what = match &e.kind {
                figment::error::Kind::InvalidType(got, expected) => {
                    format!("expected {expected}, got {got}")
                }
                figment::error::Kind::InvalidValue(got, expected) => {
                    format!("expected {expected}, got {got}")
                }
                figment::error::Kind::UnknownField(field, _) => format!("unknown key {field:?}"),
                other => other.to_string(),
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            if key.is_empty() {
                format!("{what}{source}")
            } else {
                format!("{what} at key {key}{source}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type
mod tests {
    use super::*;
    use figment::Jail;

    /// Loads `node.toml` holding `toml` inside a jail (temp dir, isolated environment).
    fn load_in(jail: &mut Jail, toml: &str) -> Result<NodeConfig, String> {
        jail.create_file("node.toml", toml)
            .map_err(|e| e.to_string())?;
        NodeConfig::load(Some(Path::new("node.toml"))).map_err(|e| e.to_string())
    }

    #[test]
    fn the_shipped_default_file_matches_the_built_in_defaults() {
        Jail::expect_with(|jail| {
            let cfg = load_in(jail, include_str!("../../config/default.toml"))?;
            assert_eq!(cfg, NodeConfig::default());
            Ok(())
        });
    }

    #[test]
    fn the_environment_overrides_the_file_and_the_file_the_defaults() {
        Jail::expect_with(|jail| {
            jail.set_env("TASKMESH_HTTP__ADDR", "0.0.0.0:9000");
            jail.set_env("TASKMESH_SYSTEM__NAMESPACE", "from-env");
            let cfg = load_in(
                jail,
                "data_dir = \"/srv/tm\"\n[system]\nnamespace = \"from-file\"\n",
            )?;
            assert_eq!(cfg.http.addr.to_string(), "0.0.0.0:9000");
            assert_eq!(cfg.system.namespace, "from-env");
            assert_eq!(cfg.data_dir, PathBuf::from("/srv/tm"));
            assert_eq!(
                cfg.shutdown.grace_ms, 30_000,
                "untouched keys keep their defaults"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        Jail::expect_with(|jail| {
            let unknown = load_in(jail, "[http]\nadress = \"x\"\n").unwrap_err();
            assert!(
                unknown.contains("unknown key \"adress\"") && unknown.contains("http"),
                "{unknown}"
            );
            let bad = load_in(jail, "[shutdown]\ngrace_ms = \"soon\"\n").unwrap_err();
            assert!(
                bad.contains("expected u64") && bad.contains("at key shutdown.grace_ms"),
                "{bad}"
            );
            jail.set_env("TASKMESH_HTTP__ADDR", "not-an-address");
            let env = load_in(jail, "").unwrap_err();
            assert!(env.contains("at key http.addr"), "{env}");
            Ok(())
        });
    }

    #[test]
    fn zero_http_timeouts_or_connection_limits_are_refused_naming_the_key() {
        Jail::expect_with(|jail| {
            for key in [
                "header_read_timeout_ms",
                "request_timeout_ms",
                "max_connections",
            ] {
                let err = load_in(jail, &format!("[http]\n{key} = 0\n")).unwrap_err();
                assert!(
                    err.contains(&format!("http.{key} must be at least 1")),
                    "{err}"
                );
            }
            Ok(())
        });
    }

    #[test]
    fn store_writers_default_by_cluster_membership_and_zero_is_refused() {
        Jail::expect_with(|jail| {
            let unset = load_in(jail, "")?;
            assert_eq!(unset.store.writers(false), store::WRITERS_ALONE);
            assert_eq!(unset.store.writers(true), store::WRITERS_IN_CLUSTER);
            let set = load_in(jail, "[store]\nwriters = 3\n")?;
            assert_eq!((set.store.writers(false), set.store.writers(true)), (3, 3));
            let zero = load_in(jail, "[store]\nwriters = 0\n").unwrap_err();
            assert!(zero.contains("store.writers must be at least 1"), "{zero}");
            Ok(())
        });
    }

    #[test]
    fn the_token_comes_from_the_environment_or_a_file_never_from_the_config() {
        Jail::expect_with(|jail| {
            let in_file = load_in(jail, "[http]\ntoken = \"s3cret\"\n").unwrap_err();
            assert!(
                in_file.contains("must not be written in a config file"),
                "{in_file}"
            );
            jail.create_file("token.txt", "from-file\n")?;
            let cfg = load_in(jail, "[http]\ntoken_file = \"token.txt\"\n")?;
            assert!(cfg.http.token.as_ref().unwrap().matches("from-file"));
            jail.set_env("TASKMESH_HTTP__TOKEN", "from-env");
            let cfg = load_in(jail, "")?;
            assert!(cfg.http.token.as_ref().unwrap().matches("from-env"));
            let dump = cfg.dump();
            assert!(
                !dump.contains("from-env") && !dump.contains("token ="),
                "{dump}"
            );
            assert!(!format!("{cfg:?}").contains("from-env"));
            Ok(())
        });
    }

    #[test]
    fn the_dashboard_is_on_by_default_and_its_viewer_token_stays_out_of_files() {
        Jail::expect_with(|jail| {
            assert!(load_in(jail, "")?.ui.enabled);
            let off = load_in(jail, "[ui]\nenabled = false\n")?;
            assert!(!off.ui.enabled);
            let in_file = load_in(jail, "[ui]\nviewer_token = \"v\"\n").unwrap_err();
            assert!(in_file.contains("ui.viewer_token must not"), "{in_file}");
            jail.create_file("viewer.txt", "look-only\n")?;
            let alone = load_in(jail, "[ui]\nviewer_token_file = \"viewer.txt\"\n").unwrap_err();
            assert!(
                alone.contains("ui.viewer_token needs http.token"),
                "{alone}"
            );
            jail.set_env("TASKMESH_HTTP__TOKEN", "operate");
            let cfg = load_in(jail, "[ui]\nviewer_token_file = \"viewer.txt\"\n")?;
            assert!(cfg.ui.viewer_token.as_ref().unwrap().matches("look-only"));
            assert!(!cfg.dump().contains("look-only"));
            Ok(())
        });
    }

    #[test]
    fn exec_env_names_that_cannot_be_variables_are_refused_naming_the_key() {
        Jail::expect_with(|jail| {
            let err = load_in(jail, "[exec.env]\n\"A=B\" = \"x\"\n").unwrap_err();
            assert!(err.contains("exec.env") && err.contains("\"A=B\""), "{err}");
            let cfg = load_in(jail, "[exec.env]\nGREETING = \"hi\"\n")?;
            assert_eq!(cfg.exec.env["GREETING"], "hi");
            Ok(())
        });
    }

    #[test]
    fn the_clients_variables_do_not_stop_the_node() {
        Jail::expect_with(|jail| {
            jail.set_env("TASKMESH_TOKEN", "abc");
            jail.set_env("TASKMESH_URL", "http://127.0.0.1:1");
            jail.set_env("TASKMESH_CRASH_CHILD", "1");
            let cfg = load_in(jail, "")?;
            assert_eq!(cfg.http.token, None, "the client's token is not the node's");
            Ok(())
        });
    }

    #[test]
    fn an_empty_token_variable_is_refused_naming_it() {
        Jail::expect_with(|jail| {
            jail.set_env("TASKMESH_HTTP__TOKEN", "");
            let err = load_in(jail, "").unwrap_err();
            assert!(
                err.contains("TASKMESH_HTTP__TOKEN") && err.contains("empty"),
                "{err}"
            );
            jail.set_env("TASKMESH_HTTP__TOKEN", "  ");
            assert!(load_in(jail, "").is_err(), "blank is empty too");
            Ok(())
        });
    }

    #[test]
    fn a_zero_max_body_bytes_is_refused_naming_the_key() {
        Jail::expect_with(|jail| {
            let err = load_in(jail, "[http]\nmax_body_bytes = 0\n").unwrap_err();
            assert!(
                err.contains("http.max_body_bytes must be at least 1"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_directory_given_as_the_config_file_is_called_a_directory() {
        Jail::expect_with(|jail| {
            let dir = jail.create_dir("conf.d")?;
            let err = NodeConfig::load(Some(&dir)).unwrap_err().to_string();
            assert!(err.contains("is a directory"), "{err}");
            let missing = NodeConfig::load(Some(Path::new("nope.toml"))).unwrap_err();
            assert!(missing.to_string().contains("no such file"), "{missing}");
            Ok(())
        });
    }

    #[test]
    fn a_data_dir_under_a_file_is_refused_saying_it_is_not_a_directory() {
        Jail::expect_with(|jail| {
            jail.create_file("plain", "")?;
            let cfg = NodeConfig {
                data_dir: PathBuf::from("plain/data"),
                ..NodeConfig::default()
            };
            let err = cfg.check_data_dir().unwrap_err().to_string();
            assert!(err.contains("plain/data is not a directory"), "{err}");
            let fresh = NodeConfig {
                data_dir: PathBuf::from("new/deeper"),
                ..NodeConfig::default()
            };
            fresh.check_data_dir().map_err(|e| e.to_string())?;
            assert!(!Path::new("new").exists(), "the check creates nothing");
            Ok(())
        });
    }
}
