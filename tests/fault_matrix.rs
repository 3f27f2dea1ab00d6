//! The fault matrix: one row per fault of S3 or Elasticsearch, each checked the way a user would —
//! the index against the bucket.
//!
//! Every row runs the same story with its own bucket, connector and service:
//! 1. sync 1, no fault: 40 objects indexed (listed 15 a page);
//! 2. the bucket changes: 10 objects added, 10 overwritten, 10 deleted;
//! 3. sync 2 with the row's fault injected (by a fault proxy in front of S3 or Elasticsearch);
//! 4. the check the row expects: the index equals the bucket exactly (ids, names, sizes, text, no
//!    extra document) with the job's counts, or — when the fault outlasts every retry — the job ends
//!    `error` and the index still holds every document of sync 1 that the bucket still has;
//! 5. for rows that do not end exact, sync 3 without the fault brings the index back to the bucket.

mod common;

use common::proxy::Partial;
use common::{Fault, FaultProxy, Rule, ServiceProcess, TestWorld, doc_id, s3_configuration, secs};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What a row expects of the faulted sync.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// `completed`, index == bucket, counts exact.
    Exact,
    /// `completed`, every object has its document and no extra one; documents whose download
    /// failed keep their previous text (or, new, are marked to be fetched again). Sync 3 heals.
    KeepsText,
    /// `error` naming `cause`; nothing deleted, nothing lost. Sync 3 heals.
    Fails { cause: &'static str },
}

/// Which server the row's rules stand in front of.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    S3,
    Es,
}

/// A request predicate active only while the row's fault is armed.
type Pred = Box<dyn Fn(&str, &str) -> bool + Send + Sync>;

struct Row {
    side: Side,
    /// The rules, given the bucket and a predicate wrapper that arms them for sync 2 only.
    rules: fn(&str, &dyn Fn(Pred) -> Pred) -> Vec<Rule>,
    expect: Expect,
    /// Extra `config.yml` lines.
    config: &'static str,
}

const INITIAL: usize = 40;
const CHANGED: usize = 10;

fn s3_error(status: u16, code: &str) -> Fault {
    Fault::status(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>injected</Message><RequestId>matrix</RequestId></Error>"
        ),
    )
}

/// ListObjectsV2 of the bucket.
fn listing(bucket: &str) -> Pred {
    Box::new(common::is_listing_of(bucket))
}

/// GetObject of any object of the bucket.
fn download(bucket: &str) -> Pred {
    let prefix = format!("/{bucket}/");
    Box::new(move |m, t| m == "GET" && t.starts_with(&prefix) && !t.contains("list-type"))
}

fn bulk() -> Pred {
    Box::new(|m, t| m == "POST" && t.contains("/_bulk"))
}

/// The scroll read of the index's existing ids (the first page, then the scroll pages).
fn existing_ids_read() -> Pred {
    Box::new(|m, t| {
        (m == "POST" || m == "GET") && t.contains("search-matrix") && t.contains("_search")
    })
}

fn rule(desc: &str, p: Pred, fault: Fault) -> Rule {
    Rule::when(desc, p, fault)
}

/// A bulk answer whose first item failed with a retryable rejection (the rest succeeded).
fn reject_first_item(_target: &str, body: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(body) else {
        return body.to_string();
    };
    if let Some(first) = v["items"].as_array_mut().and_then(|i| i.first_mut())
        && let Some((_, item)) = first.as_object_mut().and_then(|o| o.iter_mut().next())
    {
        item["status"] = json!(429);
        item["error"] = json!({"type": "es_rejected_execution_exception", "reason": "injected"});
        v["errors"] = json!(true);
    }
    v.to_string()
}

/// A truncated listing page without its continuation token (some S3-compatible stores answer so).
fn drop_continuation_token(_target: &str, body: &str) -> String {
    match (
        body.find("<NextContinuationToken>"),
        body.find("</NextContinuationToken>"),
    ) {
        (Some(start), Some(end)) => {
            format!(
                "{}{}",
                &body[..start],
                &body[end + "</NextContinuationToken>".len()..]
            )
        }
        _ => body.to_string(),
    }
}

/// A search answer that says one of its shards failed.
fn one_shard_failed(_target: &str, body: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(body) else {
        return body.to_string();
    };
    v["_shards"] = json!({"total": 2, "successful": 1, "skipped": 0, "failed": 1, "failures": [
        {"shard": 1, "index": "x", "reason": {"type": "node_disconnected_exception", "reason": "injected"}}]});
    v.to_string()
}

async fn run_row(row: Row) {
    let world = TestWorld::start().await;
    let bucket = world.name("matrix");
    world.create_bucket(&bucket, None).await;
    let keys = world.put_many(&bucket, "k/", INITIAL).await;

    let armed = Arc::new(AtomicBool::new(false));
    let arm = {
        let armed = armed.clone();
        move |p: Pred| -> Pred {
            let armed = armed.clone();
            Box::new(move |m, t| armed.load(Ordering::SeqCst) && p(m, t))
        }
    };
    let rules = (row.rules)(&bucket, &arm);
    let (s3_rules, es_rules) = match row.side {
        Side::S3 => (rules, vec![]),
        Side::Es => (vec![], rules),
    };
    let s3 = FaultProxy::start(&world.s3_endpoint, s3_rules).await;
    let es = FaultProxy::start(&world.es_url, es_rules).await;

    world.ensure_system_indices().await;
    let mut config = s3_configuration(&world, &bucket);
    config["endpoint_url"]["value"] = json!(s3.url());
    // Several listing pages, so that listing faults land mid-listing.
    config["page_size"]["value"] = json!(15);
    let (id, index) = world.configured_connector("matrix", config).await;
    world.without_pipeline(&id).await;
    let yaml = world.config_yaml_via(&[&id], row.config, &es.url());
    let svc = ServiceProcess::start(&world, &yaml, &[]);

    // Sync 1: clean.
    let first = world.create_pending_job(&id).await;
    let done = world
        .wait_job(&first, common::jobs::ENDED, secs(60), &[&svc])
        .await;
    assert_eq!(done["status"], "completed", "{done}\n{}", svc.logs());
    let before = index_docs(&world, &index).await;
    assert_eq!(before.len(), INITIAL);

    // The bucket changes.
    for (i, key) in keys[..CHANGED].iter().enumerate() {
        world
            .put_object(&bucket, key, format!("overwritten {i}\n").as_bytes())
            .await;
    }
    for key in &keys[INITIAL - CHANGED..] {
        world.delete_object(&bucket, key).await;
    }
    world.put_many(&bucket, "n/", CHANGED).await;

    // Sync 2: faulted.
    armed.store(true, Ordering::SeqCst);
    let second = world.create_pending_job(&id).await;
    let done = world
        .wait_job(&second, common::jobs::ENDED, secs(180), &[&svc])
        .await;
    armed.store(false, Ordering::SeqCst);
    let proxy = match row.side {
        Side::S3 => &s3,
        Side::Es => &es,
    };
    assert!(proxy.injected(0) > 0, "the row's fault was never injected");
    let bucket_now = bucket_objects(&world, &bucket).await;
    let after = index_docs(&world, &index).await;
    let context = format!("{done}\n{}", common::log_tail(&svc.logs(), 6000));
    match row.expect {
        Expect::Exact => {
            assert_eq!(done["status"], "completed", "{context}");
            assert_exact(&bucket, &bucket_now, &after, &context);
            // A full sync indexes every object once, however often a request was retried.
            assert_eq!(
                done["indexed_document_count"],
                bucket_now.len(),
                "{context}"
            );
            assert_eq!(done["deleted_document_count"], CHANGED, "{context}");
            assert_eq!(done["total_document_count"], bucket_now.len(), "{context}");
        }
        Expect::KeepsText => {
            assert_eq!(done["status"], "completed", "{context}");
            assert_same_ids(&bucket, &bucket_now, &after, &context);
            for (id, doc) in &after {
                let key = doc["filename"].as_str().unwrap_or_default();
                let text = doc["body"].as_str().unwrap_or_default().trim();
                let now = bucket_now[key].trim();
                let was = before
                    .get(id)
                    .and_then(|d| d["body"].as_str())
                    .map(str::trim);
                let marked = doc["content_sync_text_missing"] == true;
                assert!(
                    text == now || Some(text) == was || (marked && text.is_empty()),
                    "{key}: {text:?} is neither its content {now:?} nor its previous text {was:?}\n{context}"
                );
            }
        }
        Expect::Fails { cause } => {
            assert_eq!(done["status"], "error", "{context}");
            let error = done["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(cause),
                "error {error:?} names {cause:?}\n{context}"
            );
            // Nothing lost: every document of sync 1 whose object still exists is still there,
            // with its previous text or its new one.
            for (id, doc) in &before {
                let key = doc["filename"].as_str().unwrap_or_default();
                if let Some(content) = bucket_now.get(key) {
                    let kept = after
                        .get(id)
                        .unwrap_or_else(|| panic!("{key} lost\n{context}"));
                    let text = kept["body"].as_str().unwrap_or_default().trim();
                    let was = doc["body"].as_str().unwrap_or_default().trim();
                    assert!(
                        text == was || text == content.trim(),
                        "{key}: {text:?}\n{context}"
                    );
                }
            }
        }
    }
    // Sync 3 without the fault: the index is the bucket again.
    if row.expect != Expect::Exact {
        let third = world.create_pending_job(&id).await;
        let done = world
            .wait_job(&third, common::jobs::ENDED, secs(60), &[&svc])
            .await;
        let context = format!("{done}\n{}", common::log_tail(&svc.logs(), 4000));
        assert_eq!(done["status"], "completed", "{context}");
        let healed = index_docs(&world, &index).await;
        assert_exact(&bucket, &bucket_now, &healed, &context);
    }
}

/// Every object of the bucket: key → content.
async fn bucket_objects(world: &TestWorld, bucket: &str) -> BTreeMap<String, String> {
    let mut objects = BTreeMap::new();
    for key in world.list_keys(bucket).await {
        let body = world
            .s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("get object")
            .body
            .collect()
            .await
            .expect("read object")
            .into_bytes();
        objects.insert(key, String::from_utf8_lossy(&body).into_owned());
    }
    objects
}

/// Every document of the index: id → `_source`.
async fn index_docs(world: &TestWorld, index: &str) -> BTreeMap<String, Value> {
    world
        .search(index, json!({"match_all": {}}))
        .await
        .into_iter()
        .map(|h| {
            (
                h["_id"].as_str().unwrap_or_default().to_string(),
                h["_source"].clone(),
            )
        })
        .collect()
}

fn assert_same_ids(
    bucket: &str,
    objects: &BTreeMap<String, String>,
    docs: &BTreeMap<String, Value>,
    context: &str,
) {
    let expected: Vec<String> = objects.keys().map(|k| doc_id(bucket, k)).collect();
    let found: Vec<String> = docs.keys().cloned().collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(
        found, expected_sorted,
        "document ids are the bucket's keys\n{context}"
    );
}

fn assert_exact(
    bucket: &str,
    objects: &BTreeMap<String, String>,
    docs: &BTreeMap<String, Value>,
    context: &str,
) {
    assert_same_ids(bucket, objects, docs, context);
    for (key, content) in objects {
        let doc = &docs[&doc_id(bucket, key)];
        assert_eq!(doc["filename"], key.as_str(), "{context}");
        assert_eq!(doc["bucket"], bucket, "{context}");
        assert_eq!(doc["size_in_bytes"], content.len(), "{key}\n{context}");
        assert_eq!(
            doc["body"].as_str().unwrap_or_default().trim(),
            content.trim(),
            "{key}: text\n{context}"
        );
        assert!(
            doc.get("content_sync_text_missing").is_none(),
            "{key}\n{context}"
        );
    }
}

macro_rules! rows {
    ($($name:ident => $row:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $name() {
            run_row($row).await;
        }
    )*};
}

rows! {
    s3_internal_errors_while_listing => Row {
        side: Side::S3,
        rules: |b, arm| vec![rule("listing 500", arm(listing(b)), s3_error(500, "InternalError")).first(3)],
        expect: Expect::Exact,
        config: "",
    };
    s3_connection_resets_while_listing => Row {
        side: Side::S3,
        rules: |b, arm| vec![rule("listing reset", arm(listing(b)), Fault::Reset).first(2)],
        expect: Expect::Exact,
        config: "",
    };
    s3_slow_down_on_downloads => Row {
        side: Side::S3,
        rules: |b, arm| vec![rule("get 503", arm(download(b)), s3_error(503, "SlowDown")).first(6)],
        expect: Expect::Exact,
        config: "",
    };
    s3_listing_that_stalls_then_answers => Row {
        side: Side::S3,
        rules: |b, arm| vec![rule("listing slow", arm(listing(b)), Fault::Delay(Duration::from_secs(3))).first(1)],
        expect: Expect::Exact,
        config: "",
    };
    s3_bodies_that_break_off => Row {
        side: Side::S3,
        rules: |b, arm| vec![rule("get cut", arm(download(b)), Fault::Partial(Partial::cut(3))).first(4)],
        expect: Expect::KeepsText,
        config: "",
    };
    s3_bodies_that_stall => Row {
        side: Side::S3,
        rules: |b, arm| vec![
            rule("get stall", arm(download(b)), Fault::Partial(Partial::stall(3, Duration::from_secs(30)))).first(2),
        ],
        expect: Expect::KeepsText,
        config: "extraction.download_timeout_secs: 2\n",
    };
    s3_truncated_listing_without_token => Row {
        side: Side::S3,
        rules: |b, arm| vec![rule("no token", arm(listing(b)), Fault::rewrite(drop_continuation_token))],
        expect: Expect::Exact,
        config: "",
    };
    s3_listing_down_for_good => Row {
        side: Side::S3,
        rules: |b, arm| vec![rule("listing 500", arm(listing(b)), s3_error(500, "InternalError"))],
        expect: Expect::Fails { cause: "InternalError" },
        config: "",
    };
    es_429_storm_on_bulk => Row {
        side: Side::Es,
        rules: |_, arm| vec![rule("bulk 429", arm(bulk()), Fault::too_many_requests()).first(3)],
        expect: Expect::Exact,
        config: "elasticsearch.bulk.retry_interval: 0.2\n",
    };
    es_503_for_a_minute => Row {
        side: Side::Es,
        rules: |_, arm| vec![rule(
            "bulk 503",
            arm(bulk()),
            Fault::es_error(503, "unavailable_shards_exception", "injected"),
        ).during(Duration::from_secs(60))],
        expect: Expect::Exact,
        config: "",
    };
    es_partial_bulk_failures => Row {
        side: Side::Es,
        rules: |_, arm| vec![rule("bulk item 429", arm(bulk()), Fault::rewrite(reject_first_item)).first(3)],
        expect: Expect::Exact,
        config: "",
    };
    es_lost_bulk_answers => Row {
        side: Side::Es,
        rules: |_, arm| vec![rule("bulk answer lost", arm(bulk()), Fault::LoseResponse).first(2)],
        expect: Expect::Exact,
        config: "",
    };
    es_connection_resets_on_bulk => Row {
        side: Side::Es,
        rules: |_, arm| vec![rule("bulk reset", arm(bulk()), Fault::Reset).first(3)],
        expect: Expect::Exact,
        config: "",
    };
    es_shard_failures_reading_existing_ids => Row {
        side: Side::Es,
        rules: |_, arm| vec![rule("search shard failure", arm(existing_ids_read()), Fault::rewrite(one_shard_failed))],
        expect: Expect::Fails { cause: "shards failed" },
        config: "",
    };
}
