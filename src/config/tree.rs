//! The YAML document as an ordered tree: parsing, Elastic's "un-dotting" of keys, and conversion into a
//! figment [`Dict`].

use figment::providers::{Format, Yaml};
use figment::value::{Dict, Empty, Num, Tag, Value as FigValue};
use serde_json::{Map, Value};
use std::path::Path;

use super::ConfigError;

/// Maps whose keys are data, not config paths: their keys are never un-dotted.
const FREE_FORM: &[&[&str]] = &[&["elasticsearch", "headers"], &["sources"]];

/// Parses YAML text into an order-preserving tree; an empty document is an empty mapping.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Map<String, Value>, ConfigError> {
    let value: Value = Yaml::from_str(text).map_err(|e| {
        let location = e.location().map(|l| (l.line(), l.column()));
        ConfigError::syntax(path, e.to_string(), location)
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(ConfigError::syntax(
            path,
            "the top level must be a mapping of keys to values".to_owned(),
            None,
        )),
    }
}

/// Expands dotted keys at every level (`a.b: 1` → `a: {b: 1}`), in document order: when the same path is
/// given twice, two mappings are deep-merged and any other later value replaces the earlier one.
pub(crate) fn undot(map: Map<String, Value>) -> Map<String, Value> {
    undot_at(map, &[])
}

fn undot_at(map: Map<String, Value>, parent: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in map {
        let segments: Vec<&str> = key.split('.').collect();
        let full: Vec<&str> = parent.iter().chain(&segments).copied().collect();
        let value = match value {
            Value::Object(inner) if !FREE_FORM.contains(&full.as_slice()) => {
                Value::Object(undot_at(inner, &full))
            }
            other => other,
        };
        insert_path(&mut out, &segments, value);
    }
    out
}

fn insert_path(map: &mut Map<String, Value>, segments: &[&str], value: Value) {
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut current = map;
    for segment in parents {
        let entry = current
            .entry(*segment)
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        current = entry.as_object_mut().expect("just made an object");
    }
    match (current.get_mut(*last), value) {
        (Some(Value::Object(existing)), Value::Object(new)) => deep_merge(existing, new),
        (_, value) => {
            current.insert((*last).to_owned(), value);
        }
    }
}

/// Merges `new` into `base`: mappings key by key, anything else replaced.
pub(crate) fn deep_merge(base: &mut Map<String, Value>, new: Map<String, Value>) {
    for (key, value) in new {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(inner)) => deep_merge(existing, inner),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Converts the tree into figment's value model (YAML `null` becomes figment's "none").
pub(crate) fn to_dict(map: Map<String, Value>) -> Dict {
    map.into_iter().map(|(k, v)| (k, to_figment(v))).collect()
}

fn to_figment(value: Value) -> FigValue {
    let tag = Tag::Default;
    match value {
        Value::Null => FigValue::Empty(tag, Empty::None),
        Value::Bool(b) => FigValue::Bool(tag, b),
        Value::Number(n) => {
            let num = if let Some(u) = n.as_u64() {
                Num::U64(u)
            } else if let Some(i) = n.as_i64() {
                Num::I64(i)
            } else {
                Num::F64(n.as_f64().unwrap_or(f64::NAN))
            };
            FigValue::Num(tag, num)
        }
        Value::String(s) => FigValue::String(tag, s),
        Value::Array(items) => FigValue::Array(tag, items.into_iter().map(to_figment).collect()),
        Value::Object(map) => FigValue::Dict(tag, to_dict(map)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn undot_yaml(text: &str) -> Value {
        Value::Object(undot(parse(Path::new("t.yml"), text).unwrap()))
    }

    #[test]
    fn dotted_and_nested_keys_mix_with_later_wins() {
        let got = undot_yaml(
            "elasticsearch.host: http://a:9200\n\
             elasticsearch:\n  username: u\n  host: http://b:9200\n  bulk: {queue_max_size: 1}\n\
             elasticsearch.bulk.chunk_size: 10\n\
             elasticsearch.bulk:\n  queue_max_size: 2\n\
             service: {idling: 1}\n\
             service.idling: 2\n",
        );
        assert_eq!(
            got,
            json!({
                "elasticsearch": {
                    "host": "http://b:9200",
                    "username": "u",
                    "bulk": {"queue_max_size": 2, "chunk_size": 10}
                },
                "service": {"idling": 2}
            })
        );
    }

    #[test]
    fn nested_dotted_keys_are_expanded_but_free_form_maps_are_not() {
        let got = undot_yaml(
            "elasticsearch:\n  bulk.error_monitor.enabled: false\n  headers:\n    X.Trace: 1\n\
             sources: {a.b: c}\n",
        );
        assert_eq!(
            got,
            json!({
                "elasticsearch": {"bulk": {"error_monitor": {"enabled": false}}, "headers": {"X.Trace": 1}},
                "sources": {"a.b": "c"}
            })
        );
    }

    #[test]
    fn lists_and_scalars_replace_mappings() {
        let got = undot_yaml("a: {b: {c: 1}}\na.b: [1]\nx.y: 1\nx.y.z: 2\n");
        assert_eq!(got, json!({"a": {"b": [1]}, "x": {"y": {"z": 2}}}));
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = parse(Path::new("c.yml"), "a: 1\nb: [\n  - x: :\n").unwrap_err();
        let ConfigError::Syntax { line, .. } = &err else {
            panic!("{err}")
        };
        assert!(line.is_some(), "{err}");
        assert!(
            err.to_string().starts_with("c.yml: invalid YAML: "),
            "{err}"
        );
        assert!(err.to_string().contains("line"), "{err}");
        assert!(parse(Path::new("c.yml"), "- a\n").is_err());
        assert!(parse(Path::new("c.yml"), "").unwrap().is_empty());
    }
}
