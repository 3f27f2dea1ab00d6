//! The listing stage: every target's pages → documents → rules → version check → bulk sink.
//!
//! Each page ends with a checkpoint mark in the sink, so a suspended job resumes after the last page
//! whose documents are all settled. A page is at most `page_size` objects; nothing here grows with
//! the bucket.

use super::SyncError;
use super::checkpoint::{Checkpoint, Recorder};
use super::content::{ContentStage, ContentStats};
use super::existing::{ExistingIds, fingerprint};
use super::plan::{Plan, Target};
use super::progress::ListingStats;
use crate::es::bulk::{BulkSink, Op};
use crate::source::s3::{S3Object, S3Source, to_document};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;

/// How the listing went.
pub enum ListingFailure {
    /// These buckets could not be listed completely: (bucket, message).
    Buckets(Vec<(String, String)>),
    /// The sync cannot go on at all.
    Fatal(SyncError),
}

/// Everything the listing stage needs.
pub struct Lister<'a> {
    pub source: &'a S3Source,
    pub sink: &'a BulkSink,
    pub existing: &'a mut ExistingIds,
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
    pub concurrency: usize,
    pub cancel: &'a CancellationToken,
}

/// A document ready for the content stage.
struct Prepared {
    id: String,
    key: String,
    size: u64,
    doc: Map<String, Value>,
}

impl Lister<'_> {
    pub async fn run(&mut self, plan: &Plan) -> Result<(), ListingFailure> {
        let mut failures = Vec::new();
        let mut marks = Recorder::default();
        for (index, target) in plan.targets.iter().enumerate() {
            if let Err(message) = self.list_target(index, target, plan, &marks).await? {
                tracing::warn!(bucket = %target.bucket, error = %message,
                    "listing failed; no document of this bucket will be deleted");
                failures.push((target.bucket.clone(), message));
                marks.failed();
            }
        }
        if !failures.is_empty() {
            return Err(ListingFailure::Buckets(failures));
        }
        if let Some(listed) = marks.listed() {
            self.sink.mark(listed.to_value());
        }
        Ok(())
    }

    /// Lists one target. The outer error stops the sync; the inner one is this bucket's failure.
    async fn list_target(
        &mut self,
        index: usize,
        target: &Target,
        plan: &Plan,
        marks: &Recorder,
    ) -> Result<Result<(), String>, ListingFailure> {
        let mut lister = match self
            .source
            .lister(&target.bucket, target.prefix.clone(), None)
            .await
        {
            Ok(l) => l,
            Err(e) => return Ok(Err(e.to_string())),
        };
        loop {
            if self.cancel.is_cancelled() {
                return Err(ListingFailure::Fatal(SyncError::Canceled));
            }
            let page = match lister.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => return Ok(Ok(())),
                Err(e) => return Ok(Err(e.to_string())),
            };
            let last_key = page.last().map(|o| o.key.clone());
            let mut prepared = Vec::with_capacity(page.len());
            for object in page {
                if let Some(p) = self.prepare(index, target, plan, object)? {
                    prepared.push(p);
                }
            }
            self.index_page(&target.bucket, prepared).await?;
            if let Some(checkpoint) = last_key.and_then(|k| marks.page(index, &target.bucket, k)) {
                self.sink.mark(checkpoint.to_value());
            }
        }
    }

    /// Builds the object's document, or `None` when rules, resumption or an unchanged version skip it.
    fn prepare(
        &mut self,
        index: usize,
        target: &Target,
        plan: &Plan,
        object: S3Object,
    ) -> Result<Option<Prepared>, ListingFailure> {
        self.stats.listed.fetch_add(1, Ordering::Relaxed);
        if !target.keeps(&object.key) {
            return Ok(None);
        }
        let mut doc = to_document(&object);
        let Some(Value::String(id)) = doc.remove("_id") else {
            return Ok(None);
        };
        // content-sync addition: the ETag, so incremental syncs can tell changed objects apart.
        doc.insert(
            "etag".into(),
            object.etag.clone().map_or(Value::Null, Value::String),
        );
        doc.insert("id".into(), Value::String(id.clone()));
        let included = plan
            .basic
            .includes(&doc)
            .map_err(|e| ListingFailure::Fatal(SyncError::Rules(e.to_string())))?;
        if !included {
            self.stats.excluded_by_rules.fetch_add(1, Ordering::Relaxed);
            return Ok(None); // stays in `existing`: an indexed copy gets deleted (§6.2 step 5)
        }
        let previous = self.existing.take(&id);
        let version = fingerprint(
            doc.get("_timestamp").and_then(Value::as_str),
            object.etag.as_deref(),
        );
        // Covered by the checkpoint: settled before the suspension — as the version the index holds.
        // An object added or overwritten while the job was not running (its instance killed, or
        // suspended) is not: it is indexed like any other, or the job would complete without it.
        if previous == Some(version)
            && self
                .resume
                .as_ref()
                .is_some_and(|cp| cp.covers(index, &target.bucket, &object.key))
        {
            self.stats.resumed_skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        if self.skip_unchanged && previous == Some(version) {
            self.stats.unchanged_skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        if self.pipeline_on.load(Ordering::Relaxed) {
            doc.extend(self.flags.clone());
        }
        Ok(Some(Prepared {
            id,
            size: object.size.max(0) as u64,
            key: object.key,
            doc,
        }))
    }

    /// Fetches the page's content (a bounded number at once, in order) and queues the documents.
    async fn index_page(
        &self,
        bucket: &str,
        prepared: Vec<Prepared>,
    ) -> Result<(), ListingFailure> {
        let (source, content, stats) = (self.source, self.content, self.content_stats);
        let mut filled = futures_util::stream::iter(prepared)
            .map(|mut p| async move {
                let attachment = content
                    .fill(source, bucket, &p.key, p.size, &mut p.doc, stats)
                    .await;
                (p, attachment)
            })
            .buffered(self.concurrency.max(1));
        while let Some((p, has_attachment)) = filled.next().await {
            let op = Op::Index {
                id: p.id,
                source: serde_json::to_vec(&p.doc).expect("document serializes"),
                has_attachment,
            };
            if let Err(e) = self.sink.send(op).await {
                return Err(ListingFailure::Fatal(SyncError::Sink(e)));
            }
        }
        Ok(())
    }
}
