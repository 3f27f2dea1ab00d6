//! A bucket of many pages listed over key ranges at once (docs/architecture.md#key-ranges):
//! every object indexed exactly once, checkpoints per range, resumption per range.

use super::*;
use crate::sync::progress::Progress;
use crate::sync::ranges::KeyRange;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;

const T1: &str = "2026-01-01T00:00:00+00:00";
const T2: &str = "2026-02-01T00:00:00+00:00";

/// `n` keys over ten folders, in a store listed `page` objects at a time, each page 2 ms late (a
/// listing the sync waits on, which it cuts into ranges).
fn env_with(n: usize, page: usize) -> (TestEnv, Vec<String>) {
    let env = TestEnv::new(page);
    env.store.delay_pages(std::time::Duration::from_millis(2));
    let keys: Vec<String> = (0..n).map(|i| format!("f{}/{i:04}.txt", i % 10)).collect();
    for k in &keys {
        env.store.put("a", k, k.as_bytes(), T1);
    }
    (env, keys)
}

fn committed(progress: &Progress) -> Option<Checkpoint> {
    progress.suspension_point(Tally::default()).0
}

#[tokio::test]
async fn a_big_bucket_is_listed_over_ranges_each_object_once() {
    let (env, keys) = env_with(600, 5);
    env.index
        .insert("a/gone.txt", json!({"id": "a/gone.txt", "bucket": "a"}));

    let (result, progress) = env.full().await;
    result.unwrap();

    let sent = env.index.indexed_ids();
    let unique: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(sent.len(), keys.len(), "each object sent once");
    assert_eq!(unique.len(), keys.len());
    let mut expected: Vec<String> = keys.iter().map(|k| format!("a/{k}")).collect();
    expected.sort();
    assert_eq!(
        env.index.ids(),
        expected,
        "every object, and the vanished one deleted"
    );
    assert_eq!(
        progress.listing.listed.load(Relaxed),
        600,
        "no object counted twice"
    );
    assert!(
        env.store.probes.load(Relaxed) > 0,
        "the bucket was cut into ranges"
    );
    assert_eq!(
        committed(&progress),
        Some(Checkpoint::Listed { listed: true })
    );
}

#[tokio::test]
async fn a_bucket_of_two_pages_is_listed_whole_without_probes() {
    let (env, _) = env_with(10, 5);
    env.full().await.0.unwrap();
    assert_eq!(env.index.ids().len(), 10);
    assert_eq!(env.store.probes.load(Relaxed), 0);
}

#[tokio::test]
async fn a_listing_that_keeps_up_is_not_cut() {
    let (mut env, _) = env_with(600, 5);
    // A cluster slower than the listing: the sync waits on Elasticsearch, never on the listing.
    env.store.delay_pages(std::time::Duration::ZERO);
    *env.index.bulk_delay.lock().unwrap() = std::time::Duration::from_millis(2);
    env.config.elasticsearch.bulk.queue_max_size = std::num::NonZeroUsize::MIN;
    env.full().await.0.unwrap();
    assert_eq!(env.index.ids().len(), 600);
    assert_eq!(env.store.probes.load(Relaxed), 0, "no probe, one listing");
}

#[tokio::test]
async fn a_resumed_job_redoes_only_its_pending_ranges() {
    let (env, keys) = env_with(300, 5);
    env.full().await.0.unwrap();
    env.index.requests.lock().unwrap().clear();
    // Suspended with two ranges unfinished: f3/… after f3/0103 and f7/… after f7/0157.
    let pending = vec![
        KeyRange {
            after: Some("f3/0103.txt".into()),
            up_to: Some("f3\u{10FFFF}".into()),
        },
        KeyRange {
            after: Some("f7/0157.txt".into()),
            up_to: None,
        },
    ];
    let checkpoint = Checkpoint::Ranges {
        target: 0,
        bucket: "a".into(),
        pending: pending.clone(),
    };
    // Changed while suspended, inside a done range: indexed again all the same.
    env.store.put("a", "f1/0001.txt", b"changed", T2);

    let (result, _) = env
        .run(
            job("full", json!([])),
            Some(checkpoint),
            CancellationToken::new(),
        )
        .await;
    result.unwrap();

    let mut expected: Vec<String> = keys
        .iter()
        .filter(|k| pending.iter().any(|r| r.contains(k)))
        .map(|k| format!("a/{k}"))
        .collect();
    expected.push("a/f1/0001.txt".into());
    expected.sort();
    let mut sent = env.index.indexed_ids();
    sent.sort();
    assert_eq!(sent, expected);
    assert_eq!(env.index.ids().len(), 300, "nothing deleted");
}

#[tokio::test]
async fn a_failed_range_fails_the_bucket_and_keeps_its_documents() {
    let (env, keys) = env_with(600, 5);
    env.full().await.0.unwrap();
    env.store.remove("a", &keys[0]);
    // Each lister fails at its fifth page: the whole listing passes its two pages and the peek
    // at the third, then every range of more than four pages fails.
    env.store.fail_after("a", 4);

    let (result, progress) = env.full().await;

    match result {
        Err(SyncError::Listing(message)) => {
            assert!(message.contains("failed after 4 pages"), "{message}")
        }
        other => panic!("expected a listing failure, got {:?}", other.map(|_| ())),
    }
    assert_eq!(
        env.index.ids().len(),
        600,
        "nothing deleted, not even the removed object"
    );
    match committed(&progress) {
        Some(Checkpoint::Ranges { pending, .. }) => {
            assert!(!pending.is_empty(), "the failed range's keys are left");
            let unlisted = keys
                .iter()
                .filter(|k| pending.iter().any(|r| r.contains(k)))
                .count();
            assert!(unlisted > 0 && unlisted < 600, "{unlisted}");
        }
        other => panic!("expected a checkpoint of ranges, got {other:?}"),
    }
}
