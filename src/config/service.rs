//! The `service` and `extraction_service` sections.

use serde::Deserialize;
use std::num::NonZeroUsize;
use std::time::Duration;

use super::de::{
    at_least_one, from_defaults, null_as_default, seconds, seconds_at_least, yaml_bool,
};

/// `service.*`: the poll loops, their limits and the service log level.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Handle every self-managed connector of `service_types` instead of a fixed `connectors` list.
    #[serde(default, deserialize_with = "yaml_bool")]
    pub worker_mode: bool,
    /// Service types to handle; used in the connector query whenever non-empty (Elastic quirk).
    #[serde(default, deserialize_with = "null_as_default")]
    pub service_types: Vec<String>,
    /// Poll interval of the scheduler and the job executors (written in seconds; at least 50 ms).
    #[serde(
        default = "default_idling",
        deserialize_with = "seconds_at_least::<_, 50>"
    )]
    pub idling: Duration,
    /// Least time between connector check-ins (written in seconds).
    #[serde(default = "default_heartbeat", deserialize_with = "seconds")]
    pub heartbeat: Duration,
    /// Attempts of the startup system-index check.
    #[serde(default = "default_preflight_max_attempts")]
    pub preflight_max_attempts: u32,
    /// The longest pause between those attempts (written in seconds).
    #[serde(default = "default_preflight_idle", deserialize_with = "seconds")]
    pub preflight_idle: Duration,
    /// Unexpected errors tolerated per service loop before the process stops.
    #[serde(default = "default_max_errors")]
    pub max_errors: u32,
    /// Window after which that error counter resets (written in seconds).
    #[serde(default = "default_max_errors_span", deserialize_with = "seconds")]
    pub max_errors_span: Duration,
    /// Content (full/incremental) syncs running at once.
    #[serde(default = "one", deserialize_with = "at_least_one")]
    pub max_concurrent_content_syncs: NonZeroUsize,
    /// Access-control syncs running at once.
    #[serde(default = "one", deserialize_with = "at_least_one")]
    pub max_concurrent_access_control_syncs: NonZeroUsize,
    /// Connectors processed concurrently by the scheduler.
    #[serde(
        default = "default_max_concurrent_scheduling_tasks",
        deserialize_with = "at_least_one"
    )]
    pub max_concurrent_scheduling_tasks: NonZeroUsize,
    /// Largest file (bytes) whose content is downloaded and extracted.
    #[serde(default = "default_max_file_download_size")]
    pub max_file_download_size: u64,
    /// Between job-cleanup passes (written in seconds; at least 1 s).
    #[serde(
        default = "default_job_cleanup_interval",
        deserialize_with = "seconds_at_least::<_, 1000>"
    )]
    pub job_cleanup_interval: Duration,
    /// Time without an update after which a running job counts as dead (written in seconds;
    /// content-sync addition; Elastic hard-codes 300).
    #[serde(
        rename = "idle_job_threshold_secs",
        default = "default_idle_job_threshold",
        deserialize_with = "seconds"
    )]
    pub idle_job_threshold: Duration,
    /// Service log level (the CLI's `--log-level`/`--debug` win).
    #[serde(default = "default_service_log_level")]
    pub log_level: String,
    /// FIPS mode.
    #[serde(default, deserialize_with = "yaml_bool")]
    pub fips_mode: bool,
    /// Directory for a sync's temporary files: the id sets of reconciliation once they outgrow
    /// memory (content-sync addition; default `content-sync` in the OS temp directory).
    #[serde(default)]
    pub temp_dir: Option<std::path::PathBuf>,
    /// Key ranges of one bucket listed at once, when it has more than two pages and the sync waits
    /// on its listing (content-sync addition; 1 lists every bucket from its first key to its last;
    /// docs/architecture.md#key-ranges).
    #[serde(default = "default_listing_ranges", deserialize_with = "at_least_one")]
    pub listing_ranges: NonZeroUsize,
    /// `service.http.*`: the metrics and health listener (content-sync addition).
    #[serde(default, deserialize_with = "null_as_default")]
    pub http: HttpConfig,
}

/// `service.http.*`: where `/metrics`, `/healthz` and `/readyz` are served. Absent → no listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `address:port` to listen on, e.g. `127.0.0.1:9108` (`0.0.0.0:9108` in a container).
    #[serde(default)]
    pub listen: Option<String>,
}

impl HttpConfig {
    /// The listen address, when set and valid (checked by `validate`).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.as_deref().and_then(|a| a.trim().parse().ok())
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        from_defaults()
    }
}

impl ServiceConfig {
    /// Where syncs put their temporary files.
    pub fn temp_dir(&self) -> std::path::PathBuf {
        self.temp_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("content-sync"))
    }
}

/// `extraction_service.*`: the optional Data Extraction Service. Absent → local extraction only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractionServiceConfig {
    /// Base URL, e.g. `http://localhost:8090`.
    #[serde(default)]
    pub host: Option<String>,
    /// Total request timeout (written in seconds).
    #[serde(default = "default_extraction_timeout", deserialize_with = "seconds")]
    pub timeout: Duration,
    /// Send a local file path instead of streaming the bytes.
    #[serde(default, deserialize_with = "yaml_bool")]
    pub use_file_pointers: bool,
    /// Upload chunk size (bytes) when streaming.
    #[serde(
        default = "default_stream_chunk_size",
        deserialize_with = "at_least_one"
    )]
    pub stream_chunk_size: NonZeroUsize,
    /// Directory for temp files when using file pointers.
    #[serde(default = "default_shared_volume_dir")]
    pub shared_volume_dir: String,
}

impl Default for ExtractionServiceConfig {
    fn default() -> Self {
        from_defaults()
    }
}

const fn one() -> NonZeroUsize {
    NonZeroUsize::MIN
}
const fn default_listing_ranges() -> NonZeroUsize {
    NonZeroUsize::new(4).unwrap()
}
const fn default_idling() -> Duration {
    Duration::from_secs(30)
}
const fn default_heartbeat() -> Duration {
    Duration::from_secs(300)
}
const fn default_preflight_max_attempts() -> u32 {
    10
}
const fn default_preflight_idle() -> Duration {
    Duration::from_secs(30)
}
const fn default_max_errors() -> u32 {
    20
}
const fn default_max_errors_span() -> Duration {
    Duration::from_secs(600)
}
const fn default_max_concurrent_scheduling_tasks() -> NonZeroUsize {
    NonZeroUsize::new(4).unwrap()
}
const fn default_max_file_download_size() -> u64 {
    10_485_760
}
const fn default_job_cleanup_interval() -> Duration {
    Duration::from_secs(300)
}
const fn default_idle_job_threshold() -> Duration {
    Duration::from_secs(300)
}
fn default_service_log_level() -> String {
    "INFO".to_owned()
}
const fn default_extraction_timeout() -> Duration {
    Duration::from_secs(30)
}
const fn default_stream_chunk_size() -> NonZeroUsize {
    NonZeroUsize::new(65_536).unwrap()
}
fn default_shared_volume_dir() -> String {
    "/app/files".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_defaults() {
        let s = ServiceConfig::default();
        assert!(!s.worker_mode && s.service_types.is_empty() && !s.fips_mode);
        assert_eq!(s.idling, Duration::from_secs(30));
        assert_eq!(s.heartbeat, Duration::from_secs(300));
        assert_eq!(s.preflight_max_attempts, 10);
        assert_eq!(s.preflight_idle, Duration::from_secs(30));
        assert_eq!(s.max_errors, 20);
        assert_eq!(s.max_errors_span, Duration::from_secs(600));
        assert_eq!(s.max_concurrent_content_syncs.get(), 1);
        assert_eq!(s.max_concurrent_access_control_syncs.get(), 1);
        assert_eq!(s.max_concurrent_scheduling_tasks.get(), 4);
        assert_eq!(s.max_file_download_size, 10_485_760);
        assert_eq!(s.job_cleanup_interval, Duration::from_secs(300));
        assert_eq!(s.idle_job_threshold, Duration::from_secs(300));
        assert_eq!(s.log_level, "INFO");
        assert_eq!(s.http.listen, None);
        assert_eq!(s.http.listen_addr(), None);
    }

    #[test]
    fn extraction_service_defaults() {
        let e = ExtractionServiceConfig::default();
        assert_eq!(e.host, None);
        assert_eq!(e.timeout, Duration::from_secs(30));
        assert!(!e.use_file_pointers);
        assert_eq!(e.stream_chunk_size.get(), 65_536);
        assert_eq!(e.shared_volume_dir, "/app/files");
    }

    #[test]
    fn seconds_become_durations_and_poll_loops_never_spin() {
        let s: ServiceConfig = serde_json::from_value(serde_json::json!({
            "idling": 0, "heartbeat": 2.5, "job_cleanup_interval": 0.1, "idle_job_threshold_secs": 12,
        }))
        .unwrap();
        assert_eq!(s.idling, Duration::from_millis(50));
        assert_eq!(s.heartbeat, Duration::from_millis(2500));
        assert_eq!(s.job_cleanup_interval, Duration::from_secs(1));
        assert_eq!(s.idle_job_threshold, Duration::from_secs(12));
        let e = serde_json::from_value::<ServiceConfig>(serde_json::json!({"idling": -1}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("must be a non-negative number of seconds, got -1"),
            "{e}"
        );
        let e = serde_json::from_value::<ServiceConfig>(
            serde_json::json!({"max_concurrent_content_syncs": 0}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("must be at least 1, got 0"), "{e}");
    }
}
