//! The `elasticsearch` section: connection, the service-level retrier, and `elasticsearch.bulk.*`.

use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use super::Secret;
use super::de::{
    MIB, at_least_one, from_defaults, mebibytes, mebibytes_at_least, mebibytes_or_unlimited,
    multiplier, non_empty_secret, non_negative, null_as_default, seconds, seconds_at_least,
    yaml_bool, zero_as_one,
};

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
    /// Time limit of one request (written in seconds; at least 1 s).
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "seconds_at_least::<_, 1000>"
    )]
    pub request_timeout: Duration,
    /// How long the startup "wait for Elasticsearch" loop may run (written in seconds).
    #[serde(default = "default_max_wait_duration", deserialize_with = "seconds")]
    pub max_wait_duration: Duration,
    /// First sleep of the wait loop (written in seconds; at least 10 ms).
    #[serde(
        default = "default_initial_backoff_duration",
        deserialize_with = "seconds_at_least::<_, 10>"
    )]
    pub initial_backoff_duration: Duration,
    /// Wait-loop sleep multiplier (below 1 is taken as 1).
    #[serde(
        default = "default_backoff_multiplier",
        deserialize_with = "multiplier"
    )]
    pub backoff_multiplier: f64,
    /// Level of the Elasticsearch transport logger.
    #[serde(default = "default_es_log_level")]
    pub log_level: String,
    /// Attempts of the service-level retrier for every Elasticsearch call, `_bulk` included.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First pause of that retrier's back-off (written in seconds; at least 10 ms).
    #[serde(
        default = "default_retry_interval",
        deserialize_with = "seconds_at_least::<_, 10>"
    )]
    pub retry_interval: Duration,
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

/// `elasticsearch.bulk.*`: the extractor → sink queue and `_bulk` requests of a sync. Sizes are
/// written in MiB (`*_size` keys) and held in bytes (`*_bytes` fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkConfig {
    /// Max items in the extractor → sink queue.
    #[serde(default = "default_queue_max_size", deserialize_with = "at_least_one")]
    pub queue_max_size: NonZeroUsize,
    /// Byte cap of that queue (`queue_max_mem_size`, MiB).
    #[serde(
        rename = "queue_max_mem_size",
        default = "default_queue_max_mem_bytes",
        deserialize_with = "mebibytes"
    )]
    pub queue_max_mem_bytes: u64,
    /// Between "queue still full?" checks (written in seconds).
    #[serde(
        default = "default_queue_refresh_interval",
        deserialize_with = "seconds"
    )]
    pub queue_refresh_interval: Duration,
    /// How long a put may stay blocked before the sync fails ("Elasticsearch overloaded").
    #[serde(
        default = "default_queue_refresh_timeout",
        deserialize_with = "seconds"
    )]
    pub queue_refresh_timeout: Duration,
    /// Progress log every N documents.
    #[serde(default = "default_display_every")]
    pub display_every: u64,
    /// Max NDJSON lines per `_bulk` request.
    #[serde(default = "default_chunk_size", deserialize_with = "at_least_one")]
    pub chunk_size: NonZeroUsize,
    /// Estimated byte cap per `_bulk` request (`chunk_max_mem_size`, MiB; at least 1 KiB).
    #[serde(
        rename = "chunk_max_mem_size",
        default = "default_chunk_max_mem_bytes",
        deserialize_with = "mebibytes_at_least::<_, 1024>"
    )]
    pub chunk_max_mem_bytes: u64,
    /// Byte cap for one document without `_attachment` (`max_text_document_size`, MiB); `None`
    /// when written as 0 (no cap).
    #[serde(
        rename = "max_text_document_size",
        default = "default_max_text_document_bytes",
        deserialize_with = "mebibytes_or_unlimited"
    )]
    pub max_text_document_bytes: Option<u64>,
    /// Concurrent `_bulk` requests.
    #[serde(default = "default_max_concurrency", deserialize_with = "at_least_one")]
    pub max_concurrency: NonZeroUsize,
    /// Concurrent content downloads.
    #[serde(
        default = "default_concurrent_downloads",
        deserialize_with = "at_least_one"
    )]
    pub concurrent_downloads: NonZeroUsize,
    /// content-sync: fewer bulk requests and downloads in flight while Elasticsearch or S3 throttles
    /// or slows down; `max_concurrency` and `concurrent_downloads` stay the ceilings.
    #[serde(default = "yes", deserialize_with = "yaml_bool")]
    pub adaptive_concurrency: bool,
    /// Documented by Elastic as bulk retries; not effective there.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Same, not effective in Elastic's service (written in seconds; at least 10 ms).
    #[serde(
        default = "default_retry_interval",
        deserialize_with = "seconds_at_least::<_, 10>"
    )]
    pub retry_interval: Duration,
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
    #[serde(default = "default_max_error_rate", deserialize_with = "non_negative")]
    pub max_error_rate: f64,
    /// Operations in the sliding window.
    #[serde(default = "default_error_window_size")]
    pub error_window_size: usize,
    /// Errors kept for the final report (0 keeps one).
    #[serde(default = "default_error_queue_size", deserialize_with = "zero_as_one")]
    pub error_queue_size: NonZeroUsize,
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
const fn default_request_timeout() -> Duration {
    Duration::from_secs(240)
}
const fn default_max_wait_duration() -> Duration {
    Duration::from_secs(240)
}
const fn default_initial_backoff_duration() -> Duration {
    Duration::from_secs(1)
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
const fn default_retry_interval() -> Duration {
    Duration::from_secs(10)
}
const fn default_queue_max_size() -> NonZeroUsize {
    NonZeroUsize::new(1024).unwrap()
}
const fn default_queue_max_mem_bytes() -> u64 {
    25 * MIB
}
const fn default_queue_refresh_interval() -> Duration {
    Duration::from_secs(1)
}
const fn default_queue_refresh_timeout() -> Duration {
    Duration::from_secs(1300)
}
const fn default_display_every() -> u64 {
    100
}
const fn default_chunk_size() -> NonZeroUsize {
    NonZeroUsize::new(500).unwrap()
}
const fn default_chunk_max_mem_bytes() -> u64 {
    3 * MIB
}
const fn default_max_text_document_bytes() -> Option<u64> {
    Some(3 * MIB)
}
const fn default_max_concurrency() -> NonZeroUsize {
    NonZeroUsize::new(5).unwrap()
}
const fn default_concurrent_downloads() -> NonZeroUsize {
    NonZeroUsize::new(10).unwrap()
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
const fn default_error_queue_size() -> NonZeroUsize {
    NonZeroUsize::new(10).unwrap()
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
        assert_eq!(es.request_timeout, Duration::from_secs(240));
        assert_eq!(es.max_wait_duration, Duration::from_secs(240));
        assert_eq!(es.initial_backoff_duration, Duration::from_secs(1));
        assert_eq!(es.backoff_multiplier, 2.0);
        assert_eq!(es.log_level, "info");
        assert_eq!(es.max_retries, 5);
        assert_eq!(es.retry_interval, Duration::from_secs(10));
        assert_eq!(es.feature_use_connectors_api, ApiMode::Auto);
        assert!(es.headers.is_empty());
    }

    #[test]
    fn bulk_and_error_monitor_defaults() {
        let b = BulkConfig::default();
        assert_eq!(b.queue_max_size.get(), 1024);
        assert_eq!(b.queue_max_mem_bytes, 25 * 1024 * 1024);
        assert_eq!(b.queue_refresh_interval, Duration::from_secs(1));
        assert_eq!(b.queue_refresh_timeout, Duration::from_secs(1300));
        assert_eq!(b.display_every, 100);
        assert_eq!(b.chunk_size.get(), 500);
        assert_eq!(b.chunk_max_mem_bytes, 3 * 1024 * 1024);
        assert_eq!(b.max_text_document_bytes, Some(3 * 1024 * 1024));
        assert_eq!(b.max_concurrency.get(), 5);
        assert_eq!(b.concurrent_downloads.get(), 10);
        assert!(b.adaptive_concurrency);
        assert_eq!(b.max_retries, 5);
        assert_eq!(b.retry_interval, Duration::from_secs(10));
        assert!(!b.enable_operations_logging);
        let m = b.error_monitor;
        assert!(m.enabled);
        assert_eq!((m.max_total_errors, m.max_consecutive_errors), (1000, 10));
        assert_eq!(m.max_error_rate, 0.15);
        assert_eq!((m.error_window_size, m.error_queue_size.get()), (100, 10));
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

    /// `elasticsearch.bulk` as written in the file.
    fn bulk(v: serde_json::Value) -> Result<BulkConfig, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn sizes_in_mib_become_bytes_and_zero_text_size_disables_the_limit() {
        let b = bulk(serde_json::json!({
            "queue_max_mem_size": 2, "chunk_max_mem_size": 0.5, "max_text_document_size": 0,
        }))
        .unwrap();
        assert_eq!(b.queue_max_mem_bytes, 2 * 1024 * 1024);
        assert_eq!(b.chunk_max_mem_bytes, 512 * 1024);
        assert_eq!(b.max_text_document_bytes, None);
        // A request is never cut below 1 KiB.
        let tiny = bulk(serde_json::json!({"chunk_max_mem_size": 0})).unwrap();
        assert_eq!(tiny.chunk_max_mem_bytes, 1024);
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_value() {
        let e = bulk(serde_json::json!({"max_concurrency": 0})).unwrap_err();
        assert!(e.starts_with("must be at least 1, got 0"), "{e}");
        let e = bulk(serde_json::json!({"max_text_document_size": -1})).unwrap_err();
        assert!(
            e.starts_with("must be a non-negative number of MiB, got -1"),
            "{e}"
        );
        let e = bulk(serde_json::json!({"queue_refresh_timeout": -0.5})).unwrap_err();
        assert!(
            e.starts_with("must be a non-negative number of seconds, got -0.5"),
            "{e}"
        );
        let e = bulk(serde_json::json!({"error_monitor": {"max_error_rate": -1}})).unwrap_err();
        assert!(
            e.starts_with("must be a non-negative number, got -1"),
            "{e}"
        );
    }

    #[test]
    fn pauses_too_short_to_be_useful_are_lifted_once_here() {
        let es: EsConfig = serde_json::from_value(serde_json::json!({
            "request_timeout": 0, "initial_backoff_duration": 0, "retry_interval": 0.001,
            "backoff_multiplier": 0.5, "max_wait_duration": 0,
        }))
        .unwrap();
        assert_eq!(es.request_timeout, Duration::from_secs(1));
        assert_eq!(es.initial_backoff_duration, Duration::from_millis(10));
        assert_eq!(es.retry_interval, Duration::from_millis(10));
        assert_eq!(es.backoff_multiplier, 1.0);
        assert_eq!(es.max_wait_duration, Duration::ZERO);
        let b = bulk(
            serde_json::json!({"retry_interval": 0, "error_monitor": {"error_queue_size": 0}}),
        )
        .unwrap();
        assert_eq!(b.retry_interval, Duration::from_millis(10));
        assert_eq!(b.error_monitor.error_queue_size.get(), 1);
    }
}
