//! S3 behind the source seam: [`S3Kind`] (service type `s3`) and the connected [`S3Store`].

use super::client::S3Client;
use super::document::to_document;
use super::error::S3Error;
use super::limits;
use super::listing::{BucketLister, S3Object};
use super::rules;
use super::schema::configuration_schema;
use super::settings::S3Settings;
use crate::config::S3Config;
use crate::source::{
    Listed, ObjectReader, PageLister, Partition, PartitionError, Source, SourceError, SourceKind,
};
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Amazon S3 and S3-compatible stores, limited by config.yml's `s3.*`.
#[derive(Debug, Clone, Default)]
pub struct S3Kind {
    limits: S3Config,
}

impl S3Kind {
    pub fn new(limits: S3Config) -> Self {
        Self { limits }
    }
}

#[async_trait]
impl SourceKind for S3Kind {
    fn service_type(&self) -> &'static str {
        "s3"
    }

    fn configuration_schema(&self) -> Map<String, Value> {
        configuration_schema()
    }

    /// Elastic's S3 features, with incremental sync enabled (Elastic's S3 connector has none).
    fn features(&self) -> Value {
        json!({
            "sync_rules": {"basic": {"enabled": true}, "advanced": {"enabled": true}},
            "document_level_security": {"enabled": false},
            "incremental_sync": {"enabled": true},
            "native_connector_api_keys": {"enabled": false},
        })
    }

    fn validate_advanced_rules(&self, value: &Value) -> Result<(), String> {
        rules::parse(value).map(|_| ())
    }

    /// Reads and validates the configuration, checks it against config.yml's `s3.*` limits
    /// before any request, builds the client and pings S3. The error text never holds the
    /// connector's secret or session token.
    async fn connect(
        &self,
        configuration: &Map<String, Value>,
    ) -> Result<Box<dyn Source>, SourceError> {
        let settings = S3Settings::from_configuration(configuration)
            .map_err(|e| SourceError::new(e.to_string()))?;
        limits::check(&self.limits, &settings).map_err(|e| SourceError::new(e.to_string()))?;
        let settings = Arc::new(settings);
        let store = S3Store {
            client: S3Client::new(&settings)
                .await
                .map_err(|e| scrubbed(&settings, e))?,
            settings,
        };
        store
            .client
            .ping()
            .await
            .map_err(|e| scrubbed(&store.settings, e))?;
        tracing::debug!("successfully connected to aws");
        Ok(Box::new(store))
    }
}

/// An S3 error as a [`SourceError`], without the connector's secrets.
fn scrubbed(settings: &S3Settings, e: S3Error) -> SourceError {
    SourceError::new(limits::scrub(settings, &e.to_string()))
}

/// A connected S3 store: partitions are buckets (with an advanced rule's prefix and filter).
#[derive(Debug)]
pub struct S3Store {
    client: S3Client,
    settings: Arc<S3Settings>,
}

#[async_trait]
impl Source for S3Store {
    /// Advanced rules, when present, replace `buckets` entirely (docs/architecture.md#the-s3-source); `buckets: *` is resolved
    /// with ListBuckets.
    async fn partitions(&self, advanced: Option<&Value>) -> Result<Vec<Partition>, PartitionError> {
        if let Some(value) = advanced {
            let parsed = rules::parse(value).map_err(PartitionError::Rules)?;
            return Ok(parsed
                .into_iter()
                .map(|rule| Partition {
                    name: rule.bucket.clone(),
                    prefix: rule.prefix.clone(),
                    filter: Some(Arc::new(rule)),
                })
                .collect());
        }
        let buckets = self
            .client
            .resolve_buckets()
            .await
            .map_err(|e| scrubbed(&self.settings, e))?;
        Ok(buckets.into_iter().map(Partition::whole).collect())
    }

    async fn list(
        &self,
        partition: &Partition,
        start_after: Option<String>,
    ) -> Result<Box<dyn PageLister>, SourceError> {
        let lister = self
            .client
            .lister(&partition.name, partition.prefix.clone(), start_after)
            .await
            .map_err(|e| scrubbed(&self.settings, e))?;
        Ok(Box::new(Pages {
            lister,
            settings: self.settings.clone(),
        }))
    }

    async fn first_key(
        &self,
        partition: &Partition,
        prefix: &str,
        after: &str,
    ) -> Result<Option<String>, SourceError> {
        self.client
            .first_key(&partition.name, prefix, after)
            .await
            .map_err(|e| scrubbed(&self.settings, e))
    }

    async fn open(&self, partition: &str, key: &str) -> Result<ObjectReader, SourceError> {
        let body = self
            .client
            .get_object(partition, key)
            .await
            .map_err(|e| scrubbed(&self.settings, e))?;
        Ok(Box::new(body.into_async_read()))
    }

    fn throttled(&self) -> u64 {
        self.client.throttled()
    }
}

struct Pages {
    lister: BucketLister,
    settings: Arc<S3Settings>,
}

#[async_trait]
impl PageLister for Pages {
    async fn next_page(&mut self) -> Result<Option<Vec<Listed>>, SourceError> {
        let page = self
            .lister
            .next_page()
            .await
            .map_err(|e| scrubbed(&self.settings, e))?;
        Ok(page.map(|objects| objects.into_iter().map(listed).collect()))
    }
}

fn listed(object: S3Object) -> Listed {
    Listed {
        document: to_document(&object),
        size: object.size.max(0) as u64,
        etag: object.etag,
        key: object.key,
    }
}
