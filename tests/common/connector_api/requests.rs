//! Request parsing and validation per endpoint, as pure functions: what ES's REST handler and
//! request class (x-pack/plugin/ent-search/.../connector/) accept, and the 400 it answers otherwise.
//! Parse errors come first (REST layer), then the request's `validate()`.

use serde_json::{Value, json};

use super::parse::{EsError, Field, Kind, Node, check_object, failed_field, nested, scan};
use super::version::{EsVersion, query_params, unrecognized_params};

/// The body of an endpoint whose spec says `"body": {"required": true}`: ES's
/// `RestRequest.contentParser()` refuses an empty one.
fn required_body(body: &[u8]) -> Result<Node, EsError> {
    if body.is_empty() {
        return Err(EsError::bad_request(
            "parse_exception",
            "request body is required",
        ));
    }
    scan(body)
}

/// Endpoints without a body (check-in, activate): ES's base handler refuses one it did not read.
pub fn no_body(method: &str, target: &str, body: &[u8]) -> Result<(), EsError> {
    if body.is_empty() {
        return Ok(());
    }
    let path = target.split('?').next().unwrap_or("");
    Err(EsError::bad_request(
        "illegal_argument_exception",
        format!("request [{method} {path}] does not support having a body"),
    ))
}

fn string(node: &Node) -> String {
    node.to_value().as_str().unwrap_or_default().to_string()
}

fn field<'n>(fields: &[(&str, &'n Node)], name: &str) -> Option<&'n Node> {
    fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// `POST /_connector/_sync_job` (PostConnectorSyncJobAction.Request).
#[derive(Debug, PartialEq)]
pub struct PostJob {
    pub id: String,
    pub job_type: &'static str,
    pub trigger_method: &'static str,
}

pub fn post_job(body: &[u8]) -> Result<PostJob, EsError> {
    const FIELDS: [Field; 3] = [
        ("id", Kind::Str, true),
        ("job_type", Kind::Str, false),
        ("trigger_method", Kind::Str, false),
    ];
    let node = required_body(body)?;
    let f = check_object(&node, "connector_sync_job_post_request", &FIELDS, false)?;
    let id = field(&f, "id").map(string).unwrap_or_default();
    if id.is_empty() {
        return Err(EsError::validation(&[
            "[id] of the connector cannot be null or empty",
        ]));
    }
    // Both enums match case-insensitively; an unknown value counts as absent (the default).
    let pick = |name: &str, options: &[&'static str], default: &'static str| {
        let given = field(&f, name).map(string).unwrap_or_default();
        options
            .iter()
            .find(|o| o.eq_ignore_ascii_case(&given))
            .copied()
            .unwrap_or(default)
    };
    Ok(PostJob {
        id,
        job_type: pick(
            "job_type",
            &["full", "incremental", "access_control"],
            "full",
        ),
        trigger_method: pick("trigger_method", &["on_demand", "scheduled"], "on_demand"),
    })
}

/// `PUT /_connector/_sync_job/{id}/_claim` (ClaimConnectorSyncJobAction.Request).
#[derive(Debug, PartialEq)]
pub struct Claim {
    pub worker_hostname: String,
    pub sync_cursor: Option<Value>,
}

pub fn claim(body: &[u8]) -> Result<Claim, EsError> {
    const FIELDS: [Field; 2] = [
        ("worker_hostname", Kind::Str, true),
        ("sync_cursor", Kind::Object, false),
    ];
    let node = required_body(body)?;
    let f = check_object(&node, "claim_connector_sync_job", &FIELDS, false)?;
    Ok(Claim {
        worker_hostname: field(&f, "worker_hostname").map(string).unwrap_or_default(),
        sync_cursor: field(&f, "sync_cursor").map(Node::to_value),
    })
}

/// `PUT /_connector/_sync_job/{id}/_stats` (UpdateConnectorSyncJobIngestionStatsAction.Request):
/// the fields to write to the job. `metadata` is known from 8.15 on; before, it is an unknown field.
pub fn stats(body: &[u8], version: &EsVersion) -> Result<Value, EsError> {
    const FIELDS: [Field; 6] = [
        ("deleted_document_count", Kind::Long, true),
        ("indexed_document_count", Kind::Long, true),
        ("indexed_document_volume", Kind::Long, true),
        ("total_document_count", Kind::Long, false),
        ("last_seen", Kind::ObjectOrString, false),
        ("metadata", Kind::Object, false),
    ];
    let declared = if version.at_least(8, 15) {
        &FIELDS[..]
    } else {
        &FIELDS[..5]
    };
    let node = required_body(body)?;
    let f = check_object(
        &node,
        "connector_sync_job_update_ingestion_stats",
        declared,
        false,
    )?;
    let long = |name: &str| {
        field(&f, name).map(|n| match n.to_value() {
            Value::String(s) => s.trim().parse::<f64>().map_or(0, |x| x as i64),
            v => v.as_f64().map_or(0, |x| x as i64),
        })
    };
    let mut errors = Vec::new();
    let mut doc = json!({});
    for name in [
        "deleted_document_count",
        "indexed_document_count",
        "indexed_document_volume",
    ] {
        let n = long(name).unwrap_or_default();
        if n < 0 {
            errors.push(format!("[{name}] cannot be negative."));
        }
        doc[name] = json!(n);
    }
    if let Some(n) = long("total_document_count") {
        if n < 0 {
            errors.push("[total_document_count] cannot be negative.".to_string());
        }
        doc["total_document_count"] = json!(n);
    }
    if !errors.is_empty() {
        let errors: Vec<&str> = errors.iter().map(String::as_str).collect();
        return Err(EsError::validation(&errors));
    }
    if let Some(n) = field(&f, "last_seen") {
        let v = n.to_value();
        let ok = v
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok());
        if !ok {
            let parser = "connector_sync_job_update_ingestion_stats";
            return Err(failed_field(n.pos(), parser, "last_seen"));
        }
        doc["last_seen"] = v;
    }
    if let Some(n) = field(&f, "metadata") {
        doc["metadata"] = n.to_value();
    }
    Ok(doc)
}

/// `PUT /_connector/{id}/_filtering/_validation` (UpdateConnectorFilteringValidationAction.Request):
/// the `validation` object, `{"errors":[{"ids":[..],"messages":[..]}],"state":"valid"|..}`. The
/// inner parsers (FilteringValidationInfo, FilteringValidation) ignore unknown fields.
pub fn filtering_validation(body: &[u8]) -> Result<Value, EsError> {
    const OUTER: &str = "connector_update_filtering_validation";
    const INFO: [Field; 2] = [
        ("errors", Kind::ObjectArray, true),
        ("state", Kind::Str, true),
    ];
    const ERROR: [Field; 2] = [
        ("ids", Kind::StringArray, true),
        ("messages", Kind::StringArray, true),
    ];
    let node = required_body(body)?;
    let f = check_object(&node, OUTER, &[("validation", Kind::Object, true)], false)?;
    let validation = field(&f, "validation").expect("required");
    let info = check_object(validation, "filtering_validation_info", &INFO, true)
        .map_err(|e| nested(e, validation, OUTER, "validation"))?;
    let errors = field(&info, "errors").expect("required");
    let items: Vec<&Node> = match errors {
        Node::Array(items, _) => items.iter().collect(),
        one => vec![one],
    };
    for item in items {
        check_object(item, "connector_filtering_validation", &ERROR, true)
            .map_err(|e| nested(e, item, "filtering_validation_info", "errors"))
            .map_err(|e| nested(e, validation, OUTER, "validation"))?;
    }
    let state = field(&info, "state").map(string).unwrap_or_default();
    if !["edited", "invalid", "valid"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&state))
    {
        let state_node = field(&info, "state").expect("required");
        let cause = EsError::bad_request(
            "illegal_argument_exception",
            format!("Unknown FilteringValidationState: {state}"),
        );
        let inner = failed_field(state_node.pos(), "filtering_validation_info", "state");
        let inner = inner.caused_by(cause);
        return Err(nested(inner, validation, OUTER, "validation"));
    }
    let mut v = validation.to_value();
    v["state"] = json!(state.to_ascii_lowercase());
    Ok(v)
}

/// `GET /_connector` query parameters (RestListConnectorAction).
#[derive(Debug, PartialEq, Default)]
pub struct ListParams {
    pub from: i64,
    pub size: i64,
    pub index_name: Vec<String>,
    pub connector_name: Vec<String>,
    pub service_type: Vec<String>,
    pub query: Option<String>,
    pub include_deleted: bool,
}

pub fn list_params(target: &str) -> Result<ListParams, EsError> {
    const KNOWN: [&str; 7] = [
        "connector_name",
        "from",
        "include_deleted",
        "index_name",
        "query",
        "service_type",
        "size",
    ];
    if let Some(e) = unrecognized_params(target, &KNOWN) {
        return Err(e);
    }
    let mut p = ListParams {
        size: 100,
        ..ListParams::default()
    };
    for (k, v) in query_params(target) {
        let int = || {
            v.parse::<i64>().map_err(|_| {
                EsError::bad_request(
                    "illegal_argument_exception",
                    format!("Failed to parse int parameter [{k}] with value [{v}]"),
                )
            })
        };
        let list = || v.split(',').map(str::to_string).collect::<Vec<_>>();
        match k.as_str() {
            "from" => p.from = int()?,
            "size" => p.size = int()?,
            "index_name" => p.index_name = list(),
            "connector_name" => p.connector_name = list(),
            "service_type" => p.service_type = list(),
            "query" => p.query = Some(v.clone()),
            "include_deleted" => p.include_deleted = v.is_empty() || v == "true",
            _ => {}
        }
    }
    Ok(p)
}
