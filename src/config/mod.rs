//! Configuration: Elastic-compatible `config.yml` loading.
