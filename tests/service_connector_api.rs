//! `_connector` API mode (docs/protocol.md#direct-writes-or-the-_connector-api) against a test double of those APIs, and `auto`'s fallback to
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
    if world.es_get("/_connector").await.status == 200 {
        return; // this cluster has the API (the first test covers API mode)
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

/// `auto` decides on proof only: a key that may not call `GET /_connector` (403) does not switch the
/// process to direct writes for good; the service stops naming the cause and the way out.
#[tokio::test(flavor = "multi_thread")]
async fn auto_stops_with_the_cause_when_the_probe_is_refused() {
    let world = TestWorld::start().await;
    let (id, _index, _bucket) = world.bucket_with_connector("refused", 1).await;
    let proxy = common::FaultProxy::start(
        &world.es_url,
        vec![Rule::when(
            "the _connector probe",
            |m, t| m == "GET" && t.split('?').next() == Some("/_connector"),
            Fault::es_error(
                403,
                "security_exception",
                "action [cluster:admin/xpack/connector/list] is unauthorized for API key id [k]",
            ),
        )],
    )
    .await;
    let extra = "elasticsearch.feature_use_connectors_api: auto\n";
    let mut service = ServiceProcess::start(
        &world,
        &world.config_yaml_via(&[&id], extra, &proxy.url()),
        &[],
    );
    let status = service.wait_exit(secs(30)).await;
    let logs = service.logs();
    assert!(!status.success(), "{logs}");
    assert!(
        logs.contains("cannot tell whether the cluster has the _connector API")
            && logs.contains("403")
            && logs.contains("feature_use_connectors_api"),
        "{logs}"
    );
    assert!(
        !logs.contains("writing the connector indices directly"),
        "{logs}"
    );
    assert_eq!(proxy.injected(0), 1, "asked once");
}

/// A cluster that fails the probe while it starts (503) is asked again; the service then uses the
/// API it has, instead of writing the indices directly for good.
#[tokio::test(flavor = "multi_thread")]
async fn auto_asks_again_when_the_probe_fails_for_a_while() {
    let world = TestWorld::start().await;
    let (id, _index, _bucket) = world.bucket_with_connector("starting", 2).await;
    let api = world.connector_api().await;
    let starting = common::FaultProxy::start(
        &api.url(),
        vec![
            Rule::when(
                "the _connector probe while the cluster starts",
                |m, t| m == "GET" && t.split('?').next() == Some("/_connector"),
                Fault::es_error(503, "cluster_block_exception", "state not recovered"),
            )
            .first(2),
        ],
    )
    .await;
    let extra = "elasticsearch.feature_use_connectors_api: auto\n\
                 elasticsearch.max_retries: 5\nelasticsearch.retry_interval: 0.1\n";
    let service = ServiceProcess::start(
        &world,
        &world.config_yaml_via(&[&id], extra, &starting.url()),
        &[],
    );
    let job_id = world.create_pending_job(&id).await;
    world.wait_completed(&job_id, &service).await;
    assert_eq!(starting.injected(0), 2);
    assert!(api.hits(PROBE) >= 1, "the probe reached the API at last");
    assert!(
        api.hits(CLAIM) >= 1,
        "API mode: the job was claimed through _claim\n{}",
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

/// On 8.14 the `_connector` API has no `_claim`, and its `_stats` refuses `metadata`: the service
/// claims with a direct update and writes the metadata (with its checkpoint) directly, and the job
/// completes. (It used to call `_claim` on every 8.12+ cluster, and every job failed to start.)
#[tokio::test(flavor = "multi_thread")]
async fn on_8_14_jobs_are_claimed_without_claim_and_stats_carry_no_metadata() {
    let world = TestWorld::start().await;
    let (id, index, _bucket) = world.bucket_with_connector("v814", 10).await;
    world.without_pipeline(&id).await;
    // Five slow bulk requests: the sync outlives the 10 s stats interval.
    let slow_bulk = Rule::path_contains("/_bulk", Fault::Delay(Duration::from_millis(2500)));
    let api = world
        .connector_api_version_with("8.14.3", vec![slow_bulk])
        .await;
    let extra = "elasticsearch.feature_use_connectors_api: auto\n\
                 elasticsearch.bulk.chunk_size: 4\nelasticsearch.bulk.max_concurrency: 1\n";
    let service = ServiceProcess::start(
        &world,
        &world.config_yaml_via(&[&id], extra, &api.url()),
        &[],
    );
    let job_id = world.create_pending_job(&id).await;
    let job = world.wait_completed(&job_id, &service).await;
    assert_eq!(job["indexed_document_count"], 10, "{job}");
    assert_eq!(world.count(&index).await, 10);
    assert!(api.hits(PROBE) >= 1 && api.hits(CHECK_IN) >= 1, "API mode");
    assert_eq!(api.hits(CLAIM), 0, "8.14 has no _claim");
    assert!(api.hits(STATS) >= 1, "stats through _stats");
    assert!(
        !service.logs().contains("unknown field [metadata]"),
        "{}",
        service.logs()
    );
}
