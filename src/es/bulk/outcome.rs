//! What one bulk response item means for its operation.

use super::op::Op;
use crate::es::retry::transient_status;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    Success,
    /// Throttled or a transient server failure: worth another try.
    Retry {
        status: u16,
        reason: String,
    },
    /// Will not get better by retrying (mapping error, bad id, …).
    Failure {
        status: u16,
        reason: String,
    },
}

/// Whether an item failed because the request's ingest pipeline does not exist. Elasticsearch
/// answers so per item: 400, `illegal_argument_exception`, "pipeline with id [<name>] does not exist".
pub fn names_missing_pipeline(item: &Value, pipeline: &str) -> bool {
    let Some(error) = item
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(|body| body.get("error"))
    else {
        return false;
    };
    error.get("type").and_then(Value::as_str) == Some("illegal_argument_exception")
        && error.get("reason").and_then(Value::as_str)
            == Some(format!("pipeline with id [{pipeline}] does not exist").as_str())
}

/// Classifies one entry of a bulk response's `items`.
pub fn classify(op: &Op, item: &Value) -> ItemOutcome {
    let body = item
        .get(op.kind())
        .or_else(|| item.as_object().and_then(|o| o.values().next()));
    let Some(body) = body else {
        return ItemOutcome::Failure {
            status: 0,
            reason: "missing item in bulk response".into(),
        };
    };
    let status = body.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
    if let Some(error) = body.get("error") {
        let kind = error.get("type").and_then(Value::as_str).unwrap_or("error");
        let reason = match error.get("reason").and_then(Value::as_str) {
            Some(r) => format!("{kind}: {r}"),
            None => error.to_string(),
        };
        let transient = transient_status(status) || kind == "es_rejected_execution_exception";
        return if transient {
            ItemOutcome::Retry { status, reason }
        } else {
            ItemOutcome::Failure { status, reason }
        };
    }
    match body.get("result").and_then(Value::as_str) {
        // A delete of a document that is already gone reached its goal.
        Some("created" | "updated" | "noop" | "deleted" | "not_found") => ItemOutcome::Success,
        Some(other) => ItemOutcome::Failure {
            status,
            reason: format!("non-successful result: {other}"),
        },
        None => ItemOutcome::Failure {
            status,
            reason: "no result in bulk response item".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index_op() -> Op {
        Op::Index {
            id: "1".into(),
            source: b"{}".to_vec(),
            has_attachment: false,
        }
    }

    #[test]
    fn classifies_items() {
        let op = index_op();
        assert_eq!(
            classify(&op, &json!({"index": {"status": 201, "result": "created"}})),
            ItemOutcome::Success
        );
        assert!(matches!(
            classify(
                &op,
                &json!({"index": {"status": 429, "error": {"type": "x", "reason": "busy"}}})
            ),
            ItemOutcome::Retry { status: 429, .. }
        ));
        assert!(matches!(
            classify(
                &op,
                &json!({"index": {"status": 400, "error": {"type": "es_rejected_execution_exception"}}})
            ),
            ItemOutcome::Retry { .. }
        ));
        let failed = classify(
            &op,
            &json!({"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad"}}}),
        );
        assert_eq!(
            failed,
            ItemOutcome::Failure {
                status: 400,
                reason: "mapper_parsing_exception: bad".into()
            }
        );
        let del = Op::Delete { id: "1".into() };
        assert_eq!(
            classify(
                &del,
                &json!({"delete": {"status": 404, "result": "not_found"}})
            ),
            ItemOutcome::Success
        );
    }

    #[test]
    fn a_missing_pipeline_is_recognised_by_name() {
        // What Elasticsearch 9.5 answers for `_bulk?pipeline=search-default-ingestion` without it.
        let item = serde_json::json!({"index": {"_index": "pt", "_id": "1", "status": 400, "error": {
            "type": "illegal_argument_exception",
            "reason": "pipeline with id [search-default-ingestion] does not exist"}}});
        assert!(names_missing_pipeline(&item, "search-default-ingestion"));
        assert!(!names_missing_pipeline(&item, "other"));
        let ok = serde_json::json!({"index": {"status": 201, "result": "created"}});
        assert!(!names_missing_pipeline(&ok, "search-default-ingestion"));
    }
}
