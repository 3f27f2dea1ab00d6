//! Sync-time settings derived from `config.yml`.

use crate::config::Config;
use crate::es::backoff::Backoff;
use crate::es::bulk::SinkSettings;
use crate::es::connector::DEFAULT_PIPELINE;
use crate::es::retry::RetryPolicy;
use std::time::Duration;

const MIB: f64 = 1_048_576.0;

/// Bulk sink settings from `elasticsearch.bulk.*` (retries use `elasticsearch.max_retries` and
/// `elasticsearch.bulk.retry_interval` as the first backoff step, capped at 60 s).
pub fn sink(config: &Config, index: &str, pipeline: Option<String>) -> SinkSettings {
    let bulk = &config.elasticsearch.bulk;
    SinkSettings {
        index: index.to_string(),
        // Our own extraction does the default pipeline's work, so a cluster without it is fine.
        pipeline_optional: pipeline.as_deref() == Some(DEFAULT_PIPELINE),
        pipeline,
        chunk_lines: bulk.chunk_size.max(1),
        chunk_bytes: ((bulk.chunk_max_mem_size * MIB) as usize).max(1024),
        max_concurrency: bulk.max_concurrency.max(1),
        adaptive_concurrency: bulk.adaptive_concurrency,
        retry: RetryPolicy::new(
            bulk.max_retries,
            Backoff::new(
                Duration::from_secs_f64(bulk.retry_interval.clamp(0.01, 60.0)),
                Duration::from_secs(60),
            ),
        ),
        max_text_bytes: (bulk.max_text_document_size.max(0.0) * MIB) as usize,
        queue_items: bulk.queue_max_size.max(1),
        queue_bytes: (bulk.queue_max_mem_size as f64 * MIB) as usize,
        flush_interval: Duration::from_secs(1),
        error_monitor: bulk.error_monitor.clone(),
        log_operations: bulk.enable_operations_logging,
    }
}
