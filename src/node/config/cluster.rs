//! The `[cluster]` section: joining other nodes over the mesh. A node is in a cluster
//! when `cluster.listen` is set; a cluster needs a PostgreSQL store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::cluster::{ClusterConfig, Routing, TlsFiles};
use crate::secret::Secret;

/// The node's part in a cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// This node's name: unique in the cluster, the same across restarts (default
    /// `store.node_name`, else `{namespace}@{host}:{http port}`).
    pub node_name: Option<String>,
    /// Where to accept peers, e.g. `127.0.0.1:7701`. Unset: no cluster.
    pub listen: Option<SocketAddr>,
    /// The address peers dial (`host:port`; default `listen`, which must then not be a
    /// wildcard address).
    pub advertise: Option<String>,
    /// Addresses to dial besides the nodes registered in the database.
    pub seeds: Vec<String>,
    /// A file holding the cluster's cookie (a shared secret).
    pub cookie_file: Option<PathBuf>,
    /// The cookie itself: from `TASKMESH_CLUSTER__COOKIE` only, never a config file.
    #[serde(skip_serializing)]
    pub cookie: Option<Secret>,
    /// Mutual TLS between nodes (`cert`, `key`, `ca`: PEM files); plain connections are
    /// then refused.
    pub tls: Option<TlsFiles>,
    /// How often each peer is pinged (default 1000 ms).
    pub ping_ms: u64,
    /// A peer silent for this long is suspect and its session is closed (default 2000 ms).
    pub suspect_after_ms: u64,
    /// The longest a peer connection may take to authenticate (default 3000 ms).
    pub handshake_timeout_ms: u64,
    /// Messages between nodes larger than this are refused (default 4 MiB).
    pub max_message_bytes: usize,
    /// Where new tasks start, per queue: `default` and `queues.NAME`, each one of
    /// `local`, `round_robin`, `least_loaded`, `consistent_hash`.
    pub routing: Routing,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_name: None,
            listen: None,
            advertise: None,
            seeds: Vec::new(),
            cookie_file: None,
            cookie: None,
            tls: None,
            ping_ms: 1000,
            suspect_after_ms: 2000,
            handshake_timeout_ms: 3000,
            max_message_bytes: 4 << 20,
            routing: Routing::default(),
        }
    }
}

fn invalid(why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(why.into())
}

impl ClusterSettings {
    /// Reads the cookie file, if one is set and the cookie did not come from the
    /// environment.
    pub(super) fn read_cookie_file(&mut self) -> Result<(), ConfigError> {
        if let (Some(path), None) = (&self.cookie_file, &self.cookie) {
            self.cookie = Some(super::check::secret_file("cluster.cookie_file", path)?);
        }
        Ok(())
    }

    /// Checks a cluster's settings (nothing when `listen` is unset).
    pub(super) fn check(&self, postgres: bool) -> Result<(), ConfigError> {
        let Some(listen) = self.listen else {
            return Ok(());
        };
        if !postgres {
            return Err(invalid(
                "cluster.listen is set but the store is SQLite: a cluster needs a PostgreSQL store (store.url = postgres://…)",
            ));
        }
        if self
            .cookie
            .as_ref()
            .is_none_or(|c| c.expose().trim().is_empty())
        {
            return Err(invalid(
                "cluster.cookie is missing: set TASKMESH_CLUSTER__COOKIE or cluster.cookie_file",
            ));
        }
        if self.advertise.is_none() && listen.ip().is_unspecified() {
            return Err(invalid(format!(
                "cluster.advertise is missing: cluster.listen {listen} is a wildcard address peers cannot dial"
            )));
        }
        let times = [
            ("cluster.ping_ms", self.ping_ms),
            ("cluster.suspect_after_ms", self.suspect_after_ms),
            ("cluster.handshake_timeout_ms", self.handshake_timeout_ms),
            ("cluster.max_message_bytes", self.max_message_bytes as u64),
        ];
        if let Some((key, _)) = times.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(format!("{key} must be at least 1, got 0")));
        }
        if self.suspect_after_ms < self.ping_ms {
            return Err(invalid(format!(
                "cluster.suspect_after_ms ({}) must be at least cluster.ping_ms ({})",
                self.suspect_after_ms, self.ping_ms
            )));
        }
        Ok(())
    }

    /// The library's configuration for node `node_name`, if a cluster is configured.
    pub fn config(&self, node_name: &str) -> Option<ClusterConfig> {
        let listen = self.listen?;
        let advertise = self.advertise.clone().unwrap_or_else(|| listen.to_string());
        let cookie = self.cookie.clone()?;
        let ms = Duration::from_millis;
        let mut c = ClusterConfig::new(node_name, listen, advertise, cookie);
        c.seeds = self.seeds.clone();
        c.tls = self.tls.clone();
        c.ping_every = ms(self.ping_ms);
        c.suspect_after = ms(self.suspect_after_ms);
        c.handshake_timeout = ms(self.handshake_timeout_ms);
        c.max_message_bytes = self.max_message_bytes;
        c.routing = self.routing.clone();
        Some(c)
    }
}

#[cfg(test)]
mod tests;
