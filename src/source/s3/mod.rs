//! Amazon S3 (and S3-compatible) source.
//!
//! * [`kind`]: [`S3Kind`] and [`S3Store`], S3 behind the source seam ([`crate::source`]);
//! * [`rules`]: the advanced sync rules (which buckets and prefixes to list, which keys to keep);
//! * [`schema`]: the configuration schema written to the connector (Elastic's eight fields + ours);
//! * [`settings`]: reading and validating that configuration into [`S3Settings`];
//! * [`limits`]: what config.yml's `s3.*` lets those settings do;
//! * [`client`]: [`S3Client`], the configured client (ping, bucket resolution, listing, download);
//! * `download`: GetObject in one plain signed request, the SDK's GetObject when that fails;
//! * [`listing`]: [`BucketLister`], paged ListObjectsV2, and [`S3Object`];
//! * `list_decode`: ListObjectsV2 answers decoded straight into [`S3Object`]s (the SDK's decoding is slow);
//! * `paging`: when a paginated listing is complete, and when a server's pages cannot be trusted;
//! * [`document`]: the document indexed for each object.

pub mod client;
pub mod document;
mod download;
mod endpoint;
pub mod error;
pub mod kind;
pub mod limits;
mod list_decode;
pub mod listing;
mod paging;
pub mod rules;
pub mod schema;
pub mod settings;
mod throttle;

#[cfg(test)]
mod live_tests;

pub use client::S3Client;
pub use document::{document_id, file_extension, iso_timestamp, to_document};
pub use error::S3Error;
pub use kind::{S3Kind, S3Store};
pub use limits::LimitError;
pub use listing::{BucketLister, OwnerField, S3Object};
pub use paging::PagingError;
pub use schema::{configuration_schema, schema_field_names};
pub use settings::{S3Settings, SettingsError};
