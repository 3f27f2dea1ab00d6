//! Direct-index mode or `_connector` API mode, and which `_connector` endpoints the cluster has.
//!
//! `elasticsearch.feature_use_connectors_api` is `true`, `false` or `auto` (our default). `auto` asks
//! the cluster once at start-up with `GET /_connector`. Only an answer that proves the endpoint is
//! not there (no handler, 404, 405, or the request taken for an index named `_connector`) selects
//! direct mode; a refusal (401/403) or a cluster that keeps failing stops the service with the
//! cause, because switching to direct writes for good on a passing error would be wrong for the
//! whole life of the process. Endpoints younger than the API itself are gated on the cluster's
//! version (filtering validation and activation from 8.14, `_claim` and `metadata` in `_stats` from
//! 8.15); `_claim` also falls back to a direct write if the cluster still has no handler.

use super::cluster::{CLAIM_API_SINCE, CONNECTOR_API_SINCE, ClusterInfo, FILTERING_API_SINCE};
use super::{EsClient, EsError};
use crate::config::ApiMode;
use reqwest::{Method, StatusCode};

/// What `GET /_connector` told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The endpoint answered: the `_connector` API (and the connector templates) are there.
    Present,
    /// The cluster has no such endpoint.
    Absent,
    /// Neither: refused or failing. Carries the cause.
    Unknown(String),
}

/// The `_connector` endpoints this process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectorApi {
    /// Check-in, job creation, stats and filtering through the API (Elastic's API mode).
    pub enabled: bool,
    /// Claim through `PUT _connector/_sync_job/<id>/_claim` (8.15+); else a direct update.
    pub claim: bool,
    /// Filtering validation and activation through the API (8.14+); else a direct update.
    pub filtering: bool,
    /// `_stats` takes `metadata` (8.15+); before, it refuses the field, and metadata is written
    /// directly.
    pub stats_metadata: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error(
        "cannot tell whether the cluster has the _connector API (elasticsearch.feature_use_connectors_api: auto): {0}; grant the credentials the manage_connector privilege, or set feature_use_connectors_api to true or false"
    )]
    Undecided(String),
}

/// Asks the cluster once. Transient failures are retried by the client (`elasticsearch.max_retries`).
pub async fn probe(es: &EsClient) -> Probe {
    classify(
        es.json(Method::GET, &["_connector"], &[], None)
            .await
            .map(|_| ()),
    )
}

/// How an answer to `GET /_connector` reads.
pub fn classify(answer: Result<(), EsError>) -> Probe {
    let e = match answer {
        Ok(()) => return Probe::Present,
        Err(e) => e,
    };
    if let EsError::Status {
        status,
        kind,
        reason,
        ..
    } = &e
    {
        let no_handler = *status == StatusCode::NOT_FOUND
            || *status == StatusCode::METHOD_NOT_ALLOWED
            || (*status == StatusCode::BAD_REQUEST
                && (reason.starts_with("no handler found")
                    // Without the API the path reads as `GET /<index>`, and `_connector` is no
                    // valid index name.
                    || kind == "invalid_index_name_exception"));
        if no_handler {
            return Probe::Absent;
        }
    }
    Probe::Unknown(e.to_string())
}

/// Decides the mode from the configuration, the cluster's version and the probe.
pub fn decide(
    mode: ApiMode,
    cluster: &ClusterInfo,
    probe: &Probe,
) -> Result<ConnectorApi, ProtocolError> {
    let enabled = match mode {
        ApiMode::True => true,
        ApiMode::False => false,
        ApiMode::Auto => match probe {
            Probe::Present => true,
            Probe::Absent => false,
            Probe::Unknown(cause) => return Err(ProtocolError::Undecided(cause.clone())),
        },
    };
    if enabled && !cluster.has(CONNECTOR_API_SINCE) {
        tracing::warn!(cluster = %cluster, "the _connector API needs elasticsearch 8.12 or later");
    }
    Ok(ConnectorApi {
        enabled,
        claim: enabled && cluster.has(CLAIM_API_SINCE),
        filtering: enabled && cluster.has(FILTERING_API_SINCE),
        stats_metadata: enabled && cluster.has(CLAIM_API_SINCE),
    })
}

/// Whether an error says the cluster has no handler for the request (an endpoint of a later
/// version): `400 no handler found`, 404 without an Elasticsearch error type, or 405.
pub fn is_missing_endpoint(e: &EsError) -> bool {
    match e {
        EsError::Status {
            status,
            kind,
            reason,
            ..
        } => {
            *status == StatusCode::METHOD_NOT_ALLOWED
                || (*status == StatusCode::BAD_REQUEST && reason.starts_with("no handler found"))
                || (*status == StatusCode::NOT_FOUND && kind == "error")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, kind: &str, reason: &str) -> Result<(), EsError> {
        Err(EsError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            method: "GET".into(),
            path: "/_connector".into(),
            kind: kind.into(),
            reason: reason.into(),
        })
    }

    #[test]
    fn only_a_missing_handler_means_absent() {
        assert_eq!(classify(Ok(())), Probe::Present);
        // What a node without the API answers (checked against a real 9.5 node).
        assert_eq!(
            classify(status(
                400,
                "invalid_index_name_exception",
                "Invalid index name [_connector], must not start with '_'."
            )),
            Probe::Absent
        );
        assert_eq!(
            classify(status(
                400,
                "error",
                "no handler found for uri [/_connector] and method [GET]"
            )),
            Probe::Absent
        );
        assert_eq!(classify(status(404, "error", "")), Probe::Absent);
        assert_eq!(classify(status(405, "error", "")), Probe::Absent);
        for (code, kind) in [
            (403, "security_exception"),
            (401, "security_exception"),
            (503, "unavailable_shards_exception"),
            (500, "error"),
            (400, "illegal_argument_exception"),
        ] {
            assert!(
                matches!(classify(status(code, kind, "x")), Probe::Unknown(_)),
                "{code} {kind}"
            );
        }
        let timeout = Err(EsError::Transport {
            method: "GET".into(),
            path: "/_connector".into(),
            cause: "operation timed out".into(),
        });
        assert!(matches!(classify(timeout), Probe::Unknown(_)));
    }

    #[test]
    fn auto_decides_only_on_proof() {
        let v9 = ClusterInfo::elasticsearch("9.5.4");
        let api = decide(ApiMode::Auto, &v9, &Probe::Present).unwrap();
        assert_eq!(
            api,
            ConnectorApi {
                enabled: true,
                claim: true,
                filtering: true,
                stats_metadata: true
            }
        );
        let direct = decide(ApiMode::Auto, &v9, &Probe::Absent).unwrap();
        assert_eq!(direct, ConnectorApi::default());
        let e = decide(ApiMode::Auto, &v9, &Probe::Unknown("403 Forbidden".into())).unwrap_err();
        assert!(e.to_string().contains("403 Forbidden"), "{e}");
        // Explicit modes never fail on the probe.
        assert!(
            !decide(ApiMode::False, &v9, &Probe::Unknown("x".into()))
                .unwrap()
                .enabled
        );
        assert!(
            decide(ApiMode::True, &v9, &Probe::Unknown("x".into()))
                .unwrap()
                .enabled
        );
    }

    #[test]
    fn younger_endpoints_are_gated_on_their_version() {
        // (version, filtering, claim and stats metadata)
        for (version, filtering, claim) in [
            ("8.12.2", false, false),
            ("8.14.3", true, false),
            ("8.15.0", true, true),
            ("9.0.0", true, true),
        ] {
            let cluster = ClusterInfo::elasticsearch(version);
            let api = decide(ApiMode::True, &cluster, &Probe::Present).unwrap();
            assert!(api.enabled);
            assert_eq!(api.filtering, filtering, "{version}");
            assert_eq!(api.claim, claim, "{version}");
            assert_eq!(api.stats_metadata, claim, "{version}");
        }
    }

    #[test]
    fn missing_endpoints_are_recognised() {
        let e = status(
            400,
            "error",
            "no handler found for uri [/_connector/_sync_job/x/_claim] and method [PUT]",
        )
        .unwrap_err();
        assert!(is_missing_endpoint(&e));
        let e = status(404, "resource_not_found_exception", "job [x] not found").unwrap_err();
        assert!(
            !is_missing_endpoint(&e),
            "a missing job is not a missing endpoint"
        );
        let e = status(400, "x_content_parse_exception", "bad body").unwrap_err();
        assert!(!is_missing_endpoint(&e));
    }
}
