//! Content sources.
pub mod s3;
