//! The scheduler loop (docs/protocol.md#connector-documents, docs/protocol.md#scheduling-and-picking-up-jobs): per poll and per handled connector, bring its document up to date
//! (schema, features, check-in, status) and create the scheduled jobs that are due.

use super::context::Context;
use super::cron::Schedule;
use super::error_budget::TooManyErrors;
use crate::es::connector::{Connector, configuration_update, scheduled_at_field};
use crate::es::kinds::{ConnectorStatus, JobType, TriggerMethod};
use crate::es::time::{iso, now_iso, parse};
use crate::source::SourceKind;
use crate::sync::rules;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub async fn run(ctx: Arc<Context>) -> Result<(), TooManyErrors> {
    let idle = ctx.config.service.idling;
    let mut errors = ctx.error_budget("scheduler");
    let mut last_wake_up = Utc::now();
    while !ctx.shutdown.is_cancelled() {
        let this_wake_up = Utc::now();
        match ctx
            .connectors
            .handled(&ctx.configured_ids(), &ctx.config.service.service_types)
            .await
        {
            Ok(connectors) => {
                let parallel = ctx.config.service.max_concurrent_scheduling_tasks.get();
                futures_util::stream::iter(connectors)
                    .for_each_concurrent(parallel, |c| {
                        let ctx = ctx.clone();
                        let span = tracing::info_span!("connector", connector_id = %c.id);
                        async move {
                            if let Err(e) = schedule(&ctx, c, last_wake_up, this_wake_up).await {
                                tracing::error!(error = %e, "scheduling failed");
                            }
                        }
                        .instrument(span)
                    })
                    .await;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not list connectors");
                errors.record(Instant::now(), &e)?;
            }
        }
        last_wake_up = this_wake_up;
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(idle) => {}
        }
    }
    tracing::debug!("scheduler stopped");
    Ok(())
}

async fn schedule(
    ctx: &Context,
    connector: Connector,
    last_wake_up: DateTime<Utc>,
    this_wake_up: DateTime<Utc>,
) -> anyhow::Result<()> {
    let id = connector.id.clone();
    let Some(connector) = prepare(ctx, &id).await? else {
        return Ok(());
    };
    heartbeat(ctx, &connector).await?;
    match connector.status() {
        Some(ConnectorStatus::Created) => {
            tracing::info!(connector_id = %id, "connector has just been created and cannot sync; waiting for configuration");
            return Ok(());
        }
        Some(ConnectorStatus::NeedsConfiguration) => {
            tracing::info!(connector_id = %id, "connector is not configured yet");
            return Ok(());
        }
        _ => {}
    }
    let Some(kind) = connector.service_type().and_then(|t| ctx.sources.get(t)) else {
        anyhow::bail!(
            "couldn't find data source class for {:?}",
            connector.service_type()
        );
    };
    let checked = match kind.connect(&connector.configuration()).await {
        Ok(_) => validate_draft_filtering(ctx, &id, kind.as_ref()).await,
        Err(e) => Err(e.to_string()),
    };
    match checked {
        Ok(()) => ctx.connectors.set_connected(&id).await?,
        Err(e) => {
            tracing::warn!(connector_id = %id, error = %e, "connector check failed");
            ctx.connectors.set_error(&id, &e).await?;
            return Ok(());
        }
    }
    let incremental = connector
        .features()
        .and_then(|f| f.pointer("/incremental_sync/enabled"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if incremental {
        try_schedule(ctx, &id, JobType::Incremental, last_wake_up, this_wake_up).await?;
    }
    try_schedule(ctx, &id, JobType::Full, last_wake_up, this_wake_up).await
}

/// docs/protocol.md#sync-rules: a DEFAULT draft in state `edited` is validated; the result is written and, when valid, the
/// draft becomes active. Rules that cannot even be read (unknown rule type…) fail the check with
/// Elastic's message, which becomes the connector's `error`.
async fn validate_draft_filtering(
    ctx: &Context,
    id: &str,
    kind: &dyn SourceKind,
) -> Result<(), String> {
    let Some(connector) = ctx.connectors.get(id).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let Some(draft) = connector.default_filtering().and_then(|f| f.draft.as_ref()) else {
        return Ok(());
    };
    if draft.pointer("/validation/state").and_then(Value::as_str) != Some("edited") {
        return Ok(());
    }
    let result = rules::validate(draft, kind).map_err(|e| e.to_string())?;
    tracing::info!(state = ?result.state, errors = result.errors.len(), "draft sync rules validated");
    match ctx
        .connectors
        .record_filtering_validation(&connector, result.to_value(), result.is_valid())
        .await
    {
        Ok(()) => Ok(()),
        // Someone else wrote the connector meanwhile: the next poll validates again.
        Err(e) if e.is_conflict() => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// docs/protocol.md#connector-documents: schema, service type and features, written with optimistic concurrency.
async fn prepare(ctx: &Context, id: &str) -> anyhow::Result<Option<Connector>> {
    let entry = ctx.entry(id);
    let result = ctx
        .connectors
        .read_modify_write(id, |c| {
            let service_type = entry
                .map(|e| e.service_type.as_str())
                .or(c.service_type())?;
            let kind = ctx.sources.get(service_type)?;
            let (schema, features) = (kind.configuration_schema(), kind.features());
            let mut doc = Map::new();
            if let Some((configuration, needs)) =
                configuration_update(c.doc.configuration.as_ref(), &schema)
            {
                doc.insert("configuration".into(), configuration);
                if needs {
                    doc.insert("status".into(), json!("needs_configuration"));
                }
            }
            if entry.is_some() {
                if c.service_type().is_none() {
                    doc.insert("service_type".into(), json!(service_type));
                }
                if c.features() != Some(&features) {
                    doc.insert("features".into(), features.clone());
                }
            }
            (!doc.is_empty()).then_some(Value::Object(doc))
        })
        .await?;
    match result {
        None => {
            tracing::warn!(connector_id = id, "connector vanished");
            Ok(None)
        }
        Some((c, wrote)) => {
            if wrote {
                tracing::info!(
                    connector_id = id,
                    status = c.status_text(),
                    "connector document updated"
                );
            }
            let supported = c.service_type().is_some_and(|t| ctx.sources.supports(t));
            Ok((supported || entry.is_some()).then_some(c))
        }
    }
}

async fn heartbeat(ctx: &Context, c: &Connector) -> anyhow::Result<()> {
    let first = ctx.checked_in.lock().expect("lock").insert(c.id.clone());
    let interval =
        chrono::Duration::from_std(ctx.config.service.heartbeat).unwrap_or(chrono::Duration::MAX);
    let stale = match c.last_seen().and_then(parse) {
        None => true,
        Some(t) => Utc::now() - t > interval,
    };
    if first || stale {
        ctx.connectors.heartbeat(&c.id).await?;
        tracing::debug!(connector_id = %c.id, "checked in");
    }
    Ok(())
}

/// docs/protocol.md#scheduling-and-picking-up-jobs: create a job of `job_type` when its schedule fired since the previous poll. The write of
/// `last_*_scheduled_at` is guarded by `if_seq_no`, so of several instances only one creates the job.
async fn try_schedule(
    ctx: &Context,
    id: &str,
    job_type: JobType,
    last_wake_up: DateTime<Utc>,
    this_wake_up: DateTime<Utc>,
) -> anyhow::Result<()> {
    let field = scheduled_at_field(job_type);
    let mut cron_error = None;
    let mut fired_at = String::new();
    let result = ctx
        .connectors
        .read_modify_write(id, |c| {
            if c.last_scheduled_at(job_type)
                .and_then(parse)
                .is_some_and(|t| t > last_wake_up)
            {
                return None; // another instance scheduled it already
            }
            let (enabled, interval) = c.schedule(job_type)?;
            if !enabled {
                return None;
            }
            let schedule = match Schedule::parse(&interval) {
                Ok(s) => s,
                Err(e) => {
                    cron_error = Some(e.to_string());
                    return None;
                }
            };
            let due = schedule.due_between(last_wake_up, this_wake_up)?;
            fired_at = iso(due);
            Some(json!({ field: fired_at }))
        })
        .await?;
    if let Some(e) = cron_error {
        ctx.connectors.set_error(id, &e).await?;
        return Ok(());
    }
    if let Some((connector, true)) = result {
        let job_id = ctx
            .jobs
            .create(&connector, job_type, TriggerMethod::Scheduled)
            .await?;
        tracing::info!(connector_id = id, job_id = %job_id, job_type = %job_type, fired_at = %fired_at, at = %now_iso(), "scheduled sync job created");
    }
    Ok(())
}
