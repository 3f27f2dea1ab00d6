//! One sync job: plan → list → filter → (fetch) → bulk → reconcile.
//!
//! The listing streams pages of at most `page_size` objects into the bulk sink's bounded queue, each
//! page's indexed versions read with one lookup, so memory does not grow with the bucket; the ids a
//! sync produced and the ids the index holds meet in `reconcile`, which spills them to disk when
//! they outgrow memory (docs/architecture.md#reconciliation).
//! Deletion of vanished documents happens only for partitions (buckets) whose listing completed: a
//! listing that fails (after the source's retries) ends the job `error` and deletes nothing of that
//! partition. The source is whatever [`crate::source::Registry`] has for the connector's
//! `service_type`.
//! Full syncs re-index every object (Elastic's semantics); incremental syncs, and full syncs with
//! `skip_unchanged_documents`, skip objects whose `_timestamp` and ETag match the indexed document.

pub mod checkpoint;
pub mod content;
mod env;
mod existing;
mod extraction_service;
mod fit;
mod listing;
mod options;
#[cfg(test)]
#[path = "tests/mod.rs"]
mod pipeline_tests;
mod plan;
pub mod progress;
mod ranges;
mod reconcile;
pub mod rules;
mod settings;

use crate::es::EsError;
use crate::es::bulk::{BulkSink, BulkTransport, Fenced, Op, SinkError};
use crate::es::connector::Pipeline;
use crate::es::job::SyncJob;
use crate::es::time::now_iso;
use crate::source::Source;
use checkpoint::DeletionsCounted;
pub use env::{ConnectorNow, ContentIndex, JobEnv};
pub use existing::ReadError;
use listing::{Lister, ListingFailure};
use options::SyncOptions;
use progress::Progress;
use reconcile::{NO_PARTITION, Seen, SpillError, StaleId};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Stale ids whose count is recorded in the job at once: whole shards of at least this many
/// (56 bytes each in memory; docs/architecture.md#reconciliation).
const DELETES_PER_RECORD: usize = 10_000;

/// Why a sync failed. The Display text is what the job's `error` field shows.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Source(String),
    #[error("{0}")]
    Rules(String),
    #[error("{0}")]
    Listing(String),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{0}")]
    Es(#[from] EsError),
    /// Boxed: the read error carries an `EsError`, and `SyncError` travels in every `Result` here.
    #[error("{0}")]
    Existing(Box<existing::ReadError>),
    #[error(transparent)]
    Spill(#[from] SpillError),
    #[error("couldn't find data source class for {0:?}")]
    UnknownSource(String),
    #[error("the job has no index_name")]
    NoIndex,
    #[error(
        "the job's index_name \"{job}\" is not its connector's index_name \"{connector}\"; refusing \
         to write to or delete from it (start a new sync from the connector)"
    )]
    IndexMismatch { job: String, connector: String },
    #[error(
        "buckets \"*\" matched no bucket, yet index \"{index}\" holds {documents} documents; nothing was deleted"
    )]
    NoBuckets { index: String, documents: u64 },
    /// A task of the sync ended without an answer (it panicked).
    #[error("{what} stopped: {cause}; nothing was deleted")]
    TaskStopped { what: String, cause: String },
    #[error("recording the count of the deletions to come failed: {0}; they were not sent")]
    RecordDeletions(Box<EsError>),
    #[error("canceled")]
    Canceled,
}

/// What a completed sync leaves for the next one: the connector's `sync_cursor`.
pub struct Completed {
    pub sync_cursor: Value,
}

/// Runs the job's sync; `progress` is live while it runs.
///
/// When `cancel` fires (cancel request, shutdown) the sync stops at once, wherever it waits: S3
/// retries, a full queue, bulk requests in flight (the sink is dropped with the sync).
pub async fn run(
    ctx: &impl JobEnv,
    job: &SyncJob,
    progress: &Progress,
    cancel: CancellationToken,
) -> Result<Completed, SyncError> {
    tokio::select! {
        result = sync(ctx, job, progress, &cancel) => result,
        _ = cancel.cancelled() => Err(SyncError::Canceled),
    }
}

async fn sync(
    ctx: &impl JobEnv,
    job: &SyncJob,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Completed, SyncError> {
    let connector_id = job.connector_id().unwrap_or_default().to_string();
    let index = job
        .index_name()
        .filter(|i| !i.is_empty())
        .ok_or(SyncError::NoIndex)?
        .to_string();
    // The job document carries its own copy of the index name, which whoever may write the jobs
    // index could point at another connector's index: a full sync would then delete its documents.
    let connector = ctx.connector(&connector_id).await?.unwrap_or_default();
    check_index(&index, connector.index_name.as_deref())?;
    let snapshot = job.connector_snapshot();
    let service_type = snapshot
        .service_type
        .as_deref()
        .or(connector.service_type.as_deref())
        .unwrap_or_default()
        .to_string();
    let kind = ctx
        .sources()
        .get(&service_type)
        .ok_or_else(|| SyncError::UnknownSource(service_type.clone()))?;
    let configuration = job.configuration();
    // Shared with the content stage, which reads objects in tasks of their own.
    let source: Arc<dyn Source> = kind
        .connect(&configuration)
        .await
        .map_err(|e| SyncError::Source(e.to_string()))?
        .into();
    let options = SyncOptions::from_configuration(&configuration);
    let incremental = job.job_type() == crate::es::kinds::JobType::Incremental;
    let plan = plan::build(&job.filtering(), kind.as_ref(), source.as_ref()).await?;

    let es = ctx.content_index(&connector_id)?;
    es.create_if_missing(&index).await?;
    let pipeline = Pipeline::from_value(snapshot.pipeline.as_ref());
    // Named on every bulk request, as Elastic does; whether the cluster has it, the answers tell
    // (the credentials Kibana gives a connector cannot read pipelines).
    let pipeline_param = (!pipeline.name.is_empty()).then(|| pipeline.name.clone());
    // The `_`-flags only steer the ingest pipeline (which removes them).
    let flags: Map<String, Value> = [
        ("_extract_binary_content", pipeline.extract_binary_content),
        ("_reduce_whitespace", pipeline.reduce_whitespace),
        ("_run_ml_inference", pipeline.run_ml_inference),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Value::Bool(v)))
    .collect();
    let documents = es.count(&index).await?;
    tracing::info!(index = %index, documents, partitions = plan.partitions.len(), incremental,
        "content index counted");
    plan::check_partitions(&plan.partitions, &index, documents)?;
    let seen = Arc::new(std::sync::Mutex::new(Seen::new(
        &ctx.config().service.temp_dir(),
    )));
    // What the index holds when the sync begins is read while the listing runs, in a task of its
    // own (docs/architecture.md#reconciliation); an empty index holds nothing to delete.
    let scan = (documents > 0).then(|| {
        AbortOnDropHandle::new(tokio::spawn(scan_indexed(
            es.clone(),
            index.clone(),
            plan.partitions.iter().map(|p| p.name.clone()).collect(),
            seen.clone(),
        )))
    });

    let transport: Arc<dyn BulkTransport> = match ctx.fence(&job.id) {
        Some(fence) => Arc::new(Fenced::new(es.bulk(), fence)),
        None => es.bulk(),
    };
    let sink = BulkSink::start(
        transport,
        settings::sink(ctx.config(), &index, pipeline_param),
        progress.counters.clone(),
        progress.watermark.clone(),
    );
    let content = content::ContentStage::new(
        source.clone(),
        ctx.config(),
        &options,
        &pipeline,
        sink.pipeline_on(),
    );
    tracing::debug!(mode = ?content.mode(), "content extraction");
    let listing = Lister {
        source: source.as_ref(),
        sink: &sink,
        index: es.clone(),
        index_name: &index,
        lookup: documents > 0,
        seen: &seen,
        flags,
        pipeline_on: sink.pipeline_on(),
        skip_unchanged: incremental || options.skip_unchanged_documents,
        resume: progress.resumed_from.clone(),
        stats: &progress.listing,
        content: &content,
        content_stats: &progress.content,
        concurrency: ctx.config().elasticsearch.bulk.concurrent_downloads,
        ranges: ctx.config().service.listing_ranges,
        cancel,
    }
    .run(&plan)
    .await;
    let failed_partitions: Vec<String> = match &listing {
        Ok(()) => Vec::new(),
        Err(ListingFailure::Partitions(failures)) => {
            failures.iter().map(|(p, _)| p.clone()).collect()
        }
        Err(ListingFailure::Fatal(_)) => return finish(sink, listing, &plan).await,
    };
    let scanned = match scan {
        None => Ok(()),
        Some(task) => task.await.unwrap_or_else(|e| {
            Err(SyncError::TaskStopped {
                what: format!("reading the ids index \"{index}\" holds"),
                cause: e.to_string(),
            })
        }),
    };
    if let Err(e) = scanned {
        return finish(sink, Err(ListingFailure::Fatal(e)), &plan).await;
    }
    // The listing and the scan are over: nothing else holds `seen`.
    let seen = Arc::into_inner(seen)
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
        .expect("the listing and the scan have ended");
    let keep = plan
        .partitions
        .iter()
        .enumerate()
        .filter(|(_, p)| failed_partitions.contains(&p.name))
        .map(|(i, _)| i as u32)
        .collect();
    let deletion = StaleDeletion {
        env: ctx,
        job_id: &job.id,
        progress,
        sink: &sink,
        cancel,
    };
    if let Err(e) = deletion.run(&index, seen, keep).await {
        return finish(sink, Err(ListingFailure::Fatal(e)), &plan).await;
    }
    finish(sink, listing, &plan).await
}

/// Records every id the index holds into `seen`, each with the position of its document's bucket
/// among `partitions` (the scroll is a snapshot: what the index held when it began).
async fn scan_indexed(
    es: Arc<dyn ContentIndex>,
    index: String,
    partitions: Vec<String>,
    seen: Arc<std::sync::Mutex<Seen>>,
) -> Result<(), SyncError> {
    let position: std::collections::HashMap<&str, u32> = partitions
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i as u32))
        .collect();
    let mut spill_failed = None;
    es.scan(&index, &mut |id, bucket| {
        if id.is_empty() || spill_failed.is_some() {
            return;
        }
        let partition = bucket
            .and_then(|b| position.get(b).copied())
            .unwrap_or(NO_PARTITION);
        if let Err(e) = seen.lock().expect("seen lock").indexed(id, partition) {
            spill_failed = Some(e);
        }
    })
    .await
    .map_err(|e| SyncError::Existing(Box::new(e)))?;
    match spill_failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The deletion of what the index held and the listing did not produce.
struct StaleDeletion<'a, E> {
    env: &'a E,
    job_id: &'a str,
    progress: &'a Progress,
    sink: &'a BulkSink,
    cancel: &'a CancellationToken,
}

impl<E: JobEnv> StaleDeletion<'_, E> {
    /// Streams the stale ids into the sink, but for the documents of the partitions whose listing
    /// failed (`keep`, their positions in the plan). Each batch's count is recorded in the job
    /// before the batch is sent ([`DeletionsCounted`]): a run killed while its deletions are in
    /// flight leaves its resumed job the count of what it may have deleted, which the index can no
    /// longer tell. The ids an earlier run counted are deleted again, uncounted.
    async fn run(&self, index: &str, seen: Seen, keep: Vec<u32>) -> Result<(), SyncError> {
        let spilled = seen.spilled_bytes();
        let earlier = self.progress.deletions_counted;
        let counted_below = earlier.map_or(0, |d| d.shards);
        // Only this pass deletes: nothing of this run is in flight yet.
        let mut deleted = earlier.map_or_else(
            || self.progress.counters.deleted.load(Ordering::Relaxed),
            |d| d.deleted,
        );
        let (mut queued, mut again) = (0u64, 0u64);
        let mut batch: Vec<String> = Vec::new();
        let mut batch_shard = 0;
        let mut open = true;
        for stale in seen.stale(keep) {
            let StaleId { shard, id } = stale?;
            if self.cancel.is_cancelled() {
                open = false;
                break;
            }
            if shard < counted_below {
                open = self
                    .sink
                    .send(Op::Delete { id, counted: false })
                    .await
                    .is_ok();
                if !open {
                    break;
                }
                again += 1;
                continue;
            }
            if batch.len() >= DELETES_PER_RECORD && shard != batch_shard {
                queued += batch.len() as u64;
                open = self.send(&mut batch, shard, &mut deleted).await?;
                if !open {
                    break;
                }
            }
            batch_shard = shard;
            batch.push(id);
        }
        if open && !batch.is_empty() {
            queued += batch.len() as u64;
            self.send(&mut batch, reconcile::SHARDS, &mut deleted)
                .await?;
        }
        tracing::info!(index = %index, stale = queued + again, counted_earlier = again,
            spilled_bytes = spilled, "stale documents queued for deletion");
        Ok(())
    }

    /// Records `batch` (the stale ids of the shards below `through` not yet counted) in the job,
    /// then sends it; `false` when the sink stopped (its own error says why).
    async fn send(
        &self,
        batch: &mut Vec<String>,
        through: usize,
        deleted: &mut u64,
    ) -> Result<bool, SyncError> {
        *deleted += batch.len() as u64;
        let counted = DeletionsCounted {
            shards: through,
            deleted: *deleted,
        };
        self.env
            .record_deletions(self.job_id, self.progress.stats(), counted)
            .await
            .map_err(|e| SyncError::RecordDeletions(Box::new(e)))?;
        for id in batch.drain(..) {
            if self.cancel.is_cancelled()
                || self
                    .sink
                    .send(Op::Delete { id, counted: true })
                    .await
                    .is_err()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The job may only touch the index its connector names now.
fn check_index(job: &str, connector: Option<&str>) -> Result<(), SyncError> {
    if connector == Some(job) {
        return Ok(());
    }
    Err(SyncError::IndexMismatch {
        job: job.to_owned(),
        connector: connector.unwrap_or_default().to_owned(),
    })
}

/// Flushes the sink and turns the listing's fate into the sync's.
async fn finish(
    sink: BulkSink,
    listing: Result<(), ListingFailure>,
    plan: &plan::Plan,
) -> Result<Completed, SyncError> {
    let flushed = sink.finish().await;
    match listing {
        // The sink stopped under the listing: its own error says why.
        Err(ListingFailure::Fatal(SyncError::Sink(SinkError::Closed))) => {
            Err(flushed.err().unwrap_or(SinkError::Closed).into())
        }
        Err(ListingFailure::Fatal(e)) => Err(e),
        Err(ListingFailure::Partitions(failures)) => {
            flushed?;
            let msg = failures
                .into_iter()
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
                .join("; ");
            Err(SyncError::Listing(msg))
        }
        Ok(()) => {
            flushed?;
            let buckets: Vec<&str> = plan.partitions.iter().map(|p| p.name.as_str()).collect();
            Ok(Completed {
                sync_cursor: json!({"version": 1, "completed_at": now_iso(), "buckets": buckets}),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_only_touches_its_connectors_index() {
        assert!(check_index("search-a", Some("search-a")).is_ok());
        let err = check_index("search-b", Some("search-a")).unwrap_err();
        assert!(matches!(err, SyncError::IndexMismatch { .. }));
        let text = err.to_string();
        assert!(
            text.contains("\"search-b\"") && text.contains("\"search-a\""),
            "{text}"
        );
        assert!(check_index("search-b", None).is_err());
    }
}
