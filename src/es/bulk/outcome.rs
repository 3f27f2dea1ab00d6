//! What one bulk response item means for its operation.

use crate::retry::transient_status;
use serde::Deserialize;
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

/// A `_bulk` response: one item per operation, in order. Only what the sink reads is decoded; the
/// rest of each item (`_index`, `_version`, `_shards`…) is skipped without being built.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BulkResponse {
    #[serde(default)]
    pub items: Vec<BulkItem>,
}

/// One entry of `items`: `{"<action>": {status, result | error}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkItem {
    /// The action the answer is for (`index`, `delete`…).
    pub action: String,
    pub status: u16,
    pub result: Option<String>,
    /// Boxed: most items have none, and an unboxed error would triple the size of every item a
    /// `_bulk` answer's vector holds and moves.
    pub error: Option<Box<ItemError>>,
}

/// An item's `error`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ItemError {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub reason: Option<String>,
    /// The error's other fields (`index_uuid`, `caused_by`…), shown when there is no reason.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct ItemBody {
    #[serde(default)]
    status: u16,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    error: Option<Box<ItemError>>,
}

impl<'de> Deserialize<'de> for BulkItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = BulkItem;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a bulk response item: an object with one action key")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<BulkItem, A::Error> {
                let (action, body): (String, ItemBody) = map
                    .next_entry()?
                    .ok_or_else(|| serde::de::Error::custom("empty bulk response item"))?;
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(BulkItem {
                    action,
                    status: body.status,
                    result: body.result,
                    error: body.error,
                })
            }
        }
        d.deserialize_map(Visitor)
    }
}

impl BulkItem {
    /// An answer built by hand (tests, in-memory indices).
    pub fn new(action: &str, status: u16, result: Option<&str>, error: Option<ItemError>) -> Self {
        Self {
            action: action.into(),
            status,
            result: result.map(str::to_string),
            error: error.map(Box::new),
        }
    }
}

/// Whether an item failed because the request's ingest pipeline does not exist. Elasticsearch
/// answers so per item: 400, `illegal_argument_exception`, "pipeline with id [<name>] does not exist".
pub fn names_missing_pipeline(item: &BulkItem, pipeline: &str) -> bool {
    let Some(error) = &item.error else {
        return false;
    };
    error.kind.as_deref() == Some("illegal_argument_exception")
        && error.reason.as_deref()
            == Some(format!("pipeline with id [{pipeline}] does not exist").as_str())
}

/// Classifies one entry of a bulk response's `items`.
pub fn classify(item: &BulkItem) -> ItemOutcome {
    let status = item.status;
    if let Some(error) = &item.error {
        let kind = error.kind.as_deref().unwrap_or("error");
        let reason = match &error.reason {
            Some(r) => format!("{kind}: {r}"),
            None => serde_json::Value::Object(error.rest.clone()).to_string(),
        };
        let transient = transient_status(status) || kind == "es_rejected_execution_exception";
        return if transient {
            ItemOutcome::Retry { status, reason }
        } else {
            ItemOutcome::Failure { status, reason }
        };
    }
    match item.result.as_deref() {
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

    fn item(v: Value) -> BulkItem {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn classifies_items() {
        assert_eq!(
            classify(&item(
                json!({"index": {"status": 201, "result": "created"}})
            )),
            ItemOutcome::Success
        );
        assert!(matches!(
            classify(&item(
                json!({"index": {"status": 429, "error": {"type": "x", "reason": "busy"}}})
            )),
            ItemOutcome::Retry { status: 429, .. }
        ));
        assert!(matches!(
            classify(&item(
                json!({"index": {"status": 400, "error": {"type": "es_rejected_execution_exception"}}})
            )),
            ItemOutcome::Retry { .. }
        ));
        let failed = classify(&item(
            json!({"index": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "bad"}}}),
        ));
        assert_eq!(
            failed,
            ItemOutcome::Failure {
                status: 400,
                reason: "mapper_parsing_exception: bad".into()
            }
        );
        assert_eq!(
            classify(&item(
                json!({"delete": {"status": 404, "result": "not_found"}})
            )),
            ItemOutcome::Success
        );
    }

    #[test]
    fn a_real_response_decodes_to_what_the_sink_reads() {
        // Elasticsearch 9.5's answer to one index and one failed delete, fields and all.
        let body = json!({"errors": true, "took": 3, "items": [
            {"index": {"_index": "x", "_id": "1", "_version": 1, "result": "created",
                       "_shards": {"total": 2, "successful": 1, "failed": 0},
                       "_seq_no": 0, "_primary_term": 1, "status": 201}},
            {"delete": {"_index": "x", "_id": "2", "status": 503,
                        "error": {"type": "unavailable_shards_exception", "index_uuid": "u"}}}]});
        let r: BulkResponse = serde_json::from_value(body).unwrap();
        assert_eq!(
            r.items[0],
            BulkItem::new("index", 201, Some("created"), None)
        );
        assert_eq!(r.items[1].action, "delete");
        assert_eq!(
            classify(&r.items[1]),
            ItemOutcome::Retry {
                status: 503,
                reason: r#"{"index_uuid":"u"}"#.into()
            }
        );
    }

    #[test]
    fn a_missing_pipeline_is_recognised_by_name() {
        // What Elasticsearch 9.5 answers for `_bulk?pipeline=search-default-ingestion` without it.
        let missing = item(
            json!({"index": {"_index": "pt", "_id": "1", "status": 400, "error": {
            "type": "illegal_argument_exception",
            "reason": "pipeline with id [search-default-ingestion] does not exist"}}}),
        );
        assert!(names_missing_pipeline(&missing, "search-default-ingestion"));
        assert!(!names_missing_pipeline(&missing, "other"));
        let ok = item(json!({"index": {"status": 201, "result": "created"}}));
        assert!(!names_missing_pipeline(&ok, "search-default-ingestion"));
    }
}
