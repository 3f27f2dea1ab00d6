//! What every service loop shares.

use super::error_budget::ErrorBudget;
use super::lease::{LEASE, OWNERSHIP_FRESH};
use crate::config::{Config, ConnectorEntry};
use crate::es::bulk::Fence;
use crate::es::connector::ConnectorStore;
use crate::es::connector::OCC_ATTEMPTS;
use crate::es::job::{JobStats, JobStore, SyncJob};
use crate::es::kinds::JobStatus;
use crate::es::protocol::ConnectorApi;
use crate::es::{EsClient, EsError};
use crate::source::Registry;
use crate::sync::checkpoint::DeletionsCounted;
use crate::sync::{ConnectorNow, ContentIndex, JobEnv, SyncError};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub struct Context {
    pub config: Config,
    /// The sources this build can sync, by `service_type`.
    pub sources: Registry,
    /// Client with the service's own credentials (connector and job indices).
    pub es: EsClient,
    pub connectors: ConnectorStore,
    pub jobs: JobStore,
    pub hostname: String,
    /// Cancelled on SIGTERM/SIGINT: loops stop, running jobs are suspended.
    pub shutdown: CancellationToken,
    /// Connectors checked in at least once by this process (the first check-in is forced).
    pub checked_in: Mutex<HashSet<String>>,
    /// Jobs this process runs now.
    pub running: Mutex<HashMap<String, Run>>,
    /// Wakes the executor before its next poll (a job was taken over and waits to resume).
    pub wake_executor: Notify,
}

/// One job this process runs.
#[derive(Debug)]
pub struct Run {
    /// The `started_at` our claim wrote, once claimed: the identity of our run of the job (see
    /// [`Context::owns`]).
    started_at: Option<Value>,
    /// What the run's bulk requests pass: open while its job watcher has recently found the job
    /// ours (see [`Context::confirm`]).
    fence: Arc<Fence>,
}

impl Run {
    /// A run about to claim its job.
    pub(crate) fn new() -> Self {
        Run {
            started_at: None,
            fence: Arc::new(Fence::new(OWNERSHIP_FRESH, LEASE)),
        }
    }
}

impl Context {
    /// `api`: the `_connector` endpoints to use where Elastic does (see [`crate::es::protocol`]).
    pub fn new(
        config: Config,
        es: EsClient,
        shutdown: CancellationToken,
        api: ConnectorApi,
    ) -> Self {
        Self {
            connectors: ConnectorStore::new(es.clone(), api),
            jobs: JobStore::new(es.clone(), api),
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            sources: Registry::new(&config),
            config,
            es,
            shutdown,
            checked_in: Mutex::new(HashSet::new()),
            running: Mutex::new(HashMap::new()),
            wake_executor: Notify::new(),
        }
    }

    /// Whether this process runs the job now.
    pub fn is_running_here(&self, job_id: &str) -> bool {
        self.running.lock().expect("lock").contains_key(job_id)
    }

    /// Remembers which run of the job is ours, right after our claim: the `started_at` the claim
    /// wrote (the `_claim` API sets it on the cluster's clock, so it is read back). Without that
    /// read the job is ours while it runs, as before (a warning says so).
    pub async fn remember_claim(&self, job_id: &str) {
        let started_at = match self.jobs.get(job_id).await {
            Ok(Some(job)) => job.doc.started_at.filter(|s| !s.is_null()),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(job_id, error = %e, "could not read the job after claiming it; \
                    a takeover by another instance is noticed only once the job stops running");
                None
            }
        };
        if let Some(run) = self.running.lock().expect("lock").get_mut(job_id) {
            run.started_at = started_at;
        }
    }

    /// Whether `job`, as just read, is still our run of it: running (or being canceled) and
    /// started by our claim (docs/protocol.md, "Dead instances and clock skew"). An instance cut off
    /// from Elasticsearch past its lease (a network partition, a paused process) finds its job
    /// taken over — suspended, and often already resumed by another instance, whose claim wrote a
    /// new `started_at` — and must stop without writing to it.
    pub fn owns(&self, job: &SyncJob) -> bool {
        if !matches!(
            job.status(),
            Some(JobStatus::InProgress | JobStatus::Canceling)
        ) {
            return false;
        }
        match self.running.lock().expect("lock").get(&job.id) {
            Some(Run {
                started_at: Some(ours),
                ..
            }) => job.doc.started_at.as_ref() == Some(ours),
            Some(_) => true,
            None => false,
        }
    }

    /// A read of the job sent at `asked` found it still our run of it ([`Context::owns`]): its bulk
    /// requests may go out for [`OWNERSHIP_FRESH`] from then.
    pub fn confirm(&self, job_id: &str, asked: tokio::time::Instant) {
        if let Some(run) = self.running.lock().expect("lock").get(job_id) {
            run.fence.confirm(asked);
        }
    }

    /// The configured entry of a connector (a "main" connector), if it is one of ours.
    pub fn entry(&self, connector_id: &str) -> Option<&ConnectorEntry> {
        self.config
            .connectors
            .iter()
            .find(|c| c.connector_id == connector_id)
    }

    pub fn configured_ids(&self) -> Vec<String> {
        self.config
            .connectors
            .iter()
            .map(|c| c.connector_id.clone())
            .collect()
    }

    /// A fresh `service.max_errors` counter for one service loop.
    pub fn error_budget(&self, service: &'static str) -> ErrorBudget {
        let s = &self.config.service;
        ErrorBudget::new(service, s.max_errors, s.max_errors_span)
    }

    /// The client for a connector's content index: its own `api_key` when configured.
    pub fn content_client(&self, connector_id: &str) -> anyhow::Result<EsClient> {
        match self.entry(connector_id).and_then(|e| e.api_key.as_ref()) {
            Some(key) => Ok(EsClient::new(
                &self.config.elasticsearch,
                Some(key),
                "service",
            )?),
            None => Ok(self.es.clone()),
        }
    }
}

/// The service's side of one sync: what [`crate::sync::run`] may see of the service.
#[async_trait::async_trait]
impl JobEnv for Context {
    fn config(&self) -> &Config {
        &self.config
    }

    fn sources(&self) -> &Registry {
        &self.sources
    }

    async fn connector(&self, connector_id: &str) -> Result<Option<ConnectorNow>, EsError> {
        let configured = self.entry(connector_id).map(|e| e.service_type.clone());
        Ok(self
            .connectors
            .get(connector_id)
            .await?
            .map(|c| ConnectorNow {
                index_name: c.index_name().map(str::to_string),
                service_type: c.service_type().map(str::to_string).or(configured),
            }))
    }

    fn content_index(&self, connector_id: &str) -> Result<Arc<dyn ContentIndex>, SyncError> {
        let client = self
            .content_client(connector_id)
            .map_err(|e| SyncError::Source(e.to_string()))?;
        Ok(Arc::new(client))
    }

    async fn record_deletions(
        &self,
        job_id: &str,
        stats: JobStats,
        counted: DeletionsCounted,
    ) -> Result<(), EsError> {
        // Guarded by a read that found the job still ours: a write of another instance's run
        // must not be overwritten, and its deletions are its own to count. A concurrent write of
        // ours (the stats report) or a cancel request conflicts: read again.
        let metadata = counted.to_metadata();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let job = self.jobs.get(job_id).await?;
            let Some(job) = job.filter(|j| self.owns(j)) else {
                tracing::warn!(
                    job_id,
                    "the job is no longer this run's (taken over or ended elsewhere); its deletions are not sent"
                );
                let path = format!("/{}/_doc/{job_id}", crate::es::job::JOBS_INDEX);
                return Err(EsError::Conflict { path });
            };
            match self
                .jobs
                .report_stats(job_id, stats, Some(metadata.clone()), job.occ)
                .await
            {
                Err(e) if e.is_conflict() && attempt < OCC_ATTEMPTS => continue,
                written => return written,
            }
        }
    }

    fn fence(&self, job_id: &str) -> Option<Arc<Fence>> {
        let running = self.running.lock().expect("lock");
        running.get(job_id).map(|run| run.fence.clone())
    }
}
