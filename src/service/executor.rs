//! The content-sync executor (§4.4, §5.2): picks pending and suspended jobs of handled connectors,
//! oldest first, and runs at most `max_concurrent_content_syncs` of them at once.

use super::context::Context;
use super::runner;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

pub async fn run(ctx: Arc<Context>) {
    let idle = Duration::from_secs_f64(ctx.config.service.idling.max(0.05));
    let slots = Arc::new(Semaphore::new(
        ctx.config.service.max_concurrent_content_syncs.max(1),
    ));
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = JoinSet::new();
    while !ctx.shutdown.is_cancelled() {
        if let Err(e) = poll(&ctx, &slots, &running, &mut tasks).await {
            tracing::error!(error = %e, "could not poll for sync jobs");
        }
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(idle) => {}
        }
    }
    // Shutdown: runners see the cancelled token, suspend their jobs and write that down.
    while tasks.join_next().await.is_some() {}
    tracing::debug!("content sync executor stopped");
}

async fn poll(
    ctx: &Arc<Context>,
    slots: &Arc<Semaphore>,
    running: &Arc<Mutex<HashSet<String>>>,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    let connectors = ctx
        .connectors
        .handled(&ctx.configured_ids(), &ctx.config.service.service_types)
        .await?;
    let ids: Vec<String> = connectors.iter().map(|c| c.id.clone()).collect();
    for job in ctx.jobs.pending(&ids, &["full", "incremental"]).await? {
        if running.lock().expect("lock").contains(&job.id) {
            continue;
        }
        let Some(connector_id) = job.connector_id().map(str::to_string) else {
            continue;
        };
        let Some(connector) = ctx.connectors.get(&connector_id).await? else {
            tracing::warn!(job_id = %job.id, connector_id, "couldn't find connector");
            continue;
        };
        if connector.last_sync_status() == Some("in_progress") {
            tracing::debug!(job_id = %job.id, connector_id, "connector is already syncing, job waits");
            continue;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(job_id = %job.id, "sync pool is full, job waits");
            break;
        };
        running.lock().expect("lock").insert(job.id.clone());
        let (ctx, running) = (ctx.clone(), running.clone());
        let span = tracing::info_span!("sync", connector_id = %connector_id, sync_job_id = %job.id,
            index_name = connector.index_name().unwrap_or_default());
        tasks.spawn(
            async move {
                let job_id = job.id.clone();
                runner::run(ctx, job).await;
                running.lock().expect("lock").remove(&job_id);
                drop(permit);
            }
            .instrument(span),
        );
    }
    Ok(())
}
