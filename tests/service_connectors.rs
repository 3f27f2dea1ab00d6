//! A connector's first steps, seen from the outside (what Kibana or a user checks): the first
//! check-in writes Elastic's schema and our additions, a configured connector connects, an
//! unreachable store sets `error` until it is fixed, and a connector configured for Elastic's
//! service keeps its values.

mod common;

use std::collections::BTreeSet;

use chrono::DateTime;

use common::{
    ELASTIC_S3_SCHEMA, ServiceProcess, TestWorld, assert_recent, free_port, s3_configuration, secs,
    ts, wait_completed,
};
use serde_json::{Value, json};

/// `features` of an S3 connector (docs/protocol.md#connector-documents), with incremental sync (our addition).
fn s3_features() -> Value {
    json!({"sync_rules": {"basic": {"enabled": true}, "advanced": {"enabled": true}},
           "document_level_security": {"enabled": false},
           "incremental_sync": {"enabled": true},
           "native_connector_api_keys": {"enabled": false}})
}

/// The 13 keys of a rich configurable field (docs/protocol.md#connector-documents).
const RICH_KEYS: [&str; 13] = [
    "default_value",
    "depends_on",
    "display",
    "label",
    "options",
    "order",
    "required",
    "sensitive",
    "tooltip",
    "type",
    "ui_restrictions",
    "validations",
    "value",
];

/// Elastic's eight S3 configuration fields.
const ELASTIC_FIELDS: [&str; 8] = [
    "buckets",
    "aws_access_key_id",
    "aws_secret_access_key",
    "read_timeout",
    "connect_timeout",
    "max_attempts",
    "page_size",
    "use_text_extraction_service",
];

/// Sets `configuration.<field>.value` for each `(field, value)` and the status, as Kibana's
/// configuration form (ES `_configuration` API) does.
async fn kibana_configure(world: &TestWorld, id: &str, values: &[(&str, Value)]) {
    let configuration: serde_json::Map<String, Value> = values
        .iter()
        .map(|(k, v)| (k.to_string(), json!({ "value": v })))
        .collect();
    world
        .update_connector(
            id,
            json!({"configuration": configuration, "status": "configured"}),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn first_check_in_writes_the_schema_then_the_configured_connector_connects() {
    let world = TestWorld::start().await;
    let bucket = world.name("first");
    world.create_bucket(&bucket, None).await;
    let id = world.name("fresh");
    let index = world.name("search-fresh");
    // Kibana creates a connector with an empty configuration and status `created`.
    let created = world
        .create_connector_doc(&id, &index, json!({}), json!({}))
        .await;
    assert_eq!(created["status"], "created");

    // The service reaches S3 the way Elastic's does: AWS_ENDPOINT_URL + AWS_PORT.
    let (endpoint, port) = world.aws_endpoint_env();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_PORT", port.as_str()),
    ];
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &env);

    let c = world
        .wait_connector(
            &id,
            "connector needs configuration, with its schema and features",
            secs(15),
            |c| {
                c["status"] == "needs_configuration"
                    && c["configuration"]
                        .as_object()
                        .is_some_and(|m| !m.is_empty())
                    && !c["features"].is_null()
                    && !c["last_seen"].is_null()
            },
        )
        .await;

    let config = c["configuration"].as_object().expect("configuration");
    assert_eq!(
        config.len(),
        14,
        "configuration fields: {:?}",
        config.keys()
    );
    let elastic: serde_json::Map<String, Value> = serde_json::from_str(ELASTIC_S3_SCHEMA).unwrap();
    for (key, expected) in &elastic {
        assert_eq!(config.get(key), Some(expected), "field {key}");
    }
    let mut orders: Vec<(u64, &str)> = Vec::new();
    for (key, field) in config {
        let keys: BTreeSet<&str> = field
            .as_object()
            .unwrap_or_else(|| panic!("field {key} is not an object: {field}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(RICH_KEYS), "rich keys of {key}");
        orders.push((field["order"].as_u64().expect("order"), key));
        if !elastic.contains_key(key) {
            // Additions must not make a Kibana-created configuration invalid.
            assert_eq!(field["required"], false, "addition {key} must be optional");
        }
    }
    orders.sort();
    assert_eq!(
        orders.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (1..=14).collect::<Vec<_>>(),
        "orders: {orders:?}"
    );
    assert_eq!(c["features"], s3_features());
    assert_eq!(c["service_type"], "s3");
    assert_recent(&c["last_seen"], "last_seen", secs(30));
    let first_seen = ts(&c["last_seen"], "last_seen");

    // Kibana's configuration form: values of Elastic's fields only, then status `configured`.
    kibana_configure(
        &world,
        &id,
        &[
            ("buckets", json!(bucket)),
            ("aws_access_key_id", json!("test")),
            ("aws_secret_access_key", json!("test-secret")),
        ],
    )
    .await;
    let c = world
        .wait_connector(&id, "connector connected", secs(15), |c| {
            c["status"] == "connected"
        })
        .await;
    assert_eq!(c["error"], Value::Null, "{}", svc.logs());
    // The service kept what Kibana wrote.
    assert_eq!(c["configuration"]["buckets"]["value"], bucket.as_str());
    assert_eq!(
        c["configuration"]["aws_secret_access_key"]["value"],
        "test-secret"
    );
    assert_eq!(c["configuration"].as_object().unwrap().len(), 14);
    // The check-in goes on (service.heartbeat is 2 s).
    world
        .wait_connector(&id, "a later check-in", secs(10), |c| {
            c["last_seen"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .is_some_and(|t| t > first_seen)
        })
        .await;
    // No sync was requested and none is scheduled.
    assert!(world.jobs_of(&id).await.is_empty());
    assert_eq!(c["last_sync_status"], Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_s3_sets_connector_error_until_the_endpoint_is_fixed() {
    let world = TestWorld::start().await;
    let bucket = world.name("err");
    world.create_bucket(&bucket, None).await;
    let id = world.name("unreachable");
    let index = world.name("search-unreachable");
    let mut config = s3_configuration(&world, &bucket);
    let dead = format!("http://127.0.0.1:{}", free_port());
    config["endpoint_url"]["value"] = json!(dead);
    for key in ["connect_timeout", "read_timeout"] {
        config[key]["value"] = json!(1);
    }
    config["max_attempts"]["value"] = json!(0);
    world
        .create_connector_doc(&id, &index, config, json!({}))
        .await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);

    let c = world
        .wait_connector(&id, "connector status error", secs(15), |c| {
            c["status"] == "error"
        })
        .await;
    let error = c["error"].as_str().unwrap_or_default();
    assert!(
        error.to_lowercase().contains("connect"),
        "error must explain the connection failure: {c}"
    );
    // A scheduler-side failure is not a sync failure.
    assert_eq!(c["last_sync_status"], Value::Null);
    assert!(world.jobs_of(&id).await.is_empty());

    // Fixing the endpoint in Kibana brings the connector back.
    kibana_configure(&world, &id, &[("endpoint_url", json!(world.s3_endpoint))]).await;
    let c = world
        .wait_connector(&id, "connector connected again", secs(15), |c| {
            c["status"] == "connected"
        })
        .await;
    assert_eq!(c["error"], Value::Null, "{}", svc.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connector_configured_for_elastics_service_keeps_its_values_and_gains_the_additions() {
    let world = TestWorld::start().await;
    let bucket = world.name("legacy");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "l/", 2).await;
    // What Elastic's Python service leaves behind: its 8 fields only, values filled in Kibana,
    // one label from an older release; the endpoint comes from AWS_ENDPOINT_URL/AWS_PORT.
    let mut config = s3_configuration(&world, &bucket);
    let fields = config.as_object_mut().unwrap();
    fields.retain(|k, _| ELASTIC_FIELDS.contains(&k.as_str()));
    fields["buckets"]["label"] = json!("Buckets (old label)");
    fields["page_size"]["value"] = json!(1);
    let id = world.name("legacy");
    let index = world.name("search-legacy");
    world
        .create_connector_doc(&id, &index, config.clone(), json!({}))
        .await;
    let job_id = world.create_pending_job(&id).await;
    let (endpoint, port) = world.aws_endpoint_env();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_PORT", port.as_str()),
    ];
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &env);

    let job = wait_completed(&world, &svc, &job_id, secs(20)).await;
    assert_eq!(job["indexed_document_count"], 2, "job: {job}");
    let c = world
        .wait_connector(&id, "connector connected", secs(10), |c| {
            c["status"] == "connected" && c["last_sync_status"] == "completed"
        })
        .await;
    let stored = c["configuration"].as_object().unwrap();
    assert_eq!(stored.len(), 14, "fields: {:?}", stored.keys());
    let elastic: serde_json::Map<String, Value> = serde_json::from_str(ELASTIC_S3_SCHEMA).unwrap();
    for key in ELASTIC_FIELDS {
        // Definitions re-synced with the schema, values untouched.
        let mut expected = elastic[key].clone();
        expected["value"] = config[key]["value"].clone();
        assert_eq!(stored[key], expected, "field {key}");
    }
    for (key, field) in stored.iter().filter(|(k, _)| !elastic.contains_key(*k)) {
        assert_eq!(field["required"], false, "addition {key}");
    }
}
