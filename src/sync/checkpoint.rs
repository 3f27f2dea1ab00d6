//! Where a suspended job resumes (kept in the job's `metadata.checkpoint`).
//!
//! ```json
//! {"target": 2, "bucket": "reports", "last_key": "2026/11/q3.pdf"}   // listing of target 2 done up to last_key
//! {"listed": true}                                                  // listing complete, deleting vanished documents
//! ```
//! plus `"indexed_bytes"` so the indexed volume continues exactly. Every operation before the checkpoint
//! is settled in Elasticsearch, and the job's counters were written as of it, so a resumed job skips
//! that work (no GET, no re-index) and its counters continue from there.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Checkpoint {
    /// Targets before `target` are done; in `target`, keys up to `last_key` are done.
    Listing {
        target: usize,
        bucket: String,
        last_key: String,
    },
    /// Every target was listed completely.
    Listed { listed: bool },
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

    /// The checkpoint after a page of target `target` ending at `last_key`, if it may be recorded.
    pub fn page(&self, target: usize, bucket: &str, last_key: String) -> Option<Checkpoint> {
        (!self.after_failure).then(|| Checkpoint::Listing {
            target,
            bucket: bucket.to_string(),
            last_key,
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

    #[test]
    fn round_trips_and_covers_what_was_done() {
        let cp = Checkpoint::Listing {
            target: 1,
            bucket: "b".into(),
            last_key: "m".into(),
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
    fn nothing_is_recorded_past_a_failed_target() {
        let mut r = Recorder::default();
        assert_eq!(
            r.page(0, "a", "k".into()),
            Some(Checkpoint::Listing {
                target: 0,
                bucket: "a".into(),
                last_key: "k".into()
            })
        );
        assert!(r.listed().is_some());
        r.failed();
        assert_eq!(r.page(1, "b", "x".into()), None, "a later target's page");
        assert_eq!(r.listed(), None, "deletions after a failed listing");
    }
}
