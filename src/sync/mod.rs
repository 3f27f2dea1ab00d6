//! One sync job: list → filter → (fetch) → bulk → reconcile.
//!
//! The listing streams pages of at most `page_size` objects into the bulk sink's bounded queue, so
//! memory does not grow with the bucket (only the id set of `existing` does, ~30 bytes a document).
//! Deletion of vanished documents happens only for buckets whose listing completed: a listing that
//! fails (after the S3 client's retries) ends the job `error` and deletes nothing of that bucket.

mod existing;
mod pipeline;
pub mod rules;
mod settings;

use crate::es::EsError;
use crate::es::bulk::{BulkSink, Op, SinkCounters, SinkError};
use crate::es::connector::Pipeline;
use crate::es::job::SyncJob;
use crate::service::context::Context;
use crate::source::s3::{S3Settings, S3Source, to_document};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why a sync failed. The Display text is what the job's `error` field shows.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Source(String),
    #[error("Connector {0} does not support incremental sync.")]
    IncrementalUnsupported(String),
    #[error("{0}")]
    Pipeline(String),
    #[error("{0}")]
    Listing(String),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{0}")]
    Es(#[from] EsError),
    #[error("the job has no index_name")]
    NoIndex,
    #[error("canceled")]
    Canceled,
}

/// Runs the job's sync. Counters are live in `counters` while it runs.
///
/// When `cancel` fires (cancel request, shutdown) the sync stops at once, wherever it waits: S3
/// retries, a full queue, bulk requests in flight (the sink is dropped with the sync).
pub async fn run(
    ctx: &Context,
    job: &SyncJob,
    counters: Arc<SinkCounters>,
    cancel: CancellationToken,
) -> Result<(), SyncError> {
    tokio::select! {
        result = sync(ctx, job, counters, &cancel) => result,
        _ = cancel.cancelled() => Err(SyncError::Canceled),
    }
}

async fn sync(
    ctx: &Context,
    job: &SyncJob,
    counters: Arc<SinkCounters>,
    cancel: &CancellationToken,
) -> Result<(), SyncError> {
    let connector_id = job.connector_id().unwrap_or_default().to_string();
    let index = job
        .index_name()
        .filter(|i| !i.is_empty())
        .ok_or(SyncError::NoIndex)?
        .to_string();
    let (settings, source) = crate::service::source::connect(&job.configuration())
        .await
        .map_err(SyncError::Source)?;
    if job.job_type() == "incremental" {
        return Err(SyncError::IncrementalUnsupported(connector_id));
    }
    let es = ctx
        .content_client(&connector_id)
        .map_err(|e| SyncError::Source(e.to_string()))?;
    if !es.index_exists(&index).await? {
        tracing::info!(index = %index, "creating content index");
        es.create_index(&index, None).await?;
    }
    let pipeline = Pipeline::from_value(job.connector_snapshot().get("pipeline"));
    let pipeline_param = pipeline::resolve(&es, &pipeline).await?;
    let mut existing = existing::load(&es, &index).await?;
    tracing::info!(index = %index, existing = existing.len(), "existing documents loaded");

    // The `_`-flags only steer the ingest pipeline (which removes them); without one they would be
    // noise in every document.
    let flags = match pipeline_param {
        Some(_) => json!({
            "_extract_binary_content": pipeline.extract_binary_content,
            "_reduce_whitespace": pipeline.reduce_whitespace,
            "_run_ml_inference": pipeline.run_ml_inference,
        }),
        None => json!({}),
    };
    let sink = BulkSink::start(
        es,
        settings::sink(&ctx.config, &index, pipeline_param),
        counters,
    );
    let listing = list_all(&settings, &source, &sink, &mut existing, &flags, cancel).await;
    let failed_buckets = match &listing {
        Ok(()) => Vec::new(),
        Err(ListingFailure::Buckets(failures)) => failures.iter().map(|(b, _)| b.clone()).collect(),
        Err(ListingFailure::Fatal(_)) => {
            // Nothing is deleted when the bucket list itself is unknown.
            return finish_without_deletes(sink, listing).await;
        }
    };
    if !cancel.is_cancelled() && !sink.is_closed() {
        for id in existing.stale(&failed_buckets) {
            if cancel.is_cancelled() || sink.send(Op::Delete { id }).await.is_err() {
                break;
            }
        }
    }
    finish_without_deletes(sink, listing).await.and_then(|()| {
        if cancel.is_cancelled() {
            Err(SyncError::Canceled)
        } else {
            Ok(())
        }
    })
}

async fn finish_without_deletes(
    sink: BulkSink,
    listing: Result<(), ListingFailure>,
) -> Result<(), SyncError> {
    let flushed = sink.finish().await;
    match listing {
        Err(ListingFailure::Fatal(e)) => return Err(e),
        Err(ListingFailure::Buckets(failures)) => {
            flushed?;
            let msg = failures
                .into_iter()
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(SyncError::Listing(msg));
        }
        Ok(()) => {}
    }
    flushed.map_err(SyncError::from)
}

enum ListingFailure {
    /// These buckets could not be listed completely (bucket, message).
    Buckets(Vec<(String, String)>),
    /// The sync cannot go on at all (bucket list unknown, sink gone, canceled).
    Fatal(SyncError),
}

async fn list_all(
    settings: &S3Settings,
    source: &S3Source,
    sink: &BulkSink,
    existing: &mut existing::ExistingIds,
    flags: &Value,
    cancel: &CancellationToken,
) -> Result<(), ListingFailure> {
    let _ = settings;
    let buckets = source
        .resolve_buckets()
        .await
        .map_err(|e| ListingFailure::Fatal(SyncError::Listing(e.to_string())))?;
    let mut failures = Vec::new();
    for bucket in buckets {
        let mut lister = match source.lister(&bucket, None, None).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(bucket = %bucket, error = %e, "listing failed; no document of this bucket will be deleted");
                failures.push((bucket, e.to_string()));
                continue;
            }
        };
        loop {
            if cancel.is_cancelled() {
                return Err(ListingFailure::Fatal(SyncError::Canceled));
            }
            let page = match lister.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(bucket = %bucket, error = %e, "listing failed; no document of this bucket will be deleted");
                    failures.push((bucket.clone(), e.to_string()));
                    break;
                }
            };
            for object in page {
                let mut doc = to_document(&object);
                let id = match doc.remove("_id") {
                    Some(Value::String(id)) => id,
                    _ => continue,
                };
                if let Value::Object(f) = flags {
                    doc.extend(f.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                doc.insert("id".into(), Value::String(id.clone()));
                existing.remove(&id);
                let source = serde_json::to_vec(&doc).expect("document serializes");
                let op = Op::Index {
                    id,
                    source,
                    has_attachment: false,
                };
                if sink.send(op).await.is_err() {
                    return Err(ListingFailure::Fatal(SyncError::Sink(SinkError::Closed)));
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ListingFailure::Buckets(failures))
    }
}
