//! Startup checks (§2.1): wait for Elasticsearch, check its version, create the system indices.

use crate::config::Config;
use crate::es::backoff::Backoff;
use crate::es::{EsClient, system_indices};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Elasticsearch majors this service speaks to.
const SUPPORTED_MAJORS: [u64; 2] = [8, 9];

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "{host} seems to be unreachable after {waited_secs} s (elasticsearch.max_wait_duration): {cause}"
    )]
    Unreachable {
        host: String,
        waited_secs: u64,
        cause: String,
    },
    #[error(
        "elasticsearch {found} is not supported (content-sync needs Elasticsearch 8.x or 9.x); set ALLOW_ES_VERSION_MISMATCH=true to run anyway"
    )]
    Version { found: String },
    #[error("could not create the system indices after {attempts} attempts: {cause}")]
    SystemIndices { attempts: u32, cause: String },
    #[error("interrupted")]
    Interrupted,
}

pub async fn run(
    config: &Config,
    es: &EsClient,
    shutdown: &CancellationToken,
) -> Result<(), PreflightError> {
    let info = wait_for_es(config, es, shutdown).await?;
    check_version(&info)?;
    create_system_indices(config, es, shutdown).await
}

async fn wait_for_es(
    config: &Config,
    es: &EsClient,
    shutdown: &CancellationToken,
) -> Result<Value, PreflightError> {
    let cfg = &config.elasticsearch;
    let started = Instant::now();
    let max_wait = Duration::from_secs_f64(cfg.max_wait_duration.max(0.0));
    let mut delay = Duration::from_secs_f64(cfg.initial_backoff_duration.max(0.01));
    loop {
        match es.info_once().await {
            Ok(info) => return Ok(info),
            Err(e) => {
                if started.elapsed() >= max_wait {
                    return Err(PreflightError::Unreachable {
                        host: es.host().trim_end_matches('/').to_string(),
                        waited_secs: started.elapsed().as_secs(),
                        cause: e.to_string(),
                    });
                }
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "elasticsearch is not ready");
            }
        }
        // Never sleep past the deadline: the last attempt happens right at it.
        let sleep = delay.min(max_wait.saturating_sub(started.elapsed()));
        tokio::select! {
            _ = shutdown.cancelled() => return Err(PreflightError::Interrupted),
            _ = tokio::time::sleep(sleep) => {}
        }
        delay = delay.mul_f64(cfg.backoff_multiplier.max(1.0));
    }
}

fn allow_mismatch() -> bool {
    std::env::var("ALLOW_ES_VERSION_MISMATCH")
        .map(|v| matches!(v.to_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// Accepts Elasticsearch 8.x and 9.x (and serverless). Anything else, an OpenSearch-API server
/// included, needs `ALLOW_ES_VERSION_MISMATCH`.
fn check_version(info: &Value) -> Result<(), PreflightError> {
    let version = &info["version"];
    if version["build_flavor"].as_str() == Some("serverless") {
        tracing::info!("elasticsearch serverless: version check skipped");
        return Ok(());
    }
    let number = version["number"].as_str().unwrap_or("unknown");
    let distribution = version["distribution"].as_str().unwrap_or("elasticsearch");
    let major = number
        .split(['.', '-'])
        .next()
        .and_then(|m| m.parse::<u64>().ok());
    let supported =
        distribution == "elasticsearch" && major.is_some_and(|m| SUPPORTED_MAJORS.contains(&m));
    if supported {
        tracing::info!(version = number, "elasticsearch version is compatible");
        return Ok(());
    }
    let found = format!("{distribution} {number}");
    if allow_mismatch() {
        tracing::warn!(found = %found, "unsupported elasticsearch version, continuing because ALLOW_ES_VERSION_MISMATCH is set");
        return Ok(());
    }
    Err(PreflightError::Version { found })
}

async fn create_system_indices(
    config: &Config,
    es: &EsClient,
    shutdown: &CancellationToken,
) -> Result<(), PreflightError> {
    let attempts = config.service.preflight_max_attempts.max(1);
    let idle = Duration::from_secs_f64(config.service.preflight_idle.max(0.0));
    let backoff = Backoff::new(
        idle.min(Duration::from_secs(1))
            .max(Duration::from_millis(100)),
        idle,
    );
    let mut attempt = 0;
    loop {
        attempt += 1;
        match system_indices::ensure(es).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < attempts => {
                tracing::warn!(error = %e, attempt, attempts, "system index check failed, retrying");
            }
            Err(e) => {
                return Err(PreflightError::SystemIndices {
                    attempts,
                    cause: e.to_string(),
                });
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Err(PreflightError::Interrupted),
            _ = tokio::time::sleep(backoff.delay(attempt)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_rules() {
        assert!(check_version(&json!({"version": {"number": "8.15.0"}})).is_ok());
        assert!(check_version(&json!({"version": {"number": "9.2.0-SNAPSHOT"}})).is_ok());
        assert!(
            check_version(&json!({"version": {"number": "0", "build_flavor": "serverless"}}))
                .is_ok()
        );
        if !allow_mismatch() {
            let e = check_version(&json!({"version": {"number": "7.17.0"}})).unwrap_err();
            assert!(e.to_string().contains("elasticsearch 7.17.0"), "{e}");
            let e = check_version(
                &json!({"version": {"number": "3.8.0", "distribution": "opensearch"}}),
            )
            .unwrap_err();
            assert!(e.to_string().contains("ALLOW_ES_VERSION_MISMATCH"), "{e}");
        }
    }
}
