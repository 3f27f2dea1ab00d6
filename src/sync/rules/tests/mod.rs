//! Unit tests of the sync-rules library.

mod basic;
mod validation;

use serde_json::{Value, json};

/// A basic rule as Kibana writes it.
fn rule(id: &str, order: i64, policy: &str, field: &str, kind: &str, value: &str) -> Value {
    json!({
        "id": id, "order": order, "policy": policy, "field": field, "rule": kind, "value": value,
        "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z"
    })
}

/// The catch-all rule Kibana/ES create.
fn default_rule() -> Value {
    json!({"id":"DEFAULT","order":0,"policy":"include","field":"_","rule":"regex","value":".*"})
}

/// A filtering object with these basic rules and an empty advanced snippet.
fn filtering(rules: Vec<Value>) -> Value {
    json!({
        "rules": rules,
        "advanced_snippet": {"value": {}, "created_at": null, "updated_at": null},
        "validation": {"state": "edited", "errors": []}
    })
}

/// A filtering object with only the default rule and this advanced snippet value.
fn advanced_filtering(value: Value) -> Value {
    json!({
        "rules": [default_rule()],
        "advanced_snippet": {"value": value},
        "validation": {"state": "edited", "errors": []}
    })
}
