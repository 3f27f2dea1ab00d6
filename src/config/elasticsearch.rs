//! The `elasticsearch` section: connection, the service-level retrier, and `elasticsearch.bulk.*`.

use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::de::{from_defaults, non_empty_secret, null_as_default, yaml_bool};
use super::{Secret, mib, secs};

/// `elasticsearch.*`: how to reach the cluster. Key names are Elastic's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsConfig {
    /// Single node URL.
    #[serde(default = "default_host")]
    pub host: String,
    /// Basic-auth user; `null` in the file disables basic auth.
    #[serde(default = "default_username")]
    pub username: Option<String>,
    /// Basic-auth password; `null` in the file disables basic auth.
    #[serde(default = "default_password")]
    pub password: Option<Secret>,
    /// API key (base64 `id:key` form); takes precedence over basic auth.
    ///
    /// Fixed quirk: Elastic switches to API-key auth as soon as the key is *present*, even `null`.
    /// Here `null` and `""` count as absent, so `api_key: null` keeps basic auth. `Some` is never empty.
    #[serde(default, deserialize_with = "non_empty_secret")]
    pub api_key: Option<Secret>,
    /// Whether `verify_certs`/`ca_certs` apply (TLS itself follows the URL scheme).
    #[serde(default = "yes", deserialize_with = "yaml_bool")]
    pub ssl: bool,
    /// Verify the server certificate.
    #[serde(default = "yes", deserialize_with = "yaml_bool")]
    pub verify_certs: bool,
    /// CA bundle (PEM) to trust.
    #[serde(default)]
    pub ca_certs: Option<PathBuf>,
    /// Transport-level retry on timeout.
    #[serde(default = "yes", deserialize_with = "yaml_bool")]
    pub retry_on_timeout: bool,
    /// Seconds per request.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: f64,
    /// Seconds the startup "wait for Elasticsearch" loop may run.
    #[serde(default = "default_max_wait_duration")]
    pub max_wait_duration: f64,
    /// First sleep of the wait loop (seconds).
    #[serde(default = "default_initial_backoff_duration")]
    pub initial_backoff_duration: f64,
    /// Wait-loop sleep multiplier.
    #[serde(default = "default_backoff_multiplier")]
    pub backoff_multiplier: f64,
    /// Level of the Elasticsearch transport logger.
    #[serde(default = "default_es_log_level")]
    pub log_level: String,
    /// Attempts of the service-level retrier for every Elasticsearch call, `_bulk` included.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Base (seconds) of that retrier's linear back-off.
    #[serde(default = "default_retry_interval")]
    pub retry_interval: f64,
    /// `_connector` API mode vs direct index writes.
    #[serde(default)]
    pub feature_use_connectors_api: ApiMode,
    /// Extra HTTP headers sent with every request.
    #[serde(default, deserialize_with = "null_as_default")]
    pub headers: BTreeMap<String, String>,
    /// `elasticsearch.bulk.*`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub bulk: BulkConfig,
}

impl Default for EsConfig {
    fn default() -> Self {
        from_defaults()
    }
}

impl EsConfig {
    /// Whether API-key auth is used (a non-empty `api_key` is configured).
    pub fn uses_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// Whether the basic-auth credentials are Elastic's defaults (`elastic`/`changeme`).
    pub fn has_default_basic_auth(&self) -> bool {
        self.username.as_deref() == default_username().as_deref()
            && self.password.as_ref().map(Secret::expose) == Some(DEFAULT_PASSWORD)
    }

    /// `request_timeout` as a duration.
    pub fn request_timeout(&self) -> Duration {
        secs(self.request_timeout)
    }

    /// `max_wait_duration` as a duration.
    pub fn max_wait_duration(&self) -> Duration {
        secs(self.max_wait_duration)
    }

    /// `initial_backoff_duration` as a duration.
    pub fn initial_backoff_duration(&self) -> Duration {
        secs(self.initial_backoff_duration)
    }

    /// `retry_interval` as a duration.
    pub fn retry_interval(&self) -> Duration {
        secs(self.retry_interval)
    }
}

/// `elasticsearch.feature_use_connectors_api`: YAML `true`/`false` or the strings `"true"`, `"false"`,
/// `"auto"` (any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiMode {
    /// Always use the `_connector` APIs.
    True,
    /// Always write the connector/job indices directly.
    False,
    /// Decide at startup (content-sync addition; Elastic's default is `true`).
    #[default]
    Auto,
}

impl<'de> Deserialize<'de> for ApiMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "true, false or \"auto\"";
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(Self::True),
            serde_json::Value::Bool(false) => Ok(Self::False),
            serde_json::Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Self::True),
                "false" => Ok(Self::False),
                "auto" => Ok(Self::Auto),
                _ => Err(D::Error::invalid_value(Unexpected::Str(&s), &EXPECTED)),
            },
            other => Err(D::Error::invalid_type(
                super::de::unexpected(&other),
                &EXPECTED,
            )),
        }
    }
}

/// `elasticsearch.bulk.*`: the extractor → sink queue and `_bulk` requests of a sync.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkConfig {
    /// Max items in the extractor → sink queue.
    #[serde(default = "default_queue_max_size")]
    pub queue_max_size: usize,
    /// MiB cap of that queue.
    #[serde(default = "default_queue_max_mem_size")]
    pub queue_max_mem_size: u64,
    /// Seconds between "queue still full?" checks.
    #[serde(default = "default_queue_refresh_interval")]
    pub queue_refresh_interval: f64,
    /// Seconds a put may stay blocked before the sync fails ("Elasticsearch overloaded").
    #[serde(default = "default_queue_refresh_timeout")]
    pub queue_refresh_timeout: f64,
    /// Progress log every N documents.
    #[serde(default = "default_display_every")]
    pub display_every: u64,
    /// Max NDJSON lines per `_bulk` request.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: usize,
    /// MiB cap (estimated) per `_bulk` request.
    #[serde(default = "default_chunk_max_mem_size")]
    pub chunk_max_mem_size: f64,
    /// MiB cap for one document without `_attachment`; 0 disables; negative is a config error.
    #[serde(default = "default_max_text_document_size")]
    pub max_text_document_size: f64,
    /// Concurrent `_bulk` requests.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Concurrent content downloads.
    #[serde(default = "default_concurrent_downloads")]
    pub concurrent_downloads: usize,
    /// content-sync: fewer bulk requests and downloads in flight while Elasticsearch or S3 throttles
    /// or slows down; `max_concurrency` and `concurrent_downloads` stay the ceilings.
    #[serde(default = "yes", deserialize_with = "yaml_bool")]
    pub adaptive_concurrency: bool,
    /// Documented by Elastic as bulk retries; not effective there.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Same, not effective in Elastic's service.
    #[serde(default = "default_retry_interval")]
    pub retry_interval: f64,
    /// Log one debug line per bulk item result.
    #[serde(default, deserialize_with = "yaml_bool")]
    pub enable_operations_logging: bool,
    /// `elasticsearch.bulk.error_monitor.*`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub error_monitor: ErrorMonitorConfig,
}

impl Default for BulkConfig {
    fn default() -> Self {
        from_defaults()
    }
}

impl BulkConfig {
    /// `queue_max_mem_size` in bytes.
    pub fn queue_max_mem_bytes(&self) -> u64 {
        self.queue_max_mem_size.saturating_mul(1024 * 1024)
    }

    /// `chunk_max_mem_size` in bytes.
    pub fn chunk_max_mem_bytes(&self) -> u64 {
        mib(self.chunk_max_mem_size)
    }

    /// `max_text_document_size` in bytes; `None` when 0 (limit disabled).
    pub fn max_text_document_bytes(&self) -> Option<u64> {
        Some(mib(self.max_text_document_size)).filter(|&b| b > 0)
    }

    /// `queue_refresh_interval` as a duration.
    pub fn queue_refresh_interval(&self) -> Duration {
        secs(self.queue_refresh_interval)
    }

    /// `queue_refresh_timeout` as a duration.
    pub fn queue_refresh_timeout(&self) -> Duration {
        secs(self.queue_refresh_timeout)
    }
}

/// `elasticsearch.bulk.error_monitor.*`: when a sync gives up on document errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorMonitorConfig {
    /// Whether the monitor can fail a sync.
    #[serde(default = "yes", deserialize_with = "yaml_bool")]
    pub enabled: bool,
    /// Max errors in a whole sync.
    #[serde(default = "default_max_total_errors")]
    pub max_total_errors: u64,
    /// Max errors in a row.
    #[serde(default = "default_max_consecutive_errors")]
    pub max_consecutive_errors: u64,
    /// Max error ratio over the window.
    #[serde(default = "default_max_error_rate")]
    pub max_error_rate: f64,
    /// Operations in the sliding window.
    #[serde(default = "default_error_window_size")]
    pub error_window_size: usize,
    /// Errors kept for the final report.
    #[serde(default = "default_error_queue_size")]
    pub error_queue_size: usize,
}

impl Default for ErrorMonitorConfig {
    fn default() -> Self {
        from_defaults()
    }
}

const DEFAULT_PASSWORD: &str = "changeme";

const fn yes() -> bool {
    true
}
fn default_host() -> String {
    "http://localhost:9200".to_owned()
}
fn default_username() -> Option<String> {
    Some("elastic".to_owned())
}
fn default_password() -> Option<Secret> {
    Some(Secret::new(DEFAULT_PASSWORD))
}
const fn default_request_timeout() -> f64 {
    240.0
}
const fn default_max_wait_duration() -> f64 {
    240.0
}
const fn default_initial_backoff_duration() -> f64 {
    1.0
}
const fn default_backoff_multiplier() -> f64 {
    2.0
}
fn default_es_log_level() -> String {
    "info".to_owned()
}
const fn default_max_retries() -> u32 {
    5
}
const fn default_retry_interval() -> f64 {
    10.0
}
const fn default_queue_max_size() -> usize {
    1024
}
const fn default_queue_max_mem_size() -> u64 {
    25
}
const fn default_queue_refresh_interval() -> f64 {
    1.0
}
const fn default_queue_refresh_timeout() -> f64 {
    1300.0
}
const fn default_display_every() -> u64 {
    100
}
const fn default_chunk_size() -> usize {
    500
}
const fn default_chunk_max_mem_size() -> f64 {
    3.0
}
const fn default_max_text_document_size() -> f64 {
    3.0
}
const fn default_max_concurrency() -> usize {
    5
}
const fn default_concurrent_downloads() -> usize {
    10
}
const fn default_max_total_errors() -> u64 {
    1000
}
const fn default_max_consecutive_errors() -> u64 {
    10
}
const fn default_max_error_rate() -> f64 {
    0.15
}
const fn default_error_window_size() -> usize {
    100
}
const fn default_error_queue_size() -> usize {
    10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elasticsearch_defaults() {
        let es = EsConfig::default();
        assert_eq!(es.host, "http://localhost:9200");
        assert_eq!(es.username.as_deref(), Some("elastic"));
        assert_eq!(es.password.as_ref().map(Secret::expose), Some("changeme"));
        assert!(es.api_key.is_none() && !es.uses_api_key() && es.has_default_basic_auth());
        assert!(es.ssl && es.verify_certs && es.retry_on_timeout);
        assert_eq!(es.ca_certs, None);
        assert_eq!(es.request_timeout(), Duration::from_secs(240));
        assert_eq!(es.max_wait_duration(), Duration::from_secs(240));
        assert_eq!(es.initial_backoff_duration(), Duration::from_secs(1));
        assert_eq!(es.backoff_multiplier, 2.0);
        assert_eq!(es.log_level, "info");
        assert_eq!(es.max_retries, 5);
        assert_eq!(es.retry_interval(), Duration::from_secs(10));
        assert_eq!(es.feature_use_connectors_api, ApiMode::Auto);
        assert!(es.headers.is_empty());
    }

    #[test]
    fn bulk_and_error_monitor_defaults() {
        let b = BulkConfig::default();
        assert_eq!(b.queue_max_size, 1024);
        assert_eq!(b.queue_max_mem_size, 25);
        assert_eq!(b.queue_max_mem_bytes(), 25 * 1024 * 1024);
        assert_eq!(b.queue_refresh_interval(), Duration::from_secs(1));
        assert_eq!(b.queue_refresh_timeout(), Duration::from_secs(1300));
        assert_eq!(b.display_every, 100);
        assert_eq!(b.chunk_size, 500);
        assert_eq!(b.chunk_max_mem_bytes(), 3 * 1024 * 1024);
        assert_eq!(b.max_text_document_bytes(), Some(3 * 1024 * 1024));
        assert_eq!(b.max_concurrency, 5);
        assert_eq!(b.concurrent_downloads, 10);
        assert!(b.adaptive_concurrency);
        assert_eq!(b.max_retries, 5);
        assert_eq!(b.retry_interval, 10.0);
        assert!(!b.enable_operations_logging);
        let m = b.error_monitor;
        assert!(m.enabled);
        assert_eq!((m.max_total_errors, m.max_consecutive_errors), (1000, 10));
        assert_eq!(m.max_error_rate, 0.15);
        assert_eq!((m.error_window_size, m.error_queue_size), (100, 10));
    }

    #[test]
    fn api_mode_spellings() {
        let parse = |v| serde_json::from_value::<ApiMode>(v);
        assert_eq!(parse(serde_json::json!(true)).unwrap(), ApiMode::True);
        assert_eq!(parse(serde_json::json!(false)).unwrap(), ApiMode::False);
        assert_eq!(parse(serde_json::json!("FALSE")).unwrap(), ApiMode::False);
        assert_eq!(parse(serde_json::json!("auto")).unwrap(), ApiMode::Auto);
        assert!(parse(serde_json::json!("sometimes")).is_err());
        assert!(parse(serde_json::json!(1)).is_err());
    }

    #[test]
    fn zero_text_document_size_disables_the_limit() {
        let b = BulkConfig {
            max_text_document_size: 0.0,
            ..BulkConfig::default()
        };
        assert_eq!(b.max_text_document_bytes(), None);
    }
}
