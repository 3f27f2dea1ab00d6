//! What every service loop shares.

use super::error_budget::ErrorBudget;
use crate::config::{Config, ConnectorEntry};
use crate::es::connector::ConnectorStore;
use crate::es::job::{JobStats, JobStore};
use crate::es::protocol::ConnectorApi;
use crate::es::{EsClient, EsError};
use crate::source::Registry;
use crate::sync::checkpoint::DeletionsCounted;
use crate::sync::{ConnectorNow, ContentIndex, JobEnv, SyncError};
use std::collections::HashSet;
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
    pub running: Mutex<HashSet<String>>,
    /// Wakes the executor before its next poll (a job was taken over and waits to resume).
    pub wake_executor: Notify,
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
            running: Mutex::new(HashSet::new()),
            wake_executor: Notify::new(),
        }
    }

    /// Whether this process runs the job now.
    pub fn is_running_here(&self, job_id: &str) -> bool {
        self.running.lock().expect("lock").contains(job_id)
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
        // Unguarded: a partial update merges into the job, and a concurrent write (a cancel
        // request, the stats report) must not make it fail.
        self.jobs
            .report_stats(job_id, stats, Some(counted.to_metadata()), None)
            .await
    }
}
