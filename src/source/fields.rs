//! Reading values out of a connector's `configuration` map, the same way for every source and
//! for the sync's own fields (`skip_unchanged_documents`, `use_pipeline_extraction`, …).

use serde_json::{Map, Value};

/// The stored value of a field: `entry.value` for a rich field (as Kibana writes them), the entry
/// itself for a plain value, `null` when absent.
pub fn stored_value<'a>(cfg: &'a Map<String, Value>, key: &str) -> &'a Value {
    match cfg.get(key) {
        Some(Value::Object(rich)) => rich.get("value").unwrap_or(&Value::Null),
        Some(plain) => plain,
        None => &Value::Null,
    }
}

/// A toggle's value: `Ok(None)` when unset (`null`, `""`), `Err` when it is not a boolean at all.
///
/// Elastic treats any non-empty string as `true` (so `"false"` is true); we read `"false"`, `"0"`,
/// `"no"` and `"off"` (any case, trimmed) as `false`, and other non-empty strings as `true`.
#[allow(clippy::result_unit_err)]
pub fn parse_flag(v: &Value) -> Result<Option<bool>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            Ok(Some(!matches!(s.as_str(), "false" | "0" | "no" | "off")))
        }
        Value::Number(n) => Ok(Some(n.as_f64() != Some(0.0))),
        _ => Err(()),
    }
}

/// Whether toggle `key` is on; unset or unreadable means off.
pub fn is_on(cfg: &Map<String, Value>, key: &str) -> bool {
    parse_flag(stored_value(cfg, key)) == Ok(Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn toggles_read_false_strings_as_off() {
        let cfg = |v: Value| {
            let Value::Object(m) = json!({"t": {"value": v}}) else {
                unreachable!()
            };
            m
        };
        for off in [
            json!(false),
            json!("false"),
            json!(" OFF "),
            json!("0"),
            json!(""),
        ] {
            assert!(!is_on(&cfg(off.clone()), "t"), "{off}");
        }
        for on in [json!(true), json!("yes"), json!(1)] {
            assert!(is_on(&cfg(on.clone()), "t"), "{on}");
        }
        assert!(!is_on(&cfg(json!([1])), "t"));
        assert!(!is_on(&Map::new(), "t"));
        let plain = json!({"t": true});
        assert!(is_on(plain.as_object().unwrap(), "t"));
    }
}
