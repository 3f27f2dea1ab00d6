//! Sync rules (docs/protocol.md#sync-rules): validation of a filtering object and basic rules (which produced
//! documents to index). Pure logic, no I/O. Advanced rules (what to list) belong to each source
//! ([`crate::source::SourceKind::validate_advanced_rules`], [`crate::source::Source::partitions`]).
//!
//! A *filtering object* is `{rules, advanced_snippet, validation}`: the DEFAULT filtering's `draft`
//! or `active`, or a job's `connector.filtering` snapshot.
//!
//! * [`validate`]: Elastic's validators with Elastic's messages; the result is what goes into
//!   `filtering[DEFAULT].draft.validation` (and decides activation, and whether a job may start);
//! * [`advanced_value`]: the advanced snippet a source reads its rules from;
//! * [`BasicRules`]: per-document include/exclude ([`basic`] documents the matching semantics and
//!   the Elastic quirks kept).

pub mod basic;
mod validation;

#[cfg(test)]
mod tests;

pub use basic::{BasicRules, DEFAULT_RULE_ID, Policy, RuleKind};

use crate::python;
use crate::source::SourceKind;
use serde::Serialize;
use serde_json::Value;

/// The rule id of the advanced-rules validation result.
pub const ADVANCED_RULES_ID: &str = "advanced_snippet";

/// Where Elastic's code *raises* instead of returning a result (validation is aborted: the
/// scheduler sets the connector `status: error` with this text and writes no validation; a job
/// fails with it), plus our errors for rules that cannot be applied. `Display` is the error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// `Policy.from_string` on an unknown string.
    #[error("'{0}' is an unknown value for the enum Policy. Allowed policies: Policy.POLICIES")]
    UnknownPolicy(String),
    /// `Rule.from_string` on an unknown string (`greater_than` included).
    #[error("'{0}' is an unknown value for the enum Rule. Allowed rules: Rule.RULES.")]
    UnknownRule(String),
    /// A required rule key is missing (Python `KeyError`, rendered `'<key>'`).
    #[error("'{0}'")]
    MissingKey(&'static str),
    /// Another Python exception Elastic would raise, with Python's text, e.g.
    /// `'<' not supported between instances of 'int' and 'str'` (during a sync) or
    /// `'int' object has no attribute 'casefold'`.
    #[error("{0}")]
    Python(String),
    /// Ours: a basic rule that cannot be evaluated (what validation rejects: non-string `value`,
    /// non-numeric `order`, invalid regex), met by [`BasicRules::from_filtering`].
    #[error("{0}")]
    InvalidBasicRule(String),
    /// Ours: the advanced snippet is not valid; the text is the validation message
    /// (`data[0].bucket must be string`, …).
    #[error("invalid advanced sync rules: {0}")]
    InvalidAdvancedRules(String),
    /// Ours: `rules` is neither an array nor absent/null.
    #[error("filtering rules must be an array")]
    RulesNotArray,
}

/// `valid` or `invalid` (serialized lower-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValidationState {
    Valid,
    Invalid,
}

/// One error entry: `{"ids": [rule id], "messages": [message]}` (always one of each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    /// Rule ids (`advanced_snippet` for the advanced rules). A non-string id, which only a
    /// schema error can report, is given as Python's `str()` of it.
    pub ids: Vec<String>,
    pub messages: Vec<String>,
}

/// Result written to `filtering[DEFAULT].draft.validation`:
/// `{"state":"valid","errors":[]}` or `{"state":"invalid","errors":[{"ids":[..],"messages":[..]}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationResult {
    pub state: ValidationState,
    pub errors: Vec<ValidationError>,
}

impl ValidationResult {
    fn valid() -> ValidationResult {
        ValidationResult {
            state: ValidationState::Valid,
            errors: Vec::new(),
        }
    }

    fn push(&mut self, id: String, message: String) {
        self.state = ValidationState::Invalid;
        self.errors.push(ValidationError {
            ids: vec![id],
            messages: vec![message],
        });
    }

    /// `state == valid`.
    pub fn is_valid(&self) -> bool {
        self.state == ValidationState::Valid
    }

    /// The JSON object to write.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The job error when a job's filtering is not valid (docs/protocol.md#a-jobs-life):
    /// `Filtering in state FilteringValidationState.INVALID, errors: [(ids: ['r3'], messages: […])].`
    /// Elastic renders the state with its enum repr, as here, and each error with its object repr
    /// (`<…FilterValidationError object at 0x…>`, which carries no information); we render each
    /// error with its `__str__` instead.
    pub fn job_error_message(&self) -> String {
        let state = match self.state {
            ValidationState::Valid => "FilteringValidationState.VALID",
            ValidationState::Invalid => "FilteringValidationState.INVALID",
        };
        let list = |items: &[String]| {
            let parts: Vec<String> = items.iter().map(|s| python::repr_str(s)).collect();
            format!("[{}]", parts.join(", "))
        };
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("(ids: {}, messages: {})", list(&e.ids), list(&e.messages)))
            .collect();
        format!(
            "Filtering in state {state}, errors: [{}].",
            errors.join(", ")
        )
    }
}

/// docs/protocol.md#sync-rules: validates a filtering object (`{rules, advanced_snippet, validation}` — a
/// draft or a job's snapshot) for a connector of `source`'s kind. Errors come in this order: schema
/// errors (rule by rule), match-all regexes (rule by rule), the first semantic-duplicate pair, the
/// advanced snippet (only when its value is non-empty), and last — ours — basic `regex` rules that
/// do not compile.
///
/// `Err` = Elastic's raising cases (unknown policy/rule, missing key, …) with Elastic's text.
pub fn validate(filtering: &Value, source: &dyn SourceKind) -> Result<ValidationResult, RuleError> {
    validation::validate(filtering, source)
}

/// The advanced snippet value to validate/apply, if non-empty. As Elastic's `Filter`: the value is
/// `advanced_snippet.value`, or the `advanced_snippet` object itself when it has no `value` key
/// (a non-object snippet is taken as the value; a null one means none).
pub fn advanced_value(filtering: &Value) -> Option<&Value> {
    let snippet = filtering.get("advanced_snippet")?;
    let value = match snippet {
        Value::Object(obj) => obj.get("value").unwrap_or(snippet),
        other => other,
    };
    (!is_empty_value(value)).then_some(value)
}

/// Whether an `advanced_snippet.value` counts as "no advanced rules" (Python `len(x) == 0`, or null).
fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The `rules` list of a filtering object (absent or null: none).
pub(crate) fn rule_list(filtering: &Value) -> Result<&[Value], RuleError> {
    match filtering.get("rules") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(rules)) => Ok(rules),
        Some(_) => Err(RuleError::RulesNotArray),
    }
}
