//! The job cleanup loop (§5.8): jobs left running by a vanished connector or a dead worker are marked
//! `error`, so that their connector can sync again.

use super::context::Context;
use super::error_budget::TooManyErrors;
use crate::es::job::status;
use crate::es::time::now_iso;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const IDLE_JOB_ERROR: &str = "The job has not seen any update for some time.";

pub async fn run(ctx: Arc<Context>) -> Result<(), TooManyErrors> {
    let interval = Duration::from_secs_f64(ctx.config.service.job_cleanup_interval.max(1.0));
    let mut errors = ctx.error_budget("job cleanup");
    while !ctx.shutdown.is_cancelled() {
        if let Err(e) = clean_orphaned(&ctx).await {
            tracing::warn!(error = %e, "orphaned job cleanup failed");
            errors.record(Instant::now(), &e)?;
        }
        if let Err(e) = clean_idle(&ctx).await {
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

/// Running jobs whose connector no longer exists at all.
async fn clean_orphaned(ctx: &Context) -> anyhow::Result<()> {
    let ids = ctx.connectors.all_ids().await?;
    let query = json!({"bool": {
        "must_not": {"terms": {"connector.id": ids}},
        "filter": [{"terms": {"status": [status::IN_PROGRESS, status::CANCELING]}}],
    }});
    let jobs = ctx.jobs.search(query).await?;
    let mut marked = 0;
    for job in &jobs {
        match fail(ctx, &job.id).await {
            Ok(()) => marked += 1,
            Err(e) => tracing::warn!(job_id = %job.id, error = %e, "could not mark orphaned job"),
        }
    }
    if !jobs.is_empty() {
        tracing::info!(marked, found = jobs.len(), "marked orphaned jobs as error");
    }
    Ok(())
}

/// Running jobs of our connectors that stopped reporting (their worker died).
async fn clean_idle(ctx: &Context) -> anyhow::Result<()> {
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
        {"terms": {"status": [status::IN_PROGRESS, status::CANCELING]}},
        {"range": {"last_seen": {"lte": format!("now-{}s", ctx.config.service.idle_job_threshold_secs)}}},
    ]}});
    let jobs = ctx.jobs.search(query).await?;
    let mut marked = 0;
    for job in &jobs {
        if let Err(e) = fail(ctx, &job.id).await {
            tracing::warn!(job_id = %job.id, error = %e, "could not mark idle job");
            continue;
        }
        marked += 1;
        if let Some(connector_id) = job.connector_id() {
            let doc = json!({"last_synced": now_iso(), "status": "error", "error": IDLE_JOB_ERROR,
                "last_sync_status": status::ERROR, "last_sync_error": IDLE_JOB_ERROR,
                "last_indexed_document_count": job.counter("indexed_document_count"),
                "last_deleted_document_count": job.counter("deleted_document_count")});
            if let Err(e) = ctx.connectors.update(connector_id, doc).await {
                tracing::warn!(connector_id, error = %e, "could not record idle job on connector");
            }
        }
    }
    if !jobs.is_empty() {
        tracing::info!(marked, found = jobs.len(), "marked idle jobs as error");
    }
    Ok(())
}

/// Marks a job `error` with the idle-job message (§5.8), without stats.
async fn fail(ctx: &Context, job_id: &str) -> Result<(), crate::es::EsError> {
    ctx.jobs
        .terminate(
            job_id,
            status::ERROR,
            Some(IDLE_JOB_ERROR),
            None,
            None,
            None,
        )
        .await
}
