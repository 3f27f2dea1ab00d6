//! The service's view of a data source: its schema, its features, and "is it reachable?".

use crate::config::S3Config;
use crate::source::s3::{S3Settings, S3Source, configuration_schema, limits};
use serde_json::{Map, Value, json};

/// The `features` object written for S3 connectors (§3.4), with incremental sync enabled (Elastic's S3
/// connector has none).
pub fn features() -> Value {
    json!({
        "sync_rules": {"basic": {"enabled": true}, "advanced": {"enabled": true}},
        "document_level_security": {"enabled": false},
        "incremental_sync": {"enabled": true},
        "native_connector_api_keys": {"enabled": false},
    })
}

pub fn schema() -> Map<String, Value> {
    configuration_schema()
}

/// Reads and validates a stored configuration, checks it against config.yml's `s3.*` limits
/// before any request, builds the client and pings S3. The error text is what the connector's (or
/// job's) `error` field shows: it never holds the connector's secret or session token.
pub async fn connect(
    limits: &S3Config,
    configuration: &Map<String, Value>,
) -> Result<(S3Settings, S3Source), String> {
    let settings = S3Settings::from_configuration(configuration).map_err(|e| e.to_string())?;
    limits::check(limits, &settings).map_err(|e| e.to_string())?;
    let scrubbed = |e: crate::source::s3::S3Error| limits::scrub(&settings, &e.to_string());
    let source = S3Source::new(&settings).await.map_err(scrubbed)?;
    source.ping().await.map_err(scrubbed)?;
    tracing::debug!("successfully connected to aws");
    Ok((settings, source))
}
