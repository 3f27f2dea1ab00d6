//! Data sources: what a sync needs from the store it mirrors, behind two traits.
//!
//! * [`SourceKind`] is one kind of source (`service_type`): the configuration schema and features
//!   written into its connectors, the validation of its advanced sync rules, and `connect`, which
//!   reads a connector's configuration and returns a ready [`Source`];
//! * [`Source`] is one connected store for one job: the partitions of a sync (S3: buckets, each
//!   with an optional prefix and key filter), the listing of a partition page by page in a stable
//!   key order from a resumable position, a probe for the first key after a given one (which lets
//!   the sync list key ranges of one partition at once), and the bytes of one object as a bounded
//!   stream.
//!
//! [`Registry`] maps `service_type` to its kind. Adding a source is a new folder under `source/`
//! implementing both traits, plus one line in [`Registry::new`] (docs/architecture.md walks
//! through it with the in-memory source of `source/memory`).

mod document;
pub mod fields;
#[cfg(test)]
pub mod memory;
mod prefetch;
mod registry;
pub mod s3;

pub use document::Document;
pub use prefetch::Prefetch;
pub use registry::Registry;

use async_trait::async_trait;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use tokio::io::AsyncRead;

/// Why a source could not be used or read. The text is what a connector's or job's `error` field
/// shows: sources keep secrets out of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    message: String,
}

impl SourceError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Why the partitions of a sync could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// The advanced rules cannot be applied; the text is their validation message.
    #[error("{0}")]
    Rules(String),
    /// The store could not say what to list (S3: ListBuckets failed for `buckets: *`).
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Which listed keys a partition keeps (S3: an advanced rule's extension, glob and regex).
pub trait KeyFilter: Send + Sync + fmt::Debug {
    fn keeps(&self, key: &str) -> bool;
}

/// One independently listed part of a sync. Its `name` is what documents record as their
/// partition (S3: the bucket), what checkpoints name, and what a failed listing protects from
/// deletion.
#[derive(Debug, Clone)]
pub struct Partition {
    pub name: String,
    /// Only keys starting with it are listed (the store narrows the listing itself).
    pub prefix: Option<String>,
    /// Only listed keys it keeps are synced; `None` keeps all.
    pub filter: Option<Arc<dyn KeyFilter>>,
}

impl Partition {
    /// A whole partition, unfiltered.
    pub fn whole(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            prefix: None,
            filter: None,
        }
    }

    pub fn keeps(&self, key: &str) -> bool {
        self.filter.as_ref().is_none_or(|f| f.keeps(key))
    }
}

/// One listed object: its key, size and version tag, and the document the source makes of it:
/// with `_id`, `_timestamp`, and `bucket` holding the partition's name (which keeps the documents
/// of a partition whose listing failed from deletion); the sync adds `id` and `etag`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    /// The store's version tag (S3: the ETag); with `_timestamp` it tells changed objects apart.
    pub etag: Option<String>,
    pub document: Document,
}

/// An object's bytes, read as a stream (the caller bounds how much it reads, and for how long).
pub type ObjectReader = Box<dyn AsyncRead + Send + Unpin>;

/// Lists one partition, a page at a time, in key order (byte order of the keys). After an error the
/// same page can be asked for again.
#[async_trait]
pub trait PageLister: Send {
    /// The next page; `Ok(None)` once the listing is complete.
    async fn next_page(&mut self) -> Result<Option<Vec<Listed>>, SourceError>;
}

/// One connected store, for one job.
#[async_trait]
pub trait Source: Send + Sync {
    /// The partitions of a sync: from the advanced rules (`advanced`, the non-empty snippet value,
    /// already validated by [`SourceKind::validate_advanced_rules`]), else from the configuration.
    async fn partitions(&self, advanced: Option<&Value>) -> Result<Vec<Partition>, PartitionError>;

    /// A lister of `partition` starting after key `start_after` (from the beginning when `None`).
    /// It owns what it needs, so that the sync can run it in a task of its own (it lists the next
    /// pages while the current one is indexed).
    async fn list(
        &self,
        partition: &Partition,
        start_after: Option<String>,
    ) -> Result<Box<dyn PageLister>, SourceError>;

    /// The first key of `partition` that starts with `prefix` and sorts after `after` (byte order),
    /// or `None`. The sync probes with it to cut a big partition into key ranges listed at once
    /// (docs/architecture.md#key-ranges); the probes only steer how even the ranges are, never
    /// what is listed. A source that cannot tell answers `None`: its partitions are listed whole.
    async fn first_key(
        &self,
        partition: &Partition,
        prefix: &str,
        after: &str,
    ) -> Result<Option<String>, SourceError> {
        let _ = (partition, prefix, after);
        Ok(None)
    }

    /// The bytes of object `key` of partition `partition`.
    async fn open(&self, partition: &str, key: &str) -> Result<ObjectReader, SourceError>;

    /// How many times so far the store asked this source to slow down (S3: 503 `SlowDown` or 429),
    /// retried attempts included; the download limit lowers when it grows (docs/architecture.md,
    /// "Back-pressure"). A source that cannot tell returns 0.
    fn throttled(&self) -> u64 {
        0
    }
}

/// One kind of source, chosen by a connector's `service_type`.
#[async_trait]
pub trait SourceKind: Send + Sync {
    /// The connectors' `service_type` this kind serves (`s3`).
    fn service_type(&self) -> &'static str;

    /// The `configuration` written into a connector: every field with its default value.
    fn configuration_schema(&self) -> Map<String, Value>;

    /// The connector's `features` object.
    fn features(&self) -> Value;

    /// Checks a non-empty advanced-rules snippet value; `Err` is the message of the validation
    /// error (rule id `advanced_snippet`).
    fn validate_advanced_rules(&self, value: &Value) -> Result<(), String>;

    /// Reads and checks a connector's configuration, connects and checks that the store answers.
    async fn connect(
        &self,
        configuration: &Map<String, Value>,
    ) -> Result<Box<dyn Source>, SourceError>;
}

/// The extension of a key as Elastic computes it (docs/protocol.md#sync-rules): from the last `.` of the last path component,
/// dot included. `a.tar.gz` → `.gz`; `.bashrc`, `dir/` and `README` → `None`.
pub fn file_extension(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next().unwrap_or(key);
    // Python's os.path.splitext ignores leading dots: `.bashrc` and `..x` have no extension.
    let stem_start = name.len() - name.trim_start_matches('.').len();
    let dot = name[stem_start..].rfind('.')? + stem_start;
    Some(&name[dot..])
}
