//! The two system indices, created at preflight when missing.
//!
//! On Elasticsearch 8.x/9.x the connector index templates (installed by the cluster itself) give the
//! indices their mappings and aliases, and `PUT /<index>` with no body is all Elastic's service does.
//! On a bare cluster (no templates, e.g. the OpenSearch-API stand-in), we create the indices with the
//! aliases and the mappings of the fields the service searches and sorts on.

use super::client::EsClient;
use super::connector::{CONNECTORS_CONCRETE_INDEX, CONNECTORS_INDEX};
use super::error::EsError;
use super::job::{JOBS_CONCRETE_INDEX, JOBS_INDEX};
use reqwest::Method;
use serde_json::{Value, json};

/// Names of the index templates Elasticsearch installs for connectors.
const TEMPLATES: [&str; 2] = ["elastic-connectors", "elastic-connectors-sync-jobs"];

/// Creates whatever of the two system indices is missing. Idempotent; safe with concurrent instances.
pub async fn ensure(es: &EsClient) -> Result<(), EsError> {
    let templated = has_connector_templates(es).await?;
    for (concrete, alias, mappings) in [
        (
            CONNECTORS_CONCRETE_INDEX,
            CONNECTORS_INDEX,
            connectors_mappings(),
        ),
        (JOBS_CONCRETE_INDEX, JOBS_INDEX, jobs_mappings()),
    ] {
        if es.index_exists(concrete).await? || es.index_exists(alias).await? {
            continue;
        }
        let body = (!templated).then(|| {
            json!({
                "settings": {"number_of_shards": 1, "auto_expand_replicas": "0-1"},
                "aliases": {alias: {"is_write_index": true}},
                "mappings": mappings,
            })
        });
        tracing::info!(index = concrete, templated, "creating system index");
        es.create_index(concrete, body).await?;
    }
    Ok(())
}

async fn has_connector_templates(es: &EsClient) -> Result<bool, EsError> {
    for name in TEMPLATES {
        match es
            .json(Method::GET, &["_index_template", name], &[], None)
            .await
        {
            Ok(v)
                if v.get("index_templates")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty()) => {}
            Ok(_) => return Ok(false),
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn keyword() -> Value {
    json!({"type": "keyword"})
}

fn date() -> Value {
    json!({"type": "date"})
}

/// Searched/sorted fields of connector documents; everything else is kept in `_source` only.
fn connectors_mappings() -> Value {
    json!({
        "dynamic": false,
        "properties": {
            "deleted": {"type": "boolean"},
            "is_native": {"type": "boolean"},
            "service_type": keyword(),
            "index_name": keyword(),
            "status": keyword(),
            "name": keyword(),
            "last_seen": date(),
            "last_synced": date(),
            "last_sync_status": keyword(),
            "last_sync_scheduled_at": date(),
            "last_incremental_sync_scheduled_at": date(),
            "last_access_control_sync_scheduled_at": date(),
        }
    })
}

/// Searched/sorted fields of job documents.
fn jobs_mappings() -> Value {
    json!({
        "dynamic": false,
        "properties": {
            "connector": {"properties": {"id": keyword(), "index_name": keyword(), "service_type": keyword()}},
            "status": keyword(),
            "job_type": keyword(),
            "trigger_method": keyword(),
            "worker_hostname": keyword(),
            "created_at": date(),
            "started_at": date(),
            "last_seen": date(),
            "completed_at": date(),
            "canceled_at": date(),
            "cancelation_requested_at": date(),
            "indexed_document_count": {"type": "long"},
            "indexed_document_volume": {"type": "long"},
            "deleted_document_count": {"type": "long"},
            "total_document_count": {"type": "long"},
        }
    })
}
