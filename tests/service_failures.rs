//! Failure paths and robustness of the running service, end to end: the real binary against ES and
//! S3 (stand-ins or real), with faults injected by `FaultProxy`.
//!
//! Every test asserts what a user would look at: job and connector documents, the content index,
//! the service's exit status and its logs.

mod common;

use common::{
    Fault, FaultProxy, Raw, Rule, ServiceProcess, TestWorld, doc_id, is_listing_of,
    s3_configuration, secs,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// helpers

/// Statuses after which a job does not change any more by itself.
const TERMINAL: &[&str] = &["completed", "error", "canceled", "suspended"];

/// Waits for a terminal job status.
async fn wait_done(
    world: &TestWorld,
    job_id: &str,
    timeout: Duration,
    services: &[&ServiceProcess],
) -> Value {
    world.wait_job(job_id, TERMINAL, timeout, services).await
}

/// S3 configuration pointing at `endpoint`; `tweak` edits it further.
fn s3_config(
    world: &TestWorld,
    buckets: &str,
    endpoint: &str,
    tweak: impl FnOnce(&mut Value),
) -> Value {
    let mut c = s3_configuration(world, buckets);
    c["endpoint_url"]["value"] = json!(endpoint);
    tweak(&mut c);
    c
}

/// Lines of `logs` that contain all of `needles`.
fn lines_with<'a>(logs: &'a str, needles: &[&str]) -> Vec<&'a str> {
    logs.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect()
}

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
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
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
// 4. two instances on one cluster

fn starts_of(logs: &str, job_id: &str) -> usize {
    lines_with(logs, &["sync job starting", job_id]).len()
}

/// Two identical instances, one pending job: it runs exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn two_instances_run_a_job_once() {
    let world = TestWorld::start().await;
    let bucket = world.name("twins");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "k/", 30).await;
    let (id, index) = world
        .configured_connector(
            "twins",
            s3_config(&world, &bucket, &world.s3_endpoint, |_| {}),
        )
        .await;
    let yaml = world.config_yaml(&[&id], "");
    let s1 = ServiceProcess::start(&world, &yaml, &[]);
    let s2 = ServiceProcess::start(&world, &yaml, &[]);
    s1.wait_for_log("service started", secs(20)).await;
    s2.wait_for_log("service started", secs(20)).await;

    let job = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job, secs(30), &[&s1, &s2]).await;
    let started_at = done["started_at"].clone();
    // Give the other instance several polls to (wrongly) pick the job up again.
    tokio::time::sleep(secs(3)).await;

    let again = world.job(&job).await.expect("job");
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(
        again["started_at"], started_at,
        "the job ran again: {again}"
    );
    assert_eq!(again["indexed_document_count"], 30, "{again}");
    assert_eq!(world.count(&index).await, 30);
    let starts = (starts_of(&s1.logs(), &job), starts_of(&s2.logs(), &job));
    assert!(
        starts == (1, 0) || starts == (0, 1),
        "exactly one instance must run the job, starts per instance: {starts:?}"
    );
    assert_eq!(world.jobs_of(&id).await.len(), 1);
}

/// The second instance read the pending job before the first one claimed it, but reaches its
/// start only after the first one finished (its connector reads are slow): it must not run the
/// finished job again, nor leave the connector marked `in_progress`.
#[tokio::test(flavor = "multi_thread")]
async fn stale_pending_read_does_not_rerun_a_finished_job() {
    let world = TestWorld::start().await;
    let bucket = world.name("stale");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "k/", 5).await;
    let (id, _index) = world
        .configured_connector(
            "stale",
            s3_config(&world, &bucket, &world.s3_endpoint, |_| {}),
        )
        .await;
    let yaml = world.config_yaml(&[&id], "");
    // Instance 2 sees every connector read 3 s late: as it was when asked.
    let slow = FaultProxy::start(
        &world.es_url,
        vec![Rule::method_path(
            "GET",
            "/.elastic-connectors/_doc/",
            Fault::Stale(secs(3)),
        )],
    )
    .await;
    let s2 = ServiceProcess::start(&world, &world.with_es_host(&yaml, &slow.url()), &[]);
    s2.wait_for_log("service started", secs(20)).await;

    let job = world.create_pending_job(&id).await;
    // Instance 2 polls every 0.5 s: by now it has read the pending job and waits on the connector.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let s1 = ServiceProcess::start(&world, &yaml, &[]);
    let done = wait_done(&world, &job, secs(30), &[&s1, &s2]).await;
    assert_eq!(done["status"], "completed", "{done}");

    // Instance 2 gets to the job (some log line names it) and the connector settles.
    world
        .wait_for("instance 2 acted on the job", secs(30), async || {
            let logs = s2.logs();
            if logs.contains(&job) {
                Ok(())
            } else {
                Err(Raw(logs))
            }
        })
        .await;
    let c = world
        .wait_for("connector not in_progress", secs(20), async || {
            let c = world.connector(&id).await.expect("connector");
            if c["last_sync_status"] != "in_progress" {
                Ok(c)
            } else {
                Err(c)
            }
        })
        .await;
    let again = world.job(&job).await.expect("job");
    assert_eq!(
        again["started_at"], done["started_at"],
        "the job ran again: {again}"
    );
    assert_eq!(again["status"], "completed", "{again}");
    let starts = (starts_of(&s1.logs(), &job), starts_of(&s2.logs(), &job));
    assert_eq!(starts, (1, 0), "instance 2 must not start the finished job");
    assert_eq!(c["last_sync_status"], "completed", "{c}");
    assert_eq!(c["status"], "connected", "{c}");
}

/// A schedule firing every 2 s, two instances: each firing creates at most one job.
#[tokio::test(flavor = "multi_thread")]
async fn two_instances_schedule_each_firing_once() {
    let world = TestWorld::start().await;
    let bucket = world.name("cron");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "c/", 2).await;
    let id = world.name("cron");
    let index = world.name("search-cron");
    world
        .create_connector_doc(
            &id,
            &index,
            s3_config(&world, &bucket, &world.s3_endpoint, |_| {}),
            json!({"full": {"enabled": true, "interval": "0/2 * * * * ?"}}),
        )
        .await;
    let yaml = world.config_yaml(&[&id], "");
    let t0 = chrono::Utc::now();
    let s1 = ServiceProcess::start(&world, &yaml, &[]);
    let s2 = ServiceProcess::start(&world, &yaml, &[]);
    s1.wait_for_log("service started", secs(20)).await;
    s2.wait_for_log("service started", secs(20)).await;
    tokio::time::sleep(secs(7)).await;
    drop(s1);
    drop(s2);
    let t1 = chrono::Utc::now();

    let jobs = world.jobs_of(&id).await;
    let mut created: Vec<chrono::DateTime<chrono::Utc>> = jobs
        .iter()
        .map(|j| {
            let s = j["_source"]["created_at"].as_str().expect("created_at");
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("created_at parses")
                .to_utc()
        })
        .collect();
    created.sort();
    // The schedule fires at every even second; count the firings while the services ran.
    let firings = (t1.timestamp() / 2 - t0.timestamp() / 2) as usize;
    assert!(!jobs.is_empty(), "no job was scheduled in 7 s");
    assert!(
        jobs.len() <= firings,
        "{} jobs for {firings} firings: {created:?}",
        jobs.len()
    );
    for pair in created.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= chrono::Duration::milliseconds(1000),
            "two jobs {gap:?} apart: one firing was scheduled twice: {created:?}"
        );
    }
    for j in &jobs {
        assert_eq!(j["_source"]["trigger_method"], "scheduled", "{j}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. SIGTERM mid-sync suspends; a restart resumes

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_suspends_the_job_and_a_restart_completes_it() {
    let world = TestWorld::start().await;
    let bucket = world.name("suspend");
    world.create_bucket(&bucket, None).await;
    let n = 300;
    world.put_many(&bucket, "s/", n).await;
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains("/_bulk", Fault::Delay(secs(1)))],
    )
    .await;
    let (id, index) = world
        .configured_connector(
            "suspend",
            s3_config(&world, &bucket, &world.s3_endpoint, |_| {}),
        )
        .await;
    let yaml = world.config_yaml(&[&id], "elasticsearch.bulk.chunk_size: 20\n");
    let mut svc = ServiceProcess::start(&world, &world.with_es_host(&yaml, &proxy.url()), &[]);
    let job = world.create_pending_job(&id).await;
    let running = world
        .wait_job(&job, &["in_progress"], secs(30), &[&svc])
        .await;
    proxy.wait_hits(0, 1, secs(20)).await;

    assert!(svc.send_sigterm(), "service already gone:\n{}", svc.logs());
    let t0 = Instant::now();
    let status = svc.wait_exit(secs(20)).await;
    let took = t0.elapsed();
    assert!(status.success(), "exit status {status:?}:\n{}", svc.logs());
    assert!(took < secs(5), "shutdown took {took:?}:\n{}", svc.logs());

    let suspended = world.job(&job).await.expect("job");
    assert_eq!(suspended["status"], "suspended", "{suspended}");
    assert_eq!(suspended["completed_at"], Value::Null, "{suspended}");
    assert_eq!(suspended["error"], Value::Null, "{suspended}");
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "suspended", "{c}");
    assert_eq!(c["status"], "connected", "{c}");
    let partial = world.count(&index).await;
    assert!(
        partial < n as u64,
        "the sync was not interrupted: {partial} docs"
    );

    // A new instance (straight to ES) resumes the same job from scratch.
    let svc2 = ServiceProcess::start(&world, &yaml, &[]);
    let done = world
        .wait_job(
            &job,
            &["completed", "error", "canceled"],
            secs(30),
            &[&svc2],
        )
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["indexed_document_count"], n, "{done}");
    assert_eq!(done["total_document_count"], n, "{done}");
    assert_ne!(done["started_at"], running["started_at"], "{done}");
    assert_eq!(world.count(&index).await, n as u64);
    assert_eq!(world.jobs_of(&id).await.len(), 1);
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "completed", "{c}");
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
// 7. too many errors in a service loop stop the process

/// After a healthy start, every search fails: once a loop has seen more than `service.max_errors`
/// errors within `service.max_errors_span`, the process stops with a non-zero exit code and says
/// why (so that a supervisor restarts it), as Elastic's service does.
#[tokio::test(flavor = "multi_thread")]
async fn too_many_errors_stop_the_service() {
    let world = TestWorld::start().await;
    let bucket = world.name("errors");
    world.create_bucket(&bucket, None).await;
    let broken = Arc::new(AtomicU8::new(0));
    let flag = broken.clone();
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![Rule::when(
            "searches once broken",
            move |_, target| flag.load(Ordering::SeqCst) == 1 && target.contains("/_search"),
            Fault::es_error(
                503,
                "cluster_block_exception",
                "blocked by: [SERVICE_UNAVAILABLE]",
            ),
        )],
    )
    .await;
    let (id, _) = world
        .configured_connector(
            "errors",
            s3_config(&world, &bucket, &world.s3_endpoint, |_| {}),
        )
        .await;
    let extra = "service.max_errors: 2\nservice.max_errors_span: 600\n\
                 elasticsearch.max_retries: 0\nelasticsearch.retry_interval: 0.05\n";
    let yaml = world.config_yaml(&[&id], extra);
    let mut svc = ServiceProcess::start(&world, &world.with_es_host(&yaml, &proxy.url()), &[]);
    world
        .wait_connector(&id, "connector connected", secs(30), |c| {
            c["status"] == "connected"
        })
        .await;
    assert!(svc.try_exit_status().is_none(), "{}", svc.logs());

    broken.store(1, Ordering::SeqCst);
    let status = svc.wait_exit(secs(60)).await;
    let logs = svc.logs();
    assert!(!status.success(), "exit {status:?}; logs:\n{logs}");
    let stop = lines_with(
        &logs,
        &["too many errors in the", "service.max_errors is 2"],
    );
    assert!(
        !stop.is_empty(),
        "no reason given; logs:\n{}",
        common::log_tail(&logs, 40)
    );
    assert!(
        stop.iter().any(|l| l.contains("cluster_block_exception")),
        "the last error is named: {stop:?}"
    );
    assert!(
        proxy.injected(0) >= 3,
        "at least max_errors + 1 failed searches"
    );
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
