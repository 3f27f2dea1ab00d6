//! The content stage (docs/architecture.md#content): downloads extractable objects and puts their text in `body` — or,
//! in Elastic's modes, the bytes in `_attachment` for the ingest pipeline, or the Data Extraction
//! Service's text in `body`.
//!
//! Which files: the extension allowlist (Elastic's, plus `.htm`, `.eml`, `name.ext.gz`) and
//! `size_in_bytes <= service.max_file_download_size` (not applied with the Data Extraction Service,
//! as in Elastic). A file that cannot be parsed is indexed without text, with a warning naming
//! bucket, key and reason. Content that cannot be read this time ([`Unavailable`]) is the caller's
//! to handle: it must not replace indexed text with nothing (Elastic drops documents whose
//! download fails). Downloads read at most the size limit within a total deadline, a piece at a
//! time: natively they stream into a supervised extraction worker ([`crate::extract::pool`]), to
//! the extraction service they stream as the request body (or into its shared file), so the
//! service never holds a whole object except for `_attachment`. Each download holds a permit of
//! the job's adaptive download limit until its file is done (docs/architecture.md, "Back-pressure").

use super::options::SyncOptions;
use crate::concurrency::{AdaptiveLimit, Outcome, Permit};
use crate::config::{Config, ExtractionServiceConfig};
use crate::es::connector::Pipeline;
use crate::extract::pool::{Extraction, Failure, FileLimits, Pool, PoolConfig, WorkerCommand};
use crate::extract::{self, ExtractError};
use crate::source::{Document, ObjectReader, Source, SourceError};
use base64::Engine;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How a job gets text out of files.
#[derive(Debug, Clone)]
pub enum Mode {
    /// No download (pipeline `extract_binary_content: false`, or nothing configured to extract).
    Off,
    /// Our extractors → `body` (the default).
    Native,
    /// Base64 bytes → `_attachment`, for Elasticsearch's attachment processor (Elastic's default).
    Attachment,
    /// The Data Extraction Service → `body`.
    Service(ExtractionServiceConfig),
}

/// Per-job counts (logged at job end and kept in the job's `metadata`). Cheap to clone: the
/// clones share the counts, so that each object's content can be filled in a task of its own.
#[derive(Debug, Default, Clone)]
pub struct ContentStats(Arc<ContentCounts>);

impl std::ops::Deref for ContentStats {
    type Target = ContentCounts;
    fn deref(&self) -> &ContentCounts {
        &self.0
    }
}

/// The counts behind [`ContentStats`].
#[derive(Debug, Default)]
pub struct ContentCounts {
    pub extracted: AtomicU64,
    pub skipped_too_large: AtomicU64,
    pub skipped_unsupported: AtomicU64,
    pub failed: AtomicU64,
    /// Objects whose content could not be read this time (see [`Unavailable`]).
    pub unavailable: AtomicU64,
    pub downloaded_bytes: AtomicU64,
}

/// Why an object's content could not be read this time. Nothing says the file is bad: the next
/// sync tries again.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("{0}")]
    Get(#[from] SourceError),
    #[error("reading the object: {0}")]
    Body(std::io::Error),
    #[error("the object is larger than {0} bytes")]
    Grew(u64),
    #[error("the download deadline of {0:?} passed")]
    Deadline(Duration),
    #[error("extraction timed out")]
    ExtractionTimeout,
    #[error("the extraction service did not answer: {0}")]
    Service(String),
    #[error("{0}")]
    Worker(String),
}

/// The stage of one job. Cheap to clone (the clones share the stage, its workers and its download
/// limit), so that each object's content can be filled in a task of its own, on any core.
#[derive(Clone)]
pub struct ContentStage(Arc<Stage>);

/// The stage's settings and resources for one job.
struct Stage {
    /// The job's source, which the objects are read from.
    source: Arc<dyn Source>,
    mode: Mode,
    max_file_bytes: u64,
    max_chars: usize,
    max_decompressed_bytes: u64,
    /// The least time a download is given (see [`download_deadline`]).
    download_floor: Duration,
    reduce_whitespace: bool,
    /// Largest `body` in bytes that can keep a document under `max_text_document_size`: a cheap
    /// first cut; [`super::fit`] makes the serialized document fit.
    max_body_bytes: Option<usize>,
    /// `max_text_document_size` in bytes, for the serialized document.
    max_doc_bytes: Option<usize>,
    http: reqwest::Client,
    /// In attachment mode: false once the cluster turned out not to have the pipeline, and files
    /// are then extracted natively.
    pipeline_on: Arc<AtomicBool>,
    /// The extraction workers, in the modes that may extract natively.
    pool: Option<Pool>,
    /// Downloads in flight: at most `concurrent_downloads`, fewer while S3 throttles.
    downloads: AdaptiveLimit,
}

/// Opens the object within the deadline and tells the download limit how it went: a throttling
/// answer on the way (even one the S3 client retried into a success) is back-pressure; a success is
/// timed until the response headers.
async fn open_counted(
    source: &dyn Source,
    bucket: &str,
    key: &str,
    deadline: &Deadline,
    permit: &mut Permit,
) -> Result<ObjectReader, Unavailable> {
    let (throttled_before, started) = (source.throttled(), Instant::now());
    let opened = deadline.within(source.open(bucket, key)).await;
    permit.record(match &opened {
        _ if source.throttled() > throttled_before => Outcome::Throttled,
        Ok(Ok(_)) => Outcome::Ok(started.elapsed()),
        _ => Outcome::Failed,
    });
    Ok(opened??)
}

/// How long past `extraction.timeout_secs` a worker that has not answered is given before it is
/// killed (it stops at the timeout itself when its parser checks the deadline).
const WORKER_GRACE: Duration = Duration::from_secs(5);

/// Room left in a document for its metadata fields when `body` is capped.
const METADATA_ROOM: usize = 4096;

impl ContentStage {
    /// Picks the mode from the connector's settings, the job's pipeline and `config.yml`.
    /// `pipeline_on` tells whether bulk requests (still) name the pipeline; objects are read from
    /// `source`.
    pub fn new(
        source: Arc<dyn Source>,
        config: &Config,
        settings: &SyncOptions,
        pipeline: &Pipeline,
        pipeline_on: Arc<AtomicBool>,
    ) -> Self {
        let has_pipeline = pipeline_on.load(Ordering::Relaxed);
        let mode = if settings.use_text_extraction_service {
            match config
                .extraction_service
                .clone()
                .filter(|s| s.host.is_some())
            {
                Some(service) => Mode::Service(service),
                None => {
                    tracing::warn!(
                        "use_text_extraction_service is on but extraction_service.host is not set; files are not downloaded"
                    );
                    Mode::Off
                }
            }
        } else if !pipeline.extract_binary_content {
            Mode::Off
        } else if settings.use_pipeline_extraction && has_pipeline {
            Mode::Attachment
        } else {
            if settings.use_pipeline_extraction {
                tracing::warn!(pipeline = %pipeline.name, "pipeline extraction requested but the pipeline is not available; extracting natively");
            }
            Mode::Native
        };
        let text_cap = config
            .elasticsearch
            .bulk
            .max_text_document_bytes
            .map(|b| b as usize);
        let pool = matches!(mode, Mode::Native | Mode::Attachment).then(|| {
            Pool::new(PoolConfig {
                size: config.elasticsearch.bulk.concurrent_downloads,
                max_memory: Some(config.extraction.max_memory_bytes),
                timeout: config.extraction.timeout,
                grace: WORKER_GRACE,
                // Unit tests have no worker binary to start: they extract in their own process.
                command: (!cfg!(test)).then(WorkerCommand::this_binary),
            })
        });
        Self(Arc::new(Stage {
            source,
            mode,
            max_file_bytes: config.service.max_file_download_size,
            max_chars: config.extraction.max_chars.get(),
            max_decompressed_bytes: config.extraction.max_decompressed_bytes,
            download_floor: config.extraction.download_timeout,
            reduce_whitespace: pipeline.reduce_whitespace,
            max_body_bytes: text_cap.map(|cap| cap.saturating_sub(METADATA_ROOM)),
            max_doc_bytes: text_cap,
            http: reqwest::Client::new(),
            pipeline_on,
            pool,
            downloads: AdaptiveLimit::new(
                "download",
                config.elasticsearch.bulk.concurrent_downloads.get(),
                config.elasticsearch.bulk.adaptive_concurrency,
            ),
        }))
    }

    pub fn mode(&self) -> &Mode {
        &self.0.mode
    }

    /// Whether [`ContentStage::fill`] leaves every document as it is (no download at all).
    pub fn downloads_nothing(&self) -> bool {
        matches!(self.0.mode, Mode::Off)
    }

    /// The cap on a serialized document without `_attachment`, if any.
    pub fn max_doc_bytes(&self) -> Option<usize> {
        self.0.max_doc_bytes
    }

    /// Adds the object's content to `doc`. `Ok(true)` when the document carries `_attachment`;
    /// `Err` when the content could not be read this time (a failed or too slow download, an
    /// extraction that ran out of time, an unreachable extraction service): the caller must not
    /// let that replace indexed text with nothing. A file that cannot be parsed is `Ok`: it is
    /// indexed without text, as in Elastic, and read again only when the object changes. So is a
    /// file whose extraction worker died or had to be killed: the file did that to it.
    pub async fn fill(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
        doc: &mut Document,
        stats: &ContentStats,
    ) -> Result<bool, Unavailable> {
        self.0.fill(bucket, key, size, doc, stats).await
    }
}

impl Stage {
    async fn fill(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
        doc: &mut Document,
        stats: &ContentStats,
    ) -> Result<bool, Unavailable> {
        if matches!(self.mode, Mode::Off) {
            return Ok(false);
        }
        let native = matches!(self.mode, Mode::Native);
        if extract::format_for(key).is_none() {
            if extract::is_known_unsupported(key) {
                if native {
                    stats.skipped_unsupported.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::extraction(key, "unsupported");
                    return Ok(false);
                }
            } else {
                return Ok(false);
            }
        }
        let service = matches!(self.mode, Mode::Service(_));
        if !service && size > self.max_file_bytes {
            tracing::warn!(
                bucket,
                key,
                size,
                max = self.max_file_bytes,
                "file is larger than service.max_file_download_size; indexing its metadata only"
            );
            stats.skipped_too_large.fetch_add(1, Ordering::Relaxed);
            crate::metrics::extraction(key, "too_large");
            return Ok(false);
        }
        // Held until the file is done: its download may last as long as its extraction.
        let mut permit = self.downloads.acquire().await;
        let deadline = Deadline::new(download_deadline(self.download_floor, size));
        let open = open_counted(self.source.as_ref(), bucket, key, &deadline, &mut permit);
        let extracted = match &self.mode {
            Mode::Off => return Ok(false),
            Mode::Service(cfg) => {
                let body = open.await?;
                // The upload declares the object's length from the listing: the service gets a
                // plain body, not a chunked one. A body that turns out longer or shorter fails the
                // request, and the next sync tries again.
                let length = size;
                let (text, downloaded) = super::extraction_service::extract(
                    &self.http,
                    cfg,
                    key,
                    body,
                    Some(length),
                    &deadline,
                )
                .await?;
                stats
                    .downloaded_bytes
                    .fetch_add(downloaded, Ordering::Relaxed);
                Ok(text)
            }
            Mode::Attachment if self.pipeline_on.load(Ordering::Relaxed) => {
                let mut bytes = Vec::new();
                let reader = open.await?;
                feed(reader, self.max_file_bytes, &deadline, CHUNK, &mut bytes)
                    .await
                    .map_err(Fed::into_unavailable)?;
                stats
                    .downloaded_bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                if self.pipeline_on.load(Ordering::Relaxed) {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
                    doc.insert("_attachment", Value::String(encoded));
                    stats.extracted.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::extraction(key, "extracted");
                    return Ok(true);
                }
                self.pool().extract(key, &bytes, self.file_limits()).await
            }
            Mode::Native | Mode::Attachment => {
                self.extract_streamed(open, key, &deadline, stats).await?
            }
        };
        match extracted {
            Ok(text) => {
                doc.insert_str("body", &self.finish_text(text));
                stats.extracted.fetch_add(1, Ordering::Relaxed);
                crate::metrics::extraction(key, "extracted");
                Ok(false)
            }
            Err(Failure::Extract(ExtractError::Timeout)) => Err(Unavailable::ExtractionTimeout),
            Err(Failure::Spawn(e)) => Err(Unavailable::Worker(e.to_string())),
            Err(reason) => {
                tracing::warn!(bucket, key, reason = %reason, "text extraction failed; indexing metadata only");
                stats.failed.fetch_add(1, Ordering::Relaxed);
                crate::metrics::extraction(key, "failed");
                Ok(false)
            }
        }
    }

    /// Streams the object into an extraction worker as it downloads. The outer error is the
    /// download's; the inner result is the extraction's.
    async fn extract_streamed<R>(
        &self,
        open: impl Future<Output = Result<R, Unavailable>>,
        key: &str,
        deadline: &Deadline,
        stats: &ContentStats,
    ) -> Result<Result<String, Failure>, Unavailable>
    where
        R: AsyncRead + Unpin,
    {
        let mut extraction = self.pool().begin(key, self.file_limits());
        let fed = match open.await {
            Ok(reader) => {
                feed(
                    reader,
                    self.max_file_bytes,
                    deadline,
                    CHUNK,
                    &mut extraction,
                )
                .await
            }
            Err(e) => Err(Fed::Download(e)),
        };
        match fed {
            Ok(downloaded) => {
                stats
                    .downloaded_bytes
                    .fetch_add(downloaded, Ordering::Relaxed);
                Ok(extraction.finish().await)
            }
            Err(Fed::Download(e)) => {
                extraction.abort().await;
                Err(e)
            }
            Err(Fed::Consumer(failure)) => Ok(Err(failure)),
        }
    }

    fn pool(&self) -> &Pool {
        self.pool
            .as_ref()
            .expect("the native and attachment modes have a pool")
    }

    fn file_limits(&self) -> FileLimits {
        FileLimits {
            max_chars: self.max_chars,
            max_decompressed_bytes: self.max_decompressed_bytes,
            max_input_bytes: self.max_file_bytes,
        }
    }

    /// Elastic's pipeline steps natively (U+FFFD removal, whitespace, trim), and the size cap.
    fn finish_text(&self, text: String) -> String {
        let mut text = if self.reduce_whitespace {
            extract::reduce_whitespace(&text)
        } else {
            text.replace('\u{FFFD}', "")
        };
        if let Some(max) = self.max_body_bytes
            && text.len() > max
        {
            let mut cut = max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text
    }
}

/// How long one download may take in all: `floor`, plus a second per MiB of the object (a slow
/// but moving transfer of a large file finishes; a stalled one does not hold its slot for long).
pub fn download_deadline(floor: Duration, size: u64) -> Duration {
    floor + Duration::from_secs_f64(size as f64 / MIB_PER_SEC)
}

const MIB_PER_SEC: f64 = 1_048_576.0;

/// Bytes read from S3 at a time (native and attachment modes).
const CHUNK: usize = 64 * 1024;

/// A download's total deadline, from the request to the last byte.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadline {
    total: Duration,
    until: tokio::time::Instant,
}

impl Deadline {
    pub(super) fn new(total: Duration) -> Self {
        Deadline {
            total,
            until: tokio::time::Instant::now() + total,
        }
    }

    /// Time left.
    pub(super) fn remaining(&self) -> Duration {
        self.until
            .saturating_duration_since(tokio::time::Instant::now())
    }

    /// `work`, or [`Unavailable::Deadline`] once the deadline passes.
    pub(super) async fn within<T>(&self, work: impl Future<Output = T>) -> Result<T, Unavailable> {
        tokio::time::timeout_at(self.until, work)
            .await
            .map_err(|_| Unavailable::Deadline(self.total))
    }
}

/// Where the pieces of a download go.
pub(super) trait Consumer {
    type Error;
    async fn take(&mut self, piece: &[u8]) -> Result<(), Self::Error>;
}

/// Into memory (the attachment mode needs the whole file).
impl Consumer for Vec<u8> {
    type Error = std::convert::Infallible;
    async fn take(&mut self, piece: &[u8]) -> Result<(), Self::Error> {
        self.extend_from_slice(piece);
        Ok(())
    }
}

/// Into an extraction worker.
impl Consumer for Extraction<'_> {
    type Error = Failure;
    async fn take(&mut self, piece: &[u8]) -> Result<(), Failure> {
        self.send(piece).await
    }
}

/// Why [`feed`] stopped early.
#[derive(Debug)]
pub(super) enum Fed<E> {
    /// The download failed: try again next time.
    Download(Unavailable),
    /// The consumer refused a piece.
    Consumer(E),
}

impl Fed<std::convert::Infallible> {
    fn into_unavailable(self) -> Unavailable {
        match self {
            Fed::Download(e) => e,
            Fed::Consumer(never) => match never {},
        }
    }
}

/// Reads `reader` in pieces of `piece` bytes into `into`, at most `limit` bytes (an object that
/// grew past it since the listing fails), all before `deadline`. Returns the bytes read. Nothing
/// here holds more than one piece.
pub(super) async fn feed<R, C>(
    mut reader: R,
    limit: u64,
    deadline: &Deadline,
    piece: usize,
    into: &mut C,
) -> Result<u64, Fed<C::Error>>
where
    R: AsyncRead + Unpin,
    C: Consumer,
{
    let read = async {
        let mut buf = vec![0u8; piece.max(1)];
        let mut total = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| Fed::Download(Unavailable::Body(e)))?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            if total > limit {
                return Err(Fed::Download(Unavailable::Grew(limit)));
            }
            into.take(&buf[..n]).await.map_err(Fed::Consumer)?;
        }
    };
    deadline
        .within(read)
        .await
        .unwrap_or_else(|expired| Err(Fed::Download(expired)))
}

#[cfg(test)]
#[path = "content_tests.rs"]
mod tests;
