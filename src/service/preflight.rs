//! Startup checks (docs/protocol.md#what-the-cluster-is): wait for Elasticsearch, check its version, create the system indices.

use crate::config::Config;
use crate::es::protocol::{self, ConnectorApi, Probe};
use crate::es::{ClusterInfo, EsClient, system_indices};
use crate::retry::{Backoff, RetryPolicy, Verdict};
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
    #[error(transparent)]
    Protocol(#[from] protocol::ProtocolError),
    #[error("interrupted")]
    Interrupted,
}

/// What preflight found out about the cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub info: ClusterInfo,
    /// The `_connector` endpoints to use.
    pub api: ConnectorApi,
}

/// Waits for the cluster, checks its version, decides the `_connector` mode and creates the system
/// indices.
pub async fn run(
    config: &Config,
    es: &EsClient,
    shutdown: &CancellationToken,
) -> Result<Cluster, PreflightError> {
    let info = wait_for_es(config, es, shutdown).await?;
    check_version(&info)?;
    let probe = protocol::probe(es).await;
    let api = protocol::decide(
        config.elasticsearch.feature_use_connectors_api,
        &info,
        &probe,
    )?;
    match (&probe, api.enabled) {
        (_, true) => tracing::info!(claim_api = api.claim, "using the _connector APIs"),
        (Probe::Absent, false) => {
            tracing::info!("no _connector API: writing the connector indices directly")
        }
        (_, false) => tracing::info!("writing the connector indices directly (configured)"),
    }
    create_system_indices(config, es, &info, &probe, shutdown).await?;
    Ok(Cluster { info, api })
}

/// Asks for the cluster's root until it answers or `elasticsearch.max_wait_duration` has passed,
/// pausing `initial_backoff_duration` × `backoff_multiplier`ⁿ (jittered) between attempts.
async fn wait_for_es(
    config: &Config,
    es: &EsClient,
    shutdown: &CancellationToken,
) -> Result<ClusterInfo, PreflightError> {
    let cfg = &config.elasticsearch;
    let started = Instant::now();
    let backoff = Backoff::new(cfg.initial_backoff_duration, cfg.max_wait_duration)
        .with_factor(cfg.backoff_multiplier);
    let outcome = RetryPolicy::within(cfg.max_wait_duration, backoff)
        .run(
            Some(shutdown),
            |_| es.cluster_info_once(),
            |outcome| match outcome {
                Ok(_) => Verdict::Final,
                Err(_) => Verdict::Retry,
            },
            |_, pause, outcome| {
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "elasticsearch is not ready");
                }
            },
        )
        .await
        .map_err(|_| PreflightError::Interrupted)?;
    outcome.map_err(|e| PreflightError::Unreachable {
        host: es.host().trim_end_matches('/').to_string(),
        waited_secs: started.elapsed().as_secs(),
        cause: e.to_string(),
    })
}

fn allow_mismatch() -> bool {
    std::env::var("ALLOW_ES_VERSION_MISMATCH")
        .map(|v| matches!(v.to_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// Accepts Elasticsearch 8.x and 9.x (and serverless). Anything else, an OpenSearch-API server
/// included, needs `ALLOW_ES_VERSION_MISMATCH`.
fn check_version(info: &ClusterInfo) -> Result<(), PreflightError> {
    if info.serverless {
        tracing::info!("elasticsearch serverless: version check skipped");
        return Ok(());
    }
    let supported = info.is_elasticsearch()
        && info
            .version()
            .is_some_and(|v| SUPPORTED_MAJORS.contains(&v.major));
    if supported {
        tracing::info!(version = %info.number, "elasticsearch version is compatible");
        return Ok(());
    }
    let found = info.to_string();
    if allow_mismatch() {
        tracing::warn!(found = %found, "unsupported elasticsearch version, continuing because ALLOW_ES_VERSION_MISMATCH is set");
        return Ok(());
    }
    Err(PreflightError::Version { found })
}

async fn create_system_indices(
    config: &Config,
    es: &EsClient,
    info: &ClusterInfo,
    probe: &Probe,
    shutdown: &CancellationToken,
) -> Result<(), PreflightError> {
    let idle = config.service.preflight_idle;
    let backoff = Backoff::new(
        idle.min(Duration::from_secs(1))
            .max(Duration::from_millis(100)),
        idle,
    );
    let policy = RetryPolicy::new(config.service.preflight_max_attempts, backoff);
    let attempts = policy.max_attempts();
    let outcome = policy
        .run(
            Some(shutdown),
            |_| system_indices::ensure(es, info, probe),
            |outcome| match outcome {
                Ok(()) => Verdict::Final,
                Err(_) => Verdict::Retry,
            },
            |attempt, _, outcome| {
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, attempt, attempts, "system index check failed, retrying");
                }
            },
        )
        .await
        .map_err(|_| PreflightError::Interrupted)?;
    outcome.map_err(|e| PreflightError::SystemIndices {
        attempts,
        cause: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_rules() {
        let root = |v: serde_json::Value| check_version(&ClusterInfo::from_root(&v));
        assert!(root(json!({"version": {"number": "8.15.0"}})).is_ok());
        assert!(root(json!({"version": {"number": "9.2.0-SNAPSHOT"}})).is_ok());
        assert!(root(json!({"version": {"number": "0", "build_flavor": "serverless"}})).is_ok());
        if !allow_mismatch() {
            let e = root(json!({"version": {"number": "7.17.0"}})).unwrap_err();
            assert!(e.to_string().contains("elasticsearch 7.17.0"), "{e}");
            let e = root(json!({"version": {"number": "3.8.0", "distribution": "opensearch"}}))
                .unwrap_err();
            assert!(e.to_string().contains("ALLOW_ES_VERSION_MISMATCH"), "{e}");
        }
    }
}
