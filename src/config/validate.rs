//! Startup validation (Elastic's preflight config checks, as hard errors) plus sanity checks of numbers.

use super::{Config, ConfigError, EndpointKey};

/// Checks that `config` can run. Returns the warnings to log, or the first problem found as a
/// [`ConfigError::Validation`] naming the key and the file.
///
/// Errors: worker mode without `service.service_types`; no connector outside worker mode; `changeme`
/// ids/types; a connector without or with an unsupported `service_type`; negative, non-finite or (for
/// sizes and concurrency) zero numbers. Warning: `service.service_types` set outside worker mode.
pub fn validate(config: &Config) -> Result<Vec<String>, ConfigError> {
    let fail = |key: &str, message: String| ConfigError::Validation {
        path: config.path.clone(),
        key: key.to_owned(),
        message,
    };
    let mut warnings = Vec::new();
    check_numbers(config).map_err(|(key, message)| fail(key, message))?;

    let service = &config.service;
    let supported = config.supported_service_types();
    if service.worker_mode {
        if service.service_types.is_empty() {
            return Err(fail(
                "service.service_types",
                "service is running with 'service.worker_mode: true' and no 'service.service_types' \
                 configured"
                    .to_owned(),
            ));
        }
        for service_type in &service.service_types {
            if !supported.contains(&service_type.as_str()) {
                warnings.push(format!(
                    "'service.service_types' lists unsupported service type \"{service_type}\" (supported: {})",
                    supported.join(", ")
                ));
            }
        }
    } else {
        if config.connectors.is_empty() {
            return Err(match config.unnamed_connectors.first() {
                Some(key) => fail(key, format!("no connector configured: missing key \"{key}\"")),
                None => fail(
                    "connectors",
                    "no connector configured: set `connectors` (list of {connector_id, service_type})"
                        .to_owned(),
                ),
            });
        }
        if !service.service_types.is_empty() {
            warnings.push(
                "'service.service_types' is set but 'service.worker_mode' is false; the service types \
                 still restrict which connectors are handled"
                    .to_owned(),
            );
        }
    }

    for entry in &config.connectors {
        for (field, value) in [
            ("connector_id", &entry.connector_id),
            ("service_type", &entry.service_type),
        ] {
            if value == "changeme" {
                let key = entry.key(field);
                return Err(fail(
                    &key,
                    format!("unmodified default configuration detected: \"{key}\" is \"changeme\""),
                ));
            }
        }
        let key = entry.key("service_type");
        if entry.service_type.is_empty() {
            return Err(fail(
                &key,
                format!(
                    "missing key \"{key}\" for connector \"{}\"",
                    entry.connector_id
                ),
            ));
        }
        if !supported.contains(&entry.service_type.as_str()) {
            return Err(fail(
                &key,
                format!(
                    "unsupported service type \"{}\" for key \"{key}\" (supported: {})",
                    entry.service_type,
                    supported.join(", ")
                ),
            ));
        }
    }

    if let Some(allowed) = &config.s3.allowed_endpoints {
        for (i, url) in allowed.iter().enumerate() {
            if EndpointKey::parse(url).is_none() {
                let key = format!("s3.allowed_endpoints[{i}]");
                return Err(fail(
                    &key,
                    format!(
                        "invalid value for key \"{key}\": {url:?} is not an http:// or https:// URL \
                         without user info"
                    ),
                ));
            }
        }
    }

    if let Some(listen) = &service.http.listen
        && service.http.listen_addr().is_none()
    {
        let key = "service.http.listen";
        return Err(fail(
            key,
            format!(
                "invalid value for key \"{key}\": {listen:?} is not an address:port such as 127.0.0.1:9108"
            ),
        ));
    }

    let es = &config.elasticsearch;
    if es.uses_api_key()
        && (es.username.is_some() || es.password.is_some())
        && !es.has_default_basic_auth()
    {
        warnings.push("configured API key will be used over configured basic auth".to_owned());
    }
    Ok(warnings)
}

/// Seconds, sizes, rates and counts that cannot be negative (or zero, for counts that size a pool).
fn check_numbers(config: &Config) -> Result<(), (&'static str, String)> {
    let es = &config.elasticsearch;
    let bulk = &es.bulk;
    let service = &config.service;
    let mut non_negative = vec![
        ("elasticsearch.request_timeout", es.request_timeout),
        ("elasticsearch.max_wait_duration", es.max_wait_duration),
        (
            "elasticsearch.initial_backoff_duration",
            es.initial_backoff_duration,
        ),
        ("elasticsearch.backoff_multiplier", es.backoff_multiplier),
        ("elasticsearch.retry_interval", es.retry_interval),
        (
            "elasticsearch.bulk.queue_refresh_interval",
            bulk.queue_refresh_interval,
        ),
        (
            "elasticsearch.bulk.queue_refresh_timeout",
            bulk.queue_refresh_timeout,
        ),
        (
            "elasticsearch.bulk.chunk_max_mem_size",
            bulk.chunk_max_mem_size,
        ),
        (
            "elasticsearch.bulk.max_text_document_size",
            bulk.max_text_document_size,
        ),
        ("elasticsearch.bulk.retry_interval", bulk.retry_interval),
        (
            "elasticsearch.bulk.error_monitor.max_error_rate",
            bulk.error_monitor.max_error_rate,
        ),
        ("service.idling", service.idling),
        ("service.heartbeat", service.heartbeat),
        ("service.preflight_idle", service.preflight_idle),
        ("service.max_errors_span", service.max_errors_span),
        ("service.job_cleanup_interval", service.job_cleanup_interval),
        ("extraction.timeout_secs", config.extraction.timeout_secs),
        (
            "extraction.download_timeout_secs",
            config.extraction.download_timeout_secs,
        ),
    ];
    if let Some(extraction) = &config.extraction_service {
        non_negative.push(("extraction_service.timeout", extraction.timeout));
    }
    for (key, value) in non_negative {
        if !value.is_finite() || value < 0.0 {
            return Err((
                key,
                format!(
                    "invalid value for key \"{key}\": must be a non-negative number, got {value}"
                ),
            ));
        }
    }
    let mut positive = vec![
        ("elasticsearch.bulk.queue_max_size", bulk.queue_max_size),
        ("elasticsearch.bulk.chunk_size", bulk.chunk_size),
        ("elasticsearch.bulk.max_concurrency", bulk.max_concurrency),
        (
            "elasticsearch.bulk.concurrent_downloads",
            bulk.concurrent_downloads,
        ),
        (
            "service.max_concurrent_content_syncs",
            service.max_concurrent_content_syncs,
        ),
        (
            "service.max_concurrent_access_control_syncs",
            service.max_concurrent_access_control_syncs,
        ),
        (
            "service.max_concurrent_scheduling_tasks",
            service.max_concurrent_scheduling_tasks,
        ),
        ("extraction.max_chars", config.extraction.max_chars),
    ];
    if let Some(extraction) = &config.extraction_service {
        positive.push((
            "extraction_service.stream_chunk_size",
            extraction.stream_chunk_size,
        ));
    }
    for (key, value) in positive {
        if value == 0 {
            return Err((
                key,
                format!("invalid value for key \"{key}\": must be at least 1"),
            ));
        }
    }
    let memory = config.extraction.max_memory_mib;
    let least = super::extraction::MIN_WORKER_MEMORY_MIB;
    if memory < least {
        let key = "extraction.max_memory_mib";
        return Err((
            key,
            format!(
                "invalid value for key \"{key}\": must be at least {least} (MiB), got {memory}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConnectorEntry, EntrySource, Secret};
    use std::path::PathBuf;

    fn entry(id: &str, service_type: &str, index: usize) -> ConnectorEntry {
        ConnectorEntry {
            connector_id: id.to_owned(),
            service_type: service_type.to_owned(),
            api_key: None,
            source: EntrySource::List(index),
        }
    }

    fn valid() -> Config {
        Config {
            connectors: vec![entry("c1", "s3", 0)],
            path: PathBuf::from("config.yml"),
            ..Config::default()
        }
    }

    /// Asserts the validation error names `key` (in the field and the message) and the file.
    fn assert_error(config: &Config, key: &str) -> String {
        let err = validate(config).unwrap_err();
        assert_eq!(err.key(), Some(key), "{err}");
        let text = err.to_string();
        assert!(text.starts_with("config.yml: "), "{text}");
        assert!(text.contains(key), "{text}");
        text
    }

    #[test]
    fn a_minimal_config_is_valid() {
        assert_eq!(validate(&valid()).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn worker_mode_needs_service_types_but_no_connectors() {
        let mut c = valid();
        c.connectors.clear();
        c.service.worker_mode = true;
        assert_error(&c, "service.service_types");
        c.service.service_types = vec!["s3".into(), "mysql".into()];
        let warnings = validate(&c).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("mysql"));
    }

    #[test]
    fn at_least_one_connector() {
        let mut c = valid();
        c.connectors.clear();
        let text = assert_error(&c, "connectors");
        assert!(text.contains("no connector configured"), "{text}");
    }

    #[test]
    fn changeme_is_rejected() {
        let mut c = valid();
        c.connectors.push(entry("changeme", "s3", 1));
        assert_error(&c, "connectors[1].connector_id");
        c.connectors[1] = entry("c2", "changeme", 1);
        assert_error(&c, "connectors[1].service_type");
    }

    #[test]
    fn service_type_missing_or_unsupported() {
        let mut c = valid();
        c.connectors[0].service_type.clear();
        assert_error(&c, "connectors[0].service_type");
        c.connectors[0].service_type = "mysql".into();
        let text = assert_error(&c, "connectors[0].service_type");
        assert!(text.contains("supported: s3"), "{text}");
        c.connectors[0].source = EntrySource::Deprecated;
        assert_error(&c, "service_type");
    }

    #[test]
    fn numbers_are_checked() {
        let mut c = valid();
        c.elasticsearch.bulk.max_text_document_size = -1.0;
        assert_error(&c, "elasticsearch.bulk.max_text_document_size");
        let mut c = valid();
        c.service.idling = f64::NAN;
        assert_error(&c, "service.idling");
        let mut c = valid();
        c.elasticsearch.bulk.max_concurrency = 0;
        assert_error(&c, "elasticsearch.bulk.max_concurrency");
        let mut c = valid();
        c.extraction.max_memory_mib = 16;
        let message = assert_error(&c, "extraction.max_memory_mib");
        assert!(message.contains("at least 64"), "{message}");
        assert_eq!(valid().extraction.max_memory_mib, 512);
    }

    #[test]
    fn allowed_endpoints_must_be_urls() {
        let mut c = valid();
        c.s3.allowed_endpoints = Some(vec!["http://minio:9000".into(), "minio:9000".into()]);
        let text = assert_error(&c, "s3.allowed_endpoints[1]");
        assert!(text.contains("\"minio:9000\""), "{text}");
        c.s3.allowed_endpoints = Some(vec![]);
        assert!(validate(&c).is_ok());
    }

    #[test]
    fn warnings() {
        let mut c = valid();
        c.service.service_types = vec!["s3".into()];
        c.elasticsearch.api_key = Some(Secret::new("k"));
        assert_eq!(validate(&c).unwrap().len(), 1);
        c.elasticsearch.username = Some("someone".into());
        let warnings = validate(&c).unwrap();
        assert_eq!(warnings.len(), 2);
        assert!(warnings[1].contains("API key will be used"));
    }
}
