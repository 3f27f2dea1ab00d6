//! `validate`: Elastic's messages, order and raising cases (docs/protocol.md#sync-rules).

use super::{advanced_filtering, default_rule, filtering, rule};
use crate::source::s3::S3Kind;
use crate::sync::rules::validation::schema_error;
use crate::sync::rules::{RuleError, ValidationResult, ValidationState};
use serde_json::{Value, json};

/// Validation for an S3 connector (whose advanced-rules validator is S3's).
fn validate(f: &Value) -> Result<ValidationResult, RuleError> {
    crate::sync::rules::validate(f, &S3Kind::default())
}

/// The (ids, message) pairs of a validation result.
fn errors(f: &Value) -> Vec<(String, String)> {
    let result = validate(f).expect("validation must not raise");
    assert_eq!(
        result.state == ValidationState::Valid,
        result.errors.is_empty()
    );
    result
        .errors
        .into_iter()
        .map(|e| {
            assert_eq!((e.ids.len(), e.messages.len()), (1, 1));
            (e.ids[0].clone(), e.messages[0].clone())
        })
        .collect()
}

fn err(id: &str, message: &str) -> (String, String) {
    (id.to_string(), message.to_string())
}

#[test]
fn verified_example_of_7_8() {
    let f = filtering(vec![
        rule("r1", 0, "include", "bucket", "equals", "b"),
        rule("r2", 1, "exclude", "bucket", "equals", "b"),
        rule("r3", 2, "include", "filename", "regex", ".*"),
    ]);
    let expected: Value = serde_json::from_str(
        r#"{"state":"invalid","errors":[{"ids":["r3"],"messages":["Basic rule 3 (id: 'r...3') uses a match all regexps ['.*', '(.*)'], which are not allowed."]},{"ids":["r2"],"messages":["Basic rule 2 (id: 'r...2') is semantically equal to Basic rule 1 (id: 'r...1')."]},{"ids":["r1"],"messages":["Basic rule 1 (id: 'r...1') is semantically equal to Basic rule 2 (id: 'r...2')."]}]}"#,
    )
    .unwrap();
    let result = validate(&f).unwrap();
    assert!(!result.is_valid());
    assert_eq!(result.to_value(), expected);
    assert_eq!(
        serde_json::to_string(&result).unwrap(),
        expected.to_string()
    );
}

#[test]
fn valid_results_serialize_with_empty_errors() {
    for f in [
        json!({}),
        json!({"rules": null}),
        filtering(vec![]),
        filtering(vec![default_rule()]),
        filtering(vec![
            default_rule(),
            rule("a", 1, "exclude", "filename", "ends_with", ".tmp"),
            rule("b", 2, "INCLUDE", "size_in_bytes", ">", "100"),
            rule("c", 3, "Exclude", "filename", "REGEX", "^tmp/"),
            rule("d", 4, "include", "bucket", "<", "m"),
        ]),
    ] {
        let result = validate(&f).unwrap();
        assert_eq!(
            result.to_value(),
            json!({"state": "valid", "errors": []}),
            "{f}"
        );
    }
}

#[test]
fn schema_messages() {
    let base = rule("r1", 0, "include", "filename", "equals", "x");
    let with = |key: &str, v: Value| {
        let mut r = base.clone();
        r[key] = v;
        r
    };
    let without = |key: &str| {
        let mut r = base.clone();
        r.as_object_mut().unwrap().remove(key);
        r
    };
    let required =
        "data must contain ['id', 'policy', 'field', 'rule', 'value', 'order'] properties";
    let cases: Vec<(Value, &str)> = vec![
        (json!("x"), "data must be object"),
        (without("id"), required),
        (without("order"), required),
        (json!({}), required),
        (with("id", json!(1)), "data.id must be string"),
        (
            with("id", json!("")),
            "data.id must be longer than or equal to 1 characters",
        ),
        (with("policy", json!("keep")), "data.policy must be policy"),
        (with("field", json!(null)), "data.field must be string"),
        (
            with("field", json!("")),
            "data.field must be longer than or equal to 1 characters",
        ),
        (
            with("rule", json!("greater_than")),
            "data.rule must be rule",
        ),
        (with("rule", json!("less_than")), "data.rule must be rule"),
        (with("value", json!(5)), "data.value must be string"),
        (
            with("value", json!("")),
            "data.value must be longer than or equal to 1 characters",
        ),
        (with("order", json!("1")), "data.order must be number"),
        (with("order", json!(true)), "data.order must be number"),
        (with("order", json!(null)), "data.order must be number"),
    ];
    for (r, message) in cases {
        assert_eq!(schema_error(&r).as_deref(), Some(message), "{r}");
    }
    let mut two = with("field", json!(""));
    two["value"] = json!("");
    assert_eq!(
        schema_error(&two).as_deref(),
        Some("data.field must be longer than or equal to 1 characters")
    );
    // Case-insensitive enums, a float order and a non-string policy (format checks only strings).
    assert_eq!(schema_error(&with("rule", json!("Starts_With"))), None);
    assert_eq!(schema_error(&with("policy", json!("EXCLUDE"))), None);
    assert_eq!(schema_error(&with("order", json!(2.5))), None);
    assert_eq!(schema_error(&with("policy", json!(7))), None);
}

#[test]
fn schema_errors_that_do_not_raise_are_reported() {
    let mut empty_value = rule("r1", 0, "include", "filename", "equals", "x");
    empty_value["value"] = json!("");
    let mut bad_order = rule("r2", 1, "include", "bucket", "equals", "x");
    bad_order["order"] = json!("2");
    let mut int_id = rule("r3", 2, "include", "owner", "equals", "x");
    int_id["id"] = json!(7);
    assert_eq!(
        errors(&filtering(vec![
            default_rule(),
            empty_value,
            bad_order,
            int_id
        ])),
        vec![
            err(
                "r1",
                "data.value must be longer than or equal to 1 characters"
            ),
            err("r2", "data.order must be number"),
            err("7", "data.id must be string"),
        ]
    );
}

#[test]
fn unknown_enums_and_missing_keys_raise() {
    let raise = |r: Value| validate(&filtering(vec![default_rule(), r])).unwrap_err();
    let e = raise(rule("r1", 0, "keep", "filename", "equals", "x"));
    assert_eq!(e, RuleError::UnknownPolicy("keep".into()));
    assert_eq!(
        e.to_string(),
        "'keep' is an unknown value for the enum Policy. Allowed policies: Policy.POLICIES"
    );
    let e = raise(rule(
        "r1",
        0,
        "include",
        "size_in_bytes",
        "greater_than",
        "1",
    ));
    assert_eq!(
        e.to_string(),
        "'greater_than' is an unknown value for the enum Rule. Allowed rules: Rule.RULES."
    );
    let mut r = rule("r1", 0, "include", "filename", "equals", "x");
    r.as_object_mut().unwrap().remove("value");
    assert_eq!(raise(r).to_string(), "'value'");
    // from_json reads id, order, policy, field, rule, value: the first problem in that order.
    let mut r = rule("r1", 0, "nope", "filename", "nope", "x");
    r.as_object_mut().unwrap().remove("field");
    assert_eq!(raise(r.clone()), RuleError::UnknownPolicy("nope".into()));
    r["policy"] = json!("include");
    assert_eq!(raise(r.clone()).to_string(), "'field'");
    r.as_object_mut().unwrap().remove("order");
    assert_eq!(raise(r).to_string(), "'order'");
    let mut r = rule("r1", 0, "include", "filename", "equals", "x");
    r["policy"] = json!(3);
    assert_eq!(
        raise(r).to_string(),
        "'int' object has no attribute 'casefold'"
    );
    assert_eq!(
        raise(json!(["x"])).to_string(),
        "list indices must be integers or slices, not str"
    );
    // Later rules raise too, even after valid ones.
    let f = filtering(vec![
        rule("a", 1, "include", "filename", "equals", "x"),
        rule("b", 2, "include", "filename", "matches", "x"),
    ]);
    assert_eq!(
        validate(&f).unwrap_err(),
        RuleError::UnknownRule("matches".into())
    );
}

#[test]
fn match_all_regexes() {
    let f = filtering(vec![
        default_rule(),
        rule("a", 1, "include", "filename", "regex", ".*"),
        rule("b", 2, "exclude", "bucket", "REGEX", "(.*)"),
        rule("c", 3, "include", "owner", "regex", "^.*"),
        rule("d", 4, "include", "storage_class", "equals", ".*"),
        rule("e", 5, "include", "filename", "regex", ".*x"),
    ]);
    assert_eq!(
        errors(&f),
        vec![
            err(
                "a",
                "Basic rule 2 (id: 'a...a') uses a match all regexps ['.*', '(.*)'], which are not allowed."
            ),
            err(
                "b",
                "Basic rule 3 (id: 'b...b') uses a match all regexps ['.*', '(.*)'], which are not allowed."
            ),
        ]
    );
}

#[test]
fn short_ids_in_messages() {
    let uuid = "4fd6e6c4-6a2c-4dc3-9a91-0e6e5a3ac3a1";
    let f = filtering(vec![
        rule(uuid, 4, "include", "filename", "regex", "(.*)"),
        rule("1", 9, "include", "bucket", "regex", ".*"),
        rule(
            "abcdefghijklmnopqrstuvwxyz0123",
            10,
            "include",
            "owner",
            "regex",
            ".*",
        ),
        rule(
            "abcdefghijklmnopqrstuvwxyz012",
            11,
            "include",
            "storage_class",
            "regex",
            ".*",
        ),
    ]);
    let messages: Vec<String> = errors(&f).into_iter().map(|(_, m)| m).collect();
    let prefix = |m: &String| m.split(" uses").next().unwrap().to_string();
    assert_eq!(
        messages.iter().map(prefix).collect::<Vec<_>>(),
        vec![
            "Basic rule 5 (id: '4fd6e...ac3a1')",
            "Basic rule 10 (id: '1...1')",
            "Basic rule 11 (id: 'ab...23')",
            "Basic rule 12 (id: 'ab...2')",
        ]
    );
}

#[test]
fn orders_are_rendered_as_python_does() {
    let mut r = rule("r", 0, "include", "filename", "regex", ".*");
    r["order"] = json!(1.5);
    assert_eq!(
        errors(&filtering(vec![r.clone()]))[0].1,
        "Basic rule 2.5 (id: 'r...r') uses a match all regexps ['.*', '(.*)'], which are not allowed."
    );
    r["order"] = json!(2.0);
    assert!(
        errors(&filtering(vec![r.clone()]))[0]
            .1
            .starts_with("Basic rule 3.0 ")
    );
    // A non-numeric order is a schema error, and formatting it raises (Python `"1" + 1`).
    r["order"] = json!("1");
    assert_eq!(
        validate(&filtering(vec![r])).unwrap_err().to_string(),
        "can only concatenate str (not \"int\") to str"
    );
}

#[test]
fn semantic_duplicates() {
    // Policy is ignored, the rule name is case-insensitive, field and value are not.
    let f = filtering(vec![
        default_rule(),
        rule("a", 1, "include", "filename", "equals", "x"),
        rule("b", 2, "include", "filename", "equals", "X"),
        rule("c", 3, "include", "Filename", "equals", "x"),
        rule("d", 7, "exclude", "filename", "EQUALS", "x"),
        rule("e", 8, "include", "filename", "equals", "X"),
    ]);
    assert_eq!(
        errors(&f),
        vec![
            err(
                "d",
                "Basic rule 8 (id: 'd...d') is semantically equal to Basic rule 2 (id: 'a...a')."
            ),
            err(
                "a",
                "Basic rule 2 (id: 'a...a') is semantically equal to Basic rule 8 (id: 'd...d')."
            ),
        ]
    );
}

#[test]
fn duplicates_of_the_default_rule_count() {
    let f = filtering(vec![
        default_rule(),
        rule("u", 1, "exclude", "_", "regex", ".*"),
    ]);
    assert_eq!(
        errors(&f),
        vec![
            err(
                "u",
                "Basic rule 2 (id: 'u...u') uses a match all regexps ['.*', '(.*)'], which are not allowed."
            ),
            err(
                "u",
                "Basic rule 2 (id: 'u...u') is semantically equal to Basic rule 1 (id: 'D...T')."
            ),
            err(
                "DEFAULT",
                "Basic rule 1 (id: 'D...T') is semantically equal to Basic rule 2 (id: 'u...u')."
            ),
        ]
    );
}

#[test]
fn schema_errors_come_first() {
    let mut bad = rule("z", 5, "include", "owner", "equals", "x");
    bad["value"] = json!("");
    let f = filtering(vec![
        rule("a", 1, "include", "filename", "regex", ".*"),
        rule("b", 2, "include", "filename", "regex", ".*"),
        bad,
    ]);
    let ids: Vec<String> = errors(&f).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec!["z", "a", "b", "b", "a"]);
}

#[test]
fn advanced_snippet_validation() {
    for empty in [json!([]), json!({}), json!(null), json!("")] {
        assert_eq!(
            errors(&advanced_filtering(empty.clone())),
            vec![],
            "{empty}"
        );
    }
    assert_eq!(
        errors(&advanced_filtering(json!([{"bucket": "b"}]))),
        vec![]
    );
    assert_eq!(
        errors(&advanced_filtering(json!({"bucket": ["b"]}))),
        vec![err("advanced_snippet", "data must be array")]
    );
    assert_eq!(
        errors(&advanced_filtering(
            json!([{"bucket": "b", "extension": ".jpg"}])
        )),
        vec![err("advanced_snippet", "data[0].extension must be array")]
    );
    // Elastic's `Filter`: without a `value` key the snippet object itself is the value.
    let f = json!({"rules": [], "advanced_snippet": {"created_at": "2024-01-01T00:00:00Z"}});
    assert_eq!(
        errors(&f),
        vec![err("advanced_snippet", "data must be array")]
    );
    assert_eq!(
        errors(&json!({"rules": [], "advanced_snippet": {}})),
        vec![]
    );
}

#[test]
fn basic_errors_then_advanced_then_invalid_regexes() {
    let mut f = filtering(vec![
        default_rule(),
        rule("bad-re", 1, "include", "filename", "regex", "a(b"),
        rule("all", 2, "include", "filename", "regex", ".*"),
    ]);
    f["advanced_snippet"]["value"] = json!([{"bucket": ""}]);
    assert_eq!(
        errors(&f),
        vec![
            err(
                "all",
                "Basic rule 3 (id: 'a...l') uses a match all regexps ['.*', '(.*)'], which are not allowed."
            ),
            err(
                "advanced_snippet",
                "data[0].bucket must be longer than or equal to 1 characters"
            ),
            err(
                "bad-re",
                "Basic rule 2 (id: 'b...e') uses an invalid regular expression 'a(b': unclosed group."
            ),
        ]
    );
}

#[test]
fn invalid_regex_rules() {
    let f = filtering(vec![
        rule("r1", 0, "include", "filename", "regex", "(?=x)"),
        rule("r2", 1, "include", "filename", "regex", "a)|(b"),
        rule("r3", 2, "include", "filename", "starts_with", "(("),
        rule("r4", 3, "include", "filename", "regex", "^reports/\\d{4}/"),
    ]);
    let got = errors(&f);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "r1");
    assert!(
        got[0]
            .1
            .starts_with("Basic rule 1 (id: 'r...1') uses an invalid regular expression '(?=x)': ")
    );
    assert!(got[0].1.contains("look-around"), "{}", got[0].1);
    assert_eq!(
        got[1].1,
        "Basic rule 2 (id: 'r...2') uses an invalid regular expression 'a)|(b': unopened group."
    );
}

#[test]
fn job_error_message_renders_the_result() {
    let f = filtering(vec![
        rule("r1", 0, "include", "bucket", "equals", "b"),
        rule("r2", 1, "exclude", "bucket", "equals", "b"),
    ]);
    assert_eq!(
        validate(&f).unwrap().job_error_message(),
        "Filtering in state FilteringValidationState.INVALID, errors: [\
         (ids: ['r2'], messages: [\"Basic rule 2 (id: 'r...2') is semantically equal to Basic rule 1 (id: 'r...1').\"]), \
         (ids: ['r1'], messages: [\"Basic rule 1 (id: 'r...1') is semantically equal to Basic rule 2 (id: 'r...2').\"])]."
    );
}

#[test]
fn rules_must_be_an_array() {
    assert_eq!(
        validate(&json!({"rules": {}})).unwrap_err(),
        RuleError::RulesNotArray
    );
}
