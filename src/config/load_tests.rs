//! End-to-end tests of [`load_str`]/[`load_with`]: text in, `Config` or one-line error out.

use super::*;
use crate::config::{ApiMode, EntrySource};
use std::io::Write as _;
use std::time::Duration;

const CONNECTOR: &str = "connectors:\n  - connector_id: c1\n    service_type: s3\n";

fn no_env() -> Environment {
    Environment::from_vars::<&str, &str>([])
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    load_str(Path::new("config.yml"), text, &no_env())
}

fn load_err(text: &str) -> String {
    load_text(text).unwrap_err().to_string()
}

#[test]
fn minimal_config_gets_every_default() {
    let c = load_text(CONNECTOR).unwrap();
    assert_eq!(c.path, Path::new("config.yml"));
    assert_eq!(c.connectors.len(), 1);
    assert_eq!(c.elasticsearch.host, "http://localhost:9200");
    assert_eq!(c.elasticsearch.bulk.chunk_size.get(), 500);
    assert_eq!(c.elasticsearch.bulk.error_monitor.max_error_rate, 0.15);
    assert_eq!(c.service.idling, Duration::from_secs(30));
    assert_eq!(c.sources["s3"], "connectors.sources.s3:S3DataSource");
    assert!(c.extraction_service.is_none() && c.warnings.is_empty());
}

#[test]
fn dotted_and_nested_keys_mix_later_wins() {
    let text = format!(
        "elasticsearch.host: http://first:9200\n\
         elasticsearch:\n  host: http://second:9200\n  bulk:\n    chunk_size: 1\n    queue_max_size: 7\n\
         elasticsearch.bulk.chunk_size: 10\n\
         elasticsearch.bulk.error_monitor.enabled: false\n\
         service.idling: 5\n{CONNECTOR}"
    );
    let c = load_text(&text).unwrap();
    assert_eq!(c.elasticsearch.host, "http://second:9200");
    assert_eq!(c.elasticsearch.bulk.chunk_size.get(), 10);
    assert_eq!(c.elasticsearch.bulk.queue_max_size.get(), 7);
    assert!(!c.elasticsearch.bulk.error_monitor.enabled);
    assert_eq!(c.service.idling, Duration::from_secs(5));
}

#[test]
fn variables_are_substituted_from_env_then_dotenv() {
    let mut dotenv = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        dotenv,
        "ES_HOST=http://from-dotenv:9200\nES_USER=dotenv-user\nIDLE=\"12\""
    )
    .unwrap();
    let env = Environment::from_vars([
        ("ENV_FILE", dotenv.path().to_str().unwrap()),
        ("ES_USER", "env-user"),
    ]);
    let text = format!(
        "elasticsearch:\n  host: ${{ES_HOST}}\n  username: \"$ES_USER\"\n  password: ${{ES_PASS|dflt}}\n\
         \x20 ca_certs: /tmp/a$$b\n  log_level: $NOPE|debug\nservice.idling: $IDLE\n{CONNECTOR}"
    );
    let c = load_str(Path::new("config.yml"), &text, &env).unwrap();
    assert_eq!(c.elasticsearch.host, "http://from-dotenv:9200");
    assert_eq!(c.elasticsearch.username.as_deref(), Some("env-user"));
    assert_eq!(c.elasticsearch.password.unwrap().expose(), "dflt");
    assert_eq!(
        c.elasticsearch.ca_certs.as_deref(),
        Some(Path::new("/tmp/a$b"))
    );
    assert_eq!(c.elasticsearch.log_level, "debug");
    assert_eq!(c.service.idling, Duration::from_secs(12));
}

#[test]
fn strict_mode_names_the_variable_and_the_file() {
    let text = format!("elasticsearch.host: ${{MISSING_HOST}}\n{CONNECTOR}");
    let err = load_text(&text).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UndefinedVariables { names, .. } if names == &["MISSING_HOST"])
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("config.yml: strict mode enabled, variables $MISSING_HOST"),
        "{msg}"
    );

    let lenient = Environment::from_vars([("ENVYAML_STRICT_DISABLE", "1")]);
    let c = load_str(Path::new("config.yml"), &text, &lenient).unwrap();
    assert_eq!(c.elasticsearch.host, "${MISSING_HOST}");
}

#[test]
fn comment_lines_with_undefined_variables_are_ignored() {
    let text = format!("# host: ${{UNDEFINED}}\n  # $ALSO_UNDEFINED\n{CONNECTOR}");
    assert!(load_text(&text).is_ok());
}

#[test]
fn connectors_env_overrides_win() {
    let env = Environment::from_vars([
        ("CONNECTORS_ELASTICSEARCH__HOST", "http://env:9200"),
        ("CONNECTORS_ELASTICSEARCH__PASSWORD", "0123"),
        ("CONNECTORS_ELASTICSEARCH__BULK__CHUNK_SIZE", "42"),
        ("CONNECTORS_SERVICE__IDLING", "3"),
        ("CONNECTORS_SERVICE__WORKER_MODE", "false"),
        ("CONNECTORS_UNRELATED", "x"),
    ]);
    let text = format!("elasticsearch.host: http://file:9200\nservice.idling: 9\n{CONNECTOR}");
    let c = load_str(Path::new("config.yml"), &text, &env).unwrap();
    assert_eq!(c.elasticsearch.host, "http://env:9200");
    assert_eq!(c.elasticsearch.password.unwrap().expose(), "0123");
    assert_eq!(c.elasticsearch.bulk.chunk_size.get(), 42);
    assert_eq!(c.service.idling, Duration::from_secs(3));

    let env = Environment::from_vars([("CONNECTORS_SERVICE__IDLING", "soon")]);
    let err = load_str(Path::new("config.yml"), CONNECTOR, &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"service.idling\"") && err.contains("CONNECTORS_SERVICE__IDLING"),
        "{err}"
    );
}

#[test]
fn int_connector_ids_are_stringified() {
    let c = load_text("connectors:\n  - connector_id: 123\n    service_type: s3\n").unwrap();
    assert_eq!(c.connectors[0].connector_id, "123");
    assert!(c.connector("123").is_some());
}

#[test]
fn deprecated_single_connector_form() {
    let c = load_text("connector_id: abc\nservice_type: s3\n").unwrap();
    assert_eq!(c.connectors[0].connector_id, "abc");
    assert_eq!(c.connectors[0].source, EntrySource::Deprecated);
    assert!(c.warnings.iter().any(|w| w.contains("deprecated")));
}

#[test]
fn type_errors_name_key_and_file() {
    let err = load_err(&format!("service:\n  idling: soon\n{CONNECTOR}"));
    assert_eq!(
        err,
        "config.yml: invalid type for key \"service.idling\": expected a number, found string \"soon\""
    );
    let err = load_err(&format!("elasticsearch.bulk.chunk_size: -3\n{CONNECTOR}"));
    assert!(err.contains("\"elasticsearch.bulk.chunk_size\""), "{err}");
    let err = load_err("connectors:\n  - connector_id: a\n    service_type: s3\n    extra: 1\n");
    assert!(err.contains("\"connectors[0].extra\""), "{err}");
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    let err = load_err(&format!("elasticsearch.hots: http://x\n{CONNECTOR}"));
    assert!(
        err.starts_with("config.yml: unknown key \"elasticsearch.hots\""),
        "{err}"
    );
    assert!(err.contains("did you mean \"host\""), "{err}");
    let err = load_err(&format!("bogus: 1\n{CONNECTOR}"));
    assert!(err.contains("unknown key \"bogus\""), "{err}");
    let err = load_err(&format!(
        "elasticsearch.bulk.error_monitor.nope: 1\n{CONNECTOR}"
    ));
    assert!(
        err.contains("\"elasticsearch.bulk.error_monitor.nope\""),
        "{err}"
    );
}

#[test]
fn secrets_never_appear_in_errors() {
    let cases = [
        format!("elasticsearch.password: [hunter2]\n{CONNECTOR}"),
        format!("elasticsearch.password: {{x: hunter2}}\n{CONNECTOR}"),
        format!("elasticsearch.api_key: [hunter2]\n{CONNECTOR}"),
        "connectors:\n  - connector_id: a\n    service_type: s3\n    api_key: [hunter2]\n"
            .to_owned(),
    ];
    for case in cases {
        let Err(err) = load_text(&case) else {
            panic!("loaded: {case}");
        };
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("password") || text.contains("api_key"),
            "{text}"
        );
    }
    let c = load_text(&format!("elasticsearch.password: hunter2\n{CONNECTOR}")).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn yaml_syntax_errors_name_file_and_line() {
    let err = load_err("elasticsearch:\n  host: [unclosed\nservice: 1\n");
    assert!(err.starts_with("config.yml: invalid YAML: "), "{err}");
    assert!(err.contains("line"), "{err}");
}

#[test]
fn out_of_range_numbers_name_key_value_and_file() {
    for (line, key, message) in [
        (
            "elasticsearch.bulk.max_concurrency: 0",
            "elasticsearch.bulk.max_concurrency",
            "must be at least 1, got 0",
        ),
        (
            "service.idling: -2",
            "service.idling",
            "must be a non-negative number of seconds, got -2",
        ),
        (
            "extraction.max_decompressed_mib: -1",
            "extraction.max_decompressed_mib",
            "must be a non-negative number of MiB, got -1",
        ),
    ] {
        let err = load_text(&format!("{line}\n{CONNECTOR}")).unwrap_err();
        assert_eq!(err.key(), Some(key), "{err}");
        assert_eq!(
            err.to_string(),
            format!("config.yml: invalid value for key \"{key}\": {message}")
        );
    }
    // The same check applies to an environment override, which the message names.
    let env = Environment::from_vars([("CONNECTORS_ELASTICSEARCH__BULK__CHUNK_SIZE", "0")]);
    let err = load_str(Path::new("config.yml"), CONNECTOR, &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("must be at least 1, got 0")
            && err.contains("CONNECTORS_ELASTICSEARCH__BULK__CHUNK_SIZE"),
        "{err}"
    );
}

#[test]
fn validation_runs_at_load() {
    let err = load_text(&format!(
        "elasticsearch.bulk.max_text_document_size: -1\n{CONNECTOR}"
    ))
    .unwrap_err();
    assert_eq!(err.key(), Some("elasticsearch.bulk.max_text_document_size"));
    let err = load_text("service.idling: 1\n").unwrap_err();
    assert!(err.to_string().contains("no connector configured"), "{err}");
    let c = load_text("service:\n  worker_mode: yes\n  service_types: [s3]\n").unwrap();
    assert!(c.service.worker_mode && c.connectors.is_empty());
}

#[test]
fn null_sections_and_null_api_key_mean_defaults() {
    let c = load_text(&format!(
        "elasticsearch:\n  api_key:\n  feature_use_connectors_api: \"false\"\nservice:\n\
         extraction_service:\n  host: http://localhost:8090\n{CONNECTOR}"
    ))
    .unwrap();
    assert!(!c.elasticsearch.uses_api_key());
    assert_eq!(c.elasticsearch.feature_use_connectors_api, ApiMode::False);
    assert_eq!(c.service.heartbeat, Duration::from_secs(300));
    let extraction = c.extraction_service.unwrap();
    assert_eq!(extraction.host.as_deref(), Some("http://localhost:8090"));
    assert_eq!(extraction.stream_chunk_size.get(), 65_536);
}

#[test]
fn unreadable_file_names_the_path() {
    let err = load_with(Path::new("/nonexistent/config.yml"), &no_env()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/config.yml: cannot read file"),
        "{err}"
    );
}

#[test]
fn the_example_config_loads() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yml.example"));
    let c = load_with(path, &no_env()).unwrap();
    assert_eq!(c.connectors.len(), 1);
    assert_eq!(c.connectors[0].connector_id, "my-s3-connector");
    assert_eq!(c.connectors[0].service_type, "s3");
    let env = Environment::from_vars([("CONNECTOR_ID", "from-env")]);
    assert_eq!(
        load_with(path, &env).unwrap().connectors[0].connector_id,
        "from-env"
    );
}

#[test]
fn extraction_limits_have_defaults_and_are_validated() {
    let env = Environment::from_vars(Vec::<(String, String)>::new());
    let ok = "connectors:\n  - connector_id: c\n    service_type: s3\nextraction.max_chars: 500\n";
    let c = load_str(Path::new("config.yml"), ok, &env).unwrap();
    assert_eq!(c.extraction.max_chars.get(), 500);
    assert_eq!(c.extraction.timeout, Duration::from_secs(30));
    assert_eq!(c.extraction.max_decompressed_bytes, 64 << 20);
    let bad =
        "connectors:\n  - connector_id: c\n    service_type: s3\nextraction.timeout_secs: -1\n";
    let e = load_str(Path::new("config.yml"), bad, &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("extraction.timeout_secs"), "{e}");
}

#[test]
fn s3_limits_have_safe_defaults_and_unknown_keys_are_errors() {
    let env = Environment::from_vars(Vec::<(String, String)>::new());
    let base = "connectors:\n  - connector_id: c\n    service_type: s3\n";
    let c = load_str(Path::new("config.yml"), base, &env).unwrap();
    assert!(!c.s3.allow_default_credentials);
    assert_eq!(c.s3.allowed_endpoints, None);
    let set = format!(
        "{base}s3.allow_default_credentials: yes\ns3.allowed_endpoints: [\"http://minio:9000\"]\n"
    );
    let c = load_str(Path::new("config.yml"), &set, &env).unwrap();
    assert!(c.s3.allow_default_credentials);
    assert_eq!(c.s3.allowed_endpoints.unwrap(), ["http://minio:9000"]);
    let typo = format!("{base}s3.allow_default_credential: true\n");
    let e = load_str(Path::new("config.yml"), &typo, &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("s3.allow_default_credential"), "{e}");
    let env = Environment::from_vars([("CONNECTORS_S3__ALLOW_DEFAULT_CREDENTIALS", "true")]);
    let c = load_str(Path::new("config.yml"), base, &env).unwrap();
    assert!(c.s3.allow_default_credentials);
}

#[test]
fn the_http_listener_is_opt_in_and_validated() {
    let env = Environment::from_vars(Vec::<(String, String)>::new());
    let base = "connectors:\n  - connector_id: c\n    service_type: s3\n";
    let c = load_str(Path::new("config.yml"), base, &env).unwrap();
    assert_eq!(c.service.http.listen_addr(), None);
    let set = format!("{base}service.http.listen: 127.0.0.1:9108\n");
    let c = load_str(Path::new("config.yml"), &set, &env).unwrap();
    assert_eq!(
        c.service.http.listen_addr(),
        Some("127.0.0.1:9108".parse().unwrap())
    );
    for bad in ["localhost", "127.0.0.1", "127.0.0.1:99999"] {
        let text = format!("{base}service.http.listen: \"{bad}\"\n");
        let e = load_str(Path::new("config.yml"), &text, &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("service.http.listen") && e.contains(bad), "{e}");
    }
    let typo = format!("{base}service.http.listen_on: 127.0.0.1:9108\n");
    let e = load_str(Path::new("config.yml"), &typo, &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("listen_on"), "{e}");
    let env = Environment::from_vars([("CONNECTORS_SERVICE__HTTP__LISTEN", "0.0.0.0:9108")]);
    let c = load_str(Path::new("config.yml"), base, &env).unwrap();
    assert_eq!(c.service.http.listen.as_deref(), Some("0.0.0.0:9108"));
}
