//! Configuration: Elastic-compatible `config.yml` loading.

mod secret;

pub use secret::Secret;
