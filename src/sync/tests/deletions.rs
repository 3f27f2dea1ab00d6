//! The count of deleted documents across a run that dies while its deletions are in flight: each
//! batch's count is in the job before the batch is sent, and the resumed job neither loses nor
//! repeats what the earlier run deleted.

use super::*;
use crate::sync::reconcile::SHARDS;
use std::sync::atomic::Ordering::Relaxed;

const T1: &str = "2026-01-01T00:00:00+00:00";
/// Enough stale documents for three batches of deletions.
const STALE: usize = 25_000;

/// A bucket of one object and an index holding it plus `STALE` documents gone from the bucket.
fn env_with_stale() -> TestEnv {
    let env = TestEnv::new(100);
    env.store.put("a", "kept.txt", b"kept", T1);
    env.index
        .insert("a/kept.txt", json!({"id": "a/kept.txt", "bucket": "a"}));
    for n in 0..STALE {
        let id = format!("a/gone-{n}.txt");
        env.index.insert(&id, json!({"id": id, "bucket": "a"}));
    }
    env
}

fn records(env: &TestEnv) -> Vec<(DeletionsCounted, u64)> {
    env.deletions.lock().unwrap().clone()
}

fn deleted_ids(env: &TestEnv) -> Vec<String> {
    let requests = env.index.requests.lock().unwrap();
    requests
        .iter()
        .flatten()
        .filter_map(|op| op.strip_prefix("delete ").map(String::from))
        .collect()
}

#[tokio::test]
async fn each_batch_of_deletions_is_counted_in_the_job_before_it_is_sent() {
    let env = env_with_stale();

    let (result, progress) = env.full().await;
    result.unwrap();

    assert_eq!(env.index.ids(), ["a/kept.txt"]);
    assert_eq!(progress.stats().deleted_document_count, STALE as u64);
    let records = records(&env);
    assert!(records.len() >= 2, "{records:?}");
    let (last, _) = records.last().unwrap();
    assert_eq!(
        *last,
        DeletionsCounted {
            shards: SHARDS,
            deleted: STALE as u64
        }
    );
    let mut before = 0;
    for (counted, held) in &records {
        assert!(counted.deleted > before, "{records:?}");
        // Nothing this record counts was deleted yet: the index still held it.
        assert!(*held >= 1 + STALE as u64 - before, "{records:?}");
        before = counted.deleted;
    }
    assert!(
        records.windows(2).all(|w| w[0].0.shards < w[1].0.shards),
        "{records:?}"
    );
}

#[tokio::test]
async fn a_job_resumed_after_dying_mid_deletion_counts_every_deletion_once() {
    let env = env_with_stale();
    // The first run records one batch, sends it, and dies at its second record.
    env.deletion_records_left.store(1, Relaxed);
    let (result, _) = env.full().await;
    let error = result.err().expect("the run died").to_string();
    assert!(
        error.starts_with("recording the count of the deletions to come failed"),
        "{error}"
    );
    let [(first, _)] = records(&env)[..] else {
        panic!("{:?}", records(&env))
    };
    let sent = deleted_ids(&env);
    assert_eq!(
        sent.len() as u64,
        first.deleted,
        "only the recorded batch was sent"
    );
    // Half of the batch never reached the index (its requests were in flight at the death).
    for id in sent.iter().step_by(2) {
        env.index.insert(id, json!({"id": id, "bucket": "a"}));
    }
    env.index.requests.lock().unwrap().clear();

    env.deletion_records_left.store(usize::MAX, Relaxed);
    let base = Tally {
        deleted: first.deleted,
        ..Tally::default()
    };
    let progress = Progress::new(base, Some(Checkpoint::Listed { listed: true }))
        .with_deletions_counted(Some(first));
    let job = job("full", json!([]));
    super::super::run(&env, &job, &progress, CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(env.index.ids(), ["a/kept.txt"]);
    assert_eq!(
        progress.stats().deleted_document_count,
        STALE as u64,
        "each stale document counted once"
    );
    let again = deleted_ids(&env);
    assert_eq!(
        again.len(),
        STALE - first.deleted as usize + sent.len().div_ceil(2)
    );
    let records = records(&env);
    assert!(
        records[1..].iter().all(|(c, _)| c.shards > first.shards),
        "{records:?}"
    );
    assert_eq!(records.last().unwrap().0.deleted, STALE as u64);
}
