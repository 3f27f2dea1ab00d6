//! The whole sync pipeline — plan, listing, rules, versions, content, bulk sink, deletions,
//! checkpoints — run against the in-memory source ([`crate::source::memory`]) and an in-memory
//! index ([`memory_index`]). No process, no server: each test runs in milliseconds.

mod deletions;
mod memory_index;
mod pipeline;
mod ranges;

use super::progress::Progress;
use super::{Completed, ConnectorNow, ContentIndex, JobEnv, SyncError};
use crate::config::Config;
use crate::es::EsError;
use crate::es::bulk::Tally;
use crate::es::job::{JobStats, SyncJob};
use crate::source::Registry;
use crate::source::memory::{MemoryKind, MemoryStore};
use crate::sync::checkpoint::{Checkpoint, DeletionsCounted};
use async_trait::async_trait;
use memory_index::MemoryIndex;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const INDEX: &str = "search-memory";

/// A service of one `memory` connector over a store and an index.
struct TestEnv {
    config: Config,
    sources: Registry,
    store: Arc<MemoryStore>,
    index: Arc<MemoryIndex>,
    /// What the sync wrote of its deletions into the job, in order, each with the number of
    /// documents the index held as it was written.
    deletions: std::sync::Mutex<Vec<(DeletionsCounted, u64)>>,
    /// Writes of deletion counts that succeed; the next one fails (as when the service dies).
    deletion_records_left: std::sync::atomic::AtomicUsize,
}

impl TestEnv {
    /// Listing pages of `page_size` objects.
    fn new(page_size: usize) -> Self {
        let store = Arc::new(MemoryStore::default());
        let mut sources = Registry::default();
        sources.add(MemoryKind::new(store.clone(), page_size));
        Self {
            config: Config::default(),
            sources,
            store,
            index: Arc::default(),
            deletions: Default::default(),
            deletion_records_left: usize::MAX.into(),
        }
    }

    /// Runs a job of `job_type` with these filtering rules, resuming from `resume` if given.
    async fn run(
        &self,
        job: SyncJob,
        resume: Option<Checkpoint>,
        cancel: CancellationToken,
    ) -> (Result<Completed, SyncError>, Progress) {
        let progress = Progress::new(Tally::default(), resume);
        let result = super::run(self, &job, &progress, cancel).await;
        (result, progress)
    }

    async fn full(&self) -> (Result<Completed, SyncError>, Progress) {
        self.run(job("full", json!([])), None, CancellationToken::new())
            .await
    }
}

#[async_trait]
impl JobEnv for TestEnv {
    fn config(&self) -> &Config {
        &self.config
    }

    fn sources(&self) -> &Registry {
        &self.sources
    }

    async fn connector(&self, _connector_id: &str) -> Result<Option<ConnectorNow>, EsError> {
        Ok(Some(ConnectorNow {
            index_name: Some(INDEX.into()),
            service_type: Some("memory".into()),
        }))
    }

    fn content_index(&self, _connector_id: &str) -> Result<Arc<dyn ContentIndex>, SyncError> {
        Ok(Arc::new(self.index.clone()))
    }

    async fn record_deletions(
        &self,
        _job_id: &str,
        _stats: JobStats,
        counted: DeletionsCounted,
    ) -> Result<(), EsError> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.deletion_records_left.load(Relaxed) == 0 {
            return Err(EsError::Transport {
                method: "POST".into(),
                path: "/.elastic-connectors-sync-jobs/_update/job".into(),
                cause: "connection reset".into(),
            });
        }
        self.deletion_records_left.fetch_sub(1, Relaxed);
        let held = self.index.ids().len() as u64;
        self.deletions.lock().unwrap().push((counted, held));
        Ok(())
    }
}

/// A job document as Kibana creates it, with these basic rules (the DEFAULT rule is added) and
/// no advanced rules; content is extracted natively, without an ingest pipeline.
fn job(job_type: &str, rules: Value) -> SyncJob {
    job_with(job_type, rules, json!({}))
}

fn job_with(job_type: &str, rules: Value, advanced: Value) -> SyncJob {
    let mut rules = rules.as_array().cloned().unwrap_or_default();
    rules.push(
        json!({"id": "DEFAULT", "order": 0, "policy": "include", "field": "_",
                      "rule": "regex", "value": ".*"}),
    );
    let doc = json!({
        "job_type": job_type,
        "connector": {
            "id": "memory-connector",
            "index_name": INDEX,
            "service_type": "memory",
            "configuration": {"partitions": {"value": ""}},
            "pipeline": {"name": "", "extract_binary_content": true, "reduce_whitespace": true,
                         "run_ml_inference": false},
            "filtering": {"rules": rules, "advanced_snippet": {"value": advanced},
                          "validation": {"state": "valid", "errors": []}},
        },
    });
    SyncJob {
        id: "job".into(),
        occ: None,
        doc: serde_json::from_value(doc).unwrap(),
    }
}

/// A listing statistic of a finished sync.
fn listed(progress: &Progress) -> [u64; 4] {
    use std::sync::atomic::Ordering::Relaxed;
    let l = &progress.listing;
    [
        l.listed.load(Relaxed),
        l.excluded_by_rules.load(Relaxed),
        l.unchanged_skipped.load(Relaxed),
        l.resumed_skipped.load(Relaxed),
    ]
}
