//! The content stage (docs/architecture.md#content): downloads extractable objects and puts their text in `body` — or,
//! in Elastic's modes, the bytes in `_attachment` for the ingest pipeline, or the Data Extraction
//! Service's text in `body`.
//!
//! Which files: the extension allowlist (Elastic's, plus `.htm`, `.eml`, `name.ext.gz`) and
//! `size_in_bytes <= service.max_file_download_size` (not applied with the Data Extraction Service,
//! as in Elastic). A file that cannot be parsed is indexed without text, with a warning naming
//! bucket, key and reason. Content that cannot be read this time ([`Unavailable`]) is the caller's
//! to handle: it must not replace indexed text with nothing (Elastic drops documents whose
//! download fails). Downloads read at most the size limit within a total deadline; extraction runs
//! on a blocking thread with a time limit.

use super::options::SyncOptions;
use crate::config::{Config, ExtractionServiceConfig};
use crate::es::connector::Pipeline;
use crate::extract::{self, ExtractError, Limits};
use crate::source::{Source, SourceError};
use base64::Engine;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
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

/// Per-job counts (logged at job end and kept in the job's `metadata`).
#[derive(Debug, Default)]
pub struct ContentStats {
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
}

/// The stage's settings for one job.
pub struct ContentStage {
    mode: Mode,
    max_file_bytes: u64,
    max_chars: usize,
    max_decompressed_bytes: u64,
    timeout: Duration,
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
}

/// Room left in a document for its metadata fields when `body` is capped.
const METADATA_ROOM: usize = 4096;

impl ContentStage {
    /// Picks the mode from the connector's settings, the job's pipeline and `config.yml`.
    /// `pipeline_on` tells whether bulk requests (still) name the pipeline.
    pub fn new(
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
        let text_cap = (config.elasticsearch.bulk.max_text_document_size * 1_048_576.0) as usize;
        Self {
            mode,
            max_file_bytes: config.service.max_file_download_size,
            max_chars: config.extraction.max_chars,
            max_decompressed_bytes: config.extraction.max_decompressed_mib * 1_048_576,
            timeout: config.extraction.timeout(),
            download_floor: config.extraction.download_timeout(),
            reduce_whitespace: pipeline.reduce_whitespace,
            max_body_bytes: (text_cap > 0).then(|| text_cap.saturating_sub(METADATA_ROOM)),
            max_doc_bytes: (text_cap > 0).then_some(text_cap),
            http: reqwest::Client::new(),
            pipeline_on,
        }
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The cap on a serialized document without `_attachment`, if any.
    pub fn max_doc_bytes(&self) -> Option<usize> {
        self.max_doc_bytes
    }

    /// Adds the object's content to `doc`. `Ok(true)` when the document carries `_attachment`;
    /// `Err` when the content could not be read this time (a failed or too slow download, an
    /// extraction that ran out of time, an unreachable extraction service): the caller must not
    /// let that replace indexed text with nothing. A file that cannot be parsed is `Ok`: it is
    /// indexed without text, as in Elastic, and read again only when the object changes.
    pub async fn fill(
        &self,
        source: &dyn Source,
        bucket: &str,
        key: &str,
        size: u64,
        doc: &mut Map<String, Value>,
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
        let limit = if service {
            u64::MAX
        } else {
            self.max_file_bytes
        };
        let deadline = download_deadline(self.download_floor, size);
        let bytes = read_within(source.open(bucket, key), limit, deadline).await?;
        stats
            .downloaded_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        match &self.mode {
            Mode::Off => Ok(false),
            Mode::Attachment if self.pipeline_on.load(Ordering::Relaxed) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
                doc.insert("_attachment".into(), Value::String(encoded));
                stats.extracted.fetch_add(1, Ordering::Relaxed);
                crate::metrics::extraction(key, "extracted");
                Ok(true)
            }
            Mode::Native | Mode::Attachment => {
                match self.extract_native(key, bytes).await {
                    Ok(text) => {
                        doc.insert("body".into(), Value::String(self.finish_text(text)));
                        stats.extracted.fetch_add(1, Ordering::Relaxed);
                        crate::metrics::extraction(key, "extracted");
                    }
                    Err(ExtractError::Timeout) => return Err(Unavailable::ExtractionTimeout),
                    Err(reason) => {
                        tracing::warn!(bucket, key, reason = %reason, "text extraction failed; indexing metadata only");
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        crate::metrics::extraction(key, "failed");
                    }
                }
                Ok(false)
            }
            Mode::Service(cfg) => {
                let text = super::extraction_service::extract(&self.http, cfg, key, bytes).await?;
                doc.insert("body".into(), Value::String(self.finish_text(text)));
                stats.extracted.fetch_add(1, Ordering::Relaxed);
                crate::metrics::extraction(key, "extracted");
                Ok(false)
            }
        }
    }

    async fn extract_native(&self, key: &str, bytes: Vec<u8>) -> Result<String, ExtractError> {
        let limits = Limits {
            max_chars: self.max_chars,
            max_decompressed_bytes: self.max_decompressed_bytes,
            deadline: std::time::Instant::now() + self.timeout,
        };
        let key = key.to_string();
        let work = tokio::task::spawn_blocking(move || extract::extract(&key, &bytes, &limits));
        // The extractors stop at the deadline themselves; this outer bound only guards against one
        // that does not check it often enough.
        match tokio::time::timeout(self.timeout + Duration::from_secs(5), work).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(ExtractError::Panicked(join.to_string())),
            Err(_) => Err(ExtractError::Timeout),
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

/// Opens the object with `open` and reads it, at most `limit` bytes (an object that grew past it
/// since the listing fails), all within `deadline`.
async fn read_within<R, F>(open: F, limit: u64, deadline: Duration) -> Result<Vec<u8>, Unavailable>
where
    R: AsyncRead + Unpin,
    F: std::future::Future<Output = Result<R, SourceError>>,
{
    let read = async {
        let mut reader = open.await?.take(limit.saturating_add(1));
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(Unavailable::Body)?;
        if bytes.len() as u64 > limit {
            return Err(Unavailable::Grew(limit));
        }
        Ok(bytes)
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(Unavailable::Deadline(deadline)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn the_deadline_grows_with_the_size() {
        let floor = Duration::from_secs(30);
        assert_eq!(download_deadline(floor, 0), floor);
        assert_eq!(
            download_deadline(floor, 10 * 1_048_576),
            Duration::from_secs(40)
        );
    }

    #[tokio::test]
    async fn a_stalled_body_fails_at_its_deadline() {
        let (mut tx, rx) = tokio::io::duplex(64);
        tx.write_all(b"first bytes").await.unwrap();
        // `tx` stays open and silent: the body stalls.
        let open = async { Ok::<_, SourceError>(rx) };
        let started = std::time::Instant::now();
        let err = read_within(open, 1000, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, Unavailable::Deadline(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(tx);
    }

    #[tokio::test]
    async fn a_body_that_breaks_off_or_outgrows_the_limit_is_unavailable() {
        let open = async {
            Ok::<_, SourceError>(breaking_reader(
                b"partial",
                std::io::ErrorKind::ConnectionReset,
            ))
        };
        let err = read_within(open, 1000, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, Unavailable::Body(_)), "{err}");
        let open = async { Ok::<_, SourceError>(&b"0123456789"[..]) };
        let err = read_within(open, 4, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, Unavailable::Grew(4)), "{err}");
        let open = async { Ok::<_, SourceError>(&b"0123"[..]) };
        assert_eq!(
            read_within(open, 4, Duration::from_secs(5)).await.unwrap(),
            b"0123"
        );
    }

    /// A reader that yields `data`, then fails with `kind`.
    fn breaking_reader(data: &'static [u8], kind: std::io::ErrorKind) -> impl AsyncRead + Unpin {
        struct Breaking(&'static [u8], std::io::ErrorKind);
        impl AsyncRead for Breaking {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                if self.0.is_empty() {
                    return std::task::Poll::Ready(Err(self.1.into()));
                }
                let n = self.0.len().min(buf.remaining());
                buf.put_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                std::task::Poll::Ready(Ok(()))
            }
        }
        Breaking(data, kind)
    }
}
