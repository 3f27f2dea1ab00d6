//! Where a suspended job resumes (kept in the job's `metadata.checkpoint`).
//!
//! ```json
//! {"target": 2, "bucket": "reports", "pending": [{"after": "2026/11/q3.pdf", "up_to": "2026/4\u{10FFFF}"},
//!                                                {"after": "2026/5"}]}   // target 2: only these key ranges are left
//! {"target": 2, "bucket": "reports", "last_key": "2026/11/q3.pdf"}      // written before key ranges: keys up to last_key done
//! {"listed": true}                                                      // listing complete, deleting vanished documents
//! ```
//! plus `"indexed_bytes"` so the indexed volume continues exactly. Every operation before the checkpoint
//! is settled in Elasticsearch, and the job's counters were written as of it, so a resumed job skips
//! that work (no GET, no re-index) and its counters continue from there. A bucket listed over
//! several key ranges at once (docs/architecture.md#key-ranges) records how far each range got:
//! the keys of its target outside the `pending` ranges are done.
//!
//! Elasticsearch merges a partial update's objects into the stored ones, so a checkpoint written
//! over another keeps the other's keys: `{"listed": true}` over a `Ranges` checkpoint is read as
//! `Listed`, the variant tried first.
//!
//! The deletions of stale documents are recorded apart, in `metadata.deletions`
//! ([`DeletionsCounted`]): before a batch of them is sent, not once it is settled, because a
//! deleted document cannot be found and counted again.

use super::ranges::KeyRange;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Checkpoint {
    /// Every target was listed completely.
    Listed { listed: bool },
    /// Targets before `target` are done; in `target`, every key outside the `pending` ranges.
    Ranges {
        target: usize,
        bucket: String,
        pending: Vec<KeyRange>,
    },
    /// Targets before `target` are done; in `target`, keys up to `last_key` (the form written
    /// before key ranges; still read, so that jobs suspended by an older version resume).
    Listing {
        target: usize,
        bucket: String,
        last_key: String,
    },
}

/// How far a job's deletions of stale documents got, recorded before each batch of them is sent.
///
/// Stale ids come shard by shard, in shard order (`reconcile`). A job that resumes with this
/// record deletes the stale ids of the shards below `shards` without counting them again (whether
/// or not the earlier run's requests reached Elasticsearch), and its `deleted_document_count`
/// starts from `deleted`. Exact unless the bucket changed between the two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionsCounted {
    /// The stale ids of the shards below this one are counted in `deleted`.
    pub shards: usize,
    /// The job's `deleted_document_count` once they are all deleted.
    pub deleted: u64,
}

impl DeletionsCounted {
    /// The record in a job's `metadata`, if there is one.
    pub fn from_metadata(metadata: &serde_json::Map<String, Value>) -> Option<Self> {
        serde_json::from_value(metadata.get("deletions")?.clone()).ok()
    }

    /// `metadata` holding this record (a partial update of the job merges it in).
    pub fn to_metadata(self) -> Value {
        serde_json::json!({ "deletions": self })
    }
}

impl Checkpoint {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("checkpoint serializes")
    }

    pub fn from_value(v: &Value) -> Option<Self> {
        serde_json::from_value(v.clone()).ok()
    }

    /// Whether the object `key` of target `index` (named `bucket`) was handled before suspension.
    pub fn covers(&self, index: usize, bucket: &str, key: &str) -> bool {
        match self {
            Checkpoint::Listed { .. } => true,
            Checkpoint::Ranges {
                target,
                bucket: b,
                pending,
            } => {
                index < *target
                    || (index == *target && b == bucket && !pending.iter().any(|r| r.contains(key)))
            }
            Checkpoint::Listing {
                target,
                bucket: b,
                last_key,
            } => {
                index < *target
                    || (index == *target && b == bucket && key.as_bytes() <= last_key.as_bytes())
            }
        }
    }
}

/// Which checkpoints a sync may still record.
///
/// A resumed job skips everything its checkpoint covers, including every target before the
/// checkpoint's. Once a target's listing failed, its unlisted objects were never indexed, so no
/// later checkpoint may be recorded: neither a later target's pages nor "listed" (which the
/// deletions of the other buckets would record). The failed target's own pages before the failure
/// stay recorded; they are done.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recorder {
    after_failure: bool,
}

impl Recorder {
    /// A target's listing failed.
    pub fn failed(&mut self) {
        self.after_failure = true;
    }

    /// The checkpoint of target `target` whose keys left to list are the `pending` ranges, if it
    /// may be recorded.
    pub fn ranges(
        &self,
        target: usize,
        bucket: &str,
        pending: Vec<KeyRange>,
    ) -> Option<Checkpoint> {
        (!self.after_failure).then(|| Checkpoint::Ranges {
            target,
            bucket: bucket.to_string(),
            pending,
        })
    }

    /// The "every target listed" checkpoint, if it may be recorded.
    pub fn listed(&self) -> Option<Checkpoint> {
        (!self.after_failure).then_some(Checkpoint::Listed { listed: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn after(key: &str) -> KeyRange {
        KeyRange {
            after: Some(key.into()),
            up_to: None,
        }
    }

    #[test]
    fn round_trips_and_covers_what_was_done() {
        let cp = Checkpoint::Ranges {
            target: 1,
            bucket: "b".into(),
            pending: vec![after("m")],
        };
        assert_eq!(Checkpoint::from_value(&cp.to_value()), Some(cp.clone()));
        assert!(cp.covers(0, "a", "zzz"));
        assert!(cp.covers(1, "b", "a") && cp.covers(1, "b", "m"));
        assert!(!cp.covers(1, "b", "ma") && !cp.covers(2, "c", "a"));
        assert!(
            !cp.covers(1, "other", "a"),
            "a changed plan resumes nothing"
        );
        let listed = Checkpoint::from_value(&json!({"listed": true})).unwrap();
        assert!(listed.covers(9, "x", "y"));
        assert_eq!(Checkpoint::from_value(&json!({"nonsense": 1})), None);
    }

    #[test]
    fn listed_written_over_key_ranges_is_listed() {
        // What the job document holds once Elasticsearch merged `{"listed": true}` into it.
        let merged =
            json!({"target": 0, "bucket": "b", "pending": [{"after": "c"}], "listed": true});
        let cp = Checkpoint::from_value(&merged).unwrap();
        assert_eq!(cp, Checkpoint::Listed { listed: true });
        assert!(
            cp.covers(0, "b", "d"),
            "a listed bucket is not listed again"
        );
    }

    #[test]
    fn deletions_counted_round_trip_through_metadata() {
        let d = DeletionsCounted {
            shards: 17,
            deleted: 1234,
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert("indexed_bytes".into(), json!(5));
        assert_eq!(DeletionsCounted::from_metadata(&metadata), None);
        metadata.insert("deletions".into(), d.to_metadata()["deletions"].clone());
        assert_eq!(DeletionsCounted::from_metadata(&metadata), Some(d));
    }

    #[test]
    fn key_ranges_cover_what_each_range_did() {
        let value = json!({"target": 0, "bucket": "b", "indexed_bytes": 7,
            "pending": [{"after": "c", "up_to": "f"}, {"after": "p"}]});
        let cp = Checkpoint::from_value(&value).unwrap();
        for (key, done) in [
            ("a", true),
            ("c", true),
            ("d", false),
            ("f", false),
            ("g", true),
            ("p", true),
            ("q", false),
        ] {
            assert_eq!(cp.covers(0, "b", key), done, "{key}");
        }
        let all_done =
            Checkpoint::from_value(&json!({"target": 0, "bucket": "b", "pending": []})).unwrap();
        assert!(all_done.covers(0, "b", "zzz"));
    }

    #[test]
    fn a_checkpoint_of_an_older_version_still_resumes() {
        let old = json!({"target": 1, "bucket": "b", "last_key": "m", "indexed_bytes": 3});
        let cp = Checkpoint::from_value(&old).unwrap();
        assert!(matches!(cp, Checkpoint::Listing { .. }), "{cp:?}");
        assert!(cp.covers(1, "b", "m") && !cp.covers(1, "b", "ma") && cp.covers(0, "a", "z"));
    }

    #[test]
    fn nothing_is_recorded_past_a_failed_target() {
        let mut r = Recorder::default();
        assert_eq!(
            r.ranges(0, "a", vec![after("k")]),
            Some(Checkpoint::Ranges {
                target: 0,
                bucket: "a".into(),
                pending: vec![after("k")]
            })
        );
        assert!(r.listed().is_some());
        r.failed();
        assert_eq!(
            r.ranges(1, "b", vec![after("x")]),
            None,
            "a later target's page"
        );
        assert_eq!(r.listed(), None, "deletions after a failed listing");
    }
}
