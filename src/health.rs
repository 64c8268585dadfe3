//! Health reports. Every service actor answers a health check with a [`ServiceHealth`];
//! the system aggregates them into a [`SystemHealth`].

use serde::{Deserialize, Serialize};

/// How well a service is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Working normally.
    Healthy,
    /// Working, but with reduced capacity (e.g. an open circuit breaker, restarts).
    Degraded,
    /// Not working, or did not answer.
    Down,
}

/// One service's answer to a health check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    /// The service's name, e.g. `supervisor:root` or `pool:default`.
    pub service: String,
    /// Its status.
    pub status: HealthStatus,
    /// A short human-readable detail.
    pub detail: String,
}

impl ServiceHealth {
    /// A report for `service`.
    pub fn new(
        service: impl Into<String>,
        status: HealthStatus,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            service: service.into(),
            status,
            detail: detail.into(),
        }
    }
}

/// The aggregate of every service's report. The overall status is the worst one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemHealth {
    /// The worst status among the services (down if any service did not answer).
    pub status: HealthStatus,
    /// Each service's report.
    pub services: Vec<ServiceHealth>,
}

impl SystemHealth {
    /// Aggregates reports; an empty set is down (nothing is running).
    pub fn aggregate(services: Vec<ServiceHealth>) -> Self {
        let status = services
            .iter()
            .map(|s| s.status)
            .max()
            .unwrap_or(HealthStatus::Down);
        Self { status, services }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_status_wins() {
        let h = SystemHealth::aggregate(vec![
            ServiceHealth::new("a", HealthStatus::Healthy, ""),
            ServiceHealth::new("b", HealthStatus::Degraded, ""),
        ]);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert_eq!(SystemHealth::aggregate(vec![]).status, HealthStatus::Down);
    }
}
