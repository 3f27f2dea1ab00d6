//! Waiting for sync jobs to reach a status, with the services' log tails on timeout; reading the
//! timestamps jobs and connectors carry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Raw, ServiceProcess, TestWorld, log_tail, secs};

/// Statuses of a job that has ended (a `suspended` job has not: it resumes).
pub const ENDED: &[&str] = &["completed", "error", "canceled"];

/// Statuses after which a job does not change any more by itself.
pub const TERMINAL: &[&str] = &["completed", "error", "canceled", "suspended"];

/// Waits for a terminal job status (see [`TestWorld::wait_job`]).
pub async fn wait_done(
    world: &TestWorld,
    job_id: &str,
    timeout: Duration,
    services: &[&ServiceProcess],
) -> Value {
    world.wait_job(job_id, TERMINAL, timeout, services).await
}

impl TestWorld {
    /// Waits until the job's status is one of `statuses`; returns the job. On timeout shows the
    /// job and the tail of each service's log.
    ///
    /// A job that stopped (ended or suspended) is written before its connector: then this also
    /// waits a moment for the connector to leave `in_progress`, so that tests read both settled
    /// (a real cluster shows the gap; a new job of the same connector may also keep it there).
    pub async fn wait_job(
        &self,
        job_id: &str,
        statuses: &[&str],
        timeout: Duration,
        services: &[&ServiceProcess],
    ) -> Value {
        let job = self.job_in(job_id, statuses, timeout, services).await;
        let stopped =
            ENDED.contains(&job["status"].as_str().unwrap_or("")) || job["status"] == "suspended";
        if let Some(connector_id) = job["connector"]["id"].as_str().filter(|_| stopped) {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                let c = self.connector(connector_id).await.unwrap_or(Value::Null);
                if c["last_sync_status"] != "in_progress" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        job
    }

    async fn job_in(
        &self,
        job_id: &str,
        statuses: &[&str],
        timeout: Duration,
        services: &[&ServiceProcess],
    ) -> Value {
        self.wait_for(
            &format!("job {job_id} in {statuses:?}"),
            timeout,
            async || {
                let job = self.job(job_id).await.unwrap_or(Value::Null);
                if statuses.contains(&job["status"].as_str().unwrap_or("")) {
                    return Ok(job);
                }
                let logs: Vec<String> = services
                    .iter()
                    .map(|s| format!("--- service log ---\n{}", log_tail(&s.logs(), 4000)))
                    .collect();
                Err(Raw(format!("job: {job}\n{}", logs.join("\n"))))
            },
        )
        .await
    }

    /// Waits (30 s) until the job has ended and asserts it `completed`.
    pub async fn wait_completed(&self, job_id: &str, svc: &ServiceProcess) -> Value {
        let job = self.wait_job(job_id, ENDED, secs(30), &[svc]).await;
        assert_eq!(
            job["status"],
            "completed",
            "{job}\n{}",
            log_tail(&svc.logs(), 4000)
        );
        job
    }

    /// Creates an on-demand job of `job_type` and waits until it is `completed` or `error`.
    pub async fn run_job(&self, connector_id: &str, job_type: &str, timeout: Duration) -> Value {
        let job_id = self.create_job(connector_id, job_type, "on_demand").await;
        self.wait_for("job finishes", timeout, async || {
            self.job(&job_id)
                .await
                .filter(|j| j["status"] == "completed" || j["status"] == "error")
        })
        .await
    }
}

/// Waits until the job is terminated (`completed`, `error` or `canceled`) and returns it.
pub async fn wait_job_done(world: &TestWorld, job_id: &str, timeout: Duration) -> Value {
    world
        .wait_for(&format!("job {job_id} terminated"), timeout, async || {
            let job = world.job(job_id).await.unwrap_or(Value::Null);
            match job["status"].as_str() {
                Some("completed" | "error" | "canceled") => Ok(job),
                _ => Err(job),
            }
        })
        .await
}

/// Waits for a `completed` job; panics with the job and the service log otherwise.
pub async fn wait_completed(
    world: &TestWorld,
    svc: &ServiceProcess,
    job_id: &str,
    timeout: Duration,
) -> Value {
    let job = wait_job_done(world, job_id, timeout).await;
    assert_eq!(
        job["status"],
        "completed",
        "job {job_id}: {job}\nservice log:\n{}",
        svc.logs()
    );
    job
}

/// Parses an ES timestamp; panics with the field name if it is not one.
#[track_caller]
pub fn ts(v: &Value, what: &str) -> DateTime<Utc> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{what} = {s:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// Asserts `v` is a timestamp within the last `max_age` (and not in the future beyond clock skew).
#[track_caller]
pub fn assert_recent(v: &Value, what: &str, max_age: Duration) {
    let t = ts(v, what);
    let age = Utc::now() - t;
    assert!(
        age <= chrono::Duration::from_std(max_age).unwrap() && age >= chrono::Duration::seconds(-5),
        "{what} = {v} is not within the last {max_age:?}"
    );
}
