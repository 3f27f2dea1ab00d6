//! A sync with exactly the privileges of the API key Kibana generates for a connector, the key users
//! put in `config.yml`: cluster `monitor` and `manage_connector`, and `all` on the content index,
//! its access-control index and the connector indices. Our test node has no security module, so a
//! proxy in front of it plays the authorization layer: every call outside those privileges gets
//! Elasticsearch's 403 `security_exception`.

mod common;

use common::{Fault, FaultProxy, Rule, ServiceProcess, TestWorld, secs};
use serde_json::json;

/// Whether the Kibana connector key may make this call (the action each path maps to in
/// Elasticsearch's authorization).
fn granted(method: &str, target: &str, index: &str) -> bool {
    let path = target.split('?').next().unwrap_or("");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(first) = segments.first() else {
        return method == "GET"; // `GET /`: cluster:monitor/main
    };
    match *first {
        // cluster:monitor/*
        "_nodes" | "_cluster" | "_cat" => method == "GET",
        // manage_connector
        "_connector" => true,
        // Authorized per item against the index privileges; scrolls and point-in-times belong to
        // the key that opened them.
        "_bulk" | "_search" | "_pit" => true,
        names if !names.starts_with('_') => names.split(',').all(|name| {
            name == index
                || name == format!(".search-acl-filter-{index}")
                || name.starts_with(".elastic-connectors")
        }),
        // _ingest, _index_template, _security, _license, …
        _ => false,
    }
}

/// The node behind a proxy that refuses (rule 0) every call the connector key of `index` may not make.
async fn kibana_key_proxy(world: &TestWorld, index: &str) -> FaultProxy {
    let index = index.to_string();
    FaultProxy::start(
        &world.es_url,
        vec![Rule::when(
            "not granted to a connector key",
            move |m, t| !granted(m, t, &index),
            Fault::es_error(
                403,
                "security_exception",
                "action is unauthorized for API key id [kibana-connector-key]",
            ),
        )],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_needs_no_more_than_the_privileges_kibana_grants() {
    let world = TestWorld::start().await;
    // A connector as Kibana creates it: its pipeline is the default one.
    let (id, index, _bucket) = world.bucket_with_connector("keys", 12).await;
    let connector = world.connector(&id).await.unwrap();
    assert_eq!(connector["pipeline"]["name"], "search-default-ingestion");

    let proxy = kibana_key_proxy(&world, &index).await;
    let yaml = world.config_yaml_via(&[&id], "", &proxy.url());
    let service = ServiceProcess::start(&world, &yaml, &[]);
    let job_id = world.create_pending_job(&id).await;
    let job = world.wait_completed(&job_id, &service).await;

    assert_eq!(job["indexed_document_count"], 12, "{job}");
    assert_eq!(world.count(&index).await, 12);
    assert_eq!(
        proxy.injected(0),
        0,
        "the service made a call the key may not make:\n{}",
        service.logs()
    );
}

#[test]
fn the_privilege_table_refuses_what_the_key_lacks() {
    let index = "search-docs";
    assert!(granted("GET", "/", index));
    assert!(granted(
        "POST",
        "/_bulk?pipeline=search-default-ingestion",
        index
    ));
    assert!(granted("POST", "/search-docs/_search?scroll=5m", index));
    assert!(granted("POST", "/.elastic-connectors/_update/x", index));
    assert!(!granted(
        "GET",
        "/_ingest/pipeline/search-default-ingestion",
        index
    ));
    assert!(!granted(
        "GET",
        "/_index_template/elastic-connectors",
        index
    ));
    assert!(!granted("POST", "/other-index/_search", index));
    assert!(!granted("PUT", "/_security/api_key", index));
}

/// The same key, when the connector also has a pipeline of its own that the cluster lacks: the
/// job fails naming it, and nothing is indexed around it.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_custom_pipeline_is_named_without_reading_pipelines() {
    let world = TestWorld::start().await;
    let (id, index, _bucket) = world.bucket_with_connector("keys-custom", 3).await;
    let pipeline = world.name("no-such-pipeline");
    world
        .update_connector(&id, json!({"pipeline": {"name": pipeline}}))
        .await;
    let proxy = kibana_key_proxy(&world, &index).await;
    let yaml = world.config_yaml_via(&[&id], "", &proxy.url());
    let service = ServiceProcess::start(&world, &yaml, &[]);
    let job_id = world.create_pending_job(&id).await;
    let job = world
        .wait_job(&job_id, common::jobs::ENDED, secs(30), &[&service])
        .await;
    assert_eq!(job["status"], "error", "{job}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("ingest pipeline [{pipeline}] does not exist")),
        "{error}"
    );
    assert_eq!(world.count(&index).await, 0);
    assert_eq!(proxy.injected(0), 0, "{}", service.logs());
}
