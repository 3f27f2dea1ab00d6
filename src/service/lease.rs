//! Jobs whose instance died are taken over, and resume from their last checkpoint.
//!
//! A running job's instance writes the job every `runner::STATS_INTERVAL` (counters, `last_seen`,
//! the checkpoint of settled work). That write is its heartbeat. Every instance watches the running
//! jobs of the connectors it handles; a job whose `last_seen` has not changed for [`LEASE`] as
//! measured on the watcher's own monotonic clock has lost its instance (killed, or cut off from
//! Elasticsearch). Liveness is judged by progress seen, never by comparing the clock that wrote
//! `last_seen` with ours, so clock skew between instances cannot fail a live job.
//!
//! Taking over is one write guarded by `if_seq_no`/`if_primary_term` of the read that saw the job
//! stale: the job becomes `suspended` (a `canceling` one `canceled`), so exactly one watcher wins, and
//! the executor then resumes it from `metadata.checkpoint` like any suspended job. A dead instance
//! that comes back sees its job no longer `in_progress` and stops without writing.

use super::context::Context;
use crate::es::job::SyncJob;
use crate::es::kinds::{ConnectorStatus, JobStatus};
use crate::es::time::now_iso;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a running job may show no heartbeat before it is taken over: three heartbeats.
pub const LEASE: Duration = Duration::from_secs(30);
/// How long a run's bulk requests may go out after a read found its job still its own: half the
/// lease. A run paused or cut off for longer holds them until its job watcher has read the job
/// again (`es::bulk::Fence`), so that a run taken over meanwhile sends nothing more to the index.
pub const OWNERSHIP_FRESH: Duration = Duration::from_secs(15);
/// How often running jobs are looked at.
const CHECK: Duration = Duration::from_secs(5);

/// What a watcher saw of one job: its last `last_seen`, and since when (our clock).
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    last_seen: Value,
    since: Instant,
}

/// The watcher's memory of running jobs. Pure: [`Leases::observe`] decides, the loop acts.
#[derive(Debug, Default)]
pub struct Leases {
    seen: HashMap<String, Seen>,
}

impl Leases {
    /// Records the running jobs seen at `now` (jobs not in the list are forgotten) and returns the
    /// ids of those whose heartbeat has not moved for `lease`.
    pub fn observe(
        &mut self,
        now: Instant,
        lease: Duration,
        running: &[(String, Value)],
    ) -> Vec<String> {
        let mut next = HashMap::with_capacity(running.len());
        let mut expired = Vec::new();
        for (id, last_seen) in running {
            let seen = match self.seen.remove(id) {
                Some(s) if s.last_seen == *last_seen => s,
                _ => Seen {
                    last_seen: last_seen.clone(),
                    since: now,
                },
            };
            if now.duration_since(seen.since) >= lease {
                expired.push(id.clone());
            }
            next.insert(id.clone(), seen);
        }
        self.seen = next;
        expired
    }
}

pub async fn run(ctx: Arc<Context>) {
    let mut leases = Leases::default();
    let mut marks = Leases::default();
    while !ctx.shutdown.is_cancelled() {
        if let Err(e) = check(&ctx, &mut leases, &mut marks).await {
            tracing::warn!(error = %e, "could not check running jobs' heartbeats");
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(CHECK) => {}
        }
    }
}

async fn check(ctx: &Context, leases: &mut Leases, marks: &mut Leases) -> anyhow::Result<()> {
    let connectors = ctx
        .connectors
        .handled(&ctx.configured_ids(), &ctx.config.service.service_types)
        .await?;
    let ids: Vec<&str> = connectors.iter().map(|c| c.id.as_str()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let query = json!({"bool": {"filter": [
        {"terms": {"connector.id": ids}},
        {"terms": {"status": [JobStatus::InProgress, JobStatus::Canceling]}},
    ]}});
    let jobs = ctx.jobs.search(query).await?;
    let busy: HashSet<&str> = jobs.iter().filter_map(|j| j.connector_id()).collect();
    // Connectors marked `in_progress` with no running job. The mark has no version of its own (the
    // connector's heartbeat rewrites the document every few seconds), so what must hold for a whole
    // lease is "marked, and no job of it running" at every look; a sync that marks its connector
    // claims its job within moments, which ends the watch.
    let stale_marks: Vec<(String, Value)> = connectors
        .iter()
        .filter(|c| c.last_sync_status() == Some(JobStatus::InProgress))
        .filter(|c| !busy.contains(c.id.as_str()))
        .map(|c| (c.id.clone(), Value::from(JobStatus::InProgress)))
        .collect();
    let running: Vec<(String, Value)> = jobs
        .iter()
        .filter(|j| !ctx.is_running_here(&j.id))
        .map(|j| {
            let seen = j.doc.last_seen.clone().unwrap_or(Value::Null);
            (j.id.clone(), seen)
        })
        .collect();
    for job_id in leases.observe(Instant::now(), LEASE, &running) {
        match take_over(ctx, &job_id).await {
            Ok(true) => ctx.wake_executor.notify_one(),
            Ok(false) => {}
            Err(e) => tracing::warn!(job_id = %job_id, error = %e, "could not take over the job"),
        }
    }
    for connector_id in marks.observe(Instant::now(), LEASE, &stale_marks) {
        match release(ctx, &connector_id).await {
            Ok(true) => ctx.wake_executor.notify_one(),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(connector_id, error = %e, "could not release the connector's sync mark")
            }
        }
    }
    Ok(())
}

pub const ABANDONED_SYNC_ERROR: &str =
    "The connector's last sync stopped without recording its outcome.";

/// A connector has said `in_progress` for a whole lease while no job of it ran: the instance that
/// marked it died or lost Elasticsearch between the job's end and the connector's record of it.
/// Unmarked with a write guarded by a fresh read that still shows the mark, its next job can start.
async fn release(ctx: &Context, connector_id: &str) -> anyhow::Result<bool> {
    let Some(connector) = ctx.connectors.get(connector_id).await? else {
        return Ok(false);
    };
    if connector.last_sync_status() != Some(JobStatus::InProgress) {
        return Ok(false);
    }
    let Some(occ) = connector.occ else {
        return Ok(false);
    };
    let doc = json!({"status": ConnectorStatus::Error, "error": ABANDONED_SYNC_ERROR,
        "last_sync_status": JobStatus::Error, "last_sync_error": ABANDONED_SYNC_ERROR});
    match ctx
        .connectors
        .update_guarded(connector_id, doc, Some(occ))
        .await
    {
        Ok(()) => {}
        Err(e) if e.is_conflict() => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    tracing::warn!(
        connector_id,
        lease_secs = LEASE.as_secs(),
        "released a connector marked in_progress with no job running"
    );
    Ok(true)
}

/// Suspends (or, if it was being canceled, cancels) a job whose instance died, then frees its
/// connector. Returns whether the job is now ours to resume.
async fn take_over(ctx: &Context, job_id: &str) -> anyhow::Result<bool> {
    // A fresh read: the search may lag, and the write below is guarded by this read.
    let Some(job) = ctx.jobs.get(job_id).await? else {
        return Ok(false);
    };
    let canceling = match job.status() {
        Some(JobStatus::InProgress) => false,
        Some(JobStatus::Canceling) => true,
        _ => return Ok(false),
    };
    let Some(occ) = job.occ else {
        return Ok(false);
    };
    let new_status = if canceling {
        JobStatus::Canceled
    } else {
        JobStatus::Suspended
    };
    let mut doc = json!({"status": new_status, "last_seen": now_iso()});
    if canceling {
        doc["canceled_at"] = json!(now_iso());
        doc["completed_at"] = json!(now_iso());
    }
    match ctx.jobs.update_guarded(job_id, doc, Some(occ)).await {
        Ok(()) => {}
        // Its instance wrote a heartbeat meanwhile, or another watcher took it first.
        Err(e) if e.is_conflict() => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    tracing::warn!(
        job_id,
        connector_id = job.connector_id().unwrap_or(""),
        status = %new_status,
        lease_secs = LEASE.as_secs(),
        "took over a job whose instance stopped sending heartbeats"
    );
    free_connector(ctx, &job, new_status).await?;
    Ok(!canceling)
}

/// The connector of a taken-over job says what became of its sync, so that the executor does not
/// wait for a sync that no one runs.
async fn free_connector(ctx: &Context, job: &SyncJob, new_status: JobStatus) -> anyhow::Result<()> {
    let Some(connector_id) = job.connector_id() else {
        return Ok(());
    };
    ctx.connectors
        .read_modify_write(connector_id, |c| {
            (c.last_sync_status() == Some(JobStatus::InProgress))
                .then(|| json!({"last_sync_status": new_status}))
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(jobs: &[(&str, &str)]) -> Vec<(String, Value)> {
        jobs.iter()
            .map(|(id, seen)| (id.to_string(), json!(seen)))
            .collect()
    }

    #[test]
    fn only_a_heartbeat_that_stopped_for_a_whole_lease_expires() {
        let lease = Duration::from_secs(30);
        let t0 = Instant::now();
        let mut leases = Leases::default();
        assert!(
            leases
                .observe(t0, lease, &running(&[("a", "1"), ("b", "1")]))
                .is_empty()
        );
        // `a` beats; `b` does not.
        let t1 = t0 + Duration::from_secs(20);
        assert!(
            leases
                .observe(t1, lease, &running(&[("a", "2"), ("b", "1")]))
                .is_empty()
        );
        let t2 = t0 + Duration::from_secs(31);
        assert_eq!(
            leases.observe(t2, lease, &running(&[("a", "2"), ("b", "1")])),
            vec!["b".to_string()]
        );
        // `a` last beat at t1: expires a lease after it, not before.
        assert!(
            leases
                .observe(t1 + Duration::from_secs(29), lease, &running(&[("a", "2")]))
                .is_empty()
        );
        assert_eq!(
            leases.observe(t1 + Duration::from_secs(30), lease, &running(&[("a", "2")])),
            vec!["a".to_string()]
        );
    }

    #[test]
    fn a_last_seen_far_in_the_past_or_future_is_not_judged_by_its_value() {
        // Clock skew: what the job's instance wrote says nothing about liveness; only change does.
        let lease = Duration::from_secs(30);
        let t0 = Instant::now();
        let mut leases = Leases::default();
        let skewed = |s: &str| running(&[("a", s)]);
        assert!(
            leases
                .observe(t0, lease, &skewed("2026-11-29T09:50:00Z"))
                .is_empty()
        );
        assert!(
            leases
                .observe(
                    t0 + Duration::from_secs(10),
                    lease,
                    &skewed("2026-11-29T09:50:10Z")
                )
                .is_empty()
        );
        assert!(
            leases
                .observe(
                    t0 + Duration::from_secs(35),
                    lease,
                    &skewed("2026-11-29T09:50:20Z")
                )
                .is_empty()
        );
    }

    #[test]
    fn a_job_seen_again_after_it_left_starts_a_new_lease() {
        let lease = Duration::from_secs(30);
        let t0 = Instant::now();
        let mut leases = Leases::default();
        leases.observe(t0, lease, &running(&[("a", "1")]));
        leases.observe(t0 + Duration::from_secs(10), lease, &running(&[]));
        assert!(
            leases
                .observe(t0 + Duration::from_secs(40), lease, &running(&[("a", "1")]))
                .is_empty()
        );
    }
}
