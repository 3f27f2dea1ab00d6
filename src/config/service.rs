//! The `service` and `extraction_service` sections.

use serde::Deserialize;
use std::time::Duration;

use super::de::{from_defaults, null_as_default, yaml_bool};
use super::secs;

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
    /// Poll interval (seconds) of the scheduler and the job executors.
    #[serde(default = "default_idling")]
    pub idling: f64,
    /// Minimum seconds between connector check-ins.
    #[serde(default = "default_heartbeat")]
    pub heartbeat: f64,
    /// Attempts of the startup system-index check.
    #[serde(default = "default_preflight_max_attempts")]
    pub preflight_max_attempts: u32,
    /// Seconds between those attempts.
    #[serde(default = "default_preflight_idle")]
    pub preflight_idle: f64,
    /// Unexpected errors tolerated per service loop before the process stops.
    #[serde(default = "default_max_errors")]
    pub max_errors: u32,
    /// Window (seconds) after which that error counter resets.
    #[serde(default = "default_max_errors_span")]
    pub max_errors_span: f64,
    /// Content (full/incremental) syncs running at once.
    #[serde(default = "one")]
    pub max_concurrent_content_syncs: usize,
    /// Access-control syncs running at once.
    #[serde(default = "one")]
    pub max_concurrent_access_control_syncs: usize,
    /// Connectors processed concurrently by the scheduler.
    #[serde(default = "default_max_concurrent_scheduling_tasks")]
    pub max_concurrent_scheduling_tasks: usize,
    /// Largest file (bytes) whose content is downloaded and extracted.
    #[serde(default = "default_max_file_download_size")]
    pub max_file_download_size: u64,
    /// Seconds between job-cleanup passes.
    #[serde(default = "default_job_cleanup_interval")]
    pub job_cleanup_interval: f64,
    /// Seconds without an update after which a running job counts as dead (content-sync addition;
    /// Elastic hard-codes 300).
    #[serde(default = "default_idle_job_threshold_secs")]
    pub idle_job_threshold_secs: u64,
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
    /// `idling` as a duration.
    pub fn idling(&self) -> Duration {
        secs(self.idling)
    }

    /// `heartbeat` as a duration.
    pub fn heartbeat(&self) -> Duration {
        secs(self.heartbeat)
    }

    /// `preflight_idle` as a duration.
    pub fn preflight_idle(&self) -> Duration {
        secs(self.preflight_idle)
    }

    /// `max_errors_span` as a duration.
    pub fn max_errors_span(&self) -> Duration {
        secs(self.max_errors_span)
    }

    /// `job_cleanup_interval` as a duration.
    pub fn job_cleanup_interval(&self) -> Duration {
        secs(self.job_cleanup_interval)
    }

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
    /// Total request timeout (seconds).
    #[serde(default = "default_extraction_timeout")]
    pub timeout: f64,
    /// Send a local file path instead of streaming the bytes.
    #[serde(default, deserialize_with = "yaml_bool")]
    pub use_file_pointers: bool,
    /// Upload chunk size (bytes) when streaming.
    #[serde(default = "default_stream_chunk_size")]
    pub stream_chunk_size: usize,
    /// Directory for temp files when using file pointers.
    #[serde(default = "default_shared_volume_dir")]
    pub shared_volume_dir: String,
}

impl Default for ExtractionServiceConfig {
    fn default() -> Self {
        from_defaults()
    }
}

impl ExtractionServiceConfig {
    /// `timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        secs(self.timeout)
    }
}

const fn one() -> usize {
    1
}
const fn default_idling() -> f64 {
    30.0
}
const fn default_heartbeat() -> f64 {
    300.0
}
const fn default_preflight_max_attempts() -> u32 {
    10
}
const fn default_preflight_idle() -> f64 {
    30.0
}
const fn default_max_errors() -> u32 {
    20
}
const fn default_max_errors_span() -> f64 {
    600.0
}
const fn default_max_concurrent_scheduling_tasks() -> usize {
    4
}
const fn default_max_file_download_size() -> u64 {
    10_485_760
}
const fn default_job_cleanup_interval() -> f64 {
    300.0
}
const fn default_idle_job_threshold_secs() -> u64 {
    300
}
fn default_service_log_level() -> String {
    "INFO".to_owned()
}
const fn default_extraction_timeout() -> f64 {
    30.0
}
const fn default_stream_chunk_size() -> usize {
    65_536
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
        assert_eq!(s.idling(), Duration::from_secs(30));
        assert_eq!(s.heartbeat(), Duration::from_secs(300));
        assert_eq!(s.preflight_max_attempts, 10);
        assert_eq!(s.preflight_idle(), Duration::from_secs(30));
        assert_eq!(s.max_errors, 20);
        assert_eq!(s.max_errors_span(), Duration::from_secs(600));
        assert_eq!(s.max_concurrent_content_syncs, 1);
        assert_eq!(s.max_concurrent_access_control_syncs, 1);
        assert_eq!(s.max_concurrent_scheduling_tasks, 4);
        assert_eq!(s.max_file_download_size, 10_485_760);
        assert_eq!(s.job_cleanup_interval(), Duration::from_secs(300));
        assert_eq!(s.log_level, "INFO");
        assert_eq!(s.http.listen, None);
        assert_eq!(s.http.listen_addr(), None);
    }

    #[test]
    fn extraction_service_defaults() {
        let e = ExtractionServiceConfig::default();
        assert_eq!(e.host, None);
        assert_eq!(e.timeout(), Duration::from_secs(30));
        assert!(!e.use_file_pointers);
        assert_eq!(e.stream_chunk_size, 65_536);
        assert_eq!(e.shared_volume_dir, "/app/files");
    }
}
