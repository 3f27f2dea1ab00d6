//! `extraction.*` (content-sync addition): limits of the native text extraction.

use serde::Deserialize;
use std::time::Duration;

use super::de::from_defaults;

/// Bounds of native extraction, per file. Which files are extracted follows Elastic's rules
/// (extension allowlist, `service.max_file_download_size`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractionConfig {
    /// Characters of text kept per file (Elasticsearch's attachment processor default).
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
    /// Time limit of one file's extraction, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: f64,
    /// The least time one download is given in all, in seconds; a second per MiB of the object is
    /// added. Applies to every extraction mode.
    #[serde(default = "default_download_timeout_secs")]
    pub download_timeout_secs: f64,
    /// Cap on bytes inflated from a zip or gzip container (bomb guard), in MiB.
    #[serde(default = "default_max_decompressed_mib")]
    pub max_decompressed_mib: u64,
    /// Address-space limit of each extraction worker process, in MiB: a file whose parser needs
    /// more is indexed without text, and the service's own memory is not touched.
    #[serde(default = "default_max_memory_mib")]
    pub max_memory_mib: u64,
}

impl Default for ExtractionConfig {
    fn default() -> Self {
        from_defaults()
    }
}

impl ExtractionConfig {
    pub fn timeout(&self) -> Duration {
        super::secs(self.timeout_secs)
    }

    pub fn download_timeout(&self) -> Duration {
        super::secs(self.download_timeout_secs)
    }
}

const fn default_max_chars() -> usize {
    100_000
}
const fn default_timeout_secs() -> f64 {
    30.0
}
const fn default_download_timeout_secs() -> f64 {
    30.0
}
const fn default_max_decompressed_mib() -> u64 {
    64
}
const fn default_max_memory_mib() -> u64 {
    512
}

/// The least `max_memory_mib`: a worker's own code, stack and buffers need room before any file.
pub const MIN_WORKER_MEMORY_MIB: u64 = 64;
