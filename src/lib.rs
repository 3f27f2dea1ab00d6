//! content-sync: keeps an Elasticsearch index in sync with Amazon S3 buckets.
//!
//! The data path, folder by folder: `config` → `es` (client, connector/job documents, bulk sink) →
//! `service` (preflight, scheduler, job executor, cleanup) → `sync` (list → filter → fetch → bulk → reconcile)
//! → `source::s3`.

pub mod allocator;
pub mod cli;
pub mod concurrency;
pub mod config;
pub mod es;
pub mod extract;
pub mod logging;
pub mod metrics;
pub mod python;
pub mod retry;
pub mod service;
pub mod source;
pub mod sync;
#[cfg(test)]
mod testing;
