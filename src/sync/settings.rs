//! Sync-time settings derived from `config.yml`.

use crate::config::Config;
use crate::es::bulk::SinkSettings;
use crate::es::connector::DEFAULT_PIPELINE;
use crate::retry::{Backoff, RetryPolicy};
use std::time::Duration;

/// Bulk sink settings from `elasticsearch.bulk.*` (retries use `elasticsearch.bulk.max_retries` and
/// `elasticsearch.bulk.retry_interval` as the first backoff step, capped at 60 s). The values were
/// typed and bounded when the config was read.
pub fn sink(config: &Config, index: &str, pipeline: Option<String>) -> SinkSettings {
    let bulk = &config.elasticsearch.bulk;
    SinkSettings {
        index: index.to_string(),
        // Our own extraction does the default pipeline's work, so a cluster without it is fine.
        pipeline_optional: pipeline.as_deref() == Some(DEFAULT_PIPELINE),
        pipeline,
        chunk_lines: bulk.chunk_size.get(),
        chunk_bytes: to_usize(bulk.chunk_max_mem_bytes),
        max_concurrency: bulk.max_concurrency,
        adaptive_concurrency: bulk.adaptive_concurrency,
        retry: RetryPolicy::new(
            bulk.max_retries,
            Backoff::new(bulk.retry_interval, Duration::from_secs(60)),
        ),
        max_text_bytes: bulk.max_text_document_bytes.map_or(0, to_usize),
        queue_items: bulk.queue_max_size,
        queue_bytes: to_usize(bulk.queue_max_mem_bytes),
        flush_interval: Duration::from_secs(1),
        error_monitor: bulk.error_monitor.clone(),
        log_operations: bulk.enable_operations_logging,
    }
}

fn to_usize(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}
