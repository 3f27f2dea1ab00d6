//! Advanced sync rules for S3 (docs/protocol.md#sync-rules), with our `glob` and `regex` additions: which buckets (and
//! prefixes) a sync lists, and which listed keys it keeps.
//!
//! # Format
//!
//! The DEFAULT filtering's `advanced_snippet.value` is a JSON **array** of rules:
//!
//! ```json
//! [
//!   {"bucket": "invoices", "prefix": "2024/", "extension": [".pdf", ".PDF"]},
//!   {"bucket": "reports", "glob": ["**/*.docx", "summaries/*.txt"]},
//!   {"bucket": "logs", "prefix": "app/", "regex": "app/[0-9]{4}-[0-9]{2}/.*\\.json$"}
//! ]
//! ```
//!
//! | key         | type             | required | meaning |
//! |-------------|------------------|----------|---------|
//! | `bucket`    | non-empty string | yes      | the bucket to list (the `buckets` setting is ignored when advanced rules exist) |
//! | `prefix`    | string           | no       | list only keys starting with it (S3 `prefix` of the LIST call itself); empty = whole bucket |
//! | `extension` | array            | no       | keep keys whose extension is in the list, compared **case-sensitively, dot included** (`".txt"` keeps `a.txt`, not `a.TXT`; `"txt"` keeps nothing); the extension is the text from the last `.` of the last path component (`a.tar.gz` → `.gz`; `.bashrc`, `dir/` → none). Absent or empty: no constraint |
//! | `glob`      | array of strings | no       | *ours*: keep keys matching at least one glob, matched against the **full key**; `*`, `?`, `[…]` do not cross `/`, `**` does (`reports/**/*.pdf`), `{a,b}` alternatives; case-sensitive. Absent or empty: no constraint |
//! | `regex`     | string           | no       | *ours*: keep keys the regular expression matches **at the start** of the full key (like the basic rules' `regex`, Python `re.match`; end it with `$` for a full match). Rust `regex` syntax |
//!
//! No other key is allowed. Rules are applied in array order, each listing its bucket (with its
//! prefix); a rule with several constraints (`extension`, `glob`, `regex`) keeps an object only if
//! **all** of them match. Overlapping rules index the same object twice (same `_id`; harmless).
//!
//! # Validation
//!
//! An empty value (`[]`, `{}`, `""`, `null`) means "no advanced rules" and is valid. Otherwise the
//! first violation is reported with fastjsonschema's wording, as Elastic does: `data must be array`,
//! `data[0] must be object`, `data[0] must contain ['bucket'] properties`,
//! `data[0].bucket must be string`, `data[0].bucket must be longer than or equal to 1 characters`,
//! `data[0].prefix must be string`, `data[1].extension must be array`,
//! `data[0] must not contain {'foo'} properties` (several keys: sorted). Ours:
//! `data[0].glob must be array`, `data[0].glob[1] must be string`,
//! `data[0].glob[1] must be a valid glob pattern: <reason>`, `data[0].regex must be string`,
//! `data[0].regex must be a valid regular expression: <reason>`.
//! Checks run in this order per rule: object, `bucket` present, `bucket`, `prefix`, `extension`,
//! `glob`, `regex`, unknown keys.

use crate::python::{self, compile_prefix_regex};
use crate::source::{KeyFilter, file_extension};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::Regex;
use serde_json::Value;

/// The keys a rule may have (Elastic's three, then ours).
const KNOWN_KEYS: [&str; 5] = ["bucket", "prefix", "extension", "glob", "regex"];

/// A set of glob patterns matched against full object keys (`*` does not cross `/`, `**` does).
#[derive(Debug, Clone)]
pub struct KeyGlob {
    patterns: Vec<String>,
    set: GlobSet,
}

impl KeyGlob {
    /// Compiles the patterns; `Err((index, reason))` for the first invalid one.
    pub fn new(patterns: &[String]) -> Result<KeyGlob, (usize, String)> {
        let mut builder = GlobSetBuilder::new();
        for (i, p) in patterns.iter().enumerate() {
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| (i, e.kind().to_string()))?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| (0, e.kind().to_string()))?;
        Ok(KeyGlob {
            patterns: patterns.to_vec(),
            set,
        })
    }

    /// Whether at least one pattern matches the whole key.
    pub fn is_match(&self, key: &str) -> bool {
        self.set.is_match(key)
    }

    /// The patterns, as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// One advanced rule: which bucket (and prefix) to list, and which listed keys to keep.
#[derive(Debug, Clone)]
pub struct AdvancedRule {
    /// The bucket to list.
    pub bucket: String,
    /// LIST prefix; `None` when absent or empty (list the whole bucket).
    pub prefix: Option<String>,
    /// Extensions to keep (dot included, case-sensitive); `None` when absent or empty.
    /// Non-string elements of the JSON array are dropped (they can never match).
    pub extension: Option<Vec<String>>,
    /// Ours: globs on the full key; `None` when absent or empty.
    pub glob: Option<KeyGlob>,
    /// Ours: regex on the full key, compiled anchored at the start (`^(?:pattern)`).
    pub regex: Option<Regex>,
}

impl KeyFilter for AdvancedRule {
    /// Whether a listed object with this key is kept: every given constraint must match.
    fn keeps(&self, key: &str) -> bool {
        if let Some(exts) = &self.extension
            && !file_extension(key).is_some_and(|e| exts.iter().any(|x| x == e))
        {
            return false;
        }
        if let Some(glob) = &self.glob
            && !glob.is_match(key)
        {
            return false;
        }
        if let Some(re) = &self.regex
            && !re.is_match(key)
        {
            return false;
        }
        true
    }
}

/// Parses and validates a non-empty advanced snippet value; `Err` = the validation message.
pub fn parse(value: &Value) -> Result<Vec<AdvancedRule>, String> {
    let Value::Array(items) = value else {
        return Err("data must be array".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_rule(i, item))
        .collect()
}

fn parse_rule(i: usize, item: &Value) -> Result<AdvancedRule, String> {
    let name = format!("data[{i}]");
    let Value::Object(obj) = item else {
        return Err(format!("{name} must be object"));
    };
    let Some(bucket) = obj.get("bucket") else {
        return Err(format!("{name} must contain ['bucket'] properties"));
    };
    let Value::String(bucket) = bucket else {
        return Err(format!("{name}.bucket must be string"));
    };
    if bucket.is_empty() {
        return Err(format!(
            "{name}.bucket must be longer than or equal to 1 characters"
        ));
    }
    let prefix = match obj.get("prefix") {
        None => None,
        Some(Value::String(p)) => Some(p.clone()).filter(|p| !p.is_empty()),
        Some(_) => return Err(format!("{name}.prefix must be string")),
    };
    let extension = match obj.get("extension") {
        None => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .filter_map(|e| e.as_str().map(String::from))
                .collect::<Vec<_>>(),
        )
        .filter(|_| !list.is_empty()),
        Some(_) => return Err(format!("{name}.extension must be array")),
    };
    let glob = match obj.get("glob") {
        None => None,
        Some(Value::Array(list)) => {
            let mut patterns = Vec::with_capacity(list.len());
            for (j, p) in list.iter().enumerate() {
                let Value::String(p) = p else {
                    return Err(format!("{name}.glob[{j}] must be string"));
                };
                patterns.push(p.clone());
            }
            if patterns.is_empty() {
                None
            } else {
                Some(KeyGlob::new(&patterns).map_err(|(j, reason)| {
                    format!("{name}.glob[{j}] must be a valid glob pattern: {reason}")
                })?)
            }
        }
        Some(_) => return Err(format!("{name}.glob must be array")),
    };
    let regex = match obj.get("regex") {
        None => None,
        Some(Value::String(p)) => Some(compile_prefix_regex(p).map_err(|reason| {
            format!("{name}.regex must be a valid regular expression: {reason}")
        })?),
        Some(_) => return Err(format!("{name}.regex must be string")),
    };
    let mut unknown: Vec<&String> = obj
        .keys()
        .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        let set: Vec<String> = unknown.iter().map(|k| python::repr_str(k)).collect();
        return Err(format!(
            "{name} must not contain {{{}}} properties",
            set.join(", ")
        ));
    }
    Ok(AdvancedRule {
        bucket: bucket.clone(),
        prefix,
        extension,
        glob,
        regex,
    })
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
