//! Advanced rules (docs/protocol.md#sync-rules + our `glob` and `regex`): parsing, messages, `keeps`.

use super::{AdvancedRule, parse as parse_rules};
use crate::source::KeyFilter;
use crate::sync::rules::advanced_value;
use serde_json::{Value, json};

/// A filtering object with only the default rule and this advanced snippet value.
fn advanced_filtering(value: Value) -> Value {
    json!({
        "rules": [{"id":"DEFAULT","order":0,"policy":"include","field":"_","rule":"regex","value":".*"}],
        "advanced_snippet": {"value": value},
        "validation": {"state": "edited", "errors": []}
    })
}

/// The rules of a filtering object, as a sync reads them: `None` when the snippet is empty.
fn advanced_rules(filtering: &Value) -> Result<Option<Vec<AdvancedRule>>, String> {
    advanced_value(filtering).map(parse_rules).transpose()
}

fn parse(value: Value) -> Vec<AdvancedRule> {
    advanced_rules(&advanced_filtering(value))
        .unwrap()
        .expect("non-empty rules")
}

fn one(value: Value) -> AdvancedRule {
    let mut rules = parse(json!([value]));
    assert_eq!(rules.len(), 1);
    rules.remove(0)
}

fn message(value: Value) -> String {
    match advanced_rules(&advanced_filtering(value)) {
        Err(m) => m,
        other => panic!("expected invalid rules, got {other:?}"),
    }
}

#[test]
fn no_advanced_rules() {
    for f in [
        json!({}),
        json!({"advanced_snippet": null}),
        json!({"advanced_snippet": {}}),
        json!({"advanced_snippet": {"value": null}}),
        advanced_filtering(json!([])),
        advanced_filtering(json!({})),
        advanced_filtering(json!("")),
    ] {
        assert!(advanced_rules(&f).unwrap().is_none(), "{f}");
    }
}

#[test]
fn parses_elastic_fields() {
    let rules = parse(json!([
        {"bucket": "b1"},
        {"bucket": "b2", "prefix": "docs/", "extension": [".txt", ".md"]},
        {"bucket": "b3", "prefix": "", "extension": []},
    ]));
    let summary: Vec<_> = rules
        .iter()
        .map(|r| (r.bucket.as_str(), r.prefix.as_deref(), r.extension.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("b1", None, None),
            (
                "b2",
                Some("docs/"),
                Some(vec![".txt".to_string(), ".md".to_string()])
            ),
            ("b3", None, None),
        ]
    );
    assert!(rules.iter().all(|r| r.glob.is_none() && r.regex.is_none()));
}

#[test]
fn elastic_messages() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"bucket": ["b"]}), "data must be array"),
        (json!("b"), "data must be array"),
        (json!(5), "data must be array"),
        (json!(["b"]), "data[0] must be object"),
        (
            json!([{"prefix": "a"}]),
            "data[0] must contain ['bucket'] properties",
        ),
        (json!([{"bucket": 1}]), "data[0].bucket must be string"),
        (json!([{"bucket": null}]), "data[0].bucket must be string"),
        (
            json!([{"bucket": ""}]),
            "data[0].bucket must be longer than or equal to 1 characters",
        ),
        (
            json!([{"bucket": "b", "prefix": 1}]),
            "data[0].prefix must be string",
        ),
        (
            json!([{"bucket": "b", "prefix": null}]),
            "data[0].prefix must be string",
        ),
        (
            json!([{"bucket": "a"}, {"bucket": "b", "extension": ".jpg"}]),
            "data[1].extension must be array",
        ),
        (
            json!([{"bucket": "b", "foo": 1}]),
            "data[0] must not contain {'foo'} properties",
        ),
        (
            json!([{"bucket": "b", "zeta": 1, "alpha": 2}]),
            "data[0] must not contain {'alpha', 'zeta'} properties",
        ),
        (
            json!([{"bucket": "b", "it's": 1}]),
            "data[0] must not contain {\"it's\"} properties",
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(message(value.clone()), expected, "{value}");
    }
}

#[test]
fn only_the_first_violation_in_schema_order() {
    // Missing bucket is reported before unknown keys; bucket before prefix; item 0 before item 1.
    assert_eq!(
        message(json!([{"foo": 1}])),
        "data[0] must contain ['bucket'] properties"
    );
    assert_eq!(
        message(json!([{"bucket": "", "foo": 1}])),
        "data[0].bucket must be longer than or equal to 1 characters"
    );
    assert_eq!(
        message(json!([{"bucket": "b", "prefix": 2, "extension": "x"}])),
        "data[0].prefix must be string"
    );
    assert_eq!(
        message(json!([{"bucket": "b", "extension": "x", "foo": 1}])),
        "data[0].extension must be array"
    );
    assert_eq!(
        message(json!([{"bucket": 1}, {"foo": 1}])),
        "data[0].bucket must be string"
    );
}

#[test]
fn our_messages() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([{"bucket": "b", "glob": "*.pdf"}]),
            "data[0].glob must be array",
        ),
        (
            json!([{"bucket": "b", "glob": ["*.pdf", 3]}]),
            "data[0].glob[1] must be string",
        ),
        (
            json!([{"bucket": "b", "glob": ["*.pdf", "a[b"]}]),
            "data[0].glob[1] must be a valid glob pattern: unclosed character class; missing ']'",
        ),
        (
            json!([{"bucket": "b", "regex": ["x"]}]),
            "data[0].regex must be string",
        ),
        (
            json!([{"bucket": "b", "regex": "a(b"}]),
            "data[0].regex must be a valid regular expression: unclosed group",
        ),
        (
            json!([{"bucket": "b", "regex": ")"}]),
            "data[0].regex must be a valid regular expression: unopened group",
        ),
        // glob is checked before regex, both before unknown keys.
        (
            json!([{"bucket": "b", "foo": 1, "regex": "(", "glob": 1}]),
            "data[0].glob must be array",
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(message(value.clone()), expected, "{value}");
    }
}

#[test]
fn extension_is_case_sensitive_with_the_dot() {
    let r = one(json!({"bucket": "b", "extension": [".txt", ".gz", "md"]}));
    assert!(r.keeps("a.txt"));
    assert!(r.keeps("dir/sub/a.txt"));
    assert!(!r.keeps("a.TXT"));
    assert!(r.keeps("a.tar.gz"));
    assert!(!r.keeps("a.md"), "\"md\" without the dot never matches");
    assert!(!r.keeps("README"));
    assert!(!r.keeps(".txt"), "a leading dot is not an extension");
    assert!(!r.keeps("dir.txt/"), "a folder key has no extension");
    assert!(!r.keeps("a.txt.bak"));
    // Non-string elements are kept out (they can never match) but still constrain.
    let r = one(json!({"bucket": "b", "extension": [1]}));
    assert_eq!(r.extension, Some(vec![]));
    assert!(!r.keeps("a.txt"));
}

#[test]
fn no_constraint_keeps_everything() {
    let r = one(json!({"bucket": "b", "prefix": "x/", "extension": [], "glob": []}));
    for key in ["x/a", "x/", "x/a.pdf", "x/y/z"] {
        assert!(r.keeps(key), "{key}");
    }
}

#[test]
fn glob_matches_the_full_key() {
    let r = one(json!({"bucket": "b", "glob": ["reports/**/*.pdf", "*.txt"]}));
    assert_eq!(
        r.glob.as_ref().unwrap().patterns(),
        ["reports/**/*.pdf", "*.txt"]
    );
    assert!(r.keeps("reports/a.pdf"));
    assert!(r.keeps("reports/2024/q1/a.pdf"));
    assert!(!r.keeps("reports/a.PDF"));
    assert!(!r.keeps("old/reports/a.pdf"));
    assert!(r.keeps("notes.txt"));
    assert!(!r.keeps("dir/notes.txt"), "`*` does not cross `/`");
    let r = one(json!({"bucket": "b", "glob": ["**/*.{jpg,png}", "data/?.csv", "[ab]*"]}));
    assert!(r.keeps("x/y/photo.png"));
    assert!(r.keeps("photo.jpg"));
    assert!(r.keeps("data/1.csv"));
    assert!(!r.keeps("data/12.csv"));
    assert!(r.keeps("beta"));
    assert!(!r.keeps("a/b"));
}

#[test]
fn regex_is_anchored_at_the_start_of_the_key() {
    let r = one(json!({"bucket": "b", "regex": "logs/\\d{4}-"}));
    assert_eq!(r.regex.as_ref().unwrap().as_str(), "^(?:logs/\\d{4}-)");
    assert!(r.keeps("logs/2024-01-01.json"));
    assert!(!r.keeps("old/logs/2024-01-01.json"));
    assert!(!r.keeps("logs/24-01"));
    let r = one(json!({"bucket": "b", "regex": ".*\\.json$"}));
    assert!(r.keeps("a/b.json"));
    assert!(!r.keeps("a/b.json.bak"));
    // Alternation stays inside the anchor.
    let r = one(json!({"bucket": "b", "regex": "a|b"}));
    assert!(r.keeps("bx"));
    assert!(!r.keeps("xb"));
}

#[test]
fn all_given_constraints_must_match() {
    let r = one(json!({
        "bucket": "b", "prefix": "reports/",
        "extension": [".pdf"], "glob": ["reports/2024/**"], "regex": ".*/q[1-4]"
    }));
    assert_eq!(r.prefix.as_deref(), Some("reports/"));
    assert!(r.keeps("reports/2024/q1.pdf"));
    assert!(!r.keeps("reports/2024/q1.docx"), "extension fails");
    assert!(!r.keeps("reports/2023/q1.pdf"), "glob fails");
    assert!(!r.keeps("reports/2024/annual.pdf"), "regex fails");
}

#[test]
fn snippet_without_value_key_is_the_value() {
    let f = json!({"advanced_snippet": {"updated_at": "2024-01-01"}});
    assert_eq!(advanced_rules(&f).unwrap_err(), "data must be array");
}
