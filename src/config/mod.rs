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
