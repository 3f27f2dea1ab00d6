//! A job's live progress, shared between the sync and the runner (which reports it).

use super::checkpoint::{Checkpoint, DeletionsCounted};
use super::content::ContentStats;
use crate::es::bulk::{SinkCounters, Tally, Watermark};
use crate::es::job::JobStats;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of what the listing did with objects (logged at the end and kept in the job's `metadata`).
#[derive(Debug, Default)]
pub struct ListingStats {
    pub listed: AtomicU64,
    pub excluded_by_rules: AtomicU64,
    pub unchanged_skipped: AtomicU64,
    pub resumed_skipped: AtomicU64,
}

/// Live counters, the settled-operations watermark, and listing statistics of one job.
pub struct Progress {
    pub counters: Arc<SinkCounters>,
    pub watermark: Arc<Watermark>,
    pub listing: ListingStats,
    pub content: ContentStats,
    /// Where a resumed job started from.
    pub resumed_from: Option<Checkpoint>,
    /// The deletions an earlier run of a resumed job counted (its counters start from them).
    pub deletions_counted: Option<DeletionsCounted>,
}

impl Progress {
    /// Fresh progress, or a resumed job's: counters continue from `base`.
    pub fn new(base: Tally, resumed_from: Option<Checkpoint>) -> Self {
        let counters = SinkCounters::default();
        counters.indexed.store(base.indexed, Ordering::Relaxed);
        counters
            .indexed_bytes
            .store(base.indexed_bytes, Ordering::Relaxed);
        counters.deleted.store(base.deleted, Ordering::Relaxed);
        Self {
            counters: Arc::new(counters),
            watermark: Arc::new(Watermark::with_base(base)),
            listing: ListingStats::default(),
            content: ContentStats::default(),
            resumed_from,
            deletions_counted: None,
        }
    }

    /// A resumed job's progress whose earlier run recorded deletions: `base.deleted` must be
    /// `counted.deleted` (see `DeletionsCounted`).
    pub fn with_deletions_counted(mut self, counted: Option<DeletionsCounted>) -> Self {
        debug_assert!(
            counted.is_none_or(|c| c.deleted == self.counters.deleted.load(Ordering::Relaxed))
        );
        self.deletions_counted = counted;
        self
    }

    pub fn stats(&self) -> JobStats {
        self.counters.job_stats()
    }

    /// What a suspended job records: the last checkpoint whose work is settled, with the counters as
    /// of it (so the resumed job neither skips nor double-counts anything). Falls back to where this
    /// run started when nothing new was committed.
    pub fn suspension_point(&self, base: Tally) -> (Option<Checkpoint>, Tally) {
        match self.watermark.committed() {
            Some((cp, tally)) => (Checkpoint::from_value(&cp), tally),
            None => (self.resumed_from.clone(), base),
        }
    }

    /// The job's `metadata` with a checkpoint and the counters as of it (`checkpoint_tally`), which a
    /// resumed job continues from.
    pub fn checkpoint_metadata(&self, checkpoint: Option<&Checkpoint>, tally: Tally) -> Value {
        let mut m = self.metadata(checkpoint, tally.indexed_bytes);
        if checkpoint.is_some() {
            m["checkpoint_tally"] = serde_json::to_value(tally).expect("tally serializes");
        }
        m
    }

    /// The job's `metadata`: listing statistics (and the checkpoint, when suspended).
    pub fn metadata(&self, checkpoint: Option<&Checkpoint>, indexed_bytes: u64) -> Value {
        let l = &self.listing;
        let c = &self.counters;
        let x = &self.content;
        let mut m = json!({
            "listed_objects": l.listed.load(Ordering::Relaxed),
            "excluded_by_rules": l.excluded_by_rules.load(Ordering::Relaxed),
            "unchanged_skipped": l.unchanged_skipped.load(Ordering::Relaxed),
            "resumed_skipped": l.resumed_skipped.load(Ordering::Relaxed),
            "failed_items": c.item_errors.load(Ordering::Relaxed),
            "dropped_too_large": c.dropped_too_large.load(Ordering::Relaxed),
            "indexed_bytes": indexed_bytes,
            "extracted_files": x.extracted.load(Ordering::Relaxed),
            "skipped_too_large": x.skipped_too_large.load(Ordering::Relaxed),
            "skipped_unsupported": x.skipped_unsupported.load(Ordering::Relaxed),
            "extraction_failed": x.failed.load(Ordering::Relaxed),
            "content_unavailable": x.unavailable.load(Ordering::Relaxed),
            "downloaded_bytes": x.downloaded_bytes.load(Ordering::Relaxed),
        });
        if let Some(cp) = checkpoint {
            m["checkpoint"] = cp.to_value();
        }
        m
    }
}

/// `JobStats` of a tally (volume in MiB, rounded).
pub fn stats_of(t: Tally) -> JobStats {
    JobStats {
        indexed_document_count: t.indexed,
        indexed_document_volume: (t.indexed_bytes as f64 / 1_048_576.0).round() as u64,
        deleted_document_count: t.deleted,
    }
}
