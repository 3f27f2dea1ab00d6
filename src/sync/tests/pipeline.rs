//! What a user checks after a sync: which documents the index holds, with which text, and what the
//! job reports.

use super::*;
use crate::sync::progress::Progress;
use std::sync::atomic::Ordering::Relaxed;

const T1: &str = "2026-01-01T00:00:00+00:00";
const T2: &str = "2026-02-01T00:00:00+00:00";

fn committed(progress: &Progress) -> Option<Checkpoint> {
    progress.suspension_point(Tally::default()).0
}

#[tokio::test]
async fn a_full_sync_indexes_every_object_and_deletes_vanished_documents() {
    let env = TestEnv::new(2);
    env.store.put("a", "one.txt", b"first   file", T1);
    env.store.put("a", "two.txt", b"second", T1);
    env.store.put("b", "three.txt", b"third", T1);
    env.index
        .insert("a/gone.txt", json!({"id": "a/gone.txt", "bucket": "a"}));

    let (result, progress) = env.full().await;
    let done = result.unwrap();

    assert_eq!(done.sync_cursor["buckets"], json!(["a", "b"]));
    assert_eq!(env.index.ids(), ["a/one.txt", "a/two.txt", "b/three.txt"]);
    let one = env.index.get("a/one.txt").unwrap();
    assert_eq!(one["id"], "a/one.txt");
    assert_eq!(one["body"], "first file", "extracted, whitespace reduced");
    assert!(one.get("_id").is_none());
    let stats = progress.stats();
    assert_eq!(
        (stats.indexed_document_count, stats.deleted_document_count),
        (3, 1)
    );
    assert_eq!(listed(&progress), [3, 0, 0, 0]);
    assert_eq!(
        committed(&progress),
        Some(Checkpoint::Listed { listed: true })
    );
}

#[tokio::test]
async fn a_resumed_job_skips_what_its_checkpoint_covers_unless_it_changed() {
    let env = TestEnv::new(1);
    for key in ["k1.txt", "k2.txt", "k3.txt"] {
        env.store.put("a", key, key.as_bytes(), T1);
    }
    env.full().await.0.unwrap();
    env.index.requests.lock().unwrap().clear();
    // While the job was suspended after k2, k1 was overwritten.
    env.store.put("a", "k1.txt", b"changed", T2);
    let checkpoint = Checkpoint::Listing {
        target: 0,
        bucket: "a".into(),
        last_key: "k2.txt".into(),
    };

    let (result, progress) = env
        .run(
            job("full", json!([])),
            Some(checkpoint),
            CancellationToken::new(),
        )
        .await;
    result.unwrap();

    assert_eq!(
        listed(&progress),
        [3, 0, 0, 1],
        "k2 is covered and unchanged"
    );
    assert_eq!(env.index.indexed_ids(), ["a/k1.txt", "a/k3.txt"]);
    assert_eq!(env.index.get("a/k1.txt").unwrap()["body"], "changed");
}

#[tokio::test]
async fn an_incremental_sync_skips_unchanged_objects_and_a_full_one_does_not() {
    let env = TestEnv::new(10);
    env.store.put("a", "same.txt", b"same", T1);
    env.store.put("a", "edited.txt", b"before", T1);
    env.full().await.0.unwrap();
    env.index.requests.lock().unwrap().clear();
    env.store.put("a", "edited.txt", b"after", T2);

    let (result, progress) = env
        .run(
            job("incremental", json!([])),
            None,
            CancellationToken::new(),
        )
        .await;
    result.unwrap();
    assert_eq!(listed(&progress), [2, 0, 1, 0]);
    assert_eq!(env.index.indexed_ids(), ["a/edited.txt"]);
    assert_eq!(env.index.get("a/edited.txt").unwrap()["body"], "after");

    env.index.requests.lock().unwrap().clear();
    let (result, progress) = env.full().await;
    result.unwrap();
    assert_eq!(
        listed(&progress),
        [2, 0, 0, 0],
        "full syncs re-index everything"
    );
    assert_eq!(env.index.indexed_ids().len(), 2);
}

#[tokio::test]
async fn a_failed_partition_keeps_its_documents_and_fails_the_job() {
    let env = TestEnv::new(1);
    env.store.put("a", "x.txt", b"x", T1);
    env.store.put("b", "x.txt", b"x", T1);
    env.store.put("b", "y.txt", b"y", T1);
    env.store.put("c", "z.txt", b"z", T1);
    for (id, bucket) in [("a/old", "a"), ("b/old", "b"), ("c/old", "c")] {
        env.index.insert(id, json!({"id": id, "bucket": bucket}));
    }
    env.store.fail_after("b", 1);

    let (result, progress) = env.full().await;

    match result {
        Err(SyncError::Listing(message)) => {
            assert_eq!(message, "listing \"b\" failed after 1 pages")
        }
        Err(other) => panic!("expected a listing failure, got {other}"),
        Ok(_) => panic!("expected a listing failure, got a completed sync"),
    }
    let ids = env.index.ids();
    assert!(ids.contains(&"b/old".to_string()), "{ids:?}");
    assert!(!ids.contains(&"a/old".to_string()) && !ids.contains(&"c/old".to_string()));
    assert!(ids.contains(&"b/x.txt".to_string()) && ids.contains(&"c/z.txt".to_string()));
    // b's first page is settled; nothing after the failure may be recorded.
    assert_eq!(
        committed(&progress),
        Some(Checkpoint::Ranges {
            target: 1,
            bucket: "b".into(),
            pending: vec![crate::sync::ranges::KeyRange {
                after: Some("x.txt".into()),
                up_to: None
            }]
        })
    );
}

#[tokio::test]
async fn an_object_the_basic_rules_exclude_loses_its_indexed_document() {
    let env = TestEnv::new(10);
    env.store.put("a", "keep.txt", b"keep", T1);
    env.store.put("a", "skip.log", b"skip", T1);
    env.index
        .insert("a/skip.log", json!({"id": "a/skip.log", "bucket": "a"}));
    let exclude_logs = json!([{"id": "r1", "order": 1, "policy": "exclude", "field": "filename",
                               "rule": "ends_with", "value": ".log"}]);

    let (result, progress) = env
        .run(job("full", exclude_logs), None, CancellationToken::new())
        .await;
    result.unwrap();

    assert_eq!(env.index.ids(), ["a/keep.txt"]);
    assert_eq!(listed(&progress), [2, 1, 0, 0]);
    assert_eq!(progress.stats().deleted_document_count, 1);
}

#[tokio::test]
async fn advanced_rules_choose_the_partitions_and_prefixes() {
    let env = TestEnv::new(10);
    env.store.put("a", "docs/x.txt", b"x", T1);
    env.store.put("a", "tmp/y.txt", b"y", T1);
    env.store.put("b", "z.txt", b"z", T1);
    let rules = json!([{"partition": "a", "prefix": "docs/"}]);

    let (result, _) = env
        .run(
            job_with("full", json!([]), rules),
            None,
            CancellationToken::new(),
        )
        .await;

    assert_eq!(result.unwrap().sync_cursor["buckets"], json!(["a"]));
    assert_eq!(env.index.ids(), ["a/docs/x.txt"]);
}

#[tokio::test]
async fn invalid_advanced_rules_fail_the_job_before_anything_is_written() {
    let env = TestEnv::new(10);
    env.store.put("a", "x.txt", b"x", T1);
    env.index
        .insert("a/old", json!({"id": "a/old", "bucket": "a"}));
    let (result, _) = env
        .run(
            job_with("full", json!([]), json!([{"prefix": "p"}])),
            None,
            CancellationToken::new(),
        )
        .await;
    let err = result.err().expect("a rules error");
    assert!(matches!(err, SyncError::Rules(_)), "{err}");
    assert!(
        err.to_string().contains("data[0].partition must be string"),
        "{err}"
    );
    assert_eq!(env.index.ids(), ["a/old"]);
}

#[tokio::test]
async fn a_sync_canceled_mid_listing_stops_and_deletes_nothing() {
    let env = TestEnv::new(1);
    for key in ["1.txt", "2.txt", "3.txt", "4.txt"] {
        env.store.put("a", key, b"x", T1);
    }
    env.index
        .insert("a/old", json!({"id": "a/old", "bucket": "a"}));
    let cancel = CancellationToken::new();
    let on_page = cancel.clone();
    env.store.on_page(move |_, page| {
        if page == 2 {
            on_page.cancel();
        }
    });

    let (result, progress) = env.run(job("full", json!([])), None, cancel).await;

    assert!(matches!(result, Err(SyncError::Canceled)));
    assert!(env.index.ids().contains(&"a/old".to_string()));
    assert!(progress.listing.listed.load(Relaxed) < 4);
    assert_ne!(
        committed(&progress),
        Some(Checkpoint::Listed { listed: true })
    );
}

#[tokio::test]
async fn a_job_of_an_unknown_service_type_fails_naming_it() {
    let env = TestEnv::new(10);
    let mut job = job("full", json!([]));
    job.doc.connector.as_mut().unwrap().service_type = Some("gcs".into());
    let (result, _) = env.run(job, None, CancellationToken::new()).await;
    assert_eq!(
        result.err().map(|e| e.to_string()).as_deref(),
        Some("couldn't find data source class for \"gcs\"")
    );
}
