//! Which operations are settled, in send order, and what that prefix achieved.
//!
//! Operations get increasing sequence numbers when queued. Requests may finish out of order, so the
//! watermark keeps the outcomes of settled operations until every earlier one is settled too; the
//! contiguous prefix's tally is then exact. A producer registers *marks* (e.g. "listing page ends
//! here") carrying a checkpoint; once the prefix reaches a mark, that checkpoint is committed with
//! the tally as of exactly that mark — what a resumed job may safely skip, and the counters it
//! continues from.
//!
//! Producers sending at once (the key ranges of one bucket, docs/architecture.md#key-ranges) tag
//! their operations with a *group*, one per listing page. A mark names the groups still open when
//! it was made (pages partly sent, which its checkpoint does not cover): their operations before
//! the mark are left out of its tally, and counted by the first mark made after their page closed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
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

    fn sub(&mut self, other: Tally) {
        self.indexed -= other.indexed;
        self.indexed_bytes -= other.indexed_bytes;
        self.deleted -= other.deleted;
    }
}

/// A registered checkpoint.
#[derive(Debug)]
struct Mark {
    end: u64,
    checkpoint: Value,
    /// Groups whose operations before `end` the checkpoint does not cover.
    open: Vec<u64>,
    /// The group whose page closed just before this mark: nothing later is left out for it.
    closed: Option<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// Every operation with a smaller number is settled.
    settled_through: u64,
    /// Settled operations above the contiguous prefix, with their outcome and group.
    pending: BTreeMap<u64, (Tally, Option<u64>)>,
    prefix: Tally,
    /// The prefix's outcomes per group, while a mark may still leave the group out.
    groups: HashMap<u64, Tally>,
    marks: VecDeque<Mark>,
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

    /// Operation `seq` (of `group`, if any) is settled (succeeded, failed for good, or was
    /// dropped) with this outcome.
    pub fn settle(&self, seq: u64, group: Option<u64>, outcome: Tally) {
        let mut s = self.state.lock().expect("watermark lock");
        s.pending.insert(seq, (outcome, group));
        loop {
            let next = s.settled_through;
            let Some((t, group)) = s.pending.remove(&next) else {
                break;
            };
            s.prefix.add(t);
            if let Some(g) = group {
                s.groups.entry(g).or_default().add(t);
            }
            s.settled_through = next + 1;
            s.commit_reached();
        }
    }

    /// Registers a checkpoint that holds once every operation numbered below `end` is settled.
    /// Marks must come in increasing `end` order, before any operation at or above `end` is settled.
    pub fn mark(&self, end: u64, checkpoint: Value) {
        self.mark_groups(end, checkpoint, Vec::new(), None);
    }

    /// [`mark`](Self::mark), leaving out the operations of the `open` groups, the `closed` group
    /// having just closed.
    pub fn mark_groups(&self, end: u64, checkpoint: Value, open: Vec<u64>, closed: Option<u64>) {
        let mut s = self.state.lock().expect("watermark lock");
        s.marks.push_back(Mark {
            end,
            checkpoint,
            open,
            closed,
        });
        s.commit_reached();
    }

    /// The latest checkpoint whose operations are all settled, with the tally as of it.
    pub fn committed(&self) -> Option<(Value, Tally)> {
        self.state.lock().expect("watermark lock").committed.clone()
    }
}

impl State {
    fn commit_reached(&mut self) {
        while let Some(mark) = self.marks.front() {
            if mark.end > self.settled_through {
                break;
            }
            let mark = self.marks.pop_front().expect("front exists");
            let mut tally = self.prefix;
            for g in &mark.open {
                tally.sub(self.groups.get(g).copied().unwrap_or_default());
            }
            // Every operation of the closed group is before this mark: no later mark leaves it out.
            if let Some(g) = mark.closed {
                self.groups.remove(&g);
            }
            self.committed = Some((mark.checkpoint, tally));
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
        w.settle(1, None, one());
        assert_eq!(w.committed(), None, "op 0 is still in flight");
        w.settle(0, None, one());
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
        w.settle(2, None, one()); // belongs to the next page
        w.settle(0, None, one());
        w.settle(1, None, Tally::default()); // a failed item
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

    #[test]
    fn operations_of_a_page_still_open_count_only_once_it_closed() {
        let w = Watermark::default();
        // Range A's page (group 1) is ops 0 and 2; range B's page (group 2) is ops 1 and 3.
        w.settle(0, Some(1), one());
        w.settle(1, Some(2), one());
        w.settle(2, Some(1), one());
        w.mark_groups(3, json!("A's page closed"), vec![2], Some(1));
        assert_eq!(w.committed().unwrap().0, json!("A's page closed"));
        assert_eq!(w.committed().unwrap().1.indexed, 2, "B's op 1 is left out");
        w.settle(3, Some(2), one());
        w.mark_groups(4, json!("B's page closed"), vec![], Some(2));
        assert_eq!(w.committed().unwrap().1.indexed, 4);
        // A mark made while B's next page (group 3) has op 4 in flight.
        w.mark_groups(5, json!("with 3 open"), vec![3], None);
        w.settle(4, Some(3), one());
        assert_eq!(
            w.committed().unwrap(),
            (
                json!("with 3 open"),
                Tally {
                    indexed: 4,
                    indexed_bytes: 40,
                    deleted: 0
                }
            )
        );
    }
}
