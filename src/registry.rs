//! Namespaced names for actors and process groups.
//!
//! ractor's registry and process groups are process-global. Every name and group of a
//! system is therefore prefixed with its namespace, so several systems run side by side in
//! one process (parallel tests, tenants) without seeing each other.

use std::fmt;
use std::sync::Arc;

use crate::error::ValidationError;

/// A system's namespace, e.g. `"prod"` or `"test-42"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Namespace(Arc<str>);

impl Namespace {
    /// Validates `name`: 1 to 64 characters of letters, digits, `-`, `_` and `.`.
    pub fn new(name: &str) -> Result<Self, ValidationError> {
        let ok = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(ValidationError::new(
                "namespace",
                format!("expected 1-64 of [A-Za-z0-9._-], got {name:?}"),
            ));
        }
        Ok(Self(name.into()))
    }

    /// The namespace itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The registry name of a service of this system, e.g. `prod/pool/default`.
    pub fn actor_name(&self, local: &str) -> String {
        format!("{}/{local}", self.0)
    }

    /// True if `name` belongs to this namespace.
    pub fn owns(&self, name: &str) -> bool {
        name.strip_prefix(&*self.0)
            .is_some_and(|rest| rest.starts_with('/'))
    }

    /// The process-group scope of this system.
    pub fn scope(&self) -> String {
        self.0.to_string()
    }

    /// The process group that a queue's workers join.
    pub fn worker_group(&self, queue: &str) -> String {
        format!("workers/{queue}")
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_recognised() {
        let ns = Namespace::new("t1").unwrap();
        assert_eq!(ns.actor_name("pool/default"), "t1/pool/default");
        assert!(ns.owns("t1/pool/default"));
        assert!(!ns.owns("t10/pool/default"));
        assert!(!Namespace::new("t10").unwrap().owns("t1/x"));
    }

    #[test]
    fn bad_namespaces_are_rejected_with_the_value() {
        for bad in ["", "a/b", "sp ace", &"x".repeat(65)] {
            let err = Namespace::new(bad).unwrap_err();
            assert_eq!(err.field, "namespace");
        }
    }
}
