//! Key ranges: a big partition listed over several spans of its keys at once
//! (docs/architecture.md#key-ranges).
//!
//! A range is the keys after one key up to and including another, so ranges cut at any keys at
//! all cover the partition exactly: where the cuts fall decides only how even the ranges are.
//! The cuts come from probing the source for the first key after a given one, level by level down
//! the keys' common prefixes (`a`, `b`, … then `a0`, `a1`, …), within a fixed number of probes.

use crate::source::{Listed, PageLister, Partition, Source, SourceError};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Prefix levels expanded at most.
const MAX_DEPTH: usize = 64;
/// Prefixes probed at once.
const PROBES_AT_ONCE: usize = 8;

/// The keys after `after` (from the first key when `None`) up to and including `up_to` (to the
/// last when `None`), in byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<String>,
}

impl KeyRange {
    pub fn contains(&self, key: &str) -> bool {
        self.after.as_deref().is_none_or(|a| key > a)
            && self.up_to.as_deref().is_none_or(|u| key <= u)
    }

    /// This range cut at `separators` (ascending): one range more than there are separators
    /// inside it, together holding exactly its keys.
    pub fn cut(&self, separators: &[String]) -> Vec<KeyRange> {
        let mut ranges = Vec::with_capacity(separators.len() + 1);
        let mut after = self.after.clone();
        for s in separators {
            let inside = after.as_deref().is_none_or(|a| s.as_str() > a)
                && self.up_to.as_deref().is_none_or(|u| s.as_str() < u);
            if inside {
                ranges.push(KeyRange {
                    after: after.replace(s.clone()),
                    up_to: Some(s.clone()),
                });
            }
        }
        ranges.push(KeyRange {
            after,
            up_to: self.up_to.clone(),
        });
        ranges
    }
}

/// The ranges of the partition being listed, each advanced to the end of its last settled page:
/// what the partition's checkpoints record.
///
/// A page being sent is *open* under its group in the bulk sink: a checkpoint made meanwhile (by
/// another range) covers none of it, and its operations stay out of that checkpoint's counters.
#[derive(Debug, Default)]
pub struct Track {
    slots: Mutex<Vec<Slot>>,
}

#[derive(Debug)]
struct Slot {
    range: KeyRange,
    done: bool,
    /// The group of the page being sent.
    open: Option<u64>,
}

impl Track {
    /// Listing goes on over these ranges, numbered from 0 (the keys before them are done).
    pub fn start(&self, ranges: Vec<KeyRange>) {
        *self.lock() = ranges
            .into_iter()
            .map(|range| Slot {
                range,
                done: false,
                open: None,
            })
            .collect();
    }

    /// Range `slot` starts sending a page as `group`.
    pub fn open(&self, slot: usize, group: u64) {
        self.lock()[slot].open = Some(group);
    }

    /// Range `slot` sent its page, which ends at `key` (`None`: it sent nothing); returns the
    /// page's group.
    pub fn close(&self, slot: usize, key: Option<String>) -> Option<u64> {
        let mut slots = self.lock();
        let s = &mut slots[slot];
        if key.is_some() {
            s.range.after = key;
        }
        s.open.take()
    }

    /// Range `slot` is done.
    pub fn finish(&self, slot: usize) {
        self.lock()[slot].done = true;
    }

    /// The ranges with keys left to list.
    pub fn pending(&self) -> Vec<KeyRange> {
        let slots = self.lock();
        slots
            .iter()
            .filter(|s| !s.done)
            .map(|s| s.range.clone())
            .collect()
    }

    /// The groups of the pages being sent.
    pub fn open_groups(&self) -> Vec<u64> {
        self.lock().iter().filter_map(|s| s.open).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().expect("range track lock")
    }
}

/// A lister that ends its inner listing at `up_to`.
pub struct Bounded {
    inner: Box<dyn PageLister>,
    up_to: Option<String>,
    done: bool,
}

impl Bounded {
    pub fn new(inner: Box<dyn PageLister>, up_to: Option<String>) -> Self {
        Self {
            inner,
            up_to,
            done: false,
        }
    }
}

#[async_trait]
impl PageLister for Bounded {
    async fn next_page(&mut self) -> Result<Option<Vec<Listed>>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let Some(mut page) = self.inner.next_page().await? else {
            self.done = true;
            return Ok(None);
        };
        if let Some(up_to) = &self.up_to
            && let Some(past) = page.iter().position(|o| o.key.as_str() > up_to.as_str())
        {
            page.truncate(past);
            self.done = true;
        }
        Ok((!page.is_empty()).then_some(page))
    }
}

/// Keys that cut the keys of `partition` after `after` into about `want` ranges (ascending, at
/// most `want - 1`), found with at most `budget` probes of the source. Empty when the source
/// cannot probe.
pub async fn separators(
    source: &dyn Source,
    partition: &Partition,
    after: &str,
    want: usize,
    budget: usize,
) -> Result<Vec<String>, SourceError> {
    let prober = Prober {
        source,
        partition,
        spent: AtomicUsize::new(0),
        budget,
    };
    let mut leaves = vec![partition.prefix.clone().unwrap_or_default()];
    for _ in 0..MAX_DEPTH {
        if leaves.len() >= want || prober.spent.load(Ordering::Relaxed) >= budget {
            break;
        }
        let expanded: Vec<Vec<String>> = futures_util::stream::iter(leaves)
            .map(|prefix| children(&prober, prefix, after))
            .buffered(PROBES_AT_ONCE)
            .try_collect()
            .await?;
        leaves = expanded.into_iter().flatten().collect();
    }
    Ok(evenly(&leaves, want))
}

/// Probes of one partition, within a budget.
struct Prober<'a> {
    source: &'a dyn Source,
    partition: &'a Partition,
    spent: AtomicUsize,
    budget: usize,
}

enum Probe {
    Key(String),
    NoKey,
    /// The budget is spent: no probe was made.
    Spent,
}

impl Prober<'_> {
    /// The first key starting with `prefix` after `after`.
    async fn first(&self, prefix: &str, after: &str) -> Result<Probe, SourceError> {
        if self.spent.fetch_add(1, Ordering::Relaxed) >= self.budget {
            return Ok(Probe::Spent);
        }
        let key = self.source.first_key(self.partition, prefix, after).await?;
        Ok(key.map_or(Probe::NoKey, Probe::Key))
    }
}

/// The prefixes under `prefix` that split its keys after `after`, ascending: the longest prefix
/// those keys share (bisected on the first key: a probe after `shared` + U+10FFFF finding nothing
/// means every key starts with `shared`), then that prefix's one-character-longer prefixes, each
/// found by probing after the previous one's keys. A long common prefix (`logs/2026/11/…`) costs
/// a few probes, not two a character.
async fn children(
    prober: &Prober<'_>,
    prefix: String,
    after: &str,
) -> Result<Vec<String>, SourceError> {
    let Probe::Key(first) = prober.first(&prefix, prefix.as_str().max(after)).await? else {
        return Ok(Vec::new());
    };
    // Where `first`'s characters past `prefix` end: candidate lengths of the shared prefix.
    let ends: Vec<usize> = first[prefix.len()..]
        .char_indices()
        .map(|(i, c)| prefix.len() + i + c.len_utf8())
        .collect();
    // Shared up to `ends[lo - 1]` (`prefix` itself when 0), not up to `ends[hi - 1]`.
    let (mut lo, mut hi) = (0, ends.len() + 1);
    let mut second = None;
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        match prober
            .first(&prefix, &upper_bound(&first[..ends[mid - 1]]))
            .await?
        {
            Probe::NoKey => lo = mid,
            Probe::Key(key) => {
                hi = mid;
                second = Some(key);
            }
            Probe::Spent => return Ok(vec![prefix]),
        }
    }
    let shared = if lo == 0 { prefix.len() } else { ends[lo - 1] };
    let shared = &first[..shared];
    // The keys already known to start the first children: `first`, and what the probe after
    // `shared` + its next character found. When `first` is `shared` itself, its children follow it.
    let mut known: Vec<String> = if shared.len() < first.len() {
        second.into_iter().chain([first.clone()]).collect()
    } else {
        Vec::new()
    };
    let mut cursor = first.clone();
    let mut found = Vec::new();
    loop {
        let key = match known.pop() {
            Some(key) => key,
            None => match prober.first(shared, &cursor).await? {
                Probe::Key(key) => key,
                Probe::NoKey | Probe::Spent => break,
            },
        };
        let Some(next) = key.get(shared.len()..).and_then(|rest| rest.chars().next()) else {
            break;
        };
        let mut child = shared.to_owned();
        child.push(next);
        cursor = upper_bound(&child);
        found.push(child);
    }
    Ok(found)
}

/// A key after every key starting with `prefix` (bar keys continuing it with U+10FFFF itself,
/// which the next range holds).
fn upper_bound(prefix: &str) -> String {
    let mut bound = prefix.to_owned();
    bound.push(char::MAX);
    bound
}

/// The upper bounds of `want` groups of consecutive `leaves` (the last group left open).
fn evenly(leaves: &[String], want: usize) -> Vec<String> {
    let groups = want.min(leaves.len());
    (1..groups)
        .map(|g| upper_bound(&leaves[g * leaves.len() / groups - 1]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceKind;
    use crate::source::memory::{MemoryKind, MemoryStore};
    use serde_json::{Map, Value, json};
    use std::sync::Arc;

    fn range(after: Option<&str>, up_to: Option<&str>) -> KeyRange {
        KeyRange {
            after: after.map(Into::into),
            up_to: up_to.map(Into::into),
        }
    }

    #[test]
    fn cut_ranges_hold_every_key_once() {
        let whole = range(Some("b"), Some("x"));
        let cuts = ["a", "c", "c", "m", "x", "z"].map(String::from);
        let parts = whole.cut(&cuts);
        assert_eq!(
            parts,
            [
                range(Some("b"), Some("c")),
                range(Some("c"), Some("m")),
                range(Some("m"), Some("x"))
            ]
        );
        for key in [
            "a",
            "b",
            "b0",
            "c",
            "c\u{10FFFF}",
            "m",
            "w",
            "x",
            "x0",
            "zz",
        ] {
            let holders = parts.iter().filter(|p| p.contains(key)).count();
            assert_eq!(holders, usize::from(whole.contains(key)), "{key}");
        }
        assert_eq!(KeyRange::default().cut(&[]), [KeyRange::default()]);
    }

    #[test]
    fn checkpoints_name_only_the_bounds_they_have() {
        let r = range(Some("a"), None);
        assert_eq!(serde_json::to_value(&r).unwrap(), json!({"after": "a"}));
        let back: KeyRange = serde_json::from_value(json!({"up_to": "z"})).unwrap();
        assert_eq!(back, range(None, Some("z")));
    }

    struct Pages(Vec<Vec<&'static str>>);

    #[async_trait]
    impl PageLister for Pages {
        async fn next_page(&mut self) -> Result<Option<Vec<Listed>>, SourceError> {
            if self.0.is_empty() {
                panic!("asked past the end");
            }
            let page = self.0.remove(0);
            Ok((!page.is_empty()).then(|| {
                page.into_iter()
                    .map(|k| Listed {
                        key: k.into(),
                        size: 0,
                        etag: None,
                        document: Default::default(),
                    })
                    .collect()
            }))
        }
    }

    #[tokio::test]
    async fn a_bounded_lister_stops_at_its_last_key() {
        let keys =
            |p: Option<Vec<Listed>>| p.map(|p| p.into_iter().map(|l| l.key).collect::<Vec<_>>());
        let inner = Pages(vec![vec!["a", "b"], vec!["c", "d"], vec!["e"]]);
        let mut b = Bounded::new(Box::new(inner), Some("c".into()));
        assert_eq!(
            keys(b.next_page().await.unwrap()),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(keys(b.next_page().await.unwrap()), Some(vec!["c".into()]));
        assert_eq!(
            keys(b.next_page().await.unwrap()),
            None,
            "the inner lister is not asked again"
        );
        let ends_on_a_page = Pages(vec![vec!["a", "b"], vec!["c"]]);
        let mut b = Bounded::new(Box::new(ends_on_a_page), Some("b".into()));
        assert!(b.next_page().await.unwrap().is_some());
        assert!(b.next_page().await.unwrap().is_none());
        let open = Pages(vec![vec!["a"], vec![]]);
        let mut b = Bounded::new(Box::new(open), None);
        assert!(b.next_page().await.unwrap().is_some());
        assert!(b.next_page().await.unwrap().is_none());
    }

    async fn store_with(keys: &[String]) -> (Arc<MemoryStore>, Box<dyn Source>) {
        let store = Arc::new(MemoryStore::default());
        for k in keys {
            store.put("p", k, b"x", "2026-01-01T00:00:00+00:00");
        }
        let kind = MemoryKind::new(store.clone(), 10);
        let mut config = Map::new();
        config.insert("partitions".into(), json!({"value": "p"}));
        let source = kind.connect(&config).await.unwrap();
        (store, source)
    }

    fn count_in(keys: &[String], r: &KeyRange) -> usize {
        keys.iter().filter(|k| r.contains(k)).count()
    }

    #[tokio::test]
    async fn probes_cut_a_bucket_into_even_exact_ranges() {
        let keys: Vec<String> = (0..2000)
            .map(|i| format!("logs/{}/{i:05}.txt", i % 10))
            .collect();
        let (store, source) = store_with(&keys).await;
        let whole = Partition::whole("p");
        let cuts = separators(source.as_ref(), &whole, "", 10, 256)
            .await
            .unwrap();
        let ranges = KeyRange::default().cut(&cuts);
        assert_eq!(ranges.len(), 10, "{cuts:?}: ten prefixes logs/0 … logs/9");
        let sizes: Vec<usize> = ranges.iter().map(|r| count_in(&keys, r)).collect();
        assert!(sizes.iter().all(|&n| n == 200), "{sizes:?}");
        let probes = store.probes.load(Ordering::Relaxed);
        assert_eq!(
            probes, 14,
            "one for the first key, four to bisect the shared `logs/`, nine for the other digits"
        );

        // After a position, under a partition prefix, and within a budget.
        let under = Partition {
            prefix: Some("logs/".into()),
            ..Partition::whole("p")
        };
        let after = "logs/5/00555.txt";
        let cuts = separators(source.as_ref(), &under, after, 4, 256)
            .await
            .unwrap();
        let rest = range(Some(after), None).cut(&cuts);
        assert_eq!(rest.len(), 4, "{cuts:?}");
        let listed: usize = rest.iter().map(|r| count_in(&keys, r)).sum();
        assert_eq!(listed, count_in(&keys, &range(Some(after), None)));
        let before = store.probes.load(Ordering::Relaxed);
        let cuts = separators(source.as_ref(), &whole, "", 1000, 5)
            .await
            .unwrap();
        assert_eq!(
            store.probes.load(Ordering::Relaxed) - before,
            5,
            "the budget bounds the probes"
        );
        assert!(cuts.len() < 5, "{cuts:?}");
    }

    #[tokio::test]
    async fn a_long_shared_prefix_of_wide_characters_costs_few_probes() {
        let keys: Vec<String> = (0..300)
            .map(|i| format!("日志/2026/11/30/app-{i:03}.log"))
            .collect();
        let (store, source) = store_with(&keys).await;
        let cuts = separators(source.as_ref(), &Partition::whole("p"), "", 4, 256)
            .await
            .unwrap();
        let ranges = KeyRange::default().cut(&cuts);
        let sizes: Vec<usize> = ranges.iter().map(|r| count_in(&keys, r)).collect();
        assert_eq!(sizes, [70, 80, 70, 80], "{cuts:?}");
        let probes = store.probes.load(Ordering::Relaxed);
        assert!(probes <= 60, "{probes} probes");
    }

    #[tokio::test]
    async fn a_source_that_cannot_probe_is_listed_whole() {
        struct Blind;
        #[async_trait]
        impl Source for Blind {
            async fn partitions(
                &self,
                _: Option<&Value>,
            ) -> Result<Vec<Partition>, crate::source::PartitionError> {
                Ok(vec![])
            }
            async fn list(
                &self,
                _: &Partition,
                _: Option<String>,
            ) -> Result<Box<dyn PageLister>, SourceError> {
                Ok(Box::new(Pages(vec![])))
            }
            async fn open(
                &self,
                _: &str,
                _: &str,
            ) -> Result<crate::source::ObjectReader, SourceError> {
                Err(SourceError::new("no"))
            }
        }
        let cuts = separators(&Blind, &Partition::whole("p"), "", 8, 64)
            .await
            .unwrap();
        assert!(cuts.is_empty());
    }
}
