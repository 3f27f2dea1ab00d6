//! Which ingest pipeline bulk requests name: always the connector's (the service never reads
//! pipelines, which a connector's key may not do); a missing default one is dropped for the job, a
//! missing custom one fails it.

mod common;

use common::{Fault, FaultProxy, Rule, ServiceProcess, TestWorld, s3_configuration, secs};
use serde_json::{Value, json};

async fn connector_with_pipeline(world: &TestWorld, pipeline: &str) -> (String, String) {
    let bucket = world.name("pipe");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "a.txt", b"a").await;
    world.put_object(&bucket, "b.txt", b"b").await;
    world.ensure_system_indices().await;
    let id = world.name("pipe");
    let index = world.name("search-pipe");
    world
        .create_connector_doc(&id, &index, s3_configuration(world, &bucket), json!({}))
        .await;
    world
        .update_connector(
            &id,
            json!({"pipeline": {"name": pipeline, "extract_binary_content": true,
                                "reduce_whitespace": true, "run_ml_inference": true}}),
        )
        .await;
    (id, index)
}

/// Waits until the job ended (and its connector recorded it).
async fn finished_job(world: &TestWorld, job_id: &str) -> Value {
    world
        .wait_job(job_id, common::jobs::ENDED, secs(20), &[])
        .await
}

/// Whether the cluster has this ingest pipeline (`None`: the cluster has no ingest API at all, as the
/// OpenSearch-API stand-in).
async fn has_pipeline(world: &TestWorld, name: &str) -> Option<bool> {
    let r = world.es_get(&format!("/_ingest/pipeline/{name}")).await;
    match r.status {
        200 => Some(r.body.get(name).is_some()),
        404 => Some(false),
        _ => None,
    }
}

/// Elasticsearch with the connectors plugin has the default pipeline; a cluster without it (our
/// test node) makes the first bulk request's items fail, and the job goes on without it.
#[tokio::test(flavor = "multi_thread")]
async fn missing_default_pipeline_is_skipped_with_a_warning() {
    let world = TestWorld::start().await;
    let (id, index) = connector_with_pipeline(&world, "search-default-ingestion").await;
    let service = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job = finished_job(&world, &world.create_pending_job(&id).await).await;
    assert_eq!(job["status"], "completed", "{job}\n{}", service.logs());
    assert_eq!(world.count(&index).await, 2);
    if has_pipeline(&world, "search-default-ingestion").await == Some(true) {
        return; // it runs and removes the flags itself
    }
    for hit in world.search(&index, json!({"match_all": {}})).await {
        let src = hit["_source"].as_object().unwrap();
        assert!(
            !src.contains_key("_extract_binary_content"),
            "flags without a pipeline: {src:?}"
        );
    }
    let warnings = service
        .logs()
        .matches("ingest pipeline does not exist; indexing without it")
        .count();
    assert_eq!(warnings, 1, "one warning per job:\n{}", service.logs());
    assert_eq!(job["indexed_document_count"], 2, "{job}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_custom_pipeline_fails_the_job() {
    let world = TestWorld::start().await;
    let pipeline = world.name("my-custom-pipeline");
    let (id, index) = connector_with_pipeline(&world, &pipeline).await;
    let _service = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job = finished_job(&world, &world.create_pending_job(&id).await).await;
    assert_eq!(job["status"], "error", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains(&format!("[{pipeline}]")), "{error}");
    assert_eq!(
        world.count(&index).await,
        0,
        "nothing indexed around the pipeline"
    );
    let connector = world.connector(&id).await.unwrap();
    assert_eq!(connector["last_sync_status"], "error");
    assert_eq!(connector["last_sync_error"], error);
}

/// A pipeline the cluster has is named on every bulk request, and the documents go through it.
#[tokio::test(flavor = "multi_thread")]
async fn an_existing_pipeline_is_named_on_every_bulk_request() {
    let world = TestWorld::start().await;
    let pipeline = world.name("pipe");
    // An empty pipeline: every ingest node accepts it (processors such as `set` need modules our
    // test node lacks).
    let created = world
        .es_put(
            &format!("/_ingest/pipeline/{pipeline}"),
            &json!({"processors": []}),
        )
        .await;
    if !created.is_success() {
        // The OpenSearch-API stand-in has no ingest API: nothing to run this against.
        assert_eq!(has_pipeline(&world, &pipeline).await, None, "{created:?}");
        return;
    }
    let (id, index) = connector_with_pipeline(&world, &pipeline).await;
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![
            Rule::when(
                "bulk naming the pipeline",
                {
                    let query = format!("pipeline={pipeline}");
                    move |_, t| t.starts_with("/_bulk") && t.contains(&query)
                },
                Fault::Delay(std::time::Duration::ZERO),
            ),
            Rule::when(
                "bulk without the pipeline",
                |_, t| t.starts_with("/_bulk") && !t.contains("pipeline="),
                Fault::Delay(std::time::Duration::ZERO),
            ),
        ],
    )
    .await;
    let yaml = world.config_yaml_via(&[&id], "", &proxy.url());
    let service = ServiceProcess::start(&world, &yaml, &[]);
    let job = finished_job(&world, &world.create_pending_job(&id).await).await;
    assert_eq!(job["status"], "completed", "{job}\n{}", service.logs());
    assert_eq!(world.count(&index).await, 2);
    assert!(proxy.hits(0) > 0, "no bulk request named the pipeline");
    assert_eq!(proxy.hits(1), 0, "a bulk request went without the pipeline");
    // The flags are for the pipeline; ours keeps them, Elastic's default one removes them.
    for hit in world.search(&index, json!({"match_all": {}})).await {
        assert_eq!(hit["_source"]["_reduce_whitespace"], true, "{hit}");
    }
    world
        .es_delete(&format!("/_ingest/pipeline/{pipeline}"))
        .await;
}
