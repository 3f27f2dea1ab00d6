//! Elasticsearch: client, connector and job documents, system indices, bulk sink.

pub mod bulk;
pub mod client;
pub mod cluster;
pub mod connector;
pub mod documents;
pub mod error;
pub mod job;
pub mod kinds;
pub mod protocol;
pub mod scroll;
pub mod search;
pub mod system_indices;
pub mod time;

pub use client::{EsClient, Hit, Occ};
pub use cluster::{ClusterInfo, Version};
pub use error::EsError;
