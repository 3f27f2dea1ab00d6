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
}
