//! One job from claim to termination (docs/protocol.md#a-jobs-life): start, watch, report, finish.

use super::context::Context;
use crate::es::bulk::Tally;
use crate::es::connector::OCC_ATTEMPTS;
use crate::es::job::{Ended, JobEnd, JobStats, SyncJob};
use crate::es::kinds::{ConnectorStatus, JobStatus, JobType};
use crate::es::time::now_iso;
use crate::metrics;
use crate::sync::checkpoint::{Checkpoint, DeletionsCounted};
use crate::sync::progress::{Progress, stats_of};
use crate::sync::{self, SyncError};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the job document gets fresh counters (and `last_seen`), and the log a progress line.
pub const STATS_INTERVAL: Duration = Duration::from_secs(10);
/// How often the job and connector are re-read to notice a cancel request or a deletion (Elastic:
/// 5 s; shorter so that a cancel takes effect within 5 s, detection and stop included).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Why a job stopped early, as noticed by the watcher.
#[derive(Debug, Clone)]
enum Interruption {
    Canceled,
    Failed(String),
    /// Another instance decided the job's fate (took it over after our heartbeats stopped reaching
    /// Elasticsearch, or ended it): its document is no longer ours to write.
    Lost(String),
}

pub async fn run(ctx: Arc<Context>, job: SyncJob) {
    let Some(connector_id) = job.connector_id().map(str::to_string) else {
        return;
    };
    let Some((job, connector_cursor)) = sync_starts(&ctx, &connector_id, &job.id).await else {
        return;
    };
    let (resume, base, deletions) = resume_point(&job);
    tracing::info!(connector_id = %connector_id, job_id = %job.id, job_type = %job.job_type(),
        resumed = resume.is_some(), "sync job starting");
    // docs/protocol.md#a-jobs-life: incremental jobs are claimed with the connector's `sync_cursor`.
    let claim_cursor = match job.job_type() {
        JobType::Incremental => connector_cursor,
        JobType::Full | JobType::AccessControl => Value::Null,
    };
    match claim(&ctx, &job, claim_cursor).await {
        Claim::Ours => ctx.remember_claim(&job.id).await,
        Claim::Elsewhere => {
            tracing::info!(connector_id = %connector_id, job_id = %job.id, "job claimed elsewhere; not running it");
            return;
        }
        Claim::Ends(end) => {
            finish(&ctx, &job, &connector_id, *end, false).await;
            return;
        }
    }

    let progress = Arc::new(Progress::new(base, resume).with_deletions_counted(deletions));
    let tracked = Arc::new(metrics::jobs::start(
        &job.id,
        &connector_id,
        job.job_type().as_str(),
        progress.clone(),
    ));
    tokio::spawn(expect_objects(
        ctx.clone(),
        job.index_name().map(str::to_owned),
        connector_id.clone(),
        tracked.clone(),
    ));
    let cancel = ctx.shutdown.child_token();
    let interruption: Arc<Mutex<Option<Interruption>>> = Arc::default();
    let watcher = tokio::spawn(watch(
        ctx.clone(),
        job.id.clone(),
        connector_id.clone(),
        cancel.clone(),
        interruption.clone(),
    ));
    let reporter = tokio::spawn(report(
        ctx.clone(),
        job.id.clone(),
        progress.clone(),
        base,
        cancel.clone(),
        tracked.clone(),
    ));

    let result = sync::run(&ctx, &job, &progress, cancel.clone()).await;
    watcher.abort();
    reporter.abort();

    let interrupted = interruption.lock().expect("lock").clone();
    let outcome = result.as_ref().map(|_| ());
    let Some((final_status, error)) =
        final_status(interrupted.as_ref(), outcome, ctx.shutdown.is_cancelled())
    else {
        let reason = match &interrupted {
            Some(Interruption::Lost(why)) => why.as_str(),
            _ => "",
        };
        tracing::warn!(job_id = %job.id, reason, "job taken over or ended elsewhere; not writing its end");
        return;
    };
    let cursor = result.ok().map(|done| done.sync_cursor);
    let mut end = if final_status == JobStatus::Suspended {
        // Record only settled work, with the counters as of it: the resumed job continues from there.
        let (checkpoint, tally) = progress.suspension_point(base);
        let mut end = Termination::new(final_status, error, stats_of(tally));
        end.metadata = Some(progress.checkpoint_metadata(checkpoint.as_ref(), tally));
        end
    } else {
        let bytes = progress
            .counters
            .indexed_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut end = Termination::new(final_status, error, progress.stats());
        end.metadata = Some(progress.metadata(None, bytes));
        end
    };
    end.sync_cursor = cursor.filter(|_| final_status == JobStatus::Completed);
    tracked.end(end.status.as_str());
    finish(&ctx, &job, &connector_id, end, true).await;
}

/// The progress line's estimate of the job's objects: the documents its index holds as it starts.
async fn expect_objects(
    ctx: Arc<Context>,
    index: Option<String>,
    connector_id: String,
    tracked: Arc<metrics::jobs::JobWatch>,
) {
    let Some(index) = index else { return };
    let Ok(es) = ctx.content_client(&connector_id) else {
        return;
    };
    if let Ok(n) = es.count(&index).await {
        tracked.expect(n);
    }
}

/// How a job ends, from what stopped it: `None` when its fate was decided elsewhere (its document is
/// no longer ours to write), else its final status and error.
fn final_status(
    interrupted: Option<&Interruption>,
    outcome: Result<(), &SyncError>,
    shutting_down: bool,
) -> Option<(JobStatus, Option<String>)> {
    Some(match (interrupted, outcome) {
        (Some(Interruption::Lost(_)), _) => return None,
        // A sync that finished is completed, even if a signal arrived in the meantime.
        (None, Ok(())) => (JobStatus::Completed, None),
        _ if shutting_down => (JobStatus::Suspended, None),
        (Some(Interruption::Canceled), _) | (None, Err(SyncError::Canceled)) => {
            (JobStatus::Canceled, None)
        }
        (Some(Interruption::Failed(msg)), _) => (JobStatus::Error, Some(msg.clone())),
        (None, Err(e)) => (JobStatus::Error, Some(e.to_string())),
    })
}

enum Claim {
    Ours,
    /// Another instance claimed it first: nothing of it is ours to write.
    Elsewhere,
    /// It ends before it starts (the claim failed, or a cancel request came first).
    Ends(Box<Termination>),
}

impl Claim {
    fn ends(status: JobStatus, error: Option<String>) -> Self {
        Claim::Ends(Box::new(Termination::new(
            status,
            error,
            JobStats::default(),
        )))
    }
}

/// Claims the job, guarded by the read that found it waiting. A conflict means the job was written
/// since: claimed by another instance (leave it), a cancel request (end it `canceled` rather than
/// overwrite the request), or some other update of a job still waiting (claim again).
async fn claim(ctx: &Context, job: &SyncJob, cursor: Value) -> Claim {
    let mut occ = job.occ;
    for _ in 0..OCC_ATTEMPTS {
        let e = match ctx
            .jobs
            .claim(&job.id, &ctx.hostname, cursor.clone(), occ)
            .await
        {
            Ok(()) => return Claim::Ours,
            Err(e) if e.is_conflict() => e,
            Err(e) => {
                let msg = format!("Failed to claim job for job {} because of {e}", job.id);
                return Claim::ends(JobStatus::Error, Some(msg));
            }
        };
        tracing::debug!(job_id = %job.id, error = %e, "claim conflicted, re-reading the job");
        match ctx.jobs.get(&job.id).await {
            Ok(Some(fresh)) => match fresh.status() {
                Some(JobStatus::Pending | JobStatus::Suspended) => occ = fresh.occ,
                Some(JobStatus::Canceling) => {
                    return Claim::ends(JobStatus::Canceled, None);
                }
                _ => return Claim::Elsewhere,
            },
            _ => return Claim::Elsewhere,
        }
    }
    Claim::Elsewhere
}

/// Where a job starts: a suspended job with a checkpoint resumes after it, its counters continuing
/// from what was recorded at suspension; one whose earlier run began deleting stale documents
/// continues its deletions (and their count) from what that run recorded before sending them.
fn resume_point(job: &SyncJob) -> (Option<Checkpoint>, Tally, Option<DeletionsCounted>) {
    let metadata = job.metadata();
    let suspended = job.status() == Some(JobStatus::Suspended);
    let checkpoint = suspended
        .then(|| metadata.get("checkpoint").and_then(Checkpoint::from_value))
        .flatten();
    let deletions = suspended
        .then(|| DeletionsCounted::from_metadata(&metadata))
        .flatten();
    let recorded = metadata
        .get("checkpoint_tally")
        .and_then(|t| serde_json::from_value::<Tally>(t.clone()).ok());
    let base = match (&checkpoint, recorded) {
        // Written with the checkpoint, periodically and at suspension: exact even when the job's
        // counters moved on past the checkpoint before its instance died.
        (Some(_), Some(tally)) => tally,
        (Some(_), None) => Tally {
            indexed: job.stats().indexed_document_count,
            indexed_bytes: metadata
                .get("indexed_bytes")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            deleted: job.stats().deleted_document_count,
        },
        (None, _) => Tally::default(),
    };
    let base = match deletions {
        Some(d) => Tally {
            deleted: d.deleted,
            ..base
        },
        None => base,
    };
    (checkpoint, base, deletions)
}

/// The final state of a job, as written by [`finish`].
struct Termination {
    status: JobStatus,
    error: Option<String>,
    stats: JobStats,
    metadata: Option<Value>,
    /// The connector's next `sync_cursor` (completed jobs only).
    sync_cursor: Option<Value>,
}

impl Termination {
    fn new(status: JobStatus, error: Option<String>, stats: JobStats) -> Self {
        Self {
            status,
            error,
            stats,
            metadata: None,
            sync_cursor: None,
        }
    }
}

/// docs/protocol.md#a-jobs-life: mark the connector `in_progress` with optimistic concurrency. Of two instances that
/// race for the same job, exactly one gets the job (with the connector's `sync_cursor`).
///
/// The job was read by an executor poll, possibly long ago, from a search that may not show the
/// latest writes yet: this instance or another may have run it to the end since. So the job is read
/// fresh first, and a job no longer waiting leaves the connector untouched (else the connector would
/// flash `in_progress` after its sync ended). Once the mark is ours, a second fresh read decides (another
/// instance may have ended the job between the two); if it is no longer waiting, the connector gets
/// back the fields the mark replaced.
async fn sync_starts(ctx: &Context, connector_id: &str, job_id: &str) -> Option<(SyncJob, Value)> {
    const MARKED: [&str; 4] = ["status", "error", "last_sync_status", "last_sync_error"];
    waiting_job(ctx, job_id).await?;
    let mut replaced = serde_json::Map::new();
    let mut cursor = Value::Null;
    let result = ctx
        .connectors
        .read_modify_write(connector_id, |c| {
            (c.last_sync_status() != Some(JobStatus::InProgress)).then(|| {
                let d = &c.doc;
                replaced = MARKED
                    .into_iter()
                    .zip([json!(d.status), json!(d.error), json!(d.last_sync_status), json!(d.last_sync_error)])
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                cursor = c.sync_cursor();
                json!({"status": ConnectorStatus::Connected, "error": null, "last_sync_status": JobStatus::InProgress, "last_sync_error": null})
            })
        })
        .await;
    match result {
        Ok(Some((_, true))) => {
            let fresh = waiting_job(ctx, job_id).await;
            if fresh.is_none() {
                tracing::info!(
                    connector_id,
                    job_id,
                    "job is no longer waiting (run by another instance?); not starting it"
                );
                if let Err(e) = ctx
                    .connectors
                    .update(connector_id, Value::Object(replaced))
                    .await
                {
                    tracing::warn!(connector_id, error = %e, "could not restore the connector's sync status");
                }
            }
            fresh.map(|j| (j, cursor))
        }
        Ok(Some((_, false))) => {
            tracing::info!(
                connector_id,
                job_id,
                "a content sync job is started for this connector by another instance"
            );
            None
        }
        Ok(None) => {
            tracing::warn!(
                connector_id,
                job_id,
                "connector vanished before its job could start"
            );
            None
        }
        Err(e) => {
            tracing::warn!(connector_id, job_id, error = %e, "could not start sync job");
            None
        }
    }
}

/// The job as stored now, if it still waits to run (pending, or suspended to resume).
async fn waiting_job(ctx: &Context, job_id: &str) -> Option<SyncJob> {
    match ctx.jobs.get(job_id).await {
        Ok(Some(j)) if matches!(j.status(), Some(JobStatus::Pending | JobStatus::Suspended)) => {
            Some(j)
        }
        Ok(j) => {
            let status = j.as_ref().map_or("deleted", SyncJob::status_text);
            tracing::info!(job_id, status, "job is no longer waiting; not starting it");
            None
        }
        Err(e) => {
            tracing::warn!(job_id, error = %e, "could not read the job before starting it");
            None
        }
    }
}

async fn watch(
    ctx: Arc<Context>,
    job_id: String,
    connector_id: String,
    cancel: CancellationToken,
    interruption: Arc<Mutex<Option<Interruption>>>,
) {
    loop {
        tokio::time::sleep(CHECK_INTERVAL).await;
        let connector = ctx.connectors.get(&connector_id).await;
        // When the read of the job was sent: what it finds holds from then.
        let asked = tokio::time::Instant::now();
        let verdict = match (connector, ctx.jobs.get(&job_id).await) {
            (Ok(None), _) => Some(Interruption::Failed(format!(
                "Connector is not found for connector ID {connector_id}."
            ))),
            (_, Ok(None)) => Some(Interruption::Failed(format!(
                "Connector job is not found for job ID {job_id}."
            ))),
            (Ok(Some(_)), Ok(Some(job))) => match job.status() {
                // Running, but another instance's run of it: ours was taken over while our
                // heartbeats did not reach Elasticsearch, and resumed elsewhere.
                Some(JobStatus::InProgress | JobStatus::Canceling) if !ctx.owns(&job) => {
                    Some(Interruption::Lost(format!(
                        "Connector job (ID: {job_id}) was taken over: another instance runs it since {}.",
                        job.doc
                            .started_at
                            .as_ref()
                            .map_or_else(String::new, Value::to_string)
                    )))
                }
                Some(JobStatus::Canceling) => Some(Interruption::Canceled),
                Some(JobStatus::InProgress) => {
                    // Still ours as of this read: the run's bulk requests may go on.
                    ctx.confirm(&job_id, asked);
                    None
                }
                _ => Some(Interruption::Lost(format!(
                    "Connector job (ID: {job_id}) is not running but in status of {}.",
                    job.status_text()
                ))),
            },
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "job watcher could not read job or connector");
                None
            }
        };
        if let Some(v) = verdict {
            tracing::info!(job_id = %job_id, reason = ?v, "stopping sync job");
            *interruption.lock().expect("lock") = Some(v);
            cancel.cancel();
            return;
        }
    }
}

/// Every `STATS_INTERVAL`: the live counters, and the checkpoint of settled work with the counters as
/// of it. This write is also the job's heartbeat (see `lease`): after a crash, the job resumes from
/// this checkpoint with exact counts.
async fn report(
    ctx: Arc<Context>,
    job_id: String,
    progress: Arc<Progress>,
    base: Tally,
    cancel: CancellationToken,
    tracked: Arc<metrics::jobs::JobWatch>,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(STATS_INTERVAL) => {}
        }
        tracked.log_progress();
        match ctx.jobs.get(&job_id).await {
            // Not ours any more (taken over, ended): the watcher stops the job; nothing to report.
            Ok(Some(job)) if !ctx.owns(&job) => {}
            Ok(Some(job)) => {
                let (checkpoint, tally) = progress.suspension_point(base);
                let metadata = checkpoint
                    .as_ref()
                    .map(|cp| progress.checkpoint_metadata(Some(cp), tally));
                if let Err(e) = ctx
                    .jobs
                    .report_stats(&job_id, progress.stats(), metadata, job.occ)
                    .await
                {
                    // A conflict: the job was written meanwhile (a cancel request); next round.
                    tracing::warn!(error = %e, "could not report job stats");
                }
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "could not read job for stats"),
        }
    }
}

/// The job's last write, then the connector's record of the sync (docs/protocol.md, "Ending a job").
/// Both are guarded by optimistic concurrency: the job is written only while it is still ours
/// (`claimed`: our run of it, see [`Context::owns`]; else still waiting, as a claim that failed
/// left it), the connector by a read-modify-write that re-reads on conflict, so a concurrent
/// heartbeat or validation cannot make the record fail and leave the connector `in_progress`.
async fn finish(ctx: &Context, job: &SyncJob, connector_id: &str, end: Termination, claimed: bool) {
    let connector_exists = matches!(ctx.connectors.get(connector_id).await, Ok(Some(_)));
    let total = if connector_exists {
        total_documents(ctx, job, connector_id).await
    } else {
        None
    };
    let details = end
        .metadata
        .as_ref()
        .map(Value::to_string)
        .unwrap_or_default();
    let stats = end.stats;
    let record = JobEnd {
        status: end.status,
        error: end.error.clone(),
        stats: Some(stats),
        total_document_count: total,
        metadata: end.metadata,
    };
    let ours = |j: &SyncJob| match j.status() {
        Some(JobStatus::InProgress | JobStatus::Canceling) => ctx.owns(j),
        Some(JobStatus::Pending | JobStatus::Suspended) => !claimed,
        _ => false,
    };
    let mut error = end.error;
    let job_exists = match ctx.jobs.end(&job.id, &record, ours).await {
        Ok(Ended::Written) => true,
        Ok(Ended::Gone) => {
            error = Some("Couldn't find the job".into());
            false
        }
        Ok(Ended::DecidedElsewhere(found)) => {
            tracing::warn!(job_id = %job.id, status = %found, "job ended elsewhere; not writing its end");
            return;
        }
        Err(e) => {
            tracing::error!(job_id = %job.id, error = %e, "could not write the job's final status");
            true
        }
    };
    if connector_exists {
        let job_status = if job_exists {
            end.status
        } else {
            JobStatus::Error
        };
        if job_status == JobStatus::Error && error.is_none() {
            error = Some("unknown error".to_string());
        }
        let mut doc = json!({
            "last_synced": now_iso(),
            "status": if job_status == JobStatus::Error { ConnectorStatus::Error } else { ConnectorStatus::Connected },
            "error": error,
            "last_sync_status": job_status,
            "last_sync_error": error,
        });
        if job_status == JobStatus::Completed {
            doc["sync_cursor"] = end.sync_cursor.unwrap_or(Value::Null);
        }
        if job_status.is_terminal() && job_exists {
            doc["last_indexed_document_count"] = json!(stats.indexed_document_count);
            doc["last_deleted_document_count"] = json!(stats.deleted_document_count);
        }
        let written = ctx
            .connectors
            .read_modify_write(connector_id, |_| Some(doc.clone()))
            .await;
        if let Err(e) = written {
            tracing::error!(connector_id, error = %e, "could not record the sync outcome on the connector");
        }
    }
    tracing::info!(
        connector_id,
        job_id = %job.id,
        status = %end.status,
        indexed = stats.indexed_document_count,
        deleted = stats.deleted_document_count,
        error = error.as_deref().unwrap_or(""),
        details = %details,
        "sync ended"
    );
}

async fn total_documents(ctx: &Context, job: &SyncJob, connector_id: &str) -> Option<u64> {
    let index = job.index_name()?;
    let es = ctx.content_client(connector_id).ok()?;
    if let Err(e) = es.refresh(index).await {
        tracing::warn!(index, error = %e, "refresh before count failed");
    }
    es.count(index).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_status_follows_what_stopped_the_job() {
        let listing = SyncError::Listing("bucket b: repeated continuation token".into());
        let failed = Interruption::Failed("Connector is not found for connector ID c.".into());
        let lost = Interruption::Lost("taken over".into());
        let done = |s: JobStatus| Some((s, None));
        // (interrupted, outcome, shutting down) → how the job ends
        let table: [(Option<&Interruption>, Result<(), &SyncError>, bool, _); 10] = [
            (None, Ok(()), false, done(JobStatus::Completed)),
            // finished work is completed even when a signal arrived meanwhile
            (None, Ok(()), true, done(JobStatus::Completed)),
            (
                None,
                Err(&SyncError::Canceled),
                true,
                done(JobStatus::Suspended),
            ),
            (None, Err(&listing), true, done(JobStatus::Suspended)),
            (
                Some(&Interruption::Canceled),
                Err(&SyncError::Canceled),
                false,
                done(JobStatus::Canceled),
            ),
            (
                None,
                Err(&SyncError::Canceled),
                false,
                done(JobStatus::Canceled),
            ),
            (
                None,
                Err(&listing),
                false,
                Some((JobStatus::Error, Some(listing.to_string()))),
            ),
            (
                Some(&failed),
                Err(&SyncError::Canceled),
                false,
                Some((
                    JobStatus::Error,
                    Some("Connector is not found for connector ID c.".into()),
                )),
            ),
            // a job taken over elsewhere is never written, whatever else happened
            (Some(&lost), Ok(()), false, None),
            (Some(&lost), Err(&SyncError::Canceled), true, None),
        ];
        for (interrupted, outcome, shutting_down, expected) in table {
            assert_eq!(
                final_status(interrupted, outcome, shutting_down),
                expected,
                "{interrupted:?} {outcome:?} shutting_down={shutting_down}"
            );
        }
    }

    #[test]
    fn a_resumed_job_counts_deletions_from_what_its_earlier_run_recorded() {
        let job = |status: &str| SyncJob {
            id: "j".into(),
            occ: None,
            doc: serde_json::from_value(serde_json::json!({
                "status": status,
                "deleted_document_count": 3,
                "metadata": {
                    "checkpoint": {"listed": true},
                    "checkpoint_tally": {"indexed": 10, "indexed_bytes": 100, "deleted": 3},
                    "deletions": {"shards": 40, "deleted": 900},
                },
            }))
            .unwrap(),
        };
        let counted = DeletionsCounted {
            shards: 40,
            deleted: 900,
        };
        let (checkpoint, base, deletions) = resume_point(&job("suspended"));
        assert_eq!(checkpoint, Some(Checkpoint::Listed { listed: true }));
        assert_eq!(deletions, Some(counted));
        assert_eq!(
            (base.indexed, base.indexed_bytes, base.deleted),
            (10, 100, 900)
        );
        // A job that is not resumed starts from nothing.
        let (checkpoint, base, deletions) = resume_point(&job("pending"));
        assert_eq!((checkpoint, deletions, base.deleted), (None, None, 0));
    }
}
