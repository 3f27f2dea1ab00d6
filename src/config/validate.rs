//! Startup validation (Elastic's preflight config checks, as hard errors) plus sanity checks of numbers.

use super::de::MIB;
use super::{Config, ConfigError, EndpointKey};

/// Checks that `config` can run. Returns the warnings to log, or the first problem found as a
/// [`ConfigError::Validation`] naming the key and the file.
///
/// Errors: worker mode without `service.service_types`; no connector outside worker mode; `changeme`
/// ids/types; a connector without or with an unsupported `service_type`; too little worker memory.
/// Warning: `service.service_types` set outside worker mode.
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

/// What typing cannot say: the least memory of an extraction worker. (Seconds, sizes, rates and
/// counts are checked as they are read: see `de.rs`.)
fn check_numbers(config: &Config) -> Result<(), (&'static str, String)> {
    let memory = config.extraction.max_memory_bytes;
    let least = super::extraction::MIN_WORKER_MEMORY_MIB;
    if memory < least * MIB {
        let key = "extraction.max_memory_mib";
        return Err((
            key,
            format!(
                "invalid value for key \"{key}\": must be at least {least} (MiB), got {}",
                memory / MIB
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
    fn worker_memory_is_checked() {
        let mut c = valid();
        c.extraction.max_memory_bytes = 16 * MIB;
        let message = assert_error(&c, "extraction.max_memory_mib");
        assert!(message.contains("at least 64 (MiB), got 16"), "{message}");
        assert_eq!(valid().extraction.max_memory_bytes, 512 * MIB);
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
