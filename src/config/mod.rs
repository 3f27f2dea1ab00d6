//! Configuration: Elastic-compatible `config.yml` loading.
//!
//! [`load`] reproduces Elastic's loader: `envyaml` comment stripping and `$VAR` substitution, dotted keys
//! un-dotted, file values merged over Elastic's defaults, then `CONNECTORS_*` environment overrides
//! (a content-sync addition), typed with unknown keys rejected, and [`validate`]d. Every error names the
//! file and the key and never contains a secret.

mod de;
mod elasticsearch;
mod envyaml;
mod error;
mod extraction;
mod load;
mod model;
mod s3;
mod secret;
mod service;
mod tree;
mod validate;

pub use elasticsearch::{ApiMode, BulkConfig, ErrorMonitorConfig, EsConfig};
pub use envyaml::{Environment, parse_dotenv, strip_comment_lines, substitute};
pub use error::ConfigError;
pub use extraction::ExtractionConfig;
pub use load::{ENV_PREFIX, load, load_str, load_with};
pub use model::{Config, ConnectorEntry, EntrySource, IMPLEMENTED_SERVICE_TYPES};
pub use s3::{EndpointKey, S3Config};
pub use secret::Secret;
pub use service::{ExtractionServiceConfig, HttpConfig, ServiceConfig};
pub use validate::validate;

use std::time::Duration;

/// Seconds from the config as a duration; negative or non-finite values (rejected by [`validate`]) give 0.
fn secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO)
}

/// MiB from the config in bytes (saturating; negative gives 0).
fn mib(mebibytes: f64) -> u64 {
    (mebibytes * 1024.0 * 1024.0) as u64
}
