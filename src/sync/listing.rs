//! The listing stage: every partition's pages → documents → rules → version check → bulk sink.
//!
//! A partition is listed whole for its first pages; when keys are left, the rest is cut into key
//! ranges listed at once (`ranges.rs`, docs/architecture.md#key-ranges). Each page ends with a
//! checkpoint mark in the sink recording how far every range got, so a suspended job resumes
//! after the last pages whose documents are all settled. A page is at most `page_size` objects;
//! the versions its objects have in the index come from one lookup per page, and the ids it
//! produced go to the reconciliation's [`Seen`]; nothing here grows with the bucket.

use super::ContentIndex;
use super::SyncError;
use super::checkpoint::{Checkpoint, Recorder};
use super::content::{ContentStage, ContentStats, Unavailable};
use super::existing::{TEXT_MISSING, fingerprint};
use super::fit::serialize_within;
use super::plan::Plan;
use super::progress::ListingStats;
use super::ranges::{self, Bounded, KeyRange, Track};
use super::reconcile::Seen;
use crate::es::bulk::{BulkSink, Op};
use crate::source::{Document, Listed, PageLister, Partition, Prefetch, Source};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

/// How the listing went.
pub enum ListingFailure {
    /// These partitions could not be listed completely: (partition, message).
    Partitions(Vec<(String, String)>),
    /// The sync cannot go on at all.
    Fatal(SyncError),
}

/// Everything the listing stage needs.
pub struct Lister<'a> {
    pub source: &'a dyn Source,
    pub sink: &'a BulkSink,
    /// The content index, asked for the versions of each page's documents.
    pub index: Arc<dyn ContentIndex>,
    pub index_name: &'a str,
    /// Whether the index held documents when the sync began; when it did not, no page needs a
    /// lookup (every object is new).
    pub lookup: bool,
    /// The ids this sync produced, for the stale pass.
    pub seen: &'a Mutex<Seen>,
    /// Pipeline flags added to every document while requests name a pipeline (`pipeline_on`).
    pub flags: Map<String, Value>,
    pub pipeline_on: Arc<AtomicBool>,
    /// Incremental syncs (and full syncs with `skip_unchanged_documents`) skip unchanged objects.
    pub skip_unchanged: bool,
    pub resume: Option<Checkpoint>,
    pub stats: &'a ListingStats,
    pub content: &'a ContentStage,
    pub content_stats: &'a ContentStats,
    /// Downloads (and extractions) in flight at once within a page.
    pub concurrency: NonZeroUsize,
    /// Key ranges of one partition listed at once (`service.listing_ranges`).
    pub ranges: NonZeroUsize,
    pub cancel: &'a CancellationToken,
}

/// The partition being listed, with its ranges.
struct Target<'p> {
    index: usize,
    partition: &'p Partition,
    plan: &'p Plan,
    marks: &'p Recorder,
    track: Track,
}

/// An object that passed the partition's keys and the basic rules.
struct Candidate {
    id: String,
    key: String,
    size: u64,
    etag: Option<String>,
    doc: Document,
}

/// A listed page, with the versions the index holds of its candidates.
struct Page {
    last_key: Option<String>,
    candidates: Vec<Candidate>,
    versions: HashMap<String, u64>,
    /// How long the source took to hand the page over (0 when it was listed ahead).
    listing_wait: Duration,
}

/// A document ready for the content stage.
struct Prepared {
    id: String,
    key: String,
    size: u64,
    doc: Document,
    /// The index held a document of this object before the sync.
    indexed: bool,
}

/// How one key range's listing ended.
enum RangeEnd {
    Complete,
    /// The first range of a partition, listed whole, stopped once [`split_due`] with keys left:
    /// the rest is listed over key ranges, after this key.
    Split(String),
}

/// Whether a partition listed whole is cut into key ranges after `pages` pages: once there were
/// [`SPLIT_AFTER_PAGES`], when the sync spent more than half its time waiting for the listing (a
/// distant store: more listings at once go faster), and at least [`SPLIT_AFTER_WAIT`] in all. A
/// listing that keeps up (the sync waits on content or on Elasticsearch) stays whole: more ranges
/// would only hold more pages in memory.
fn split_due(pages: usize, waited: Duration, elapsed: Duration) -> bool {
    pages >= SPLIT_AFTER_PAGES && waited >= SPLIT_AFTER_WAIT && waited * 2 > elapsed
}

/// Pages a partition is listed whole before it may be cut: small partitions cost no probe.
const SPLIT_AFTER_PAGES: usize = 2;
/// The least waiting for the listing that may cut a partition: a distant store's round trip. Over
/// the first pages of a listing that keeps up, a few milliseconds of start-up already made half
/// the time, and cut a bucket the ranges could not speed up (README, "Scale").
const SPLIT_AFTER_WAIT: Duration = Duration::from_millis(20);
/// Ranges per range listed at once: more, smaller ranges even out the work between listers.
const RANGES_PER_LISTER: usize = 4;
/// Probes spent at most on cutting one partition into ranges.
const PROBE_BUDGET: usize = 256;

impl Lister<'_> {
    pub async fn run(&mut self, plan: &Plan) -> Result<(), ListingFailure> {
        let mut failures = Vec::new();
        let mut marks = Recorder::default();
        for (index, partition) in plan.partitions.iter().enumerate() {
            if let Err(message) = self.list_partition(index, partition, plan, &marks).await? {
                tracing::warn!(bucket = %partition.name, error = %message,
                    "listing failed; no document of this bucket will be deleted");
                failures.push((partition.name.clone(), message));
                marks.failed();
            }
        }
        if !failures.is_empty() {
            return Err(ListingFailure::Partitions(failures));
        }
        if let Some(listed) = marks.listed() {
            self.sink.mark(listed.to_value());
        }
        Ok(())
    }

    /// Lists one partition: whole for its first pages, then, when keys are left and
    /// `ranges` > 1, over key ranges listed at once (docs/architecture.md#key-ranges). The outer
    /// error stops the sync; the inner one is this partition's failure.
    async fn list_partition(
        &self,
        index: usize,
        partition: &Partition,
        plan: &Plan,
        marks: &Recorder,
    ) -> Result<Result<(), String>, ListingFailure> {
        let at = Target {
            index,
            partition,
            plan,
            marks,
            track: Track::default(),
        };
        at.track.start(vec![KeyRange::default()]);
        let may_split = self.ranges.get() > 1;
        let after = match self
            .list_range(&at, 0, KeyRange::default(), may_split)
            .await?
        {
            Ok(RangeEnd::Complete) => return Ok(Ok(())),
            Ok(RangeEnd::Split(after)) => after,
            Err(message) => return Ok(Err(message)),
        };
        let want = self.ranges.get() * RANGES_PER_LISTER;
        let cuts =
            match ranges::separators(self.source, partition, &after, want, PROBE_BUDGET).await {
                Ok(cuts) => cuts,
                Err(e) => return Ok(Err(e.to_string())),
            };
        let rest = KeyRange {
            after: Some(after),
            up_to: None,
        }
        .cut(&cuts);
        tracing::info!(bucket = %partition.name, ranges = rest.len(), at_once = self.ranges.get(),
            "listing the rest of the bucket over key ranges");
        at.track.start(rest.clone());
        let mut listing = futures_util::stream::iter(rest.into_iter().enumerate())
            .map(|(slot, range)| self.list_range(&at, slot, range, false))
            .buffer_unordered(self.ranges.get());
        // The first range to fail fails the partition; dropping the stream stops the others.
        while let Some(end) = listing.next().await {
            if let Err(message) = end? {
                return Ok(Err(message));
            }
        }
        Ok(Ok(()))
    }

    /// Lists the keys of `range`, page by page, each page followed by a checkpoint of the
    /// partition's ranges. With `may_split`, stops once [`split_due`] and keys are left.
    async fn list_range(
        &self,
        at: &Target<'_>,
        slot: usize,
        range: KeyRange,
        may_split: bool,
    ) -> Result<Result<RangeEnd, String>, ListingFailure> {
        let (partition, plan) = (at.partition, at.plan);
        let mut lister = match self.source.list(partition, range.after).await {
            Ok(l) => Prefetch::start(Box::new(Bounded::new(l, range.up_to))),
            Err(e) => return Ok(Err(e.to_string())),
        };
        let mut next = self.next_page(&mut lister, partition, plan).await?;
        // From the first page on: how long the range waited for the source's pages beyond the
        // work of the page before (the first page's own wait is the start-up's).
        let (started, mut waited) = (Instant::now(), Duration::ZERO);
        let mut pages = 0;
        loop {
            if self.cancel.is_cancelled() {
                return Err(ListingFailure::Fatal(SyncError::Canceled));
            }
            let page = match next {
                Ok(Some(page)) => page,
                Ok(None) => {
                    at.track.finish(slot);
                    self.mark(at, None);
                    return Ok(Ok(RangeEnd::Complete));
                }
                Err(message) => return Ok(Err(message)),
            };
            let mut prepared = Vec::with_capacity(page.candidates.len());
            {
                let mut seen = self.seen.lock().expect("seen lock");
                for c in page.candidates {
                    seen.listed(&c.id)
                        .map_err(|e| ListingFailure::Fatal(SyncError::Spill(e)))?;
                    let previous = page.versions.get(&c.id).copied();
                    if let Some(p) = self.prepare(at.index, partition, c, previous) {
                        prepared.push(p);
                    }
                }
            }
            pages += 1;
            let split_now = may_split && split_due(pages, waited, started.elapsed());
            if split_now {
                tracing::debug!(bucket = %partition.name, pages, waited_ms = waited.as_millis() as u64,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "the sync waits on the listing; the rest of the bucket, if any, goes to key ranges");
            }
            // The next page is listed and looked up while this one is fetched and indexed; before
            // a split it is only peeked at (its keys are listed again by the ranges).
            let group = self.sink.open_group();
            at.track.open(slot, group);
            let sent = async {
                let sent = self.index_page(&partition.name, prepared, group).await;
                // At once, before any other range can mark: this page's operations are all sent.
                if sent.is_ok() {
                    let closed = at.track.close(slot, page.last_key.clone());
                    self.mark(at, closed);
                }
                (sent, Instant::now())
            };
            let listed = async {
                let following = if split_now {
                    Ok(match lister.next_page().await {
                        Ok(more) => (Ok(None), more.is_some()),
                        Err(e) => (Err(e.to_string()), false),
                    })
                } else {
                    let next = self.next_page(&mut lister, partition, plan).await;
                    next.map(|n| (n, false))
                };
                (following, Instant::now())
            };
            let ((indexed, sent_at), (following, listed_at)) = tokio::join!(sent, listed);
            // The wait past this page's work that the source caused (not the versions lookup).
            if let Ok((Ok(Some(next)), _)) = &following {
                waited += listed_at
                    .saturating_duration_since(sent_at)
                    .min(next.listing_wait);
            }
            indexed?;
            let split;
            (next, split) = following?;
            if split {
                return Ok(Ok(RangeEnd::Split(page.last_key.unwrap_or_default())));
            }
        }
    }

    /// Records where the partition's ranges got, after the operations already sent but those of
    /// pages partly sent; `closed` is the group of the page that just ended.
    fn mark(&self, at: &Target<'_>, closed: Option<u64>) {
        let pending = at.track.pending();
        if let Some(checkpoint) = at.marks.ranges(at.index, &at.partition.name, pending) {
            self.sink
                .mark_groups(checkpoint.to_value(), at.track.open_groups(), closed);
        }
    }

    /// The next page of the partition with its candidates and their indexed versions; the inner
    /// error is the partition's listing failure, `None` its end.
    async fn next_page(
        &self,
        lister: &mut (dyn PageLister + '_),
        partition: &Partition,
        plan: &Plan,
    ) -> Result<Result<Option<Page>, String>, ListingFailure> {
        let asked = Instant::now();
        let objects = match lister.next_page().await {
            Ok(Some(objects)) => objects,
            Ok(None) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(e.to_string())),
        };
        let listing_wait = asked.elapsed();
        let last_key = objects.last().map(|o| o.key.clone());
        let mut candidates = Vec::with_capacity(objects.len());
        for object in objects {
            if let Some(c) = self.candidate(partition, plan, object)? {
                candidates.push(c);
            }
        }
        let versions = self.versions(&candidates).await?;
        Ok(Ok(Some(Page {
            last_key,
            candidates,
            versions,
            listing_wait,
        })))
    }

    /// The object as a candidate document, or `None` when the partition or the rules leave it out
    /// (then it is not produced, and an indexed copy is deleted:
    /// docs/architecture.md#the-data-path).
    fn candidate(
        &self,
        partition: &Partition,
        plan: &Plan,
        object: Listed,
    ) -> Result<Option<Candidate>, ListingFailure> {
        self.stats.listed.fetch_add(1, Ordering::Relaxed);
        if !partition.keeps(&object.key) {
            return Ok(None);
        }
        let mut doc = object.document;
        let Some(id) = doc.take_id() else {
            return Ok(None);
        };
        // content-sync addition: the ETag, so incremental syncs can tell changed objects apart.
        match &object.etag {
            Some(etag) => doc.insert_str("etag", etag),
            None => doc.insert("etag", Value::Null),
        }
        doc.insert_str("id", &id);
        // Without rules every object is included, and the document need not be read as a map.
        let included = plan.basic.is_empty()
            || plan
                .basic
                .includes(doc.map())
                .map_err(|e| ListingFailure::Fatal(SyncError::Rules(e.to_string())))?;
        if !included {
            self.stats.excluded_by_rules.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        Ok(Some(Candidate {
            id,
            key: object.key,
            size: object.size,
            etag: object.etag,
            doc,
        }))
    }

    /// The indexed versions of the candidates' documents, in one lookup.
    async fn versions(
        &self,
        candidates: &[Candidate],
    ) -> Result<HashMap<String, u64>, ListingFailure> {
        if !self.lookup || candidates.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<String> = candidates.iter().map(|c| c.id.clone()).collect();
        let (index, name) = (self.index.clone(), self.index_name.to_owned());
        // A task of its own: the answer is read on another runtime thread while this one works
        // on the page before (docs/architecture.md#memory-and-cpu).
        let lookup = AbortOnDropHandle::new(tokio::spawn(async move {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            index.versions(&name, &ids).await
        }));
        match lookup.await {
            Ok(versions) => {
                versions.map_err(|e| ListingFailure::Fatal(SyncError::Existing(Box::new(e))))
            }
            Err(e) => Err(ListingFailure::Fatal(SyncError::TaskStopped {
                what: format!("the versions lookup in index \"{}\"", self.index_name),
                cause: e.to_string(),
            })),
        }
    }

    /// The candidate ready for the content stage, or `None` when resumption or an unchanged
    /// version (`previous`, what the index holds) skips it.
    fn prepare(
        &self,
        index: usize,
        partition: &Partition,
        candidate: Candidate,
        previous: Option<u64>,
    ) -> Option<Prepared> {
        let Candidate {
            id,
            key,
            size,
            etag,
            mut doc,
        } = candidate;
        let version = fingerprint(doc.get_str("_timestamp").as_deref(), etag.as_deref());
        // Covered by the checkpoint: settled before the suspension — as the version the index holds.
        // An object added or overwritten while the job was not running (its instance killed, or
        // suspended) is not: it is indexed like any other, or the job would complete without it.
        if previous == Some(version)
            && self
                .resume
                .as_ref()
                .is_some_and(|cp| cp.covers(index, &partition.name, &key))
        {
            self.stats.resumed_skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self.skip_unchanged && previous == Some(version) {
            self.stats.unchanged_skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self.pipeline_on.load(Ordering::Relaxed) {
            for (key, value) in &self.flags {
                doc.insert(key.clone(), value.clone());
            }
        }
        Some(Prepared {
            id,
            size,
            key,
            doc,
            indexed: previous.is_some(),
        })
    }

    /// Fetches the page's content and queues the documents as they are ready. Each object's
    /// download and extraction runs in a task of its own, so that every core does per-object work;
    /// at most `concurrency` of them exist at once, finished ones included, so no more objects
    /// than that are held (docs/architecture.md#memory-and-cpu). Not in the page's order: a slow
    /// file would hold back the next ones while the rest of the tasks wait to be collected, and
    /// the page's checkpoint waits for all of its operations anyway. Dropping this future (a
    /// canceled sync) aborts them.
    async fn index_page(
        &self,
        bucket: &str,
        prepared: Vec<Prepared>,
        group: u64,
    ) -> Result<(), ListingFailure> {
        let (content, stats) = (self.content, self.content_stats);
        if content.downloads_nothing() {
            // No download: every document goes as it is (what `fill` answers for each), written
            // out and queued in a task of its own, so that this one can go on to the next page's
            // candidates on another runtime thread (docs/architecture.md#memory-and-cpu).
            let (sink, max) = (self.sink.sender(), content.max_doc_bytes());
            let queue = async move {
                for p in prepared {
                    if let Some(op) = op_for(p, Ok(false), max) {
                        sink.send_in(op, Some(group)).await?;
                    }
                }
                Ok(())
            };
            return match AbortOnDropHandle::new(tokio::spawn(queue)).await {
                Ok(queued) => queued.map_err(|e| ListingFailure::Fatal(SyncError::Sink(e))),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(ListingFailure::Fatal(SyncError::Canceled)),
            };
        }
        let mut filled = futures_util::stream::iter(prepared)
            .map(|mut p| {
                let (content, stats, bucket) = (content.clone(), stats.clone(), bucket.to_owned());
                let fill = async move {
                    let filled = content
                        .fill(&bucket, &p.key, p.size, &mut p.doc, &stats)
                        .await;
                    (p, filled)
                };
                // The task's log lines keep the job's labels.
                AbortOnDropHandle::new(tokio::spawn(fill.instrument(tracing::Span::current())))
            })
            .buffer_unordered(self.concurrency.get());
        while let Some(joined) = filled.next().await {
            let (p, filled) = match joined {
                Ok(done) => done,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return Err(ListingFailure::Fatal(SyncError::Canceled)),
            };
            if let Err(reason) = &filled {
                stats.unavailable.fetch_add(1, Ordering::Relaxed);
                crate::metrics::extraction(&p.key, "unavailable");
                if p.indexed {
                    tracing::warn!(bucket, key = %p.key, reason = %reason,
                        "content unavailable; keeping the indexed document as it is");
                } else {
                    tracing::warn!(bucket, key = %p.key, reason = %reason,
                        "content unavailable; indexing metadata only, the next sync fetches it again");
                }
            }
            let Some(op) = op_for(p, filled, content.max_doc_bytes()) else {
                continue;
            };
            if let Err(e) = self.sink.send_in(op, Some(group)).await {
                return Err(ListingFailure::Fatal(SyncError::Sink(e)));
            }
        }
        Ok(())
    }
}

/// The operation for a document whose content stage ended with `filled`, or `None` to leave the
/// indexed document untouched: content that could not be read this time never replaces indexed
/// text with nothing (and the object was taken out of the stale set, so it is not deleted either).
/// A new object without its content is indexed marked [`TEXT_MISSING`], so that the next sync
/// fetches it again. Documents without `_attachment` are cut to `max_doc_bytes`.
fn op_for(
    mut p: Prepared,
    filled: Result<bool, Unavailable>,
    max_doc_bytes: Option<usize>,
) -> Option<Op> {
    let has_attachment = match filled {
        Ok(has_attachment) => has_attachment,
        Err(_) if p.indexed => return None,
        Err(_) => {
            p.doc.remove("body");
            p.doc.insert(TEXT_MISSING, Value::Bool(true));
            false
        }
    };
    let source = if has_attachment {
        p.doc.into_json()
    } else {
        serialize_within(p.doc, max_doc_bytes)
    };
    Some(Op::Index {
        id: p.id,
        source,
        has_attachment,
    })
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
