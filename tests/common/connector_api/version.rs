//! Which Elasticsearch version the double pretends to be: the `_connector` endpoints that version
//! has, what it answers on `GET /`, and how a node answers a route it has no handler for.

use serde_json::{Value, json};

use super::parse::EsError;

/// `major.minor.patch` (a `-SNAPSHOT`-style suffix is kept for `GET /` but ignored in comparisons).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EsVersion {
    pub number: String,
    parts: (u32, u32, u32),
}

impl EsVersion {
    /// Panics on anything but `X.Y.Z[-suffix]`: a typo in a test should fail loudly.
    pub fn parse(number: &str) -> EsVersion {
        let core = number.split('-').next().unwrap_or("");
        let nums: Vec<u32> = core
            .split('.')
            .map(|p| {
                p.parse()
                    .unwrap_or_else(|_| panic!("bad ES version {number:?}"))
            })
            .collect();
        let [major, minor, patch] = nums[..] else {
            panic!("ES version must be X.Y.Z, got {number:?}");
        };
        EsVersion {
            number: number.to_string(),
            parts: (major, minor, patch),
        }
    }

    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.parts.0, self.parts.1) >= (major, minor)
    }

    /// The version a test world's double reports unless told otherwise.
    pub fn current() -> EsVersion {
        EsVersion::parse("9.5.4")
    }

    /// The `GET /` body of a node of this version (a default, non-serverless build).
    pub fn root_info(&self) -> Value {
        let (wire, index) = if self.parts.0 >= 9 {
            ("8.19.0", "8.0.0")
        } else {
            ("7.17.0", "7.0.0")
        };
        json!({
            "name": "connector-api-double",
            "cluster_name": "content-sync-tests",
            "cluster_uuid": "Y29ubmVjdG9yLWRvdWJsZQ",
            "version": {
                "number": self.number,
                "build_flavor": "default",
                "build_type": "tar",
                "build_hash": "0000000000000000000000000000000000000000",
                "build_date": "2026-01-01T00:00:00.000000000Z",
                "build_snapshot": self.number.ends_with("-SNAPSHOT"),
                "minimum_wire_compatibility_version": wire,
                "minimum_index_compatibility_version": index,
            },
            "tagline": "You Know, for Search",
        })
    }
}

/// The `_connector` endpoints the double serves, each named after its REST specification file
/// (rest-api-spec/src/main/resources/rest-api-spec/api/<spec>.json in elastic/elasticsearch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /_connector` (connector.list)
    List,
    /// `PUT /_connector/{connector_id}/_check_in` (connector.check_in)
    CheckIn,
    /// `POST /_connector/_sync_job` (connector.sync_job_post)
    SyncJobPost,
    /// `PUT /_connector/_sync_job/{connector_sync_job_id}/_claim` (connector.sync_job_claim)
    SyncJobClaim,
    /// `PUT /_connector/_sync_job/{connector_sync_job_id}/_stats` (connector.sync_job_update_stats)
    SyncJobStats,
    /// `PUT /_connector/{connector_id}/_filtering/_validation` (connector.update_filtering_validation)
    FilteringValidation,
    /// `PUT /_connector/{connector_id}/_filtering/_activate` (connector.update_active_filtering)
    FilteringActivate,
}

impl Endpoint {
    /// The spec's only method for this endpoint.
    pub fn method(self) -> &'static str {
        match self {
            Endpoint::List => "GET",
            Endpoint::SyncJobPost => "POST",
            _ => "PUT",
        }
    }

    /// The first release with the endpoint: the connector APIs shipped in 8.12, the filtering
    /// validation/activation pair in 8.14, claim in 8.15.
    pub fn since(self) -> (u32, u32) {
        match self {
            Endpoint::FilteringValidation | Endpoint::FilteringActivate => (8, 14),
            Endpoint::SyncJobClaim => (8, 15),
            _ => (8, 12),
        }
    }

    /// Matches a path (segments, no query string) to an endpoint and its path parameter.
    pub fn route<'a>(segments: &[&'a str]) -> Option<(Endpoint, Option<&'a str>)> {
        Some(match segments {
            ["_connector"] => (Endpoint::List, None),
            ["_connector", "_sync_job"] => (Endpoint::SyncJobPost, None),
            ["_connector", "_sync_job", id, "_claim"] => (Endpoint::SyncJobClaim, Some(*id)),
            ["_connector", "_sync_job", id, "_stats"] => (Endpoint::SyncJobStats, Some(*id)),
            ["_connector", "_sync_job", ..] => return None,
            ["_connector", id, "_check_in"] => (Endpoint::CheckIn, Some(*id)),
            ["_connector", id, "_filtering", "_validation"] => {
                (Endpoint::FilteringValidation, Some(*id))
            }
            ["_connector", id, "_filtering", "_activate"] => {
                (Endpoint::FilteringActivate, Some(*id))
            }
            _ => return None,
        })
    }
}

/// Path segments of a request target, without the query string.
pub fn segments(target: &str) -> Vec<&str> {
    let path = target.split('?').next().unwrap_or("");
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Query parameter names of a request target.
pub fn query_params(target: &str) -> Vec<(String, String)> {
    let Some((_, query)) = target.split_once('?') else {
        return vec![];
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Parameters every REST handler accepts (`pretty`, `filter_path`, ...).
const RESPONSE_PARAMS: [&str; 4] = ["error_trace", "filter_path", "human", "pretty"];

/// `request [/path] contains unrecognized parameter(s): [a], [b]` (400), as ES's base REST handler
/// answers parameters no handler consumed. Suggestions are left out.
pub fn unrecognized_params(target: &str, known: &[&str]) -> Option<EsError> {
    let path = target.split('?').next().unwrap_or("");
    let mut unknown: Vec<String> = query_params(target)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !known.contains(&k.as_str()) && !RESPONSE_PARAMS.contains(&k.as_str()))
        .collect();
    unknown.sort();
    unknown.dedup();
    if unknown.is_empty() {
        return None;
    }
    let list: Vec<String> = unknown.iter().map(|k| format!("[{k}]")).collect();
    let noun = if list.len() == 1 {
        "parameter"
    } else {
        "parameters"
    };
    Some(EsError::bad_request(
        "illegal_argument_exception",
        format!(
            "request [{path}] contains unrecognized {noun}: {}",
            list.join(", ")
        ),
    ))
}

/// What a node without the endpoint answers (checked against a real 9.5.4 node, which lacks the
/// `_connector` API): `GET /_connector` falls to the get-index route (`_connector` is then an invalid
/// index name, or the list parameters are unrecognized), every other connector route has no handler.
pub fn absent_answer(method: &str, target: &str) -> (u16, String) {
    if method == "GET" && segments(target) == ["_connector"] {
        const GET_INDEX_PARAMS: [&str; 8] = [
            "allow_no_indices",
            "expand_wildcards",
            "features",
            "flat_settings",
            "ignore_unavailable",
            "include_defaults",
            "local",
            "master_timeout",
        ];
        if let Some(e) = unrecognized_params(target, &GET_INDEX_PARAMS) {
            return e.answer();
        }
        let mut e = EsError::bad_request(
            "invalid_index_name_exception",
            "Invalid index name [_connector], must not start with '_'.",
        );
        e.extra = vec![
            ("index_uuid", "_na_".into()),
            ("index", "_connector".into()),
        ];
        return e.answer();
    }
    no_handler(method, target)
}

/// `{"error":"no handler found for uri [..] and method [..]"}` (400, no `status` field).
pub fn no_handler(method: &str, target: &str) -> (u16, String) {
    let error = format!("no handler found for uri [{target}] and method [{method}]");
    (400, json!({ "error": error }).to_string())
}

/// `{"error":"Incorrect HTTP method for uri [..] and method [..], allowed: [..]","status":405}`.
pub fn wrong_method(method: &str, target: &str, allowed: &str) -> (u16, String) {
    let error = format!(
        "Incorrect HTTP method for uri [{target}] and method [{method}], allowed: [{allowed}]"
    );
    (405, json!({"error": error, "status": 405}).to_string())
}
