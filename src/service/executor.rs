//! The content-sync executor (docs/protocol.md#scheduling-and-picking-up-jobs): picks pending and suspended jobs of handled connectors,
//! oldest first, and runs at most `max_concurrent_content_syncs` of them at once.

use super::context::{Context, Run};
use super::error_budget::TooManyErrors;
use super::runner;
use crate::es::connector::Connector;
use crate::es::job::JobEnd;
use crate::es::kinds::{JobStatus, JobType};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

pub async fn run(ctx: Arc<Context>) -> Result<(), TooManyErrors> {
    let mut errors = ctx.error_budget("content sync executor");
    let mut outcome = Ok(());
    let idle = ctx.config.service.idling;
    let slots = Arc::new(Semaphore::new(
        ctx.config.service.max_concurrent_content_syncs.get(),
    ));
    let mut tasks = JoinSet::new();
    while !ctx.shutdown.is_cancelled() {
        if let Err(e) = poll(&ctx, &slots, &mut tasks).await {
            tracing::error!(error = %e, "could not poll for sync jobs");
            if let Err(too_many) = errors.record(Instant::now(), &e) {
                outcome = Err(too_many);
                break;
            }
        }
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = ctx.wake_executor.notified() => {}
            _ = tokio::time::sleep(idle) => {}
        }
    }
    // Shutdown: runners see the cancelled token, suspend their jobs and write that down.
    if outcome.is_err() {
        ctx.shutdown.cancel();
    }
    while tasks.join_next().await.is_some() {}
    tracing::debug!("content sync executor stopped");
    outcome
}

async fn poll(
    ctx: &Arc<Context>,
    slots: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    let connectors = ctx
        .connectors
        .handled(&ctx.configured_ids(), &ctx.config.service.service_types)
        .await?;
    let ids: Vec<String> = connectors.iter().map(|c| c.id.clone()).collect();
    cancel_unclaimed(ctx, &connectors).await?;
    for job in ctx
        .jobs
        .pending(&ids, &[JobType::Full, JobType::Incremental])
        .await?
    {
        if ctx.is_running_here(&job.id) {
            continue;
        }
        let Some(connector_id) = job.connector_id().map(str::to_string) else {
            continue;
        };
        let Some(connector) = ctx.connectors.get(&connector_id).await? else {
            tracing::warn!(job_id = %job.id, connector_id, "couldn't find connector");
            continue;
        };
        if connector.last_sync_status() == Some(JobStatus::InProgress) {
            tracing::debug!(job_id = %job.id, connector_id, "connector is already syncing, job waits");
            continue;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(job_id = %job.id, "sync pool is full, job waits");
            break;
        };
        ctx.running
            .lock()
            .expect("lock")
            .insert(job.id.clone(), Run::new());
        let ctx = ctx.clone();
        let span = tracing::info_span!("sync", connector_id = %connector_id, sync_job_id = %job.id,
            index_name = connector.index_name().unwrap_or_default());
        tasks.spawn(
            async move {
                let job_id = job.id.clone();
                runner::run(ctx.clone(), job).await;
                ctx.running.lock().expect("lock").remove(&job_id);
                drop(permit);
            }
            .instrument(span),
        );
    }
    Ok(())
}

/// Jobs set to `canceling` that no worker runs end `canceled` here: pending or suspended jobs (Kibana
/// marks them so in direct-index mode). A job is not running when it never started, or when its
/// connector has no sync `in_progress` (a running job always marks its connector).
async fn cancel_unclaimed(ctx: &Context, connectors: &[Connector]) -> anyhow::Result<()> {
    if connectors.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = connectors.iter().map(|c| c.id.as_str()).collect();
    let query = serde_json::json!({"bool": {"filter": [
        {"terms": {"connector.id": ids}},
        {"term": {"status": JobStatus::Canceling}},
    ]}});
    for job in ctx.jobs.search(query).await? {
        if ctx.is_running_here(&job.id) {
            continue;
        }
        let never_started = job.doc.started_at.is_none();
        let connector_idle = connectors
            .iter()
            .find(|c| Some(c.id.as_str()) == job.connector_id())
            .is_some_and(|c| c.last_sync_status() != Some(JobStatus::InProgress));
        if never_started || connector_idle {
            tracing::info!(job_id = %job.id, "canceling a job no worker runs");
            let canceled = JobEnd::new(JobStatus::Canceled);
            ctx.jobs
                .end(&job.id, &canceled, |j| {
                    j.status() == Some(JobStatus::Canceling)
                })
                .await?;
        }
    }
    Ok(())
}
