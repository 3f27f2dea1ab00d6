//! Failure paths and robustness of the running service, end to end: the real binary against ES and
//! S3 (stand-ins or real), with faults injected by `FaultProxy`.
//!
//! Every test asserts what a user would look at: job and connector documents, the content index,
//! the service's exit status and its logs.

mod common;

use common::{
    Fault, FaultProxy, Rule, ServiceProcess, TestWorld, doc_id, is_listing_of, lines_with,
    s3_config, secs, wait_done,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// An S3 error response body.
fn s3_error_xml(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>injected</RequestId></Error>"
    )
}

// ---------------------------------------------------------------------------------------------
// 1. a failed listing never deletes that bucket's documents

/// Buckets A and B are synced; then A's ListObjectsV2 is answered with 403 AccessDenied, then with
/// 500 InternalError (retried by the S3 client, then given up). Each time: the job ends `error`
/// naming A and the cause, every document of A stays, and B's vanished objects are deleted
/// (B's listing completed, so its deletions are safe).
#[tokio::test(flavor = "multi_thread")]
async fn failed_listing_keeps_that_buckets_documents() {
    let world = TestWorld::start().await;
    let (a, b) = (world.name("list-a"), world.name("list-b"));
    world.create_bucket(&a, None).await;
    world.create_bucket(&b, None).await;
    let a_keys = world.put_many(&a, "a/", 5).await;
    let b_keys = world.put_many(&b, "b/", 4).await;

    // 0: pass through, 1: A's listing → 403, 2: A's listing → 500.
    let mode = Arc::new(AtomicU8::new(0));
    let (m1, m2) = (mode.clone(), mode.clone());
    let (list1, list2) = (is_listing_of(&a), is_listing_of(&a));
    let proxy = FaultProxy::start(
        &world.s3_endpoint,
        vec![
            Rule::when(
                "A's listing, mode 1",
                move |m, t| m1.load(Ordering::SeqCst) == 1 && list1(m, t),
                Fault::status(403, s3_error_xml("AccessDenied", "Access Denied")),
            ),
            Rule::when(
                "A's listing, mode 2",
                move |m, t| m2.load(Ordering::SeqCst) == 2 && list2(m, t),
                Fault::status(
                    500,
                    s3_error_xml("InternalError", "We encountered an internal error."),
                ),
            ),
        ],
    )
    .await;
    // max_attempts 2: the S3 client tries a 500 three times in all, then gives up.
    let config = s3_config(&world, &format!("{a},{b}"), &proxy.url(), |c| {
        c["max_attempts"]["value"] = json!(2);
    });
    let (id, index) = world.configured_connector("partial", config).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);

    let job1 = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job1, secs(30), &[&svc]).await;
    assert_eq!(done["status"], "completed", "first sync: {done}");
    assert_eq!(world.count(&index).await, 9);
    let a_ids = common::es::doc_ids(&a, &a_keys);
    assert_eq!(world.doc_ids_of_bucket(&index, &a).await, a_ids);

    // B loses two objects; A's listing is refused.
    for key in &b_keys[..2] {
        world.delete_object(&b, key).await;
    }
    mode.store(1, Ordering::SeqCst);
    let job2 = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job2, secs(30), &[&svc]).await;
    assert_eq!(done["status"], "error", "listing refused: {done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&a) && error.contains("AccessDenied"),
        "job error must name bucket {a} and the cause: {error:?}"
    );
    assert!(!error.contains(&b), "B's listing worked, yet: {error:?}");
    assert!(proxy.injected(0) >= 1, "the fault was never injected");
    assert_eq!(
        world.doc_ids_of_bucket(&index, &a).await,
        a_ids,
        "every document of the bucket whose listing failed must stay"
    );
    assert_eq!(
        world.doc_ids_of_bucket(&index, &b).await,
        common::es::doc_ids(&b, &b_keys[2..]),
        "B's listing completed: its vanished objects must be deleted"
    );
    assert_eq!(done["deleted_document_count"], 2, "{done}");
    assert_eq!(done["indexed_document_count"], 2, "{done}");
    assert_eq!(done["total_document_count"], 7, "{done}");
    assert!(done["completed_at"].is_string(), "{done}");
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "error", "{c}");
    assert_eq!(c["last_sync_error"], done["error"], "{c}");

    // A's listing fails with 500 on every attempt: retried, then the same outcome.
    mode.store(2, Ordering::SeqCst);
    let job3 = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job3, secs(30), &[&svc]).await;
    assert_eq!(done["status"], "error", "listing 500: {done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&a) && error.contains("InternalError"),
        "job error must name bucket {a} and the cause: {error:?}"
    );
    assert_eq!(
        proxy.injected(1),
        3,
        "a 500 is retried max_attempts (2) times after the first attempt, then given up"
    );
    assert_eq!(world.doc_ids_of_bucket(&index, &a).await, a_ids);
    assert_eq!(done["deleted_document_count"], 0, "{done}");
    assert_eq!(world.count(&index).await, 7);
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "error", "{c}");
}

/// A bucket that was deleted (objects and bucket) fails its listing with NoSuchBucket: its
/// documents are kept and the job says why.
#[tokio::test(flavor = "multi_thread")]
async fn deleted_bucket_keeps_its_documents() {
    let world = TestWorld::start().await;
    let (a, b) = (world.name("gone-a"), world.name("gone-b"));
    world.create_bucket(&a, None).await;
    world.create_bucket(&b, None).await;
    let a_keys = world.put_many(&a, "x/", 3).await;
    let b_keys = world.put_many(&b, "y/", 3).await;
    let config = s3_config(&world, &format!("{a},{b}"), &world.s3_endpoint, |_| {});
    let (id, index) = world.configured_connector("gone", config).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);

    let job1 = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job1, secs(30), &[&svc]).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(world.count(&index).await, 6);

    for key in &a_keys {
        world.delete_object(&a, key).await;
    }
    world.delete_bucket(&a).await;
    world.delete_object(&b, &b_keys[0]).await;

    let job2 = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job2, secs(30), &[&svc]).await;
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&a) && error.contains("NoSuchBucket"),
        "job error must name bucket {a} and NoSuchBucket: {error:?}"
    );
    assert_eq!(
        world.doc_ids_of_bucket(&index, &a).await,
        common::es::doc_ids(&a, &a_keys)
    );
    assert_eq!(
        world.doc_ids_of_bucket(&index, &b).await,
        common::es::doc_ids(&b, &b_keys[1..])
    );
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "error", "{c}");
}

// ---------------------------------------------------------------------------------------------
// 2. bulk item errors and the error monitor

/// Keys that map fine to a `long` `filename` (ES coerces numeric strings) and keys that do not.
const GOOD_KEYS: usize = 5;
const BAD_KEYS: usize = 15;

/// A bucket with 5 numeric keys ("1000".."1004", listed first) and 15 keys "bad-00".."bad-14", and
/// a content index where `filename` is a `long`: the 15 bad documents fail with 400 mapper errors.
async fn mapping_error_fixture(
    world: &TestWorld,
    base: &str,
) -> (String, String, String, Vec<String>) {
    let bucket = world.name(base);
    world.create_bucket(&bucket, None).await;
    for i in 0..GOOD_KEYS {
        world
            .put_object(&bucket, &format!("{}", 1000 + i), b"good")
            .await;
    }
    let bad: Vec<String> = (0..BAD_KEYS).map(|i| format!("bad-{i:02}")).collect();
    for key in &bad {
        world.put_object(&bucket, key, b"bad").await;
    }
    let config = s3_config(world, &bucket, &world.s3_endpoint, |_| {});
    let (id, index) = world.configured_connector(base, config).await;
    world
        .es_put(
            &format!("/{index}"),
            &json!({"mappings": {"properties": {"filename": {"type": "long"}}}}),
        )
        .await
        .ok();
    (id, index, bucket, bad)
}

/// More than 10 consecutive item failures: the error monitor ends the job with TooManyErrors;
/// the 5 documents that worked are indexed and counted, the failed ones are not.
#[tokio::test(flavor = "multi_thread")]
async fn consecutive_bulk_item_errors_stop_the_sync() {
    let world = TestWorld::start().await;
    let (id, index, bucket, bad) = mapping_error_fixture(&world, "monitor").await;
    // Documents are queued as their downloads finish; one download at a time keeps them in
    // listing order, so that the good ones come first and the bad ones fail in a row.
    let yaml = world.config_yaml(&[&id], "elasticsearch.bulk.concurrent_downloads: 1");
    let svc = ServiceProcess::start(&world, &yaml, &[]);
    let job = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job, secs(30), &[&svc]).await;

    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(
            "TooManyErrors: Exceeded maximum consecutive errors - saw 11 errors in a row. Last error: "
        ),
        "{error:?}"
    );
    // The 11th failure is the one that tripped the monitor.
    assert!(error.contains(&doc_id(&bucket, &bad[10])), "{error:?}");
    assert_eq!(done["indexed_document_count"], GOOD_KEYS, "{done}");
    assert_eq!(world.count(&index).await, GOOD_KEYS as u64);
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "error", "{c}");
    assert_eq!(c["last_sync_error"], done["error"], "{c}");
    let logs = svc.logs();
    for key in &bad[..11] {
        let id = doc_id(&bucket, key);
        assert_eq!(
            lines_with(&logs, &["bulk item failed", &id, "parsing_exception"]).len(),
            1,
            "failure of {key} ({id}) is logged once with the doc id and reason:\n{logs}"
        );
    }
}

/// With the error monitor disabled, failed items are only logged: the job completes and its
/// counts exclude them.
#[tokio::test(flavor = "multi_thread")]
async fn disabled_error_monitor_completes_and_counts_only_successes() {
    let world = TestWorld::start().await;
    let (id, index, bucket, bad) = mapping_error_fixture(&world, "nomonitor").await;
    let yaml = world.config_yaml(&[&id], "elasticsearch.bulk.error_monitor.enabled: false");
    let svc = ServiceProcess::start(&world, &yaml, &[]);
    let job = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job, secs(30), &[&svc]).await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["error"], Value::Null, "{done}");
    assert_eq!(done["indexed_document_count"], GOOD_KEYS, "{done}");
    assert_eq!(done["total_document_count"], GOOD_KEYS, "{done}");
    assert_eq!(world.count(&index).await, GOOD_KEYS as u64);
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "completed", "{c}");
    assert_eq!(c["last_indexed_document_count"], GOOD_KEYS, "{c}");
    let logs = svc.logs();
    assert_eq!(
        lines_with(&logs, &["bulk item failed"]).len(),
        BAD_KEYS,
        "one log line per failed item:\n{logs}"
    );
    for key in &bad {
        let id = doc_id(&bucket, key);
        assert_eq!(
            lines_with(&logs, &["bulk item failed", &id]).len(),
            1,
            "{key} ({id}):\n{logs}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. whole-request bulk failures

const FAST_BULK_RETRIES: &str =
    "elasticsearch.bulk.max_retries: 2\nelasticsearch.bulk.retry_interval: 0.05\n";

/// The first two `_bulk` requests get 429: they are retried and every document arrives.
#[tokio::test(flavor = "multi_thread")]
async fn throttled_bulk_requests_are_retried() {
    let world = TestWorld::start().await;
    let bucket = world.name("throttled");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "t/", 10).await;
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains("/_bulk", Fault::too_many_requests()).first(2)],
    )
    .await;
    let (id, index) = world
        .configured_connector(
            "throttled",
            s3_config(&world, &bucket, &world.s3_endpoint, |_| {}),
        )
        .await;
    world.without_pipeline(&id).await;
    let yaml = world.config_yaml(
        &[&id],
        "elasticsearch.bulk.max_retries: 3\nelasticsearch.bulk.retry_interval: 0.05\n",
    );
    let svc = ServiceProcess::start(&world, &world.with_es_host(&yaml, &proxy.url()), &[]);
    let job = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job, secs(30), &[&svc]).await;

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["indexed_document_count"], 10, "{done}");
    assert_eq!(world.count(&index).await, 10);
    assert_eq!(proxy.injected(0), 2);
    assert_eq!(
        proxy.hits(0),
        3,
        "one batch of 10 documents: two throttled attempts, then one that went through"
    );
}

/// One job over a bucket of `objects` objects while every `_bulk` request fails with 503.
struct BulkOutage {
    done: Value,
    took: Duration,
    proxy: FaultProxy,
    id: String,
    index: String,
}

async fn job_during_bulk_outage(
    world: &TestWorld,
    base: &str,
    objects: usize,
    extra: &str,
) -> BulkOutage {
    let bucket = world.name(base);
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "u/", objects).await;
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains(
            "/_bulk",
            Fault::es_error(
                503,
                "unavailable_shards_exception",
                "primary shard is not active",
            ),
        )],
    )
    .await;
    let (id, index) = world
        .configured_connector(base, s3_config(world, &bucket, &world.s3_endpoint, |_| {}))
        .await;
    let extra = format!("{FAST_BULK_RETRIES}{extra}");
    let yaml = world.config_yaml_via(&[&id], &extra, &proxy.url());
    let svc = ServiceProcess::start(world, &yaml, &[]);
    let job = world.create_pending_job(&id).await;
    let t0 = Instant::now();
    let done = wait_done(world, &job, secs(30), &[&svc]).await;
    BulkOutage {
        done,
        took: t0.elapsed(),
        proxy,
        id,
        index,
    }
}

/// Every `_bulk` request fails with 503: after `elasticsearch.bulk.max_retries` attempts the job
/// ends `error` naming the cause, quickly.
#[tokio::test(flavor = "multi_thread")]
async fn permanent_bulk_server_error_fails_the_job_quickly() {
    let world = TestWorld::start().await;
    let BulkOutage {
        done,
        took,
        proxy,
        id,
        index,
    } = job_during_bulk_outage(&world, "unavail", 10, "").await;

    assert!(took < secs(15), "took {took:?}");
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("503") && error.contains("unavailable_shards_exception"),
        "{error:?}"
    );
    assert_eq!(proxy.hits(0), 2, "one batch, max_retries (2) attempts");
    assert_eq!(done["indexed_document_count"], 0, "{done}");
    assert_eq!(world.count(&index).await, 0);
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "error", "{c}");
    assert_eq!(c["last_sync_error"], done["error"], "{c}");
}

/// The same failure while the listing still has objects to send (a queue of one operation): the job's
/// error still names the bulk failure, not just "the sink stopped".
#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_failure_mid_listing_names_its_cause() {
    let world = TestWorld::start().await;
    let extra = "elasticsearch.bulk.queue_max_size: 1\nelasticsearch.bulk.chunk_size: 2\n";
    let outage = job_during_bulk_outage(&world, "midway", 40, extra).await;
    let done = outage.done;
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("503") && error.contains("unavailable_shards_exception"),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. S3 unreachable at sync time

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_s3_fails_the_job_and_deletes_nothing() {
    let world = TestWorld::start().await;
    let bucket = world.name("down");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "d/", 4).await;
    let config = s3_config(&world, &bucket, &world.s3_endpoint, |c| {
        c["max_attempts"]["value"] = json!(1);
    });
    let (id, index) = world.configured_connector("down", config).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job1 = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job1, secs(30), &[&svc]).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(world.count(&index).await, 4);

    // S3 moves away: nothing listens on the new endpoint.
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    world
        .update_connector(
            &id,
            json!({"configuration": {"endpoint_url": {"value": dead}}}),
        )
        .await;
    let job2 = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job2, secs(30), &[&svc]).await;
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.to_lowercase().contains("connect") || error.contains("dispatch failure"),
        "job error must say S3 could not be reached: {error:?}"
    );
    assert_eq!(done["deleted_document_count"], 0, "{done}");
    assert_eq!(world.count(&index).await, 4, "nothing may be deleted");
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["status"], "error", "{c}");
    assert_eq!(c["last_sync_status"], "error", "{c}");
    assert_eq!(c["last_sync_error"], done["error"], "{c}");
}

// ---------------------------------------------------------------------------------------------
// 8. secrets never reach the logs

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_appear_in_logs() {
    const AWS_SECRET: &str = "SUPER-SECRET-123";
    const ES_PASS: &str = "ES-PASS-456";
    let world = TestWorld::start().await;
    let bucket = world.name("secret");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "p/", 3).await;
    let missing = world.name("no-such-bucket");
    // One connector that syncs (with a missing bucket, so the job fails after listing), one whose
    // S3 is unreachable (its check fails on every poll).
    let ok_config = s3_config(
        &world,
        &format!("{bucket},{missing}"),
        &world.s3_endpoint,
        |c| {
            c["aws_secret_access_key"]["value"] = json!(AWS_SECRET);
        },
    );
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    let bad_config = s3_config(&world, &bucket, &dead, |c| {
        c["aws_secret_access_key"]["value"] = json!(AWS_SECRET);
        c["max_attempts"]["value"] = json!(0);
    });
    let (id, index) = world.configured_connector("secret", ok_config).await;
    let (bad_id, _) = world.configured_connector("secret-bad", bad_config).await;

    // The stand-in ignores auth; against a real cluster the password must be the real one.
    let mut yaml = world.config_yaml(&[&id, &bad_id], "");
    let es_pass = if world.external_es {
        std::env::var("ES_PASSWORD").unwrap_or_default()
    } else {
        yaml += &format!("elasticsearch.username: elastic\nelasticsearch.password: {ES_PASS}\n");
        ES_PASS.to_string()
    };
    let svc = ServiceProcess::start_with_args(&world, &yaml, &["--debug"], &[]);

    let job = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job, secs(30), &[&svc]).await;
    assert_eq!(done["status"], "error", "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&missing),
        "{done}"
    );
    assert_eq!(world.count(&index).await, 3);
    world
        .wait_for(
            "the unreachable connector is marked error",
            secs(20),
            async || {
                let c = world.connector(&bad_id).await.expect("connector");
                if c["status"] == "error" {
                    Ok(())
                } else {
                    Err(c)
                }
            },
        )
        .await;

    let logs = svc.logs();
    assert!(logs.contains("DEBUG"), "debug logging is on:\n{logs}");
    assert!(
        !logs.contains(AWS_SECRET),
        "AWS secret in the logs:\n{logs}"
    );
    if es_pass.len() >= 6 {
        assert!(!logs.contains(&es_pass), "ES password in the logs:\n{logs}");
    }
    for c in [&id, &bad_id] {
        let doc = world.connector(c).await.expect("connector");
        assert!(!doc["error"].to_string().contains(AWS_SECRET), "{doc}");
    }
}
