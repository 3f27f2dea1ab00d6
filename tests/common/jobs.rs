//! Waiting for sync jobs to reach a status, with the services' log tails on timeout.

use std::time::Duration;

use serde_json::Value;

use super::{Raw, ServiceProcess, TestWorld, log_tail, secs};

/// Statuses of a job that has ended (a `suspended` job has not: it resumes).
pub const ENDED: &[&str] = &["completed", "error", "canceled"];

impl TestWorld {
    /// Waits until the job's status is one of `statuses`; returns the job. On timeout shows the
    /// job and the tail of each service's log.
    pub async fn wait_job(
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
}
