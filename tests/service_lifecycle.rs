//! The service's normal lifecycle, seen from the outside (what Kibana or a user checks): on-demand
//! and scheduled full syncs with their exact documents, deletions and several buckets. The first
//! check-in and connector statuses are in `service_connectors.rs`, the CLIs in `service_cli.rs`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use chrono::{DateTime, Utc};
use common::{
    ServiceProcess, TestWorld, assert_recent, doc_id, s3_configuration, secs, ts, wait_completed,
};
use serde_json::{Value, json};

/// The fields of an indexed S3 document when no ingest pipeline ran, or after the default one
/// (Elastic's, plus our `etag`).
const DOC_FIELDS: [&str; 8] = [
    "_timestamp",
    "bucket",
    "etag",
    "filename",
    "id",
    "owner",
    "size_in_bytes",
    "storage_class",
];

/// `_id` → `_source` of every document of `index`.
async fn docs_by_id(world: &TestWorld, index: &str) -> BTreeMap<String, Value> {
    world
        .search(index, json!({"match_all": {}}))
        .await
        .into_iter()
        .map(|mut h| {
            let id = h["_id"].as_str().expect("hit has _id").to_string();
            (id, h["_source"].take())
        })
        .collect()
}

/// What Elastic's S3 connector indexes for each object of `bucket` (docs/architecture.md#the-s3-source), from a ListObjects
/// (v1) listing of the bucket: `_id` → document (without `_id`).
async fn expected_docs(world: &TestWorld, bucket: &str) -> BTreeMap<String, Value> {
    let listing = world
        .s3_client()
        .list_objects()
        .bucket(bucket)
        .send()
        .await
        .expect("list objects");
    assert!(
        !listing.is_truncated().unwrap_or(false),
        "keep buckets small"
    );
    let mut docs = BTreeMap::new();
    for o in listing.contents() {
        let key = o.key().expect("object key");
        let body = if key.ends_with(".txt") {
            let object = world
                .s3_client()
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            let bytes = object.body.collect().await.unwrap().into_bytes();
            // Elastic's pipeline: whitespace runs → one space, trimmed (`reduce_whitespace: true`).
            let text = String::from_utf8(bytes.to_vec()).unwrap();
            Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
        } else {
            None
        };
        docs.insert(key.to_string(), body);
    }
    listing
        .contents()
        .iter()
        .map(|o| {
            let key = o.key().expect("object key");
            let owner = match o.owner() {
                None => json!(""),
                Some(owner) => json!(owner.display_name()),
            };
            let modified = o.last_modified().expect("LastModified");
            let modified =
                DateTime::from_timestamp(modified.secs(), modified.subsec_nanos()).unwrap();
            let id = doc_id(bucket, key);
            let mut doc = json!({
                "filename": key,
                "size_in_bytes": o.size().expect("Size"),
                "bucket": bucket,
                "owner": owner,
                "storage_class": o.storage_class().map(|c| c.as_str()),
                "_timestamp": python_isoformat(modified),
                "etag": o.e_tag(),
                "id": id,
            });
            if let Some(body) = &docs[key] {
                doc["body"] = json!(body);
            }
            (id, doc)
        })
        .collect()
}

/// Python's `datetime.isoformat()` of a UTC time: `+00:00`, microseconds only when non-zero.
fn python_isoformat(t: DateTime<Utc>) -> String {
    let micros = t.timestamp_subsec_micros();
    let base = t.format("%Y-%m-%dT%H:%M:%S");
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// Keys that exercise URL encoding, unicode, folders, empty objects and storage classes.
const TRICKY_KEYS: [&str; 9] = [
    "plain.txt",
    "with space/a file.txt",
    "unicodé/文件/ñ.txt",
    "a+b&c.txt",
    "x/y/z.txt",
    "folder/",
    "empty.bin",
    "cold/archive.bin",
    "100% sure?=#1.txt",
];

#[tokio::test(flavor = "multi_thread")]
async fn on_demand_full_sync_indexes_one_exact_document_per_object() {
    let world = TestWorld::start().await;
    let bucket = world.name("tricky");
    world.create_bucket(&bucket, None).await;
    for key in TRICKY_KEYS {
        match key {
            "folder/" | "empty.bin" => world.put_object(&bucket, key, b"").await,
            "cold/archive.bin" => {
                world
                    .put_object_with_class(&bucket, key, b"frozen bytes", "GLACIER")
                    .await
            }
            _ => {
                world
                    .put_object(&bucket, key, format!("content of {key}").as_bytes())
                    .await
            }
        }
    }
    let n = TRICKY_KEYS.len() as u64;
    let id = world.name("tricky");
    let index = world.name("search-tricky");
    world
        .create_connector_doc(&id, &index, s3_configuration(&world, &bucket), json!({}))
        .await;
    let job_id = world.create_pending_job(&id).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);

    let job = wait_completed(&world, &svc, &job_id, secs(20)).await;
    assert_eq!(job["error"], Value::Null);
    assert_eq!(job["indexed_document_count"], n, "job: {job}");
    assert_eq!(job["deleted_document_count"], 0, "job: {job}");
    assert_eq!(job["total_document_count"], n, "job: {job}");
    assert_eq!(
        job["indexed_document_volume"], 0,
        "tiny sync rounds to 0 MiB"
    );
    assert_eq!(job["trigger_method"], "on_demand");
    let started = ts(&job["started_at"], "started_at");
    let completed = ts(&job["completed_at"], "completed_at");
    assert!(
        started <= completed,
        "started {started} after completed {completed}"
    );
    assert!(
        job["worker_hostname"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "worker_hostname: {job}"
    );

    let c = world
        .wait_connector(&id, "connector records the sync", secs(10), |c| {
            c["last_sync_status"] == "completed"
        })
        .await;
    assert_eq!(c["status"], "connected");
    assert_eq!(c["error"], Value::Null);
    assert_eq!(c["last_sync_error"], Value::Null);
    assert_eq!(c["last_indexed_document_count"], n);
    assert_eq!(c["last_deleted_document_count"], 0);
    let synced = ts(&c["last_synced"], "last_synced");
    assert!(synced >= completed - chrono::Duration::seconds(1));

    let expected = expected_docs(&world, &bucket).await;
    assert_eq!(expected.len() as u64, n, "listing: {expected:?}");
    let got = docs_by_id(&world, &index).await;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "document ids"
    );
    for (doc_id, doc) in &got {
        let fields: BTreeSet<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected_fields = BTreeSet::from(DOC_FIELDS);
        if doc["filename"].as_str().unwrap().ends_with(".txt") {
            expected_fields.insert("body"); // extracted text of text files
        }
        assert_eq!(fields, expected_fields, "fields of {doc}");
        assert_eq!(doc, &expected[doc_id], "document {doc_id}");
        let stamp = doc["_timestamp"].as_str().unwrap();
        assert!(stamp.ends_with("+00:00"), "_timestamp {stamp}");
    }
    let by_name: BTreeMap<&str, &Value> = got
        .values()
        .map(|d| (d["filename"].as_str().unwrap(), d))
        .collect();
    assert_eq!(by_name["cold/archive.bin"]["storage_class"], "GLACIER");
    assert_eq!(by_name["plain.txt"]["storage_class"], "STANDARD");
    assert_eq!(by_name["folder/"]["size_in_bytes"], 0);
    assert_eq!(by_name["empty.bin"]["size_in_bytes"], 0);
    assert_eq!(
        by_name["unicodé/文件/ñ.txt"]["size_in_bytes"],
        "content of unicodé/文件/ñ.txt".len() as u64
    );
    assert_eq!(
        by_name["a+b&c.txt"]["_timestamp"],
        expected[&doc_id(&bucket, "a+b&c.txt")]["_timestamp"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sync_deletes_the_documents_of_removed_objects() {
    let world = TestWorld::start().await;
    let bucket = world.name("deletes");
    world.create_bucket(&bucket, None).await;
    let keys = world.put_many(&bucket, "docs/", 6).await;
    world.put_object(&bucket, "keep me.txt", b"k").await;
    let id = world.name("deletes");
    let index = world.name("search-deletes");
    world
        .create_connector_doc(&id, &index, s3_configuration(&world, &bucket), json!({}))
        .await;
    let first = world.create_pending_job(&id).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job = wait_completed(&world, &svc, &first, secs(20)).await;
    assert_eq!(job["indexed_document_count"], 7);
    assert_eq!(world.count(&index).await, 7);

    let removed = &keys[1..4];
    for key in removed {
        world.delete_object(&bucket, key).await;
    }
    // Kibana disables "Sync" while a sync is running; wait until the first one is recorded.
    world
        .wait_connector(&id, "first sync recorded", secs(10), |c| {
            c["last_sync_status"] == "completed"
        })
        .await;
    let second = world.create_pending_job(&id).await;
    let job = wait_completed(&world, &svc, &second, secs(20)).await;
    assert_eq!(job["deleted_document_count"], 3, "job: {job}");
    assert_eq!(job["indexed_document_count"], 4, "job: {job}");
    assert_eq!(job["total_document_count"], 4, "job: {job}");

    let got = docs_by_id(&world, &index).await;
    let expected: BTreeSet<String> = keys
        .iter()
        .filter(|k| !removed.contains(k))
        .map(String::as_str)
        .chain(["keep me.txt"])
        .map(|k| doc_id(&bucket, k))
        .collect();
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), expected);
    for key in removed {
        assert!(
            !got.contains_key(&doc_id(&bucket, key)),
            "{key} still indexed"
        );
    }

    let c = world
        .wait_connector(&id, "second sync recorded", secs(10), |c| {
            c["last_deleted_document_count"] == 3
        })
        .await;
    assert_eq!(c["last_sync_status"], "completed");
    assert_eq!(c["last_indexed_document_count"], 4);
    assert_eq!(c["status"], "connected");
}

/// Once a sync is recorded on its connector, the connector stays as recorded: the executor's next
/// polls may still find the job `pending` in a search that does not show the latest writes yet, and
/// must not mark the connector `in_progress` again for a job that has ended (Kibana would show a
/// running sync and disable "Sync" for a moment).
#[tokio::test(flavor = "multi_thread")]
async fn a_connector_whose_sync_ended_stays_ended() {
    let world = TestWorld::start().await;
    let (id, _index, _bucket) = world.bucket_with_connector("stays", 3).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    for round in 0..3 {
        let job = world.create_pending_job(&id).await;
        wait_completed(&world, &svc, &job, secs(20)).await;
        world
            .wait_connector(&id, "sync recorded", secs(10), |c| {
                c["last_sync_status"] == "completed"
            })
            .await;
        // Several executor polls (every 0.5 s) within one refresh interval of the jobs index and after.
        let until = Instant::now() + secs(3);
        while Instant::now() < until {
            let c = world.connector(&id).await.expect("connector");
            assert_eq!(c["last_sync_status"], "completed", "round {round}: {c}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn several_buckets_and_star_index_every_listed_bucket() {
    let world = TestWorld::start().await;
    let east = world.name("east");
    let west = world.name("west");
    world.create_bucket(&east, None).await;
    world.create_bucket(&west, Some("us-west-2")).await;
    world.put_many(&east, "e/", 3).await;
    world.put_object(&west, "west/one.txt", b"1").await;
    world.put_object(&west, "west/two.txt", b"22").await;

    let listed = world.name("listed");
    let listed_index = world.name("search-listed");
    world
        .create_connector_doc(
            &listed,
            &listed_index,
            s3_configuration(&world, &format!("{east}, {west}")),
            json!({}),
        )
        .await;
    let star = world.name("star");
    let star_index = world.name("search-star");
    world
        .create_connector_doc(&star, &star_index, s3_configuration(&world, "*"), json!({}))
        .await;
    let job_listed = world.create_pending_job(&listed).await;
    let job_star = world.create_pending_job(&star).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&listed, &star], ""), &[]);

    let mut expected = expected_docs(&world, &east).await;
    expected.extend(expected_docs(&world, &west).await);
    assert_eq!(expected.len(), 5);

    let job = wait_completed(&world, &svc, &job_listed, secs(20)).await;
    assert_eq!(job["indexed_document_count"], 5, "job: {job}");
    let got = docs_by_id(&world, &listed_index).await;
    assert_eq!(got, expected, "documents of \"{east}, {west}\"");

    let job = wait_completed(&world, &svc, &job_star, secs(20)).await;
    let got = docs_by_id(&world, &star_index).await;
    if world.external_s3 {
        for (doc_id, doc) in &expected {
            assert_eq!(got.get(doc_id), Some(doc), "document {doc_id} with `*`");
        }
    } else {
        // This world's own moto has exactly these two buckets.
        assert_eq!(job["indexed_document_count"], 5, "job: {job}");
        assert_eq!(got, expected, "documents with `*`");
    }
    let west_docs = got
        .values()
        .filter(|d| d["bucket"] == west.as_str())
        .count();
    assert_eq!(west_docs, 2, "us-west-2 bucket indexed");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enabled_schedule_creates_and_runs_jobs_a_disabled_one_does_not() {
    let world = TestWorld::start().await;
    let bucket = world.name("sched");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "s/", 2).await;
    let every_2s = json!({"full": {"enabled": true, "interval": "0/2 * * * * ?"}});
    let off = json!({"full": {"enabled": false, "interval": "* * * * * ?"}});
    let on = world.name("sched-on");
    let on_index = world.name("search-sched-on");
    world
        .create_connector_doc(&on, &on_index, s3_configuration(&world, &bucket), every_2s)
        .await;
    let idle = world.name("sched-off");
    world
        .create_connector_doc(
            &idle,
            &world.name("search-sched-off"),
            s3_configuration(&world, &bucket),
            off,
        )
        .await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&on, &idle], ""), &[]);

    world
        .wait_connector(&idle, "disabled connector connected", secs(15), |c| {
            c["status"] == "connected"
        })
        .await;
    let idle_since = Instant::now();

    let job = world
        .wait_for("a completed scheduled job", secs(15), async || {
            let jobs = world.jobs_of(&on).await;
            let done = jobs
                .iter()
                .find(|j| j["_source"]["status"] == "completed")
                .map(|j| j["_source"].clone());
            done.ok_or(jobs)
        })
        .await;
    assert_eq!(job["trigger_method"], "scheduled", "{}", svc.logs());
    assert_eq!(job["job_type"], "full");
    assert_eq!(job["indexed_document_count"], 2);
    assert_eq!(world.count(&on_index).await, 2);

    let c = world.connector(&on).await.unwrap();
    // The stored value is the cron occurrence (an even second), not the job creation time.
    let at = ts(&c["last_sync_scheduled_at"], "last_sync_scheduled_at");
    assert_eq!(
        (at.timestamp() % 2, at.timestamp_subsec_nanos()),
        (0, 0),
        "last_sync_scheduled_at {at}"
    );
    assert_recent(
        &c["last_sync_scheduled_at"],
        "last_sync_scheduled_at",
        secs(30),
    );

    // The disabled schedule stays quiet while the service polls for at least 3 s.
    if let Some(rest) = secs(3).checked_sub(idle_since.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    assert!(
        world.jobs_of(&idle).await.is_empty(),
        "disabled schedule made a job"
    );
    let c = world.connector(&idle).await.unwrap();
    assert_eq!(c["last_sync_scheduled_at"], Value::Null);
    assert_eq!(c["status"], "connected");
}
