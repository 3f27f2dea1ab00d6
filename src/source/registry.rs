//! The one place that knows which kinds of source this build has, by `service_type`.

use super::SourceKind;
use crate::config::Config;
use std::sync::Arc;

/// The source kinds this build can sync, in registration order.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: Vec<Arc<dyn SourceKind>>,
}

impl Registry {
    /// Every source of this build, each given its own section of `config.yml`.
    pub fn new(config: &Config) -> Self {
        let mut registry = Self::default();
        registry.add(super::s3::S3Kind::new(config.s3.clone()));
        registry
    }

    /// Adds a kind; a later kind of the same `service_type` replaces an earlier one.
    pub fn add(&mut self, kind: impl SourceKind + 'static) {
        let kind: Arc<dyn SourceKind> = Arc::new(kind);
        self.kinds
            .retain(|k| k.service_type() != kind.service_type());
        self.kinds.push(kind);
    }

    /// The kind serving `service_type`, if this build has one.
    pub fn get(&self, service_type: &str) -> Option<&Arc<dyn SourceKind>> {
        self.kinds.iter().find(|k| k.service_type() == service_type)
    }

    /// Whether this build can sync connectors of `service_type`.
    pub fn supports(&self, service_type: &str) -> bool {
        self.get(service_type).is_some()
    }

    /// The service types this build can sync.
    pub fn service_types(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.service_type()).collect()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("service_types", &self.service_types())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_is_registered() {
        let registry = Registry::new(&Config::default());
        assert_eq!(registry.service_types(), ["s3"]);
        assert!(registry.supports("s3") && !registry.supports("gcs"));
    }
}
