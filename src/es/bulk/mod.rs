//! The bulk sink: batches operations into `_bulk` requests and decides, per item, retry / give up /
//! success. This is the only place that interprets bulk responses.
//!
//! * Requests are bounded by NDJSON lines (`chunk_size`) and bytes (`chunk_max_mem_size`).
//! * Up to `max_concurrency` requests are in flight, fewer while the cluster throttles or slows
//!   down: each attempt takes a permit of an [`AdaptiveLimit`] (docs/architecture.md,
//!   "Back-pressure").
//! * The queue in front of the sink is bounded by items (`queue_max_size`) and bytes
//!   (`queue_max_mem_size`): a producer waits when either is full, so memory never grows with the
//!   bucket. Bytes stay reserved until their request is answered.
//! * A whole request that fails with 429/5xx or a lost connection is retried with jittered exponential
//!   backoff; items that fail with 429/5xx/`es_rejected_execution_exception` are retried alone, the
//!   same way; both bounded by `max_retries` attempts. A refusal (429) of a request sent while
//!   the adaptive limit was above 1 is the limit finding the cluster's level and does not spend an
//!   attempt, at most `max_retries` times per request. Other item failures are logged (id, status,
//!   reason), counted, and fed to the error monitor. Statistics count successful items only.
//! * The connector's ingest pipeline is named on every request, as Elastic's service does; whether
//!   it exists is learnt from the answer, since the credentials Kibana gives a connector may not read
//!   pipelines. A missing optional pipeline (the default one) is dropped for the rest of the job and
//!   the items are sent again without it and without the fields only a pipeline reads; a missing
//!   required one stops the sink with an error naming it.
//! * A service run's requests pass a [`Fence`] first: none goes out while the run's job is not
//!   known to be still its own (a run back from a pause past its lease, see `fence.rs`).

mod error_monitor;
mod fence;
mod op;
mod outcome;
mod watermark;

pub use error_monitor::ErrorMonitor;
pub use fence::{Fence, Fenced};
pub use op::Op;
pub use outcome::{
    BulkItem, BulkResponse, ItemError, ItemOutcome, classify, names_missing_pipeline,
};
pub use watermark::{Tally, Watermark};

use super::client::EsClient;
use super::error::EsError;
use super::job::JobStats;
use crate::concurrency::{AdaptiveLimit, Outcome};
use crate::config::ErrorMonitorConfig;
use crate::retry::RetryPolicy;
use async_trait::async_trait;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;

/// How a sink behaves; built from `elasticsearch.bulk.*` by the sync.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub index: String,
    pub pipeline: Option<String>,
    /// The job goes on without `pipeline` when the cluster does not have it (the default pipeline).
    pub pipeline_optional: bool,
    pub chunk_lines: usize,
    pub chunk_bytes: usize,
    pub max_concurrency: NonZeroUsize,
    /// Whether fewer requests are sent while the cluster throttles or slows down
    /// (`elasticsearch.bulk.adaptive_concurrency`); `max_concurrency` stays the ceiling.
    pub adaptive_concurrency: bool,
    /// Attempts per request and per item (the first included), and the pauses between them.
    pub retry: RetryPolicy,
    /// Docs without `_attachment` whose serialized size exceeds this are dropped; 0 = no cap.
    pub max_text_bytes: usize,
    pub queue_items: NonZeroUsize,
    pub queue_bytes: usize,
    /// A partial batch waits at most this long for more operations.
    pub flush_interval: Duration,
    pub error_monitor: ErrorMonitorConfig,
    pub log_operations: bool,
}

/// Live counters, readable while the sink runs (the stats reporter reads them).
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub indexed: AtomicU64,
    pub indexed_bytes: AtomicU64,
    pub deleted: AtomicU64,
    pub item_errors: AtomicU64,
    pub item_retries: AtomicU64,
    pub request_retries: AtomicU64,
    pub dropped_too_large: AtomicU64,
}

impl SinkCounters {
    /// The job's counters: volume in MiB, rounded to the nearest integer (as Elastic).
    pub fn job_stats(&self) -> JobStats {
        let bytes = self.indexed_bytes.load(Ordering::Relaxed);
        JobStats {
            indexed_document_count: self.indexed.load(Ordering::Relaxed),
            indexed_document_volume: (bytes as f64 / 1_048_576.0).round() as u64,
            deleted_document_count: self.deleted.load(Ordering::Relaxed),
        }
    }
}

/// Why the sink stopped before its input ended. The job ends `error` with this message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("TooManyErrors: {0}")]
    TooManyErrors(String),
    #[error("bulk request failed: {0}")]
    Request(String),
    /// HTTP 403: the credentials may not write the index.
    #[error(
        "Connector is not authorized to access index [{0}]. API key may need to be regenerated. Status code: [403]."
    )]
    Forbidden(String),
    #[error("ingest pipeline [{0}] does not exist; create it or change the connector's pipeline")]
    PipelineMissing(String),
    #[error("the bulk sink stopped")]
    Closed,
}

/// Where the sink sends its requests: one `_bulk` attempt (the sink owns retries, since it
/// decides per item). [`EsClient`] in production; an in-memory index in the sync's unit tests.
#[async_trait]
pub trait BulkTransport: Send + Sync {
    async fn bulk_once(
        &self,
        ndjson: Vec<u8>,
        pipeline: Option<&str>,
    ) -> Result<BulkResponse, EsError>;
}

#[async_trait]
impl BulkTransport for EsClient {
    async fn bulk_once(
        &self,
        ndjson: Vec<u8>,
        pipeline: Option<&str>,
    ) -> Result<BulkResponse, EsError> {
        EsClient::bulk_once(self, ndjson, pipeline).await
    }
}

#[async_trait]
impl BulkTransport for Arc<dyn BulkTransport> {
    async fn bulk_once(
        &self,
        ndjson: Vec<u8>,
        pipeline: Option<&str>,
    ) -> Result<BulkResponse, EsError> {
        self.as_ref().bulk_once(ndjson, pipeline).await
    }
}

struct Queued {
    op: Op,
    /// Position in send order (see [`Watermark`]).
    seq: u64,
    /// The listing page it belongs to, if any (see [`Watermark`]).
    group: Option<u64>,
    _bytes: OwnedSemaphorePermit,
}

/// The producer side of a running sink.
pub struct BulkSink {
    sender: SinkSender,
    counters: Arc<SinkCounters>,
    watermark: Arc<Watermark>,
    next_group: AtomicU64,
    pipeline_on: Arc<AtomicBool>,
    /// Dropping the sink (e.g. a cancelled sync) stops it and its requests at once.
    task: AbortOnDropHandle<Result<(), SinkError>>,
}

const PERMIT_UNIT: usize = 1024;

impl BulkSink {
    /// Starts the sink task; it adds its results to `counters` and settles operations in `watermark`.
    pub fn start(
        es: impl BulkTransport + 'static,
        settings: SinkSettings,
        counters: Arc<SinkCounters>,
        watermark: Arc<Watermark>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(settings.queue_items.get());
        let pipeline_on = Arc::new(AtomicBool::new(settings.pipeline.is_some()));
        let bytes_total =
            (settings.queue_bytes / PERMIT_UNIT).clamp(1, u32::MAX as usize >> 4) as u32;
        let shared = Arc::new(Shared {
            es: Box::new(es),
            limit: AdaptiveLimit::new(
                "bulk",
                settings.max_concurrency.get(),
                settings.adaptive_concurrency,
            ),
            monitor: Mutex::new(ErrorMonitor::new(settings.error_monitor.clone())),
            counters: counters.clone(),
            watermark: watermark.clone(),
            pipeline_on: pipeline_on.clone(),
            settings,
        });
        Self {
            sender: SinkSender {
                tx,
                bytes: Arc::new(Semaphore::new(bytes_total as usize)),
                bytes_total,
                next_seq: Arc::new(AtomicU64::new(0)),
            },
            counters,
            watermark,
            next_group: AtomicU64::new(0),
            pipeline_on,
            task: AbortOnDropHandle::new(tokio::spawn(run(shared, rx))),
        }
    }

    pub fn counters(&self) -> Arc<SinkCounters> {
        self.counters.clone()
    }

    /// True while requests name the ingest pipeline: documents built after it turns false need no
    /// pipeline fields.
    pub fn pipeline_on(&self) -> Arc<AtomicBool> {
        self.pipeline_on.clone()
    }

    /// Queues one operation, waiting while the queue is full; returns its sequence number.
    /// `Err(Closed)` means the sink has stopped; [`finish`](Self::finish) then tells why.
    pub async fn send(&self, op: Op) -> Result<u64, SinkError> {
        self.send_in(op, None).await
    }

    /// A new group of operations (one listing page): see [`Watermark`].
    pub fn open_group(&self) -> u64 {
        self.next_group.fetch_add(1, Ordering::Relaxed)
    }

    /// [`send`](Self::send) as an operation of `group`.
    pub async fn send_in(&self, op: Op, group: Option<u64>) -> Result<u64, SinkError> {
        self.sender.send_in(op, group).await
    }

    /// A handle that queues operations like [`send_in`](Self::send_in), for a task of its own.
    pub fn sender(&self) -> SinkSender {
        self.sender.clone()
    }

    /// Records that every operation sent so far belongs to `checkpoint` (committed in the
    /// watermark once they are all settled).
    pub fn mark(&self, checkpoint: serde_json::Value) {
        self.watermark
            .mark(self.sender.next_seq.load(Ordering::Relaxed), checkpoint);
    }

    /// [`mark`](Self::mark), except for the operations of the `open` groups (pages partly sent);
    /// `closed` is the group whose page just ended.
    pub fn mark_groups(&self, checkpoint: serde_json::Value, open: Vec<u64>, closed: Option<u64>) {
        let end = self.sender.next_seq.load(Ordering::Relaxed);
        self.watermark.mark_groups(end, checkpoint, open, closed);
    }

    /// Whether the sink has stopped (an error ended it).
    pub fn is_closed(&self) -> bool {
        self.sender.tx.is_closed()
    }

    /// Flushes what is queued, waits for every request, and reports the sink's fate.
    pub async fn finish(self) -> Result<(), SinkError> {
        drop(self.sender);
        self.task.await.unwrap_or(Err(SinkError::Closed))
    }

    /// Stops at once, dropping what is queued and in flight (cancel/suspend); same as dropping it.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Queues operations into a running sink (see [`BulkSink::sender`]); the sink flushes when the
/// last one is dropped.
#[derive(Clone)]
pub struct SinkSender {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    bytes_total: u32,
    next_seq: Arc<AtomicU64>,
}

impl SinkSender {
    /// [`BulkSink::send_in`].
    pub async fn send_in(&self, op: Op, group: Option<u64>) -> Result<u64, SinkError> {
        let units = (op.encoded_len("") / PERMIT_UNIT + 1).min(self.bytes_total as usize) as u32;
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(units)
            .await
            .map_err(|_| SinkError::Closed)?;
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        self.tx
            .send(Queued {
                op,
                seq,
                group,
                _bytes: permit,
            })
            .await
            .map_err(|_| SinkError::Closed)?;
        Ok(seq)
    }
}

struct Shared {
    es: Box<dyn BulkTransport>,
    /// Permits per attempt: how many requests may be on the wire now.
    limit: AdaptiveLimit,
    settings: SinkSettings,
    monitor: Mutex<ErrorMonitor>,
    counters: Arc<SinkCounters>,
    watermark: Arc<Watermark>,
    pipeline_on: Arc<AtomicBool>,
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Queued>) -> Result<(), SinkError> {
    let s = &shared.settings;
    // A batch holds at most `chunk_lines` operations; each starts with room for a full one.
    let room = s.chunk_lines.min(4096);
    let take = |batch: &mut Vec<Queued>| std::mem::replace(batch, Vec::with_capacity(room));
    let mut batch: Vec<Queued> = Vec::with_capacity(room);
    let (mut lines, mut bytes) = (0usize, 0usize);
    let mut inflight: JoinSet<Result<(), SinkError>> = JoinSet::new();
    loop {
        let next = if batch.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(s.flush_interval, rx.recv()).await {
                Ok(item) => item,
                Err(_) => {
                    dispatch(&shared, &mut inflight, take(&mut batch)).await?;
                    (lines, bytes) = (0, 0);
                    continue;
                }
            }
        };
        let Some(queued) = next else { break };
        if let Op::Index {
            id,
            source,
            has_attachment: false,
        } = &queued.op
            && s.max_text_bytes > 0
            && source.len() > s.max_text_bytes
        {
            tracing::warn!(id = %id, index = %s.index, size = source.len(), cap = s.max_text_bytes,
                "dropping document: serialized size exceeds elasticsearch.bulk.max_text_document_size");
            shared
                .counters
                .dropped_too_large
                .fetch_add(1, Ordering::Relaxed);
            shared
                .watermark
                .settle(queued.seq, queued.group, Tally::default());
            continue;
        }
        let (l, b) = (queued.op.lines(), queued.op.encoded_len(&s.index));
        if !batch.is_empty() && (lines + l > s.chunk_lines || bytes + b > s.chunk_bytes) {
            dispatch(&shared, &mut inflight, take(&mut batch)).await?;
            (lines, bytes) = (0, 0);
        }
        batch.push(queued);
        (lines, bytes) = (lines + l, bytes + b);
        if lines >= s.chunk_lines || bytes >= s.chunk_bytes {
            dispatch(&shared, &mut inflight, take(&mut batch)).await?;
            (lines, bytes) = (0, 0);
        }
    }
    if !batch.is_empty() {
        dispatch(&shared, &mut inflight, batch).await?;
    }
    while let Some(done) = inflight.join_next().await {
        done.unwrap_or(Err(SinkError::Closed))?;
    }
    Ok(())
}

/// Starts one request, first waiting for a free slot (and surfacing any earlier request's error).
async fn dispatch(
    shared: &Arc<Shared>,
    inflight: &mut JoinSet<Result<(), SinkError>>,
    batch: Vec<Queued>,
) -> Result<(), SinkError> {
    while let Some(done) = inflight.try_join_next() {
        done.unwrap_or(Err(SinkError::Closed))?;
    }
    while inflight.len() >= shared.settings.max_concurrency.get() {
        if let Some(done) = inflight.join_next().await {
            done.unwrap_or(Err(SinkError::Closed))?;
        }
    }
    inflight.spawn(send_batch(shared.clone(), batch));
    Ok(())
}

/// Sends one batch until every item succeeded or was given up on.
async fn send_batch(shared: Arc<Shared>, mut pending: Vec<Queued>) -> Result<(), SinkError> {
    let s = &shared.settings;
    let max_attempts = s.retry.max_attempts();
    let mut attempt = 0;
    // Refusals that did not spend an attempt (see `Permit::probing`), at most `max_attempts`.
    let mut free = 0;
    loop {
        attempt += 1;
        let pipeline = s
            .pipeline
            .as_deref()
            .filter(|_| shared.pipeline_on.load(Ordering::Relaxed));
        if pipeline.is_none() && s.pipeline.is_some() {
            for q in &mut pending {
                op::strip_pipeline_fields(&mut q.op);
            }
        }
        let mut body = Vec::with_capacity(pending.iter().map(|q| q.op.encoded_len(&s.index)).sum());
        for q in &pending {
            q.op.encode(&s.index, &mut body);
        }
        let mut permit = shared.limit.acquire().await;
        let resp = match shared.es.bulk_once(body, pipeline).await {
            Ok(resp) => resp,
            Err(e) => {
                let status = e.status().map(|s| s.as_u16());
                permit.record(if status.is_some_and(throttling) {
                    Outcome::Throttled
                } else {
                    Outcome::Failed
                });
                if status.is_some_and(refused) && permit.probing() && free < max_attempts {
                    free += 1;
                    drop(permit);
                    shared
                        .counters
                        .request_retries
                        .fetch_add(1, Ordering::Relaxed);
                    let delay = s.retry.pause(attempt);
                    tracing::debug!(error = %e, attempt, delay_ms = delay.as_millis() as u64,
                        "bulk request refused while the concurrency limit adapts, retrying");
                    tokio::time::sleep(delay).await;
                    attempt -= 1;
                    continue;
                }
                drop(permit);
                if let Some(delay) = s.retry.pause_after(attempt).filter(|_| e.is_transient()) {
                    shared
                        .counters
                        .request_retries
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, attempt, delay_ms = delay.as_millis() as u64, "bulk request failed, retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                if e.status() == Some(reqwest::StatusCode::FORBIDDEN) {
                    return Err(SinkError::Forbidden(s.index.clone()));
                }
                return Err(SinkError::Request(e.to_string()));
            }
        };
        let items = resp.items;
        if items.len() != pending.len() {
            return Err(SinkError::Request(format!(
                "bulk response has {} items for {} operations",
                items.len(),
                pending.len()
            )));
        }
        let rtt = permit.elapsed();
        let mut resend = Vec::new();
        let mut answered = Vec::with_capacity(pending.len());
        for (queued, item) in pending.into_iter().zip(items) {
            if let Some(name) = pipeline
                && names_missing_pipeline(&item, name)
            {
                if !s.pipeline_optional {
                    return Err(SinkError::PipelineMissing(name.to_string()));
                }
                if shared.pipeline_on.swap(false, Ordering::Relaxed) {
                    tracing::warn!(pipeline = name, index = %s.index,
                        "ingest pipeline does not exist; indexing without it for the rest of the job");
                }
                resend.push(queued);
                continue;
            }
            let outcome = classify(&item);
            answered.push((queued, outcome));
        }
        let (mut throttled, mut refusals) = (false, false);
        for (_, outcome) in &answered {
            if let ItemOutcome::Retry { status, .. } = outcome {
                throttled |= throttling(*status);
                refusals |= refused(*status);
            }
        }
        // Items the cluster refused while the limit was still finding its level do not spend an
        // attempt either (the whole batch's, at most `max_attempts` times).
        let spent = !(refusals && permit.probing() && free < max_attempts);
        let mut retry = Vec::new();
        for (queued, outcome) in answered {
            match outcome {
                ItemOutcome::Success => shared.record_success(&queued),
                ItemOutcome::Retry { status, reason } if !spent || attempt < max_attempts => {
                    tracing::debug!(id = queued.op.id(), status, reason = %reason, "bulk item will be retried");
                    shared.counters.item_retries.fetch_add(1, Ordering::Relaxed);
                    retry.push(queued);
                }
                ItemOutcome::Retry { status, reason } | ItemOutcome::Failure { status, reason } => {
                    shared.record_failure(&queued, status, &reason)?;
                }
            }
        }
        permit.record(if throttled {
            Outcome::Throttled
        } else {
            Outcome::Ok(rtt)
        });
        drop(permit);
        if retry.is_empty() && resend.is_empty() {
            return Ok(());
        }
        if retry.is_empty() {
            // Only the pipeline was wrong: send again at once, without spending an attempt.
            attempt -= 1;
        } else {
            tokio::time::sleep(s.retry.pause(attempt)).await;
            if !spent {
                free += 1;
                attempt -= 1;
            }
        }
        retry.extend(resend);
        pending = retry;
    }
}

/// A status by which the cluster asks for fewer requests: 429 (rejected execution) or 503.
fn throttling(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// A refusal to take more at once, which the adaptive limit answers by sending fewer: 429. A 503
/// (shards unavailable, a node going away) lowers the limit too, but spends its attempts.
fn refused(status: u16) -> bool {
    status == 429
}

impl Shared {
    fn record_success(&self, queued: &Queued) {
        let op = &queued.op;
        let tally = match op {
            Op::Index { source, .. } => Tally {
                indexed: 1,
                indexed_bytes: source.len() as u64,
                deleted: 0,
            },
            Op::Delete { counted, .. } => Tally {
                deleted: u64::from(*counted),
                ..Tally::default()
            },
        };
        self.counters
            .indexed
            .fetch_add(tally.indexed, Ordering::Relaxed);
        self.counters
            .indexed_bytes
            .fetch_add(tally.indexed_bytes, Ordering::Relaxed);
        self.counters
            .deleted
            .fetch_add(tally.deleted, Ordering::Relaxed);
        self.watermark.settle(queued.seq, queued.group, tally);
        if self.settings.log_operations {
            tracing::debug!(op = op.kind(), id = op.id(), "bulk item succeeded");
        }
        self.monitor.lock().expect("monitor lock").record_success();
    }

    fn record_failure(&self, queued: &Queued, status: u16, reason: &str) -> Result<(), SinkError> {
        let op = &queued.op;
        self.counters.item_errors.fetch_add(1, Ordering::Relaxed);
        self.watermark
            .settle(queued.seq, queued.group, Tally::default());
        tracing::error!(op = op.kind(), id = op.id(), status, reason = %reason, index = %self.settings.index,
            "bulk item failed");
        let message = format!(
            "Failed to execute '{}' on document with id '{}'. Error: {status} {reason}",
            op.kind(),
            op.id()
        );
        self.monitor
            .lock()
            .expect("monitor lock")
            .record_error(message)
            .map_err(SinkError::TooManyErrors)
    }
}

#[cfg(test)]
mod tests;
