//! Which ingest pipeline bulk requests name: the connector's, when the cluster has it; the default
//! one is optional; a missing custom one fails the job.

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

async fn finished_job(world: &TestWorld, job_id: &str) -> Value {
    world
        .wait_for("job finishes", secs(20), async || {
            world
                .job(job_id)
                .await
                .filter(|j| j["status"] == "completed" || j["status"] == "error")
        })
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_default_pipeline_is_skipped_with_a_warning() {
    let world = TestWorld::start().await;
    let (id, index) = connector_with_pipeline(&world, "search-default-ingestion").await;
    let service = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job = finished_job(&world, &world.create_pending_job(&id).await).await;
    if !world.es_stand_in {
        // A real Elasticsearch 8.x/9.x has the managed default pipeline: it runs and removes the flags.
        assert_eq!(job["status"], "completed", "{job}");
        return;
    }
    assert_eq!(job["status"], "completed", "{job}\n{}", service.logs());
    assert_eq!(world.count(&index).await, 2);
    for hit in world.search(&index, json!({"match_all": {}})).await {
        let src = hit["_source"].as_object().unwrap();
        assert!(
            !src.contains_key("_extract_binary_content"),
            "flags without a pipeline: {src:?}"
        );
    }
    let warnings = service
        .logs()
        .matches("default ingest pipeline not available")
        .count();
    assert_eq!(warnings, 1, "one warning per job:\n{}", service.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_custom_pipeline_fails_the_job() {
    let world = TestWorld::start().await;
    let (id, index) = connector_with_pipeline(&world, "my-custom-pipeline").await;
    let _service = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job = finished_job(&world, &world.create_pending_job(&id).await).await;
    assert_eq!(job["status"], "error", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("[my-custom-pipeline]"), "{error}");
    assert_eq!(
        world.count(&index).await,
        0,
        "nothing indexed around the pipeline"
    );
    let connector = world.connector(&id).await.unwrap();
    assert_eq!(connector["last_sync_status"], "error");
    assert_eq!(connector["last_sync_error"], error);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_pipeline_is_named_on_every_bulk_request() {
    let world = TestWorld::start().await;
    let (id, _index) = connector_with_pipeline(&world, "search-default-ingestion").await;
    // Make the pipeline exist as far as the service can tell (the stand-in has no ingest API).
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![
            Rule::method_path(
                "GET",
                "/_ingest/pipeline/search-default-ingestion",
                Fault::status(200, r#"{"search-default-ingestion":{"processors":[]}}"#),
            ),
            Rule::when(
                "bulk naming the pipeline",
                |_, t| t.starts_with("/_bulk") && t.contains("pipeline=search-default-ingestion"),
                Fault::Delay(std::time::Duration::ZERO),
            ),
            Rule::when(
                "bulk without pipeline",
                |_, t| t == "/_bulk",
                Fault::Delay(std::time::Duration::ZERO),
            ),
        ],
    )
    .await;
    // A later key wins over the harness's `elasticsearch.host`.
    let yaml = world.config_yaml(&[&id], &format!("elasticsearch.host: {}\n", proxy.url()));
    let _service = ServiceProcess::start(&world, &yaml, &[]);
    let job = finished_job(&world, &world.create_pending_job(&id).await).await;
    assert!(
        proxy.hits(1) > 0,
        "no bulk request named the pipeline; job: {job}"
    );
    assert_eq!(proxy.hits(2), 0, "a bulk request went without the pipeline");
}
