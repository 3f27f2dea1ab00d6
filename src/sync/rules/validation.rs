//! Filtering validation (docs/protocol.md#sync-rules): Elastic's validators, in Elastic's order, with
//! Elastic's messages, then our one addition.
//!
//! 1. schema, rule by rule (first violation of each rule, fastjsonschema wording);
//! 2. no match-all regex, rule by rule (`BasicRule.from_json` runs here: a missing key or an unknown
//!    policy/rule *raises*, which aborts the whole validation);
//! 3. semantic duplicates over the whole list, `DEFAULT` included (first pair only, later rule
//!    first);
//! 4. the source's advanced-rules validator ([`SourceKind::validate_advanced_rules`]), when the
//!    snippet value is non-empty (rule id `advanced_snippet`);
//! 5. ours: every non-default `regex` rule must compile. Elastic would accept the rule and crash
//!    the sync at the first document (`re.error`); we report
//!    `Basic rule <n> (id: '<short id>') uses an invalid regular expression '<value>': <reason>.`
//!    It comes last so that the errors Elastic reports come first, unchanged.

use super::basic::{RawRule, RuleKind};
use super::{ADVANCED_RULES_ID, RuleError, ValidationResult};
use crate::python::{self, compile_prefix_regex};
use crate::source::SourceKind;
use serde_json::Value;

/// `BasicRule.SHORTEN_UUID_BY`: a 36-character UUID keeps 5 characters at each end.
const SHORTEN_ID_BY: usize = 26;

/// The required keys of a basic rule, in the schema's order.
const REQUIRED: [&str; 6] = ["id", "policy", "field", "rule", "value", "order"];

/// Runs every validator over a filtering object; see [`super::validate`].
pub(crate) fn validate(
    filtering: &Value,
    source: &dyn SourceKind,
) -> Result<ValidationResult, RuleError> {
    let rules = super::rule_list(filtering)?;
    let mut result = ValidationResult::valid();

    // 1. Schema (BasicRuleAgainstSchemaValidator).
    for rule in rules {
        if let Some(message) = schema_error(rule) {
            result.push(error_id(rule), message);
        }
    }

    // 2. No match-all regex (BasicRuleNoMatchAllRegexValidator).
    for rule in rules {
        let raw = RawRule::from_json(rule)?;
        if raw.is_default() || raw.rule != RuleKind::Regex {
            continue;
        }
        if matches!(raw.value.as_str(), Some(".*" | "(.*)")) {
            let message = format!(
                "{} uses a match all regexps ['.*', '(.*)'], which are not allowed.",
                short_label(&raw)?
            );
            result.push(python::str_of(raw.id), message);
        }
    }

    // 3. Semantic duplicates (BasicRulesSetSemanticValidator).
    semantic_duplicates(rules, &mut result)?;

    // 4. Advanced rules (the source's validator; S3AdvancedRulesValidator for S3).
    if let Some(value) = super::advanced_value(filtering)
        && let Err(message) = source.validate_advanced_rules(value)
    {
        result.push(ADVANCED_RULES_ID.to_string(), message);
    }

    // 5. Ours: regexes must compile.
    for rule in rules {
        let raw = RawRule::from_json(rule)?;
        if raw.is_default() || raw.rule != RuleKind::Regex {
            continue;
        }
        if let Some(pattern) = raw.value.as_str()
            && let Err(reason) = compile_prefix_regex(pattern)
        {
            let message = format!(
                "{} uses an invalid regular expression {}: {reason}.",
                short_label(&raw)?,
                python::repr_str(pattern)
            );
            result.push(python::str_of(raw.id), message);
        }
    }
    Ok(result)
}

/// The id a schema error is reported under: `rule["id"]` (Python `str()` of it when not a string).
fn error_id(rule: &Value) -> String {
    rule.get("id").map(python::str_of).unwrap_or_default()
}

/// The first fastjsonschema violation of one basic rule, if any.
pub(crate) fn schema_error(rule: &Value) -> Option<String> {
    let Value::Object(obj) = rule else {
        return Some("data must be object".into());
    };
    if !REQUIRED.iter().all(|k| obj.contains_key(*k)) {
        return Some(format!(
            "data must contain {} properties",
            python_list(&REQUIRED)
        ));
    }
    let non_empty_string = |key: &str| -> Option<String> {
        match &obj[key] {
            Value::String(s) if s.is_empty() => Some(format!(
                "data.{key} must be longer than or equal to 1 characters"
            )),
            Value::String(_) => None,
            _ => Some(format!("data.{key} must be string")),
        }
    };
    // `format` checks apply to strings only; anything else passes the schema.
    let format = |key: &str, ok: bool| {
        (obj[key].is_string() && !ok).then(|| format!("data.{key} must be {key}"))
    };
    non_empty_string("id")
        .or_else(|| {
            format(
                "policy",
                super::basic::Policy::from_value(&obj["policy"]).is_ok(),
            )
        })
        .or_else(|| non_empty_string("field"))
        .or_else(|| format("rule", RuleKind::from_value(&obj["rule"]).is_ok()))
        .or_else(|| non_empty_string("value"))
        .or_else(|| (!obj["order"].is_number()).then(|| "data.order must be number".to_string()))
}

/// Python's `str()` of a list of strings: `['id', 'policy']`.
fn python_list(items: &[&str]) -> String {
    let parts: Vec<String> = items.iter().map(|s| python::repr_str(s)).collect();
    format!("[{}]", parts.join(", "))
}

/// `format(rule, "short")`: `Basic rule <order + 1> (id: '<shortened id>')`. Raises like Python
/// when `order + 1` or the shortening is not defined for the values given.
pub(crate) fn short_label(raw: &RawRule<'_>) -> Result<String, RuleError> {
    Ok(format!(
        "Basic rule {} (id: '{}')",
        order_plus_one(raw.order)?,
        short_id(raw.id)?
    ))
}

/// Python's `order + 1`.
fn order_plus_one(order: &Value) -> Result<String, RuleError> {
    let err = |m: String| Err(RuleError::Python(m));
    match order {
        Value::Number(n) if n.is_f64() => Ok(python::float_repr(n.as_f64().unwrap_or(0.0) + 1.0)),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Ok((i as i128 + 1).to_string()),
            (_, Some(u)) => Ok((u as u128 + 1).to_string()),
            _ => Ok(n.to_string()),
        },
        Value::Bool(b) => Ok((*b as i32 + 1).to_string()),
        Value::String(_) => err("can only concatenate str (not \"int\") to str".into()),
        Value::Array(_) => err("can only concatenate list (not \"int\") to list".into()),
        other => err(format!(
            "unsupported operand type(s) for +: '{}' and 'int'",
            python::type_name(other)
        )),
    }
}

/// `shorten_str(id, 26)`, including what it does with a non-string id.
pub(crate) fn short_id(id: &Value) -> Result<String, RuleError> {
    let falsy = match id {
        Value::Null => return Ok(String::new()),
        Value::String(s) => return Ok(python::shorten_str(s, SHORTEN_ID_BY)),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if falsy {
        // `if not string: return string`
        return Ok(python::str_of(id));
    }
    Err(RuleError::Python(match id {
        Value::Object(_) => "unhashable type: 'slice'".to_string(),
        other => format!("object of type '{}' has no len()", python::type_name(other)),
    }))
}

/// Python equality of two hashable JSON-decoded values (`1 == 1.0 == True`).
fn hashable_eq(a: &Value, b: &Value) -> bool {
    fn num(v: &Value) -> Option<f64> {
        match v {
            Value::Bool(b) => Some(*b as i32 as f64),
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// `hash()` raises for lists and dicts.
fn check_hashable(v: &Value) -> Result<(), RuleError> {
    match v {
        Value::Array(_) | Value::Object(_) => Err(RuleError::Python(format!(
            "unhashable type: '{}'",
            python::type_name(v)
        ))),
        _ => Ok(()),
    }
}

/// The first later rule whose (`field`, `rule`, `value`) equals an earlier one's → two errors,
/// the later rule's first.
fn semantic_duplicates(rules: &[Value], result: &mut ValidationResult) -> Result<(), RuleError> {
    let mut seen: Vec<RawRule<'_>> = Vec::new();
    for rule in rules {
        let raw = RawRule::from_json(rule)?;
        check_hashable(raw.field)?;
        check_hashable(raw.value)?;
        let earlier = seen.iter().find(|e| {
            e.rule == raw.rule && hashable_eq(e.field, raw.field) && hashable_eq(e.value, raw.value)
        });
        if let Some(earlier) = earlier {
            let (later_label, earlier_label) = (short_label(&raw)?, short_label(earlier)?);
            result.push(
                python::str_of(raw.id),
                format!("{later_label} is semantically equal to {earlier_label}."),
            );
            result.push(
                python::str_of(earlier.id),
                format!("{earlier_label} is semantically equal to {later_label}."),
            );
            return Ok(());
        }
        seen.push(raw);
    }
    Ok(())
}
