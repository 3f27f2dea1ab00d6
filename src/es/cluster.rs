//! What the cluster is: its distribution and version, read once at start-up.
//!
//! `GET /` answers on every production cluster. Elasticsearch's minimal distributions (the one our
//! tests run) ship without the module that serves it and answer 405, so we then ask the node itself
//! (`GET /_nodes/_local`), which the `monitor` privilege Kibana grants also covers. The version gates
//! the `_connector` endpoints that appeared after the API itself (see `docs/protocol.md`).

use super::client::{EsClient, Retry};
use super::error::EsError;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::fmt;

/// A version number, compared on (major, minor, patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses `"8.15.0"`, `"9.2.0-SNAPSHOT"`, `"8"`; `None` when the major is not a number.
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.split(['-', '+']).next().unwrap_or("");
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let major = parts.next().flatten()?;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Self::new(major, minor, patch))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The first version with the `_connector` API (check-in, job creation, stats, filtering).
pub const CONNECTOR_API_SINCE: Version = Version::new(8, 12, 0);
/// The first version with `PUT /_connector/<id>/_filtering/_validation` and `_activate`.
pub const FILTERING_API_SINCE: Version = Version::new(8, 14, 0);
/// The first version with `PUT /_connector/_sync_job/<id>/_claim`, and whose `_stats` takes `metadata`.
pub const CLAIM_API_SINCE: Version = Version::new(8, 15, 0);

/// The cluster as found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// `elasticsearch`, `opensearch`, …
    pub distribution: String,
    /// The version as the cluster reports it (`"unknown"` when it does not).
    pub number: String,
    /// Serverless projects report no meaningful version and have every API.
    pub serverless: bool,
}

impl ClusterInfo {
    /// From the body of `GET /`.
    pub fn from_root(info: &Value) -> Self {
        let version = &info["version"];
        Self {
            distribution: version["distribution"]
                .as_str()
                .unwrap_or("elasticsearch")
                .to_string(),
            number: version["number"].as_str().unwrap_or("unknown").to_string(),
            serverless: version["build_flavor"].as_str() == Some("serverless"),
        }
    }

    /// A cluster known only by its version (tests, and the `_nodes` fallback).
    pub fn elasticsearch(number: &str) -> Self {
        Self {
            distribution: "elasticsearch".into(),
            number: number.into(),
            serverless: false,
        }
    }

    pub fn version(&self) -> Option<Version> {
        Version::parse(&self.number)
    }

    pub fn is_elasticsearch(&self) -> bool {
        self.distribution == "elasticsearch"
    }

    /// Whether an API introduced in `since` can exist here. Unknown versions and serverless are
    /// given the benefit of the doubt: the call itself then tells (see `protocol`).
    pub fn has(&self, since: Version) -> bool {
        self.serverless || self.version().is_none_or(|v| v >= since)
    }
}

impl fmt::Display for ClusterInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.serverless {
            write!(f, "{} serverless", self.distribution)
        } else {
            write!(f, "{} {}", self.distribution, self.number)
        }
    }
}

impl EsClient {
    /// One attempt to learn what the cluster is (the preflight wait loop retries).
    pub async fn cluster_info_once(&self) -> Result<ClusterInfo, EsError> {
        match self.send(Method::GET, &[], &[], None, Retry::Never).await {
            Ok((_, bytes)) => Ok(ClusterInfo::from_root(&decode_json(&bytes, "/")?)),
            Err(e) if root_not_served(&e) => self.node_info_once().await,
            Err(e) => Err(e),
        }
    }

    async fn node_info_once(&self) -> Result<ClusterInfo, EsError> {
        let query = [("filter_path", "nodes.*.version".to_string())];
        let (_, bytes) = self
            .send(
                Method::GET,
                &["_nodes", "_local"],
                &query,
                None,
                Retry::Never,
            )
            .await?;
        let body = decode_json(&bytes, "/_nodes/_local")?;
        let number = body["nodes"]
            .as_object()
            .and_then(|nodes| nodes.values().next())
            .and_then(|node| node["version"].as_str())
            .ok_or_else(|| EsError::Decode {
                path: "/_nodes/_local".into(),
                cause: "no node version in the answer".into(),
            })?;
        Ok(ClusterInfo::elasticsearch(number))
    }
}

/// `GET /` is served by an optional module: without it Elasticsearch answers 405 (another method
/// is routed for `/`), 404 or "no handler found".
fn root_not_served(e: &EsError) -> bool {
    match e {
        EsError::Status { status, reason, .. } => {
            *status == StatusCode::METHOD_NOT_ALLOWED
                || *status == StatusCode::NOT_FOUND
                || (*status == StatusCode::BAD_REQUEST && reason.starts_with("no handler found"))
        }
        _ => false,
    }
}

fn decode_json(bytes: &[u8], path: &str) -> Result<Value, EsError> {
    serde_json::from_slice(bytes).map_err(|e| EsError::Decode {
        path: path.into(),
        cause: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_parse_and_compare() {
        assert_eq!(Version::parse("8.15.0"), Some(Version::new(8, 15, 0)));
        assert_eq!(
            Version::parse("9.2.0-SNAPSHOT"),
            Some(Version::new(9, 2, 0))
        );
        assert_eq!(Version::parse("8"), Some(Version::new(8, 0, 0)));
        assert_eq!(Version::parse("unknown"), None);
        assert!(Version::new(8, 14, 3) < CLAIM_API_SINCE);
        assert!(Version::new(8, 15, 0) >= CLAIM_API_SINCE);
        assert!(Version::new(9, 0, 0) > Version::new(8, 19, 21));
    }

    #[test]
    fn api_gates_follow_the_version() {
        let old = ClusterInfo::elasticsearch("8.14.3");
        assert!(old.has(CONNECTOR_API_SINCE));
        assert!(!old.has(CLAIM_API_SINCE));
        assert!(!ClusterInfo::elasticsearch("8.11.4").has(CONNECTOR_API_SINCE));
        assert!(ClusterInfo::elasticsearch("9.5.4").has(CLAIM_API_SINCE));
        let serverless = ClusterInfo::from_root(
            &json!({"version": {"number": "8.11.0", "build_flavor": "serverless"}}),
        );
        assert!(serverless.has(CLAIM_API_SINCE));
        assert_eq!(serverless.to_string(), "elasticsearch serverless");
    }

    #[test]
    fn root_info_is_read() {
        let os = ClusterInfo::from_root(
            &json!({"version": {"number": "3.8.0", "distribution": "opensearch"}}),
        );
        assert!(!os.is_elasticsearch());
        assert_eq!(os.to_string(), "opensearch 3.8.0");
    }

    #[test]
    fn a_missing_root_handler_is_recognised() {
        let status = |code: u16, reason: &str| EsError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            method: "GET".into(),
            path: "/".into(),
            kind: "error".into(),
            reason: reason.into(),
        };
        assert!(root_not_served(&status(
            405,
            "Incorrect HTTP method for uri [/] and method [GET], allowed: [DELETE]"
        )));
        assert!(root_not_served(&status(
            400,
            "no handler found for uri [/] and method [GET]"
        )));
        assert!(!root_not_served(&status(401, "unable to authenticate")));
        assert!(!root_not_served(&status(503, "")));
    }
}
