//! The job cleanup loop (docs/protocol.md, "Cleanup"): jobs left running by a vanished connector or a
//! dead worker are marked `error`, so that their connector can sync again.
//!
//! A job is idle when its `last_seen` has not changed for `idle_job_threshold_secs` as measured on
//! this instance's monotonic clock — never by comparing the clock that wrote `last_seen` with
//! Elasticsearch's or ours, so an instance whose clock is minutes off is not taken for dead. Every
//! write is guarded by the read that found the job idle: a heartbeat in between wins.

use super::context::Context;
use super::error_budget::TooManyErrors;
use super::lease::Leases;
use crate::es::job::{Ended, JobEnd, SyncJob};
use crate::es::kinds::{ConnectorStatus, JobStatus};
use crate::es::time::now_iso;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const IDLE_JOB_ERROR: &str = "The job has not seen any update for some time.";

pub async fn run(ctx: Arc<Context>) -> Result<(), TooManyErrors> {
    let interval = ctx.config.service.job_cleanup_interval;
    let idle_after = ctx.config.service.idle_job_threshold;
    let mut errors = ctx.error_budget("job cleanup");
    let mut idle = Leases::default();
    while !ctx.shutdown.is_cancelled() {
        if let Err(e) = clean_orphaned(&ctx).await {
            tracing::warn!(error = %e, "orphaned job cleanup failed");
            errors.record(Instant::now(), &e)?;
        }
        if let Err(e) = clean_idle(&ctx, &mut idle, idle_after).await {
            tracing::warn!(error = %e, "idle job cleanup failed");
            errors.record(Instant::now(), &e)?;
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    Ok(())
}

fn running(job: &SyncJob) -> bool {
    matches!(
        job.status(),
        Some(JobStatus::InProgress | JobStatus::Canceling)
    )
}

/// Running jobs whose connector no longer exists at all.
async fn clean_orphaned(ctx: &Context) -> anyhow::Result<()> {
    let ids = ctx.connectors.all_ids().await?;
    let query = json!({"bool": {
        "must_not": {"terms": {"connector.id": ids}},
        "filter": [{"terms": {"status": [JobStatus::InProgress, JobStatus::Canceling]}}],
    }});
    let jobs = ctx.jobs.search(query).await?;
    let mut marked = 0;
    for job in &jobs {
        // The list of ids was read before the jobs: a connector created in between has running
        // jobs too. Only a fresh read that finds no connector makes a job an orphan.
        if let Some(connector_id) = job.connector_id()
            && ctx.connectors.get(connector_id).await?.is_some()
        {
            continue;
        }
        match ctx.jobs.end(&job.id, &idle_end(), running).await {
            Ok(Ended::Written) => marked += 1,
            Ok(_) => {}
            Err(e) => tracing::warn!(job_id = %job.id, error = %e, "could not mark orphaned job"),
        }
    }
    if !jobs.is_empty() {
        tracing::info!(marked, found = jobs.len(), "marked orphaned jobs as error");
    }
    Ok(())
}

/// Running jobs of our connectors that stopped reporting (their worker died).
async fn clean_idle(ctx: &Context, idle: &mut Leases, idle_after: Duration) -> anyhow::Result<()> {
    let connectors = ctx
        .connectors
        .handled(&ctx.configured_ids(), &ctx.config.service.service_types)
        .await?;
    let ids: Vec<String> = connectors.into_iter().map(|c| c.id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let query = json!({"bool": {"filter": [
        {"terms": {"connector.id": ids}},
        {"terms": {"status": [JobStatus::InProgress, JobStatus::Canceling]}},
    ]}});
    let jobs: HashMap<String, SyncJob> = ctx
        .jobs
        .search(query)
        .await?
        .into_iter()
        .filter(|j| !ctx.is_running_here(&j.id))
        .map(|j| (j.id.clone(), j))
        .collect();
    let seen: Vec<(String, Value)> = jobs
        .values()
        .map(|j| (j.id.clone(), last_seen(j)))
        .collect();
    let expired = idle.observe(Instant::now(), idle_after, &seen);
    let mut marked = 0;
    for job in expired.iter().filter_map(|id| jobs.get(id)) {
        // Still running, and still showing the heartbeat we watched stand still.
        let stalled = last_seen(job);
        let unchanged = |j: &SyncJob| running(j) && last_seen(j) == stalled;
        match ctx.jobs.end(&job.id, &idle_end(), unchanged).await {
            Ok(Ended::Written) => {}
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(job_id = %job.id, error = %e, "could not mark idle job");
                continue;
            }
        }
        marked += 1;
        if let Some(connector_id) = job.connector_id() {
            let doc = json!({"last_synced": now_iso(), "status": ConnectorStatus::Error, "error": IDLE_JOB_ERROR,
                "last_sync_status": JobStatus::Error, "last_sync_error": IDLE_JOB_ERROR,
                "last_indexed_document_count": job.stats().indexed_document_count,
                "last_deleted_document_count": job.stats().deleted_document_count});
            let recorded = ctx
                .connectors
                .read_modify_write(connector_id, |c| {
                    (c.last_sync_status() == Some(JobStatus::InProgress)).then(|| doc.clone())
                })
                .await;
            if let Err(e) = recorded {
                tracing::warn!(connector_id, error = %e, "could not record idle job on connector");
            }
        }
    }
    if !expired.is_empty() {
        tracing::info!(marked, found = expired.len(), "marked idle jobs as error");
    }
    Ok(())
}

fn last_seen(job: &SyncJob) -> Value {
    job.doc.last_seen.clone().unwrap_or(Value::Null)
}

/// The idle-job end: `error` with Elastic's message, without stats.
fn idle_end() -> JobEnd {
    JobEnd {
        error: Some(IDLE_JOB_ERROR.to_string()),
        ..JobEnd::new(JobStatus::Error)
    }
}
