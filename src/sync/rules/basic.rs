//! Basic sync rules (docs/protocol.md#sync-rules): parsing with Elastic's raising behaviour, and evaluation per document.
//!
//! A rule is `{id, policy, field, rule, value, order}`. Evaluation uses the active rules minus the
//! `DEFAULT` one, sorted ascending by `order` (stable); the first rule that matches a document
//! decides (include → keep, exclude → drop); no match (or no rules) → keep.
//!
//! Matching, as Elastic's `BasicRule.matches`:
//! * a rule whose `field` is not a top-level key of the document never matches;
//! * `starts_with` / `ends_with` / `contains` work on Python's `str()` of the document value
//!   (`12`, `True`, `None`, `['a']`…);
//! * `regex` is Python's `re.match`: the pattern must match at the *start* of `str(value)` (a
//!   prefix match: neither a search anywhere nor a full match). Patterns use the Rust `regex`
//!   syntax, which covers Python's except look-around, back-references and `\Z` (such a rule is a
//!   validation error, see [`super::validate`]); `$` matches only at the very end (Python's also
//!   matches before a final newline);
//! * `equals`, `<`, `>` first coerce the rule value to the document value's type: string → string,
//!   number → `float(value)` (on failure the string is kept), anything else → string.
//!   Consequences kept on purpose, for identical results to Elastic's service:
//!   - **bool quirk (kept):** a boolean document value is compared against the string
//!     `"True"`/`"False"`, so `equals` never matches a boolean field, and `<`/`>` on a boolean
//!     field fail (Python raises `TypeError`);
//!   - a number field with a non-numeric rule value never `equals`, and `<`/`>` fail the sync
//!     with Python's `'<' not supported between instances of 'int' and 'str'`;
//!   - strings compare by code point (`"b" > "abc"`).

use super::RuleError;
use crate::python::{self, compile_prefix_regex};
use regex::Regex;
use serde_json::{Map, Value};

/// The id of the catch-all rule Kibana creates; it is never evaluated.
pub const DEFAULT_RULE_ID: &str = "DEFAULT";

/// `include` or `exclude` (parsed case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Include,
    Exclude,
}

impl Policy {
    /// `Policy.from_string`: raises for an unknown string, and for a non-string (`casefold`).
    pub fn from_value(v: &Value) -> Result<Policy, RuleError> {
        let s = as_enum_str(v)?;
        match python::casefold(s).as_str() {
            "include" => Ok(Policy::Include),
            "exclude" => Ok(Policy::Exclude),
            _ => Err(RuleError::UnknownPolicy(s.to_string())),
        }
    }
}

/// The comparison of a rule. Only these spellings are accepted (case-insensitively):
/// `equals`, `starts_with`, `ends_with`, `contains`, `regex`, `>`, `<` — not `greater_than`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Equals,
    StartsWith,
    EndsWith,
    Contains,
    Regex,
    GreaterThan,
    LessThan,
}

impl RuleKind {
    /// `Rule.from_string`: raises for an unknown string, and for a non-string (`casefold`).
    pub fn from_value(v: &Value) -> Result<RuleKind, RuleError> {
        let s = as_enum_str(v)?;
        Ok(match python::casefold(s).as_str() {
            "equals" => RuleKind::Equals,
            "starts_with" => RuleKind::StartsWith,
            "ends_with" => RuleKind::EndsWith,
            "contains" => RuleKind::Contains,
            "regex" => RuleKind::Regex,
            ">" => RuleKind::GreaterThan,
            "<" => RuleKind::LessThan,
            _ => return Err(RuleError::UnknownRule(s.to_string())),
        })
    }
}

fn as_enum_str(v: &Value) -> Result<&str, RuleError> {
    v.as_str().ok_or_else(|| {
        RuleError::Python(format!(
            "'{}' object has no attribute 'casefold'",
            python::type_name(v)
        ))
    })
}

/// A rule as `BasicRule.from_json` sees it: keys read in Elastic's order (`id`, `order`, `policy`,
/// `field`, `rule`, `value`), enums parsed, the other values left as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRule<'a> {
    pub id: &'a Value,
    pub order: &'a Value,
    pub policy: Policy,
    pub field: &'a Value,
    pub rule: RuleKind,
    pub value: &'a Value,
}

impl<'a> RawRule<'a> {
    /// `BasicRule.from_json`: a missing key raises `KeyError` (rendered `'<key>'`), an unknown
    /// policy or rule raises the enum error.
    pub fn from_json(rule: &'a Value) -> Result<RawRule<'a>, RuleError> {
        let Some(obj) = rule.as_object() else {
            return Err(RuleError::Python(not_subscriptable(rule)));
        };
        let get = |key: &'static str| obj.get(key).ok_or(RuleError::MissingKey(key));
        let id = get("id")?;
        let order = get("order")?;
        let policy = Policy::from_value(get("policy")?)?;
        let field = get("field")?;
        let rule = RuleKind::from_value(get("rule")?)?;
        let value = get("value")?;
        Ok(RawRule {
            id,
            order,
            policy,
            field,
            rule,
            value,
        })
    }

    /// `is_default_rule()`: the id is exactly `DEFAULT`.
    pub fn is_default(&self) -> bool {
        self.id.as_str() == Some(DEFAULT_RULE_ID)
    }
}

/// What Python says when `rule["id"]` is applied to a non-dict.
fn not_subscriptable(v: &Value) -> String {
    match v {
        Value::Array(_) => "list indices must be integers or slices, not str".into(),
        Value::String(_) => "string indices must be integers, not 'str'".into(),
        other => format!("'{}' object is not subscriptable", python::type_name(other)),
    }
}

/// One evaluable rule.
#[derive(Debug, Clone)]
struct BasicRule {
    id: String,
    order: f64,
    policy: Policy,
    field: String,
    rule: RuleKind,
    value: String,
    regex: Option<Regex>,
}

/// The rule value coerced to the document value's type.
enum Coerced<'a> {
    Str(&'a str),
    Float(f64),
}

impl BasicRule {
    fn matches(&self, doc: &Map<String, Value>) -> Result<bool, RuleError> {
        let Some(doc_value) = doc.get(&self.field) else {
            return Ok(false);
        };
        Ok(match self.rule {
            RuleKind::StartsWith => python::str_of(doc_value).starts_with(&self.value),
            RuleKind::EndsWith => python::str_of(doc_value).ends_with(&self.value),
            RuleKind::Contains => python::str_of(doc_value).contains(&self.value),
            RuleKind::Regex => match &self.regex {
                Some(re) => re.is_match(&python::str_of(doc_value)),
                None => false,
            },
            RuleKind::Equals => match (doc_value, self.coerce(doc_value)) {
                (Value::String(d), Coerced::Str(c)) => d == c,
                (Value::Number(d), Coerced::Float(c)) => d.as_f64() == Some(c),
                // bool quirk: `True == "True"` is false in Python; other types never equal a str.
                _ => false,
            },
            RuleKind::LessThan => self.compare(doc_value, "<")?.is_lt(),
            RuleKind::GreaterThan => self.compare(doc_value, ">")?.is_gt(),
        })
    }

    /// `coerce_rule_value_based_on_document_value`.
    fn coerce(&self, doc_value: &Value) -> Coerced<'_> {
        match doc_value {
            Value::Number(_) => python::parse_float(&self.value)
                .map(Coerced::Float)
                .unwrap_or(Coerced::Str(&self.value)),
            // str → str; bool → "True"/"False"/the value (a str all the same); other → str.
            _ => Coerced::Str(&self.value),
        }
    }

    /// Python's ordering of `doc_value` against the coerced rule value; `TypeError` when the
    /// types are not comparable. NaN compares as neither less nor greater.
    fn compare(&self, doc_value: &Value, op: &str) -> Result<std::cmp::Ordering, RuleError> {
        use std::cmp::Ordering::Equal;
        match (doc_value, self.coerce(doc_value)) {
            (Value::String(d), Coerced::Str(c)) => Ok(d.as_str().cmp(c)),
            (Value::Number(d), Coerced::Float(c)) => {
                Ok(d.as_f64().and_then(|d| d.partial_cmp(&c)).unwrap_or(Equal))
            }
            (other, _) => Err(RuleError::Python(format!(
                "'{op}' not supported between instances of '{}' and 'str'",
                python::type_name(other)
            ))),
        }
    }
}

/// The basic rules of a filtering object, ready to be applied to produced documents.
#[derive(Debug, Clone, Default)]
pub struct BasicRules {
    rules: Vec<BasicRule>,
}

impl BasicRules {
    /// Active rules of a filtering object (`{rules, …}`: a job's snapshot or a connector's
    /// `active`), minus `DEFAULT`, sorted by `order`.
    ///
    /// Errors: Elastic's raising cases (missing key, unknown policy/rule) with Elastic's text;
    /// and, ours, rules that validation would have rejected and that cannot be evaluated:
    /// a non-string `field`/`value`, a non-numeric `order`, an invalid regex.
    pub fn from_filtering(filtering: &Value) -> Result<BasicRules, RuleError> {
        let mut rules = Vec::new();
        for raw in super::rule_list(filtering)? {
            let raw = RawRule::from_json(raw)?;
            if raw.is_default() {
                continue;
            }
            let id = python::str_of(raw.id);
            let invalid =
                |what: &str| RuleError::InvalidBasicRule(format!("basic rule '{id}': {what}"));
            let order = match raw.order {
                Value::Number(n) => n.as_f64().unwrap_or(0.0),
                _ => return Err(invalid("order must be a number")),
            };
            let field = raw
                .field
                .as_str()
                .ok_or_else(|| invalid("field must be a string"))?;
            let value = raw
                .value
                .as_str()
                .ok_or_else(|| invalid("value must be a string"))?;
            let regex = match raw.rule {
                RuleKind::Regex => Some(compile_prefix_regex(value).map_err(|reason| {
                    invalid(&format!(
                        "invalid regular expression {}: {reason}",
                        python::repr_str(value)
                    ))
                })?),
                _ => None,
            };
            rules.push(BasicRule {
                id,
                order,
                policy: raw.policy,
                field: field.to_string(),
                rule: raw.rule,
                value: value.to_string(),
                regex,
            });
        }
        // Python's `sorted` is stable, as is `sort_by`.
        rules.sort_by(|a, b| {
            a.order
                .partial_cmp(&b.order)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        Ok(BasicRules { rules })
    }

    /// No rule to evaluate (every document is included).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of evaluated rules (`DEFAULT` excluded).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Ids of the evaluated rules, in evaluation order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// Whether the document is kept: the first matching rule decides (include → `true`, exclude →
    /// `false`); no match → `true`. `Err` where Elastic raises and fails the sync: `<`/`>` between
    /// a number field and a non-numeric value, or on a boolean/null/list/object field.
    pub fn includes(&self, doc: &Map<String, Value>) -> Result<bool, RuleError> {
        for rule in &self.rules {
            if rule.matches(doc)? {
                return Ok(rule.policy == Policy::Include);
            }
        }
        Ok(true)
    }
}
