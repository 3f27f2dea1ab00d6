//! The long-running service: preflight, then the scheduler, the content-sync executor and the job
//! cleanup until SIGTERM/SIGINT, when running jobs are suspended and the process exits 0.

mod cleanup;
pub mod context;
pub mod cron;
mod error_budget;
mod executor;
mod lease;
pub mod preflight;
mod runner;
mod scheduler;

use crate::config::Config;
use crate::es::EsClient;
use context::Context;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The service loops `--action` can select (Elastic's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Schedule,
    SyncContent,
    SyncAccessControl,
    Cleanup,
}

/// Runs the service until a signal. Errors are fatal start-up failures (the caller exits non-zero).
pub async fn run(config: Config, actions: &[Action]) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    let es = EsClient::new(&config.elasticsearch, None, "service")?;
    if let Some(addr) = config.service.http.listen_addr() {
        crate::metrics::Listener::start(addr, es.clone(), shutdown.clone()).await?;
    }
    tracing::info!(host = %es.host(), "running preflight checks");
    let cluster = match preflight::run(&config, &es, &shutdown).await {
        Ok(cluster) => cluster,
        Err(preflight::PreflightError::Interrupted) => {
            tracing::info!("interrupted during preflight; bye");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    crate::metrics::health().set_preflight_done();
    let api = cluster.api;
    let ctx = Arc::new(Context::new(config, es, shutdown.clone(), api));
    let mut tasks = tokio::task::JoinSet::new();
    for action in actions {
        match action {
            Action::Schedule => {
                tasks.spawn(scheduler::run(ctx.clone()));
            }
            Action::SyncContent => {
                tasks.spawn(executor::run(ctx.clone()));
                let lease = lease::run(ctx.clone());
                tasks.spawn(async move {
                    lease.await;
                    Ok(())
                });
            }
            Action::SyncAccessControl => {
                tracing::debug!(
                    "access control syncs: s3 has no document-level security, nothing to run"
                );
            }
            Action::Cleanup => {
                tasks.spawn(cleanup::run(ctx.clone()));
            }
        }
    }
    tracing::info!(connectors = ctx.config.connectors.len(), "service started");
    let mut failure = None;
    while let Some(ended) = tasks.join_next().await {
        let error = match ended {
            Ok(Ok(())) => continue,
            Ok(Err(too_many)) => anyhow::Error::new(too_many),
            Err(join) => anyhow::anyhow!("a service loop crashed: {join}"),
        };
        // One loop gave up: stop the others (running jobs are suspended) and exit non-zero.
        tracing::error!(error = %error, "stopping the service");
        ctx.shutdown.cancel();
        failure.get_or_insert(error);
    }
    match failure {
        Some(error) => Err(error),
        None => {
            tracing::info!("bye");
            Ok(())
        }
    }
}

async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "caught signal; graceful shutdown");
    shutdown.cancel();
}
