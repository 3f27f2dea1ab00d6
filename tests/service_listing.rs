//! Listing and reconciliation safety, end to end: the real binary against ES and S3 (stand-ins or
//! real), with S3-compatible stores' odd answers played by `FaultProxy` rewrites.
//!
//! The rule under test everywhere: a listing (of a bucket, of the buckets, of the index's existing
//! ids) that cannot be trusted to be complete never leads to deletions, and a job that ends on such
//! a listing says so.

mod common;

use common::{
    Fault, FaultProxy, Rule, ServiceProcess, TestWorld, is_listing_of, s3_configuration, secs,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

// ---------------------------------------------------------------------------------------------
// helpers

/// Statuses after which a job does not change any more by itself.
const TERMINAL: &[&str] = &["completed", "error", "canceled", "suspended"];

/// S3 configuration of `buckets` through `endpoint`, `page_size` keys per ListObjectsV2 page.
fn s3_config(world: &TestWorld, buckets: &str, endpoint: &str, page_size: i64) -> Value {
    let mut c = s3_configuration(world, buckets);
    c["endpoint_url"]["value"] = json!(endpoint);
    c["page_size"]["value"] = json!(page_size);
    c
}

/// `xml` without its `<name>…</name>` elements.
fn strip_element(xml: &str, name: &str) -> String {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = xml.to_string();
    while let Some(start) = out.find(&open) {
        let Some(len) = out[start..].find(&close) else {
            break;
        };
        out.replace_range(start..start + len + close.len(), "");
    }
    out
}

/// `xml` with the text of its first `<name>` element set to `value` (the element is added before
/// `</root>` when missing).
fn set_element(xml: &str, root: &str, name: &str, value: &str) -> String {
    let stripped = strip_element(xml, name);
    stripped.replacen(
        &format!("</{root}>"),
        &format!("<{name}>{value}</{name}></{root}>"),
        1,
    )
}

/// The value of query parameter `name` in a request target (undecoded).
fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let query = target.split_once('?')?.1;
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

/// Matches ListBuckets (`GET /`, path style).
fn is_list_buckets(method: &str, target: &str) -> bool {
    method == "GET" && target.split('?').next() == Some("/")
}

// ---------------------------------------------------------------------------------------------
// 0. key ranges (docs/architecture.md#key-ranges)

/// How late a distant S3 answers each listing request here: longer than a page's work, so that
/// the sync waits on the listing and cuts big buckets into key ranges.
const DISTANT: std::time::Duration = std::time::Duration::from_millis(300);

/// Keys S3 must URL-encode in listings, ten of each shape: with page_size 5 the bucket is cut into
/// key ranges by probes whose keys and `start-after` carry multi-byte characters.
fn tricky_keys() -> Vec<String> {
    let shapes = [
        "a+b&c {i}.txt",
        "folder/nested/{i}.md",
        "percent%20literal-{i}.txt",
        "space name {i}.txt",
        "unicodé/文件/ñ-{i}.txt",
        "z/{i}",
    ];
    let mut keys: Vec<String> = (0..10)
        .flat_map(|i| shapes.map(|s| s.replace("{i}", &i.to_string())))
        .collect();
    keys.sort();
    keys
}

/// A bucket of 12 pages is listed over key ranges (four at once) and every object is indexed
/// exactly once; the next sync deletes the one object that vanished and nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_listed_over_key_ranges_indexes_every_key_once() {
    let world = TestWorld::start().await;
    let bucket = world.name("ranges");
    world.create_bucket(&bucket, None).await;
    let keys = tricky_keys();
    for key in &keys {
        world.put_object(&bucket, key, key.as_bytes()).await;
    }
    // A distant S3: the sync waits on the listing, so it cuts the bucket into ranges.
    let listing = is_listing_of(&bucket);
    let distant = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "distant listing",
            move |m, t| listing(m, t),
            Fault::Delay(DISTANT),
        )],
    )
    .await;
    let config = s3_config(&world, &bucket, &distant.url(), 5);
    let (id, index) = world.configured_connector("ranges", config).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job1 = world.create_pending_job(&id).await;
    let done = world.wait_completed(&job1, &svc).await;
    assert!(
        svc.logs()
            .contains("listing the rest of the bucket over key ranges"),
        "{}",
        common::log_tail(&svc.logs(), 3000)
    );
    assert_eq!(done["indexed_document_count"], keys.len(), "{done}");
    assert_eq!(
        world.doc_ids_of_bucket(&index, &bucket).await,
        common::es::doc_ids(&bucket, &keys)
    );

    let vanished = &keys[keys.len() / 2];
    world.delete_object(&bucket, vanished).await;
    let job2 = world.create_pending_job(&id).await;
    let done = world.wait_completed(&job2, &svc).await;
    let kept: Vec<&String> = keys.iter().filter(|k| *k != vanished).collect();
    assert_eq!(
        world.doc_ids_of_bucket(&index, &bucket).await,
        common::es::doc_ids(&bucket, &kept)
    );
    assert_eq!(done["deleted_document_count"], 1, "{done}");
    assert_eq!(done["indexed_document_count"], kept.len(), "{done}");
}

/// When the probes that cut a bucket into ranges fail, that bucket's listing fails: the job ends
/// `error` naming the bucket, and none of its documents is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_probe_fails_the_bucket_and_deletes_nothing() {
    let world = TestWorld::start().await;
    let bucket = world.name("probe");
    world.create_bucket(&bucket, None).await;
    let keys = world.put_many(&bucket, "k/", 30).await;
    let failing = Arc::new(AtomicU8::new(0));
    let (on, listing) = (failing.clone(), is_listing_of(&bucket));
    let proxy = FaultProxy::start(
        &world.s3_endpoint,
        vec![
            Rule::when(
                "a probe for one key is denied",
                move |m, t| {
                    on.load(Ordering::SeqCst) == 1
                        && listing(m, t)
                        && query_param(t, "max-keys") == Some("1")
                },
                Fault::status(
                    403,
                    "<Error><Code>AccessDenied</Code><Message>denied</Message></Error>",
                ),
            ),
            Rule::when(
                "distant listing",
                is_listing_of(&bucket),
                Fault::Delay(DISTANT),
            ),
        ],
    )
    .await;
    let config = s3_config(&world, &bucket, &proxy.url(), 5);
    let (id, index) = world.configured_connector("probe", config).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job1 = world.create_pending_job(&id).await;
    world.wait_completed(&job1, &svc).await;
    assert_eq!(world.count(&index).await, 30);

    world.delete_object(&bucket, &keys[29]).await;
    failing.store(1, Ordering::SeqCst);
    let job2 = world.create_pending_job(&id).await;
    let done = world.wait_job(&job2, TERMINAL, secs(60), &[&svc]).await;
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(error.contains(&bucket), "{error}");
    assert!(proxy.injected(0) >= 1, "a probe was denied");
    assert_eq!(
        world.count(&index).await,
        30,
        "the vanished object's document stays while the listing is incomplete"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. ListObjectsV2 pages that do not say how to go on

/// Some S3-compatible stores answer a truncated page without `NextContinuationToken`. The listing
/// must go on after the page's last key (not end as if complete, which deleted every document of
/// the later pages): the second sync keeps all 25 documents and deletes only the one object that
/// really vanished.
#[tokio::test(flavor = "multi_thread")]
async fn truncated_page_without_token_continues_after_its_last_key() {
    let world = TestWorld::start().await;
    let bucket = world.name("notoken");
    world.create_bucket(&bucket, None).await;
    let keys = world.put_many(&bucket, "k/", 25).await;

    let drop_token = Arc::new(AtomicU8::new(0));
    let (on, listing) = (drop_token.clone(), is_listing_of(&bucket));
    let proxy = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "listing without NextContinuationToken",
            move |m, t| on.load(Ordering::SeqCst) == 1 && listing(m, t),
            Fault::rewrite(|_, body| strip_element(body, "NextContinuationToken")),
        )],
    )
    .await;
    let config = s3_config(&world, &bucket, &proxy.url(), 10);
    let (id, index) = world.configured_connector("notoken", config).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job1 = world.create_pending_job(&id).await;
    world.wait_completed(&job1, &svc).await;
    assert_eq!(world.count(&index).await, 25);

    world.delete_object(&bucket, &keys[24]).await;
    drop_token.store(1, Ordering::SeqCst);
    let job2 = world.create_pending_job(&id).await;
    let done = world.wait_completed(&job2, &svc).await;
    assert!(
        proxy.injected(0) >= 3,
        "every listing response lost its token: {}",
        proxy.injected(0)
    );
    assert_eq!(
        world.doc_ids_of_bucket(&index, &bucket).await,
        common::es::doc_ids(&bucket, &keys[..24]),
        "every listed object stays; only the vanished one goes"
    );
    assert_eq!(done["deleted_document_count"], 1, "{done}");
    assert_eq!(done["indexed_document_count"], 24, "{done}");
}

/// A store that hands back the continuation token it was given would loop forever. The listing
/// of that bucket fails naming the bucket and the cause; nothing of it is deleted, while the
/// other bucket's listing completed and its vanished object is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn repeated_continuation_token_fails_that_bucket_and_deletes_nothing_of_it() {
    let world = TestWorld::start().await;
    let (a, b) = (world.name("loop-a"), world.name("loop-b"));
    world.create_bucket(&a, None).await;
    world.create_bucket(&b, None).await;
    let a_keys = world.put_many(&a, "a/", 25).await;
    let b_keys = world.put_many(&b, "b/", 3).await;

    let stuck = Arc::new(AtomicU8::new(0));
    let (on, listing) = (stuck.clone(), is_listing_of(&a));
    let proxy = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "A's listing hands back its continuation token",
            move |m, t| {
                on.load(Ordering::SeqCst) == 1
                    && listing(m, t)
                    && query_param(t, "continuation-token").is_some()
            },
            Fault::rewrite(|target, body| {
                let token = query_param(target, "continuation-token").unwrap_or_default();
                set_element(body, "ListBucketResult", "NextContinuationToken", token)
            }),
        )],
    )
    .await;
    let config = s3_config(&world, &format!("{a},{b}"), &proxy.url(), 10);
    let (id, index) = world.configured_connector("loop", config).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job1 = world.create_pending_job(&id).await;
    world.wait_completed(&job1, &svc).await;
    assert_eq!(world.count(&index).await, 28);

    world.delete_object(&a, &a_keys[24]).await;
    world.delete_object(&b, &b_keys[0]).await;
    stuck.store(1, Ordering::SeqCst);
    let job2 = world.create_pending_job(&id).await;
    let done = world.wait_job(&job2, TERMINAL, secs(30), &[&svc]).await;
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&a) && error.contains("continuation token"),
        "the error names bucket {a} and the cause: {error:?}"
    );
    assert_eq!(proxy.injected(0), 1, "the listing stops at the repeat");
    assert_eq!(
        world.doc_ids_of_bucket(&index, &a).await,
        common::es::doc_ids(&a, &a_keys),
        "nothing of the bucket whose listing failed is deleted"
    );
    assert_eq!(
        world.doc_ids_of_bucket(&index, &b).await,
        common::es::doc_ids(&b, &b_keys[1..])
    );
    assert_eq!(done["deleted_document_count"], 1, "{done}");
}

// ---------------------------------------------------------------------------------------------
// 2. `buckets: *`

/// ListBuckets paginated with a continuation token that comes back unchanged: resolving `*` fails
/// (it would loop forever) and the job ends `error` without touching the index.
#[tokio::test(flavor = "multi_thread")]
async fn wildcard_with_a_repeated_list_buckets_token_fails() {
    let world = TestWorld::start().await;
    if world.external_s3 {
        eprintln!("skipped: `buckets: *` would list every bucket of the external S3");
        return;
    }
    let bucket = world.name("wild-loop");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "w/", 3).await;
    let mode = Arc::new(AtomicU8::new(0));
    let on = mode.clone();
    let proxy = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "ListBuckets always says more follows, with the same token",
            move |m, t| on.load(Ordering::SeqCst) == 1 && is_list_buckets(m, t),
            Fault::rewrite(|_, body| {
                set_element(body, "ListAllMyBucketsResult", "ContinuationToken", "same")
            }),
        )],
    )
    .await;
    let (id, index) = world
        .configured_connector("wild-loop", s3_config(&world, "*", &proxy.url(), 100))
        .await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job1 = world.create_pending_job(&id).await;
    world.wait_completed(&job1, &svc).await;
    assert_eq!(world.count(&index).await, 3);

    mode.store(1, Ordering::SeqCst);
    let job2 = world.create_pending_job(&id).await;
    let done = world.wait_job(&job2, TERMINAL, secs(30), &[&svc]).await;
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("listing buckets") && error.contains("continuation token"),
        "{error:?}"
    );
    assert_eq!(world.count(&index).await, 3);
}

/// `buckets: *` resolving to no bucket at all (an empty ListBuckets answer) while the index holds
/// documents: the job ends `error` and the index is untouched, instead of "every bucket vanished,
/// delete everything".
#[tokio::test(flavor = "multi_thread")]
async fn wildcard_matching_no_bucket_keeps_the_index() {
    let world = TestWorld::start().await;
    let bucket = world.name("wild-none");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "n/", 4).await;
    let proxy = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "ListBuckets answers no bucket",
            is_list_buckets,
            Fault::rewrite(|_, body| {
                let emptied = strip_element(body, "Bucket");
                strip_element(&emptied, "ContinuationToken")
            }),
        )],
    )
    .await;
    let (id, index) = world
        .configured_connector("wild-none", s3_config(&world, &bucket, &proxy.url(), 100))
        .await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job1 = world.create_pending_job(&id).await;
    world.wait_completed(&job1, &svc).await;
    assert_eq!(world.count(&index).await, 4);

    world
        .update_connector(&id, json!({"configuration": {"buckets": {"value": "*"}}}))
        .await;
    let job2 = world.create_pending_job(&id).await;
    let done = world.wait_job(&job2, TERMINAL, secs(30), &[&svc]).await;
    assert!(
        proxy.hits(0) >= 1,
        "ListBuckets never went through the proxy"
    );
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("no bucket") && error.contains(&index),
        "{error:?}"
    );
    assert_eq!(done["deleted_document_count"], 0, "{done}");
    assert_eq!(world.count(&index).await, 4, "the index is untouched");
}

// ---------------------------------------------------------------------------------------------
// 3. resume checkpoints and a failed bucket

/// Target A's listing is refused, target B's goes on (slowly). SIGTERM during B: the job is
/// suspended, and its checkpoint must not lie past A, whose objects were never indexed. The
/// restarted service (A readable again) resumes the job and indexes A's objects too.
#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_never_move_past_a_failed_bucket() {
    let world = TestWorld::start().await;
    let (a, b) = (world.name("cp-a"), world.name("cp-b"));
    world.create_bucket(&a, None).await;
    world.create_bucket(&b, None).await;
    let a_keys = world.put_many(&a, "a/", 5).await;
    let b_keys = world.put_many(&b, "b/", 200).await;

    let refuse = Arc::new(AtomicU8::new(1));
    let (on, listing) = (refuse.clone(), is_listing_of(&a));
    let s3 = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "A's listing is refused",
            move |m, t| on.load(Ordering::SeqCst) == 1 && listing(m, t),
            Fault::status(
                403,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                 <Message>Access Denied</Message><RequestId>injected</RequestId></Error>",
            ),
        )],
    )
    .await;
    let es = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains("/_bulk", Fault::Delay(secs(1)))],
    )
    .await;
    let (id, index) = world
        .configured_connector("cp", s3_config(&world, &format!("{a},{b}"), &s3.url(), 20))
        .await;
    let yaml = world.config_yaml(&[&id], "elasticsearch.bulk.chunk_size: 20\n");
    let mut svc = ServiceProcess::start(&world, &world.with_es_host(&yaml, &es.url()), &[]);
    let job = world.create_pending_job(&id).await;
    world
        .wait_for("B's first pages are indexed", secs(30), async || {
            let n = world.count(&index).await;
            if n >= 40 { Ok(n) } else { Err(n) }
        })
        .await;
    assert!(s3.injected(0) >= 1, "A's listing was never refused");
    assert!(svc.send_sigterm(), "service already gone:\n{}", svc.logs());
    let status = svc.wait_exit(secs(20)).await;
    assert!(status.success(), "exit status {status:?}:\n{}", svc.logs());
    let suspended = world.job(&job).await.expect("job");
    assert_eq!(suspended["status"], "suspended", "{suspended}");
    let checkpoint = &suspended["metadata"]["checkpoint"];
    assert!(
        checkpoint.is_null() || checkpoint["target"] == 0,
        "the checkpoint moved past bucket {a}, whose listing failed: {checkpoint}"
    );

    refuse.store(0, Ordering::SeqCst);
    let svc2 = ServiceProcess::start(&world, &yaml, &[]);
    let done = world.wait_completed(&job, &svc2).await;
    assert_eq!(
        world.doc_ids_of_bucket(&index, &a).await,
        common::es::doc_ids(&a, &a_keys)
    );
    assert_eq!(
        world.doc_ids_of_bucket(&index, &b).await,
        common::es::doc_ids(&b, &b_keys)
    );
    assert_eq!(done["total_document_count"], 205, "{done}");
}

// ---------------------------------------------------------------------------------------------
// 4. reading the index's existing ids

/// A search page that says one of its shards failed, without its hits.
fn one_shard_failed(_target: &str, body: &str) -> String {
    let mut page: Value = serde_json::from_str(body).expect("search JSON");
    page["_shards"]["failed"] = json!(1);
    page["_shards"]["failures"] = json!([{"shard": 0, "index": "x",
        "reason": {"type": "node_disconnected_exception", "reason": "node left"}}]);
    page["hits"]["hits"] = json!([]);
    page.to_string()
}

/// The existing ids are read before deciding what vanished. A page of that scroll that failed on
/// some shards, timed out, or errored means the set is incomplete: the job ends `error` saying
/// so, and deletes nothing (here: the document of an object removed from S3 stays). The same
/// holds for the lookup of a listing page's indexed versions: a partial answer would take
/// indexed objects for new ones.
#[tokio::test(flavor = "multi_thread")]
async fn an_incomplete_read_of_existing_ids_deletes_nothing() {
    let world = TestWorld::start().await;
    let bucket = world.name("scroll");
    world.create_bucket(&bucket, None).await;
    let keys = world.put_many(&bucket, "s/", 6).await;
    let mode = Arc::new(AtomicU8::new(0));
    let (m1, m2, m3, m4) = (mode.clone(), mode.clone(), mode.clone(), mode.clone());
    // The content index's read only (connector and job searches scroll too).
    let first_page = |m: &str, t: &str| {
        m == "POST" && t.starts_with("/search-") && t.contains("/_search?") && t.contains("scroll=")
    };
    let es = FaultProxy::start(
        &world.es_url,
        vec![
            Rule::when(
                "first scroll page failed on a shard",
                move |m, t| m1.load(Ordering::SeqCst) == 1 && first_page(m, t),
                Fault::rewrite(one_shard_failed),
            ),
            Rule::when(
                "first scroll page timed out",
                move |m, t| m2.load(Ordering::SeqCst) == 2 && first_page(m, t),
                Fault::rewrite(|_, body| {
                    let mut page: Value = serde_json::from_str(body).expect("search JSON");
                    page["timed_out"] = json!(true);
                    page.to_string()
                }),
            ),
            Rule::when(
                "the scroll context is gone (expired, or its node left)",
                move |m, t| {
                    m3.load(Ordering::SeqCst) == 3
                        && m == "POST"
                        && t.starts_with("/_search/scroll")
                },
                Fault::es_error(
                    404,
                    "search_context_missing_exception",
                    "No search context found for id [7]",
                ),
            ),
            Rule::when(
                "a page's version lookup failed on a shard",
                move |m, t| {
                    m4.load(Ordering::SeqCst) == 4
                        && m == "POST"
                        && t.starts_with("/search-")
                        && t.ends_with("/_search")
                },
                Fault::rewrite(one_shard_failed),
            ),
        ],
    )
    .await;
    let (id, index) = world
        .configured_connector(
            "scroll",
            s3_config(&world, &bucket, &world.s3_endpoint, 100),
        )
        .await;
    let yaml = world.config_yaml(&[&id], "");
    let svc = ServiceProcess::start(&world, &world.with_es_host(&yaml, &es.url()), &[]);
    let job1 = world.create_pending_job(&id).await;
    world.wait_completed(&job1, &svc).await;
    assert_eq!(world.count(&index).await, 6);

    world.delete_object(&bucket, &keys[0]).await;
    for (m, cause) in [
        (1, "shard"),
        (2, "timed out"),
        (3, "search_context_missing_exception"),
        (4, "shard"),
    ] {
        mode.store(m, Ordering::SeqCst);
        let job = world.create_pending_job(&id).await;
        let done = world.wait_job(&job, TERMINAL, secs(30), &[&svc]).await;
        assert!(
            es.injected(m as usize - 1) >= 1,
            "mode {m}: nothing injected"
        );
        assert_eq!(done["status"], "error", "mode {m}: {done}");
        let error = done["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&index) && error.contains(cause),
            "mode {m}: the error names the index and the cause: {error:?}"
        );
        assert_eq!(done["deleted_document_count"], 0, "mode {m}: {done}");
        assert_eq!(world.count(&index).await, 6, "mode {m}: nothing is deleted");
    }
}
