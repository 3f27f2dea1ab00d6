//! `_connector` API mode (§2.3) against a test double of those APIs, and `auto`'s fallback to
//! direct-index mode on a cluster without them.

mod common;

use common::{Fault, Rule, ServiceProcess, TestWorld, s3_configuration, secs};
use serde_json::json;
use std::time::Duration;

const PROBE: usize = 0;
const CHECK_IN: usize = 1;
const CREATE_JOB: usize = 2;
const CLAIM: usize = 3;
const STATS: usize = 4;

#[tokio::test(flavor = "multi_thread")]
async fn api_mode_checks_in_creates_claims_and_reports_through_the_connector_api() {
    let world = TestWorld::start().await;
    let bucket = world.name("api");
    world.create_bucket(&bucket, None).await;
    for i in 0..8 {
        world
            .put_object(&bucket, &format!("doc-{i}.txt"), b"x")
            .await;
    }
    world.ensure_system_indices().await;
    let id = world.name("api");
    let index = world.name("search-api");
    world
        .create_connector_doc(
            &id,
            &index,
            s3_configuration(&world, &bucket),
            json!({"full": {"enabled": true, "interval": "0/2 * * * * ?"}}),
        )
        .await;
    // One document per bulk request, each delayed, so the sync outlives the 10 s stats interval.
    let slow_bulk = Rule::path_contains("/_bulk", Fault::Delay(Duration::from_millis(1500)));
    let api = world.connector_api_with(vec![slow_bulk]).await;
    let extra = format!(
        "elasticsearch.host: {}\nelasticsearch.feature_use_connectors_api: auto\n\
         elasticsearch.bulk.chunk_size: 2\nelasticsearch.bulk.max_concurrency: 1\n",
        api.url()
    );
    let service = ServiceProcess::start(&world, &world.config_yaml(&[&id], &extra), &[]);

    let job = world
        .wait_for("scheduled job completes", secs(40), async || {
            world
                .jobs_of(&id)
                .await
                .into_iter()
                .find(|j| j["_source"]["status"] == "completed")
        })
        .await;
    let job = &job["_source"];
    assert_eq!(job["trigger_method"], "scheduled");
    assert_eq!(job["indexed_document_count"], 8, "{job}");
    assert!(api.hits(PROBE) >= 1, "auto must probe the API");
    assert!(
        api.hits(CHECK_IN) >= 1,
        "check-in through PUT _check_in\n{}",
        service.logs()
    );
    assert!(
        api.hits(CREATE_JOB) >= 1,
        "job created through POST _connector/_sync_job"
    );
    assert!(api.hits(CLAIM) >= 1, "job claimed through PUT _claim");
    assert!(api.hits(STATS) >= 1, "stats through PUT _stats");
    assert!(world.connector(&id).await.unwrap()["last_seen"].is_string());
    assert_eq!(world.count(&index).await, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_falls_back_to_direct_mode_without_the_connector_api() {
    let world = TestWorld::start().await;
    if !world.es_stand_in {
        return; // a real Elasticsearch has the API; the first test covers it
    }
    let bucket = world.name("direct");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "a.txt", b"a").await;
    world.ensure_system_indices().await;
    let id = world.name("direct");
    let index = world.name("search-direct");
    world
        .create_connector_doc(&id, &index, s3_configuration(&world, &bucket), json!({}))
        .await;
    let extra = "elasticsearch.feature_use_connectors_api: auto\n";
    let service = ServiceProcess::start(&world, &world.config_yaml(&[&id], extra), &[]);
    let job_id = world.create_pending_job(&id).await;
    let job = world
        .wait_for("job completes", secs(20), async || {
            world
                .job(&job_id)
                .await
                .filter(|j| j["status"] == "completed")
        })
        .await;
    assert_eq!(job["indexed_document_count"], 1);
    assert!(
        service.logs().contains("no _connector API"),
        "{}",
        service.logs()
    );
}

/// The double itself answers a malformed request as Elasticsearch does (PostConnectorSyncJobAction's
/// parser: `id` is required, unknown fields are refused), so API-mode tests cannot pass on requests
/// a real cluster would reject.
#[tokio::test(flavor = "multi_thread")]
async fn the_double_rejects_a_sync_job_post_without_id_as_elasticsearch_does() {
    let world = TestWorld::start().await;
    let api = world.connector_api().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = async |body: serde_json::Value| {
        let resp = http
            .post(format!("{}/_connector/_sync_job", api.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<serde_json::Value>().await.unwrap())
    };
    let reason = "Required [id]";
    assert_eq!(
        post(json!({"job_type": "full"})).await,
        (
            400,
            json!({"error": {"root_cause": [{"type": "illegal_argument_exception", "reason": reason}],
                             "type": "illegal_argument_exception", "reason": reason},
                   "status": 400})
        )
    );
    let (status, body) = post(json!({"id": "x", "trigger": "on_demand"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["reason"],
        "[1:11] [connector_sync_job_post_request] unknown field [trigger]"
    );
    assert_eq!(api.hits(CREATE_JOB), 2);
}
