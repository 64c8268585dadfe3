//! The system's settings as data, loadable from TOML (`config/default.toml` documents
//! every key). Unknown keys are rejected, and errors name the key.
//!
//! ```
//! let cfg = taskmesh::config::SystemConfig::from_toml(r#"
//!     namespace = "shop"
//!     [[queues]]
//!     name = "mail"
//!     max_workers = 4
//! "#).unwrap();
//! assert_eq!(cfg.queues[0].max_workers, 4);
//! assert_eq!(cfg.queues[0].min_workers, 2, "unset keys keep their defaults");
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::breaker::BreakerConfig;
use crate::error::ValidationError;
use crate::queue::QueueConfig;
use crate::ratelimit::RateLimit;
use crate::task::Limits;

/// Everything a [`crate::TaskSystemBuilder`] takes besides handlers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemConfig {
    /// Prefix of every actor name and process group.
    pub namespace: String,
    /// How long a cancelled or timed-out handler gets before it is aborted.
    #[serde(with = "crate::task::millis", rename = "cancel_grace_ms")]
    pub cancel_grace: Duration,
    /// How long ended tasks stay queryable.
    #[serde(with = "crate::task::millis", rename = "retention_ms")]
    pub retention: Duration,
    /// At most this many ended tasks are kept.
    pub retention_max: usize,
    /// Bounds on submitted tasks.
    pub limits: Limits,
    /// The queues; `default` is added if missing.
    pub queues: Vec<QueueConfig>,
    /// Gates of registered task kinds, set here instead of in code.
    pub kinds: Vec<KindConfig>,
}

/// A task kind's circuit breaker and rate limit, set by configuration: each one given
/// here replaces the one the handler was registered with. The kind must be registered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindConfig {
    /// The kind (`exec`, `noop`, or one an embedding application registers).
    pub name: String,
    /// Opens after consecutive failures; the kind's tasks then wait for a probe.
    #[serde(default)]
    pub breaker: Option<BreakerConfig>,
    /// Attempts of this kind started per second.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            namespace: "taskmesh".into(),
            cancel_grace: Duration::from_secs(5),
            retention: Duration::from_secs(300),
            retention_max: 100_000,
            limits: Limits::default(),
            queues: vec![QueueConfig::new("default")],
            kinds: Vec::new(),
        }
    }
}

impl SystemConfig {
    /// Parses TOML. The error says which key is wrong and why.
    pub fn from_toml(text: &str) -> Result<Self, ValidationError> {
        toml::from_str(text)
            .map_err(|e| ValidationError::new("config", e.to_string().trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = SystemConfig::from_toml("namespce = \"x\"").unwrap_err();
        assert!(err.to_string().contains("namespce"), "{err}");
        let err = SystemConfig::from_toml("[[queues]]\nname = \"q\"\nmax_workers = \"many\"")
            .unwrap_err();
        assert!(err.to_string().contains("max_workers"), "{err}");
    }

    #[test]
    fn a_kinds_breaker_and_rate_limit_are_read_with_their_scope() {
        let cfg = SystemConfig::from_toml(
            r#"
            [[kinds]]
            name = "exec"
            breaker = { failure_threshold = 3, cooldown_ms = 2000, scope = "cluster" }
            rate_limit = { per_second = 10, burst = 5 }
        "#,
        )
        .unwrap();
        let kind = &cfg.kinds[0];
        let breaker = kind.breaker.unwrap();
        assert_eq!(
            (breaker.failure_threshold, breaker.cooldown, breaker.scope),
            (3, Duration::from_secs(2), crate::scope::Scope::Cluster)
        );
        assert_eq!(kind.rate_limit.unwrap().burst.get(), 5);
        let err = SystemConfig::from_toml(
            "[[kinds]]\nname = \"x\"\nbreaker = { failure_threshold = 3, cooldown = 5 }",
        )
        .unwrap_err();
        assert!(err.to_string().contains("cooldown"), "{err}");
    }
}
