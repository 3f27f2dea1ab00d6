//! `extraction.*` (content-sync addition): limits of the native text extraction.

use serde::Deserialize;
use std::num::NonZeroUsize;
use std::time::Duration;

use super::de::{MIB, at_least_one, from_defaults, mebibytes, seconds};

/// Bounds of native extraction, per file. Which files are extracted follows Elastic's rules
/// (extension allowlist, `service.max_file_download_size`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractionConfig {
    /// Characters of text kept per file (Elasticsearch's attachment processor default).
    #[serde(default = "default_max_chars", deserialize_with = "at_least_one")]
    pub max_chars: NonZeroUsize,
    /// Time limit of one file's extraction (`timeout_secs`).
    #[serde(
        rename = "timeout_secs",
        default = "default_timeout",
        deserialize_with = "seconds"
    )]
    pub timeout: Duration,
    /// The least time one download is given in all (`download_timeout_secs`); a second per MiB of
    /// the object is added. Applies to every extraction mode.
    #[serde(
        rename = "download_timeout_secs",
        default = "default_download_timeout",
        deserialize_with = "seconds"
    )]
    pub download_timeout: Duration,
    /// Cap on bytes inflated from a zip or gzip container (bomb guard; `max_decompressed_mib`).
    #[serde(
        rename = "max_decompressed_mib",
        default = "default_max_decompressed_bytes",
        deserialize_with = "mebibytes"
    )]
    pub max_decompressed_bytes: u64,
    /// Address-space limit of each extraction worker process (`max_memory_mib`): a file whose
    /// parser needs more is indexed without text, and the service's own memory is not touched.
    #[serde(
        rename = "max_memory_mib",
        default = "default_max_memory_bytes",
        deserialize_with = "mebibytes"
    )]
    pub max_memory_bytes: u64,
}

impl Default for ExtractionConfig {
    fn default() -> Self {
        from_defaults()
    }
}

const fn default_max_chars() -> NonZeroUsize {
    NonZeroUsize::new(100_000).unwrap()
}
const fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
const fn default_download_timeout() -> Duration {
    Duration::from_secs(30)
}
const fn default_max_decompressed_bytes() -> u64 {
    64 * MIB
}
const fn default_max_memory_bytes() -> u64 {
    512 * MIB
}

/// The least `max_memory_mib`: a worker's own code, stack and buffers need room before any file.
pub const MIN_WORKER_MEMORY_MIB: u64 = 64;
