//! `BasicRules`: evaluation semantics of docs/protocol.md#sync-rules.

use super::{default_rule, filtering, rule};
use crate::sync::rules::{BasicRules, RuleError};
use serde_json::{Map, Value, json};

/// A document as the sync produces it (docs/architecture.md#the-s3-source fields, `id`, pipeline flags).
fn doc() -> Map<String, Value> {
    json!({
        "id": "d0295955cdb6d488a4a1d3f10dbf141b",
        "filename": "reports/2024/q1.PDF",
        "size_in_bytes": 1234,
        "bucket": "invoices",
        "owner": null,
        "storage_class": "STANDARD",
        "_timestamp": "2024-01-02T03:04:05+00:00",
        "_extract_binary_content": true,
        "_reduce_whitespace": true,
        "_run_ml_inference": false,
        "ratio": 1.5
    })
    .as_object()
    .unwrap()
    .clone()
}

fn rules(list: Vec<Value>) -> BasicRules {
    BasicRules::from_filtering(&filtering(list)).unwrap()
}

/// Whether one include rule (before an exclude-everything-else fallback) matches the document.
fn matches(field: &str, kind: &str, value: &str) -> bool {
    let r = rules(vec![rule("r", 0, "include", field, kind, value)]);
    // With a single include rule, "no match" also includes; use an exclude rule instead.
    let x = rules(vec![rule("r", 0, "exclude", field, kind, value)]);
    let (inc, exc) = (r.includes(&doc()).unwrap(), x.includes(&doc()).unwrap());
    assert!(inc, "an include rule or no match both include");
    !exc
}

fn raises(field: &str, kind: &str, value: &str) -> RuleError {
    rules(vec![rule("r", 0, "exclude", field, kind, value)])
        .includes(&doc())
        .unwrap_err()
}

#[test]
fn string_rules() {
    assert!(matches("filename", "starts_with", "reports/"));
    assert!(!matches("filename", "starts_with", "Reports/"));
    assert!(matches("filename", "ends_with", ".PDF"));
    assert!(!matches("filename", "ends_with", ".pdf"));
    assert!(matches("filename", "contains", "2024/"));
    assert!(!matches("filename", "contains", "2025"));
    assert!(matches("bucket", "equals", "invoices"));
    assert!(!matches("bucket", "equals", "Invoices"));
    assert!(!matches("bucket", "equals", "invoice"));
}

#[test]
fn regex_is_python_re_match() {
    // Anchored at the start only: a prefix match.
    assert!(matches("filename", "regex", "reports/"));
    assert!(matches("filename", "regex", "rep"));
    assert!(!matches("filename", "regex", "2024"));
    assert!(matches("filename", "regex", ".*2024"));
    assert!(!matches("filename", "regex", "q1\\.PDF$"));
    assert!(matches("filename", "regex", ".*q1\\.PDF$"));
    assert!(!matches("filename", "regex", ".*q1\\.pdf$"));
    assert!(matches("filename", "regex", "(?i).*q1\\.pdf$"));
    assert!(matches("filename", "regex", "x|reports"));
    assert!(matches("size_in_bytes", "regex", "\\d{4}"));
}

#[test]
fn string_rules_use_python_str_of_the_value() {
    assert!(matches("size_in_bytes", "starts_with", "12"));
    assert!(matches("size_in_bytes", "contains", "23"));
    assert!(!matches("owner", "equals", "None"));
    assert!(matches("owner", "starts_with", "None"));
    assert!(!matches("_reduce_whitespace", "equals", "True"));
    assert!(matches("_reduce_whitespace", "starts_with", "Tr"));
    assert!(matches("_run_ml_inference", "ends_with", "alse"));
    assert!(matches("ratio", "starts_with", "1.5"));
}

#[test]
fn numbers_are_compared_as_floats() {
    assert!(matches("size_in_bytes", "equals", "1234"));
    assert!(matches("size_in_bytes", "equals", "1234.0"));
    assert!(matches("size_in_bytes", "equals", " 1234 "));
    assert!(matches("size_in_bytes", "equals", "1_234"));
    assert!(matches("size_in_bytes", "equals", "1.234e3"));
    assert!(!matches("size_in_bytes", "equals", "1234.5"));
    assert!(!matches("size_in_bytes", "equals", "big"));
    assert!(matches("size_in_bytes", ">", "1000"));
    assert!(!matches("size_in_bytes", ">", "1234"));
    assert!(matches("size_in_bytes", "<", "1234.5"));
    assert!(!matches("size_in_bytes", "<", "999"));
    // 1234 vs "999" as strings would be the other way round.
    assert!(matches("size_in_bytes", ">", "999"));
    assert!(matches("ratio", ">", "1"));
    assert!(matches("ratio", "<", "inf"));
    assert!(!matches("ratio", "<", "nan"));
    assert!(!matches("ratio", ">", "nan"));
}

#[test]
fn strings_are_compared_by_code_point() {
    assert!(matches("bucket", ">", "a"));
    assert!(matches("bucket", "<", "j"));
    assert!(matches("bucket", ">", "INVOICES"));
    assert!(!matches("bucket", ">", "invoices"));
    assert!(matches("_timestamp", ">", "2024-01-01"));
    assert!(matches("_timestamp", "<", "2024-01-02T04"));
    // A numeric-looking rule value against a string field stays a string comparison.
    assert!(matches("filename", ">", "9"));
}

#[test]
fn non_numeric_value_against_number_raises() {
    let e = raises("size_in_bytes", "<", "big");
    assert_eq!(
        e.to_string(),
        "'<' not supported between instances of 'int' and 'str'"
    );
    let e = raises("ratio", ">", "big");
    assert_eq!(
        e.to_string(),
        "'>' not supported between instances of 'float' and 'str'"
    );
}

#[test]
fn bool_quirk_is_kept() {
    // Elastic compares a bool with the *string* "True"/"False": never equal.
    for v in ["true", "True", "false", "False", "1", "yes"] {
        assert!(!matches("_reduce_whitespace", "equals", v), "{v}");
        assert!(!matches("_run_ml_inference", "equals", v), "{v}");
    }
    let e = raises("_reduce_whitespace", ">", "false");
    assert_eq!(
        e.to_string(),
        "'>' not supported between instances of 'bool' and 'str'"
    );
    let e = raises("owner", "<", "a");
    assert_eq!(
        e.to_string(),
        "'<' not supported between instances of 'NoneType' and 'str'"
    );
}

#[test]
fn missing_field_never_matches() {
    assert!(!matches("author", "equals", "x"));
    assert!(!matches("author", "regex", "x*"));
    // No TypeError either: `<` on a missing field is simply no match.
    assert!(!matches("author", "<", "x"));
    assert!(!matches("Filename", "starts_with", "r"));
}

#[test]
fn first_matching_rule_in_order_decides() {
    let d = doc();
    // List order differs from `order`: the include (order 1) comes before the exclude (order 2).
    let r = rules(vec![
        rule("ex", 2, "exclude", "bucket", "equals", "invoices"),
        rule("in", 1, "include", "filename", "starts_with", "reports/"),
    ]);
    assert_eq!(r.ids().collect::<Vec<_>>(), vec!["in", "ex"]);
    assert!(r.includes(&d).unwrap());
    let r = rules(vec![
        rule("ex", 0, "exclude", "bucket", "equals", "invoices"),
        rule("in", 1, "include", "filename", "starts_with", "reports/"),
    ]);
    assert!(!r.includes(&d).unwrap());
    // A non-matching exclude falls through to the next rule; no match at all includes.
    let r = rules(vec![
        rule("a", 0, "exclude", "bucket", "equals", "other"),
        rule("b", 1, "exclude", "filename", "ends_with", ".tmp"),
    ]);
    assert!(r.includes(&d).unwrap());
    // Equal orders keep list order (stable sort), float orders sort numerically.
    let mut late = rule("late", 0, "exclude", "bucket", "contains", "voice");
    late["order"] = json!(0.5);
    let r = rules(vec![
        rule("x", 1, "include", "bucket", "contains", "inv"),
        rule("y", 1, "exclude", "bucket", "contains", "in"),
        late,
    ]);
    assert_eq!(r.ids().collect::<Vec<_>>(), vec!["late", "x", "y"]);
    assert!(!r.includes(&d).unwrap());
}

#[test]
fn a_rule_that_errors_only_matters_when_reached() {
    let r = rules(vec![
        rule("a", 0, "include", "bucket", "equals", "invoices"),
        rule("b", 1, "exclude", "size_in_bytes", "<", "big"),
    ]);
    assert!(r.includes(&doc()).unwrap());
    let mut other = doc();
    other["bucket"] = json!("other");
    assert!(r.includes(&other).is_err());
}

#[test]
fn default_rule_is_not_evaluated() {
    let only_default = rules(vec![default_rule()]);
    assert!(only_default.is_empty());
    assert_eq!(only_default.len(), 0);
    assert!(only_default.includes(&doc()).unwrap());
    // DEFAULT (order 0, include everything) would win if it were evaluated.
    let r = rules(vec![
        default_rule(),
        rule("ex", 1, "exclude", "bucket", "equals", "invoices"),
    ]);
    assert_eq!(r.len(), 1);
    assert!(!r.includes(&doc()).unwrap());
    // Any rule with id DEFAULT is dropped, whatever it says.
    let r = rules(vec![rule(
        "DEFAULT", 0, "exclude", "bucket", "equals", "invoices",
    )]);
    assert!(r.is_empty());
}

#[test]
fn names_are_case_insensitive() {
    let r = rules(vec![rule(
        "r",
        0,
        "EXCLUDE",
        "filename",
        "Starts_With",
        "reports",
    )]);
    assert!(!r.includes(&doc()).unwrap());
    let r = rules(vec![rule("r", 0, "Exclude", "size_in_bytes", ">", "1")]);
    assert!(!r.includes(&doc()).unwrap());
}

#[test]
fn empty_filtering_includes_everything() {
    for f in [json!({}), json!({"rules": []}), json!({"rules": null})] {
        let r = BasicRules::from_filtering(&f).unwrap();
        assert!(r.is_empty());
        assert!(r.includes(&doc()).unwrap());
    }
}

#[test]
fn from_filtering_errors() {
    let err = |r: Value| BasicRules::from_filtering(&filtering(vec![r])).unwrap_err();
    assert_eq!(
        err(rule(
            "r",
            0,
            "include",
            "size_in_bytes",
            "greater_than",
            "1"
        )),
        RuleError::UnknownRule("greater_than".into())
    );
    assert_eq!(
        err(rule("r", 0, "allow", "size_in_bytes", ">", "1")),
        RuleError::UnknownPolicy("allow".into())
    );
    let mut no_field = rule("r", 0, "include", "x", "equals", "1");
    no_field.as_object_mut().unwrap().remove("field");
    assert_eq!(err(no_field), RuleError::MissingKey("field"));
    assert_eq!(
        err(rule("r", 0, "include", "filename", "regex", "a(")).to_string(),
        "basic rule 'r': invalid regular expression 'a(': unclosed group"
    );
    let mut bad_value = rule("r", 0, "include", "filename", "equals", "x");
    bad_value["value"] = json!(3);
    assert!(matches!(err(bad_value), RuleError::InvalidBasicRule(_)));
    let mut bad_order = rule("r", 0, "include", "filename", "equals", "x");
    bad_order["order"] = json!("1");
    assert!(matches!(err(bad_order), RuleError::InvalidBasicRule(_)));
}
