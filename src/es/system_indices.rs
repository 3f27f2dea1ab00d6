//! The two system indices, created at preflight when missing.
//!
//! On Elasticsearch the connector index templates (installed by the cluster itself, with the
//! `_connector` API) give the indices their mappings and aliases, and `PUT /<index>` with no body is
//! all Elastic's service does — and all we do. Right after a cluster starts, its templates may not
//! be installed yet: an index created then would keep a dynamic mapping forever, so while the
//! cluster has (or may have) the `_connector` API we wait for the templates instead. Only a cluster
//! that will never install them — not Elasticsearch, or an Elasticsearch proven to lack the
//! `_connector` API (a minimal distribution) — gets our own mapping of the fields the service
//! searches and sorts on, with the aliases.

use super::client::EsClient;
use super::cluster::ClusterInfo;
use super::connector::{CONNECTORS_CONCRETE_INDEX, CONNECTORS_INDEX};
use super::error::EsError;
use super::job::{JOBS_CONCRETE_INDEX, JOBS_INDEX};
use super::protocol::Probe;
use reqwest::Method;
use serde_json::{Value, json};

/// Names of the index templates Elasticsearch installs for connectors.
const TEMPLATES: [&str; 2] = ["elastic-connectors", "elastic-connectors-sync-jobs"];

#[derive(Debug, thiserror::Error)]
pub enum SystemIndexError {
    #[error(transparent)]
    Es(#[from] EsError),
    /// Worth waiting for: the cluster installs its templates shortly after it starts.
    #[error(
        "the connector index templates (elastic-connectors, elastic-connectors-sync-jobs) are not installed in this cluster yet; the system indices are not created without them"
    )]
    TemplatesPending,
}

/// How a missing system index is created on this cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creation {
    /// `PUT` with no body: the cluster's templates apply.
    Templated,
    /// Our aliases and mappings: the cluster will never have the templates.
    OwnMapping,
    /// Not now: the templates should come.
    Wait,
}

/// `templated`: whether the cluster has the connector templates; `None` when the credentials may not
/// read templates (Kibana's connector keys), and then the `_connector` API vouches for them.
fn creation(templated: Option<bool>, cluster: &ClusterInfo, probe: &Probe) -> Creation {
    match templated {
        Some(true) => Creation::Templated,
        None if *probe == Probe::Present => Creation::Templated,
        _ if !cluster.is_elasticsearch() || *probe == Probe::Absent => Creation::OwnMapping,
        _ => Creation::Wait,
    }
}

/// Creates whatever of the two system indices is missing. Idempotent; safe with concurrent instances.
pub async fn ensure(
    es: &EsClient,
    cluster: &ClusterInfo,
    probe: &Probe,
) -> Result<(), SystemIndexError> {
    let mut how = None;
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
        let how = match how {
            Some(h) => h,
            None => *how.insert(creation(has_connector_templates(es).await?, cluster, probe)),
        };
        if how == Creation::Wait {
            return Err(SystemIndexError::TemplatesPending);
        }
        let templated = how == Creation::Templated;
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

async fn has_connector_templates(es: &EsClient) -> Result<Option<bool>, EsError> {
    for name in TEMPLATES {
        match es
            .json(Method::GET, &["_index_template", name], &[], None)
            .await
        {
            Ok(v)
                if v.get("index_templates")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty()) => {}
            Ok(_) => return Ok(Some(false)),
            Err(e) if e.is_not_found() => return Ok(Some(false)),
            Err(e) if e.status() == Some(reqwest::StatusCode::FORBIDDEN) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(true))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_mapping_only_where_templates_never_come() {
        let es = ClusterInfo::elasticsearch("9.5.4");
        let os = ClusterInfo::from_root(
            &json!({"version": {"number": "3.8.0", "distribution": "opensearch"}}),
        );
        let unknown = Probe::Unknown("403".into());
        let present = Probe::Present;
        assert_eq!(creation(Some(true), &es, &present), Creation::Templated);
        assert_eq!(creation(Some(true), &es, &unknown), Creation::Templated);
        // Started a moment ago: the templates are on their way.
        assert_eq!(creation(Some(false), &es, &present), Creation::Wait);
        assert_eq!(creation(Some(false), &es, &unknown), Creation::Wait);
        // Not allowed to look: the API's presence vouches for the templates.
        assert_eq!(creation(None, &es, &present), Creation::Templated);
        assert_eq!(creation(None, &es, &unknown), Creation::Wait);
        // Never coming.
        assert_eq!(
            creation(Some(false), &es, &Probe::Absent),
            Creation::OwnMapping
        );
        assert_eq!(creation(Some(false), &os, &unknown), Creation::OwnMapping);
    }
}
