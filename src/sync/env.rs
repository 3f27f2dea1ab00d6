//! What a sync needs from whoever runs it — the narrow context of one job: config.yml, the
//! sources this build has, the connector as it is now, and its content index. The service
//! implements [`JobEnv`] over its own context; the unit tests of `sync::tests` implement it over
//! an in-memory source and index.

use super::SyncError;
use super::checkpoint::DeletionsCounted;
use super::existing::{self, ReadError, Visit};
use crate::config::Config;
use crate::es::bulk::{BulkTransport, Fence};
use crate::es::job::JobStats;
use crate::es::{EsClient, EsError};
use crate::source::Registry;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

/// The connector's fields a sync checks against its job.
#[derive(Debug, Clone, Default)]
pub struct ConnectorNow {
    pub index_name: Option<String>,
    /// The connector's `service_type`, or the one config.yml gives it.
    pub service_type: Option<String>,
}

/// Everything one sync may use.
#[async_trait]
pub trait JobEnv: Send + Sync {
    fn config(&self) -> &Config;
    fn sources(&self) -> &Registry;
    /// The connector as it is now; `None` when it no longer exists.
    async fn connector(&self, connector_id: &str) -> Result<Option<ConnectorNow>, EsError>;
    /// The connector's content index (with its own credentials when it has some).
    fn content_index(&self, connector_id: &str) -> Result<Arc<dyn ContentIndex>, SyncError>;
    /// Writes `counted` into the job's `metadata`, with the job's live counters, before the
    /// deletions it counts are sent (see [`DeletionsCounted`]).
    async fn record_deletions(
        &self,
        job_id: &str,
        stats: JobStats,
        counted: DeletionsCounted,
    ) -> Result<(), EsError>;
    /// What the job's bulk requests pass first: open while the job is known to be still this
    /// run's (see [`Fence`]); `None`: no fence (a run no other instance can take over).
    fn fence(&self, _job_id: &str) -> Option<Arc<Fence>> {
        None
    }
}

#[async_trait]
impl<T: JobEnv + ?Sized> JobEnv for Arc<T> {
    fn config(&self) -> &Config {
        self.as_ref().config()
    }
    fn sources(&self) -> &Registry {
        self.as_ref().sources()
    }
    async fn connector(&self, connector_id: &str) -> Result<Option<ConnectorNow>, EsError> {
        self.as_ref().connector(connector_id).await
    }
    fn content_index(&self, connector_id: &str) -> Result<Arc<dyn ContentIndex>, SyncError> {
        self.as_ref().content_index(connector_id)
    }
    async fn record_deletions(
        &self,
        job_id: &str,
        stats: JobStats,
        counted: DeletionsCounted,
    ) -> Result<(), EsError> {
        self.as_ref().record_deletions(job_id, stats, counted).await
    }
    fn fence(&self, job_id: &str) -> Option<Arc<Fence>> {
        self.as_ref().fence(job_id)
    }
}

/// What a sync does with its content index.
#[async_trait]
pub trait ContentIndex: Send + Sync {
    /// Creates the index unless it exists.
    async fn create_if_missing(&self, index: &str) -> Result<(), EsError>;
    /// How many documents the index holds (0 when it does not exist).
    async fn count(&self, index: &str) -> Result<u64, EsError>;
    /// The versions of the documents among `ids` that the index holds, by id.
    async fn versions(&self, index: &str, ids: &[&str]) -> Result<HashMap<String, u64>, ReadError>;
    /// Calls `visit` with the id and bucket of every document the index holds.
    async fn scan(&self, index: &str, visit: &mut Visit<'_>) -> Result<(), ReadError>;
    /// Where the bulk sink sends its requests.
    fn bulk(&self) -> Arc<dyn BulkTransport>;
}

#[async_trait]
impl ContentIndex for EsClient {
    async fn create_if_missing(&self, index: &str) -> Result<(), EsError> {
        if !self.index_exists(index).await? {
            tracing::info!(index = %index, "creating content index");
            self.create_index(index, None).await?;
        }
        Ok(())
    }

    async fn count(&self, index: &str) -> Result<u64, EsError> {
        EsClient::count(self, index).await
    }

    async fn versions(&self, index: &str, ids: &[&str]) -> Result<HashMap<String, u64>, ReadError> {
        existing::versions(self, index, ids).await
    }

    async fn scan(&self, index: &str, visit: &mut Visit<'_>) -> Result<(), ReadError> {
        existing::scan(self, index, visit).await
    }

    fn bulk(&self) -> Arc<dyn BulkTransport> {
        Arc::new(self.clone())
    }
}
