//! The sync job document in `.elastic-connectors-sync-jobs`: creation, claim, stats, termination.

use super::client::{EsClient, Hit, Occ};
use super::connector::{Connector, OCC_ATTEMPTS};
use super::documents::{Count, JobConnector, JobDoc};
use super::error::EsError;
use super::kinds::{JobStatus, JobType, Read, TriggerMethod};
use super::protocol::{ConnectorApi, is_missing_endpoint};
use super::time::now_iso;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub const JOBS_INDEX: &str = ".elastic-connectors-sync-jobs";
pub const JOBS_CONCRETE_INDEX: &str = ".elastic-connectors-sync-jobs-v1";

/// A job's final state, as its last write records it (`JobEnd::doc`).
#[derive(Debug, Clone)]
pub struct JobEnd {
    pub status: JobStatus,
    pub error: Option<String>,
    pub stats: Option<JobStats>,
    pub total_document_count: Option<u64>,
    pub metadata: Option<Value>,
}

/// What became of a job's end write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Written,
    /// The job document no longer exists.
    Gone,
    /// Not ours to end any more; the status it was found in.
    DecidedElsewhere(String),
}

impl JobEnd {
    pub fn new(status: JobStatus) -> Self {
        Self {
            status,
            error: None,
            stats: None,
            total_document_count: None,
            metadata: None,
        }
    }

    /// The partial update of the termination write, keys in the order Elastic sends them.
    pub fn doc(&self) -> Value {
        let now = now_iso();
        let mut doc = Map::new();
        doc.insert("last_seen".into(), json!(now));
        doc.insert("status".into(), json!(self.status));
        doc.insert("error".into(), json!(self.error));
        if self.status.is_terminal() {
            doc.insert("completed_at".into(), json!(now));
        }
        if self.status == JobStatus::Canceled {
            doc.insert("canceled_at".into(), json!(now));
        }
        if let Some(s) = self.stats {
            doc.insert(
                "indexed_document_count".into(),
                json!(s.indexed_document_count),
            );
            doc.insert(
                "indexed_document_volume".into(),
                json!(s.indexed_document_volume),
            );
            doc.insert(
                "deleted_document_count".into(),
                json!(s.deleted_document_count),
            );
        }
        if let Some(t) = self.total_document_count {
            doc.insert("total_document_count".into(), json!(t));
        }
        if let Some(m) = &self.metadata {
            doc.insert("metadata".into(), m.clone());
        }
        Value::Object(doc)
    }
}

/// A job as read from the index: its id, the read's concurrency token and the typed document,
/// which carries every field it does not name (`es/documents.rs`).
#[derive(Clone)]
pub struct SyncJob {
    pub id: String,
    pub occ: Option<Occ>,
    pub doc: JobDoc,
}

impl SyncJob {
    pub fn from_hit(hit: Hit) -> Self {
        let (id, occ, doc) = hit.into_document();
        Self { id, occ, doc }
    }

    /// The status as written (empty when missing), for messages.
    pub fn status_text(&self) -> &str {
        self.doc.status.as_ref().map_or("", Read::as_str)
    }
    /// The status; `None` when missing or not one this service knows.
    pub fn status(&self) -> Option<JobStatus> {
        self.doc.status.as_ref().and_then(Read::known)
    }
    /// The job type; a missing or unknown one is read as `full` (as Elastic does).
    pub fn job_type(&self) -> JobType {
        self.doc
            .job_type
            .as_ref()
            .and_then(Read::known)
            .unwrap_or(JobType::Full)
    }
    /// The connector snapshot (empty when missing).
    pub fn connector_snapshot(&self) -> JobConnector {
        self.doc.connector.clone().unwrap_or_default()
    }
    pub fn connector_id(&self) -> Option<&str> {
        self.doc.connector.as_ref()?.id.as_deref()
    }
    pub fn index_name(&self) -> Option<&str> {
        self.doc.connector.as_ref()?.index_name.as_deref()
    }
    pub fn configuration(&self) -> Map<String, Value> {
        self.doc
            .connector
            .as_ref()
            .and_then(|c| c.configuration.clone())
            .unwrap_or_default()
    }
    pub fn filtering(&self) -> Value {
        self.doc
            .connector
            .as_ref()
            .and_then(|c| c.filtering.clone())
            .unwrap_or_else(|| json!({}))
    }
    /// The counters the job document holds (0 when missing).
    pub fn stats(&self) -> JobStats {
        let n = |c: Option<Count>| c.map_or(0, |c| c.0);
        JobStats {
            indexed_document_count: n(self.doc.indexed_document_count),
            indexed_document_volume: n(self.doc.indexed_document_volume),
            deleted_document_count: n(self.doc.deleted_document_count),
        }
    }
    pub fn metadata(&self) -> Map<String, Value> {
        self.doc.metadata.clone().unwrap_or_default()
    }
}

/// The three counters reported while a job runs and at its end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobStats {
    pub indexed_document_count: u64,
    pub indexed_document_volume: u64,
    pub deleted_document_count: u64,
}

/// Reads and writes of `.elastic-connectors-sync-jobs`. In API mode, creation, claim (8.15+) and
/// stats go through the `_connector/_sync_job` APIs; termination is always a direct update, as in
/// Elastic's service (docs/protocol.md).
#[derive(Clone)]
pub struct JobStore {
    es: EsClient,
    api: bool,
    /// Cleared for good when the cluster turns out to have no `_claim` handler.
    claim_api: Arc<AtomicBool>,
    stats_metadata: bool,
}

impl JobStore {
    pub fn new(es: EsClient, api: ConnectorApi) -> Self {
        Self {
            es,
            api: api.enabled,
            claim_api: Arc::new(AtomicBool::new(api.enabled && api.claim)),
            stats_metadata: api.stats_metadata,
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<SyncJob>, EsError> {
        Ok(self
            .es
            .get_doc(JOBS_INDEX, id)
            .await?
            .map(SyncJob::from_hit))
    }

    /// Creates a pending job (docs/protocol.md#a-jobs-life): the job snapshots the connector's active filtering and config.
    pub async fn create(
        &self,
        connector: &Connector,
        job_type: JobType,
        trigger: TriggerMethod,
    ) -> Result<String, EsError> {
        if self.api {
            let body = json!({"id": connector.id, "job_type": job_type, "trigger_method": trigger});
            let resp = self
                .es
                .json(Method::POST, &["_connector", "_sync_job"], &[], Some(body))
                .await?;
            return resp
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| EsError::Decode {
                    path: "/_connector/_sync_job".into(),
                    cause: "no id in response".into(),
                });
        }
        let now = now_iso();
        let mut index_name = connector.index_name().unwrap_or_default().to_string();
        if job_type == JobType::AccessControl {
            index_name = format!(".search-acl-filter-{index_name}");
        }
        let doc = json!({
            "connector": {
                "id": connector.id,
                "filtering": connector.active_filtering(),
                "index_name": index_name,
                "language": connector.language(),
                "pipeline": connector.pipeline().to_value(),
                "service_type": connector.service_type(),
                "configuration": Value::Object(connector.configuration()),
            },
            "trigger_method": trigger,
            "job_type": job_type,
            "status": JobStatus::Pending,
            "indexed_document_count": 0,
            "indexed_document_volume": 0,
            "deleted_document_count": 0,
            "created_at": now,
            "last_seen": now,
        });
        self.es.create_doc(JOBS_INDEX, doc).await
    }

    /// Pending and suspended content jobs of these connectors, oldest first.
    pub async fn pending(
        &self,
        connector_ids: &[String],
        job_types: &[JobType],
    ) -> Result<Vec<SyncJob>, EsError> {
        if connector_ids.is_empty() {
            return Ok(vec![]);
        }
        let query = json!({"bool": {"must": [
            {"terms": {"status": [JobStatus::Pending, JobStatus::Suspended]}},
            {"terms": {"connector.id": connector_ids}},
            {"terms": {"job_type": job_types}},
        ]}});
        let hits = self
            .es
            .search_all(JOBS_INDEX, query, Some(json!([{"created_at": "asc"}])))
            .await?;
        Ok(hits.into_iter().map(SyncJob::from_hit).collect())
    }

    /// Running jobs matching an extra filter (cleanup).
    pub async fn search(&self, query: Value) -> Result<Vec<SyncJob>, EsError> {
        let hits = self.es.search_all(JOBS_INDEX, query, None).await?;
        Ok(hits.into_iter().map(SyncJob::from_hit).collect())
    }

    /// Claim (docs/protocol.md): `in_progress`, `started_at`, `worker_hostname`, and the cursor to
    /// resume from. Written directly, the claim is guarded by `occ` (the read that found the job
    /// waiting): of two instances claiming the same job, one gets a conflict.
    pub async fn claim(
        &self,
        job_id: &str,
        hostname: &str,
        sync_cursor: Value,
        occ: Option<Occ>,
    ) -> Result<(), EsError> {
        if self.claim_api.load(Ordering::Relaxed) {
            let mut body = json!({"worker_hostname": hostname});
            if !sync_cursor.is_null() {
                body["sync_cursor"] = sync_cursor.clone();
            }
            let path = ["_connector", "_sync_job", job_id, "_claim"];
            match self.es.json(Method::PUT, &path, &[], Some(body)).await {
                Ok(_) => return Ok(()),
                // A cluster older than its version said (or a proxy in between): claim directly.
                Err(e) if is_missing_endpoint(&e) => {
                    tracing::warn!(error = %e, "the cluster has no _claim endpoint; claiming jobs with a direct update");
                    self.claim_api.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        let now = now_iso();
        let doc = json!({"status": JobStatus::InProgress, "started_at": now, "last_seen": now,
            "worker_hostname": hostname, "connector.sync_cursor": sync_cursor});
        self.es.update_doc(JOBS_INDEX, job_id, doc, occ).await
    }

    /// Periodic stats; refreshes `last_seen`. Written directly, the update is guarded by `occ` (the
    /// read that found the job still ours); the `_stats` API has no such guard.
    pub async fn report_stats(
        &self,
        job_id: &str,
        stats: JobStats,
        metadata: Option<Value>,
        occ: Option<Occ>,
    ) -> Result<(), EsError> {
        if self.api {
            let mut body = json!({
                "indexed_document_count": stats.indexed_document_count,
                "indexed_document_volume": stats.indexed_document_volume,
                "deleted_document_count": stats.deleted_document_count,
            });
            let metadata = metadata.filter(|m| m.as_object().is_some_and(|o| !o.is_empty()));
            if self.stats_metadata {
                body["metadata"] = metadata.clone().unwrap_or_else(|| json!({}));
            }
            let path = ["_connector", "_sync_job", job_id, "_stats"];
            self.es.json(Method::PUT, &path, &[], Some(body)).await?;
            // Before 8.15 `_stats` refuses `metadata`; the checkpoint in it must still be written.
            return match metadata.filter(|_| !self.stats_metadata) {
                Some(m) => {
                    let doc = json!({ "metadata": m });
                    self.es.update_doc(JOBS_INDEX, job_id, doc, None).await
                }
                None => Ok(()),
            };
        }
        let mut doc = json!({
            "last_seen": now_iso(),
            "indexed_document_count": stats.indexed_document_count,
            "indexed_document_volume": stats.indexed_document_volume,
            "deleted_document_count": stats.deleted_document_count,
        });
        if let Some(m) = metadata.filter(|m| m.as_object().is_some_and(|o| !o.is_empty())) {
            doc["metadata"] = m;
        }
        self.es.update_doc(JOBS_INDEX, job_id, doc, occ).await
    }

    /// A job's last write, unless its fate was decided elsewhere. Each attempt reads the job; when
    /// `ours` says the job is no longer ours to end (another instance took it over, cleanup or a user
    /// ended it), nothing is written. Otherwise the write is guarded by that read
    /// (`if_seq_no`/`if_primary_term`), so it can never overwrite a newer state: a conflict re-reads.
    pub async fn end(
        &self,
        job_id: &str,
        end: &JobEnd,
        ours: impl Fn(&SyncJob) -> bool,
    ) -> Result<Ended, EsError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(job) = self.get(job_id).await? else {
                return Ok(Ended::Gone);
            };
            if !ours(&job) {
                return Ok(Ended::DecidedElsewhere(job.status_text().to_string()));
            }
            match self.update_guarded(job_id, end.doc(), job.occ).await {
                Ok(()) => return Ok(Ended::Written),
                Err(e) if e.is_conflict() && attempt < OCC_ATTEMPTS => {
                    tracing::debug!(job_id, attempt, "job end conflicted, re-reading");
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A partial update guarded by the read that produced `occ` (409 → `EsError::Conflict`).
    pub async fn update_guarded(
        &self,
        job_id: &str,
        doc: Value,
        occ: Option<Occ>,
    ) -> Result<(), EsError> {
        self.es.update_doc(JOBS_INDEX, job_id, doc, occ).await
    }

    /// Marks a job `canceling` (what Kibana and the CLI do).
    pub async fn request_cancel(&self, job_id: &str) -> Result<(), EsError> {
        let doc = json!({"last_seen": now_iso(), "status": JobStatus::Canceling, "error": null,
            "cancelation_requested_at": now_iso()});
        self.es.update_doc(JOBS_INDEX, job_id, doc, None).await
    }
}
