//! Which operations are settled, in send order, and what that prefix achieved.
//!
//! Operations get increasing sequence numbers when queued. Requests may finish out of order, so the
//! watermark keeps the outcomes of settled operations until every earlier one is settled too; the
//! contiguous prefix's tally is then exact. A producer registers *marks* (e.g. "listing page ends
//! here") carrying a checkpoint; once the prefix reaches a mark, that checkpoint is committed with
//! the tally as of exactly that mark — what a resumed job may safely skip, and the counters it
//! continues from.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// What a prefix of operations achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub indexed: u64,
    pub indexed_bytes: u64,
    pub deleted: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.indexed += other.indexed;
        self.indexed_bytes += other.indexed_bytes;
        self.deleted += other.deleted;
    }
}

#[derive(Debug, Default)]
struct State {
    /// Every operation with a smaller number is settled.
    settled_through: u64,
    /// Settled operations above the contiguous prefix, with their outcome.
    pending: BTreeMap<u64, Tally>,
    prefix: Tally,
    marks: VecDeque<(u64, Value)>,
    committed: Option<(Value, Tally)>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Watermark {
    state: Mutex<State>,
}

impl Watermark {
    /// A watermark whose prefix starts from `base` (a resumed job's counters).
    pub fn with_base(base: Tally) -> Self {
        let w = Self::default();
        w.state.lock().expect("watermark lock").prefix = base;
        w
    }

    /// Operation `seq` is settled (succeeded, failed for good, or was dropped) with this outcome.
    pub fn settle(&self, seq: u64, outcome: Tally) {
        let mut s = self.state.lock().expect("watermark lock");
        s.pending.insert(seq, outcome);
        loop {
            let next = s.settled_through;
            let Some(t) = s.pending.remove(&next) else {
                break;
            };
            s.prefix.add(t);
            s.settled_through = next + 1;
            s.commit_reached();
        }
    }

    /// Registers a checkpoint that holds once every operation numbered below `end` is settled.
    /// Marks must come in increasing `end` order, before any operation at or above `end` is settled.
    pub fn mark(&self, end: u64, checkpoint: Value) {
        let mut s = self.state.lock().expect("watermark lock");
        s.marks.push_back((end, checkpoint));
        s.commit_reached();
    }

    /// The latest checkpoint whose operations are all settled, with the tally as of it.
    pub fn committed(&self) -> Option<(Value, Tally)> {
        self.state.lock().expect("watermark lock").committed.clone()
    }
}

impl State {
    fn commit_reached(&mut self) {
        while let Some((end, _)) = self.marks.front() {
            if *end > self.settled_through {
                break;
            }
            let (_, checkpoint) = self.marks.pop_front().expect("front exists");
            self.committed = Some((checkpoint, self.prefix));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one() -> Tally {
        Tally {
            indexed: 1,
            indexed_bytes: 10,
            deleted: 0,
        }
    }

    #[test]
    fn commits_a_mark_only_when_every_earlier_operation_is_settled() {
        let w = Watermark::default();
        w.mark(2, json!("page-1"));
        w.settle(1, one());
        assert_eq!(w.committed(), None, "op 0 is still in flight");
        w.settle(0, one());
        let (cp, tally) = w.committed().unwrap();
        assert_eq!(cp, json!("page-1"));
        assert_eq!(tally.indexed, 2);
    }

    #[test]
    fn the_tally_is_exact_at_the_mark_even_when_later_operations_finished_first() {
        let w = Watermark::with_base(Tally {
            indexed: 100,
            indexed_bytes: 0,
            deleted: 0,
        });
        w.mark(2, json!("a"));
        w.settle(2, one()); // belongs to the next page
        w.settle(0, one());
        w.settle(1, Tally::default()); // a failed item
        let (cp, tally) = w.committed().unwrap();
        assert_eq!(cp, json!("a"));
        assert_eq!(tally.indexed, 101, "base + op 0; op 2 is past the mark");
        w.mark(3, json!("b"));
        assert_eq!(
            w.committed().unwrap(),
            (
                json!("b"),
                Tally {
                    indexed: 102,
                    indexed_bytes: 20,
                    deleted: 0
                }
            )
        );
    }

    #[test]
    fn a_mark_with_no_operations_commits_at_once() {
        let w = Watermark::default();
        w.mark(0, json!("empty page"));
        assert_eq!(w.committed().unwrap().0, json!("empty page"));
    }
}
