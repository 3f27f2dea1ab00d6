//! How the service creates the two system indices on an Elasticsearch with the connectors plugin:
//! with no body, so that the cluster's templates give them their mappings — and not at all while the
//! templates are not installed yet (right after the cluster starts), since an index created then
//! would keep a dynamic mapping for good.
//!
//! Our test node has no connectors plugin, and the system indices exist already on the shared node,
//! so a proxy plays the cluster just started: the `_connector` API answers, the indices are missing,
//! and the templates are missing or present as each test needs. Index creation is answered by the
//! proxy and recorded, never sent to the shared node.

mod common;

use std::sync::{Arc, Mutex};

use common::proxy::Handler;
use common::{Fault, FaultProxy, Rule, ServiceProcess, TestWorld, secs};
use serde_json::json;

/// Each `PUT` of a system index the service made: (target, body).
type Created = Arc<Mutex<Vec<(String, String)>>>;

async fn just_started_cluster(world: &TestWorld, templates: bool) -> (FaultProxy, Created) {
    let created = Created::default();
    let record = created.clone();
    let create: Handler = Arc::new(move |_, target, body| {
        let record = record.clone();
        Box::pin(async move {
            record
                .lock()
                .unwrap()
                .push((target, String::from_utf8_lossy(&body).into_owned()));
            (200, json!({"acknowledged": true}).to_string())
        })
    });
    let template = json!({"index_templates": [{"name": "elastic-connectors",
        "index_template": {"index_patterns": [".elastic-connectors-v1"]}}]});
    let mut rules = vec![
        Rule::when(
            "the _connector API answers",
            |m, t| m == "GET" && t.split('?').next() == Some("/_connector"),
            Fault::status(200, json!({"count": 0, "results": []}).to_string()),
        ),
        Rule::when(
            "the system indices do not exist yet",
            |m, t| m == "HEAD" && t.starts_with("/.elastic-connectors"),
            Fault::es_error(404, "index_not_found_exception", "no such index"),
        ),
        Rule::when(
            "a system index is created",
            |m, t| m == "PUT" && t.starts_with("/.elastic-connectors"),
            Fault::Handle(create),
        ),
    ];
    if templates {
        rules.push(Rule::when(
            "the connector templates are installed",
            |m, t| m == "GET" && t.starts_with("/_index_template/elastic-connectors"),
            Fault::status(200, template.to_string()),
        ));
    }
    (FaultProxy::start(&world.es_url, rules).await, created)
}

const FAST_PREFLIGHT: &str = "service.preflight_max_attempts: 3\nservice.preflight_idle: 0.2\n\
                              elasticsearch.feature_use_connectors_api: auto\n";

#[tokio::test(flavor = "multi_thread")]
async fn no_system_index_is_created_before_the_templates_are_installed() {
    let world = TestWorld::start().await;
    if world.es_stand_in {
        return; // the rule is Elasticsearch's: on another API our own mapping is right (a unit test)
    }
    let (proxy, created) = just_started_cluster(&world, false).await;
    let yaml = world.config_yaml_via(&["unused"], FAST_PREFLIGHT, &proxy.url());
    let mut service = ServiceProcess::start(&world, &yaml, &[]);
    let status = service.wait_exit(secs(30)).await;
    let logs = service.logs();
    assert!(!status.success(), "{logs}");
    assert!(
        logs.contains("connector index templates")
            && logs.contains("not installed in this cluster yet"),
        "{logs}"
    );
    assert!(
        created.lock().unwrap().is_empty(),
        "created before the templates: {:?}",
        created.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_templates_the_indices_are_created_with_no_body() {
    let world = TestWorld::start().await;
    if world.es_stand_in {
        return; // the rule is Elasticsearch's: on another API our own mapping is right (a unit test)
    }
    let (proxy, created) = just_started_cluster(&world, true).await;
    let yaml = world.config_yaml_via(&["unused"], FAST_PREFLIGHT, &proxy.url());
    let service = ServiceProcess::start(&world, &yaml, &[]);
    service.wait_for_log("service started", secs(30)).await;
    let created = created.lock().unwrap().clone();
    let targets: Vec<&str> = created.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        targets,
        [
            "/.elastic-connectors-v1",
            "/.elastic-connectors-sync-jobs-v1"
        ],
        "{}",
        service.logs()
    );
    assert!(
        created.iter().all(|(_, body)| body.trim().is_empty()),
        "the cluster's templates give the mappings: {created:?}"
    );
}
