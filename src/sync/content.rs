//! The content stage (§6.4, §8): downloads extractable objects and puts their text in `body` — or,
//! in Elastic's modes, the bytes in `_attachment` for the ingest pipeline, or the Data Extraction
//! Service's text in `body`.
//!
//! Which files: the extension allowlist (Elastic's, plus `.htm`, `.eml`, `name.ext.gz`) and
//! `size_in_bytes <= service.max_file_download_size` (not applied with the Data Extraction Service,
//! as in Elastic). A file that cannot be downloaded or parsed is still indexed, without text, with a
//! warning naming bucket, key and reason (Elastic drops documents whose download fails).
//! Downloads read at most the size limit; extraction runs on a blocking thread with a time limit.

use crate::config::{Config, ExtractionServiceConfig};
use crate::es::connector::Pipeline;
use crate::extract::{self, Limits};
use crate::source::s3::{S3Settings, S3Source};
use base64::Engine;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt;

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
    pub downloaded_bytes: AtomicU64,
}

/// The stage's settings for one job.
pub struct ContentStage {
    mode: Mode,
    max_file_bytes: u64,
    max_chars: usize,
    max_decompressed_bytes: u64,
    timeout: Duration,
    reduce_whitespace: bool,
    /// Largest `body` in bytes that keeps a document under `max_text_document_size`.
    max_body_bytes: Option<usize>,
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
        settings: &S3Settings,
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
            reduce_whitespace: pipeline.reduce_whitespace,
            max_body_bytes: (text_cap > 0).then(|| text_cap.saturating_sub(METADATA_ROOM)),
            http: reqwest::Client::new(),
            pipeline_on,
        }
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Adds the object's content to `doc`. Returns true when the document carries `_attachment`.
    pub async fn fill(
        &self,
        source: &S3Source,
        bucket: &str,
        key: &str,
        size: u64,
        doc: &mut Map<String, Value>,
        stats: &ContentStats,
    ) -> bool {
        if matches!(self.mode, Mode::Off) {
            return false;
        }
        let native = matches!(self.mode, Mode::Native);
        if extract::format_for(key).is_none() {
            if extract::is_known_unsupported(key) {
                if native {
                    stats.skipped_unsupported.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
            } else {
                return false;
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
            return false;
        }
        let limit = if service {
            u64::MAX
        } else {
            self.max_file_bytes
        };
        let bytes = match download(source, bucket, key, limit).await {
            Ok(b) => b,
            Err(reason) => {
                tracing::warn!(bucket, key, reason = %reason, "download failed; indexing metadata only");
                stats.failed.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        };
        stats
            .downloaded_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        match &self.mode {
            Mode::Off => false,
            Mode::Attachment if self.pipeline_on.load(Ordering::Relaxed) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
                doc.insert("_attachment".into(), Value::String(encoded));
                stats.extracted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Mode::Native | Mode::Attachment => {
                match self.extract_native(key, bytes).await {
                    Ok(text) => {
                        doc.insert("body".into(), Value::String(self.finish_text(text)));
                        stats.extracted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(reason) => {
                        tracing::warn!(bucket, key, reason = %reason, "text extraction failed; indexing metadata only");
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                false
            }
            Mode::Service(cfg) => {
                let text = super::extraction_service::extract(&self.http, cfg, key, bytes).await;
                doc.insert("body".into(), Value::String(self.finish_text(text)));
                stats.extracted.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    async fn extract_native(&self, key: &str, bytes: Vec<u8>) -> Result<String, String> {
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
            Ok(Ok(result)) => result.map_err(|e| e.to_string()),
            Ok(Err(join)) => Err(format!("extraction task failed: {join}")),
            Err(_) => Err("extraction timed out".into()),
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

/// Reads the object, at most `limit` bytes (an object that grew past it since the listing fails).
async fn download(
    source: &S3Source,
    bucket: &str,
    key: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let stream = source
        .get_object(bucket, key)
        .await
        .map_err(|e| e.to_string())?;
    let mut reader = stream.into_async_read().take(limit.saturating_add(1));
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("reading the object: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("object is larger than {limit} bytes"));
    }
    Ok(bytes)
}
