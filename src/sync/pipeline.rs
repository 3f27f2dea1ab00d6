//! Which ingest pipeline the bulk requests name (§6.10, and our rule for clusters without it).

use crate::es::client::PipelineState;
use crate::es::connector::{DEFAULT_PIPELINE, Pipeline};
use crate::es::{EsClient, EsError};

use super::SyncError;

/// `Some(name)` to send `?pipeline=name`; `None` to index without a pipeline. The default
/// `search-default-ingestion` pipeline is optional (our own extraction does its work): when the
/// cluster lacks it we warn once per job and go on. A missing custom pipeline fails the job.
pub async fn resolve(es: &EsClient, pipeline: &Pipeline) -> Result<Option<String>, SyncError> {
    if pipeline.name.is_empty() {
        return Ok(None);
    }
    let state = es
        .pipeline_state(&pipeline.name)
        .await
        .map_err(|e: EsError| SyncError::Es(e))?;
    match (state, pipeline.name == DEFAULT_PIPELINE) {
        (PipelineState::Exists, _) => Ok(Some(pipeline.name.clone())),
        (_, true) => {
            tracing::warn!(pipeline = %pipeline.name, ?state, "default ingest pipeline not available; indexing without it");
            Ok(None)
        }
        (PipelineState::Missing, false) => Err(SyncError::Pipeline(format!(
            "ingest pipeline [{}] does not exist; create it or change the connector's pipeline",
            pipeline.name
        ))),
        (PipelineState::NoIngestApi, false) => Err(SyncError::Pipeline(format!(
            "the cluster has no ingest API, so pipeline [{}] cannot be used",
            pipeline.name
        ))),
    }
}
