//! Serde helpers for values written the way PyYAML and Elastic's loader accept them.

use serde::de::{DeserializeOwned, Error, Unexpected, value::MapDeserializer};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::Secret;

/// A struct built only from its field defaults, as if its section were absent from the file.
pub(crate) fn from_defaults<T: DeserializeOwned>() -> T {
    let empty =
        MapDeserializer::<_, serde::de::value::Error>::new(std::iter::empty::<(&str, &str)>());
    T::deserialize(empty).expect("every config field has a default")
}

/// A section written as `null` (e.g. `service:` with every child commented out) means "all defaults".
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A boolean, also accepting YAML 1.1 spellings that PyYAML reads as booleans
/// (`yes`/`no`/`on`/`off`/`y`/`n`, any case) since serde_yaml (YAML 1.2) reads them as strings.
pub(crate) fn yaml_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    const EXPECTED: &str = "a boolean (true/false)";
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => Ok(true),
            "false" | "no" | "n" | "off" => Ok(false),
            _ => Err(D::Error::invalid_value(Unexpected::Str(&s), &EXPECTED)),
        },
        other => Err(D::Error::invalid_type(unexpected(&other), &EXPECTED)),
    }
}

/// An optional secret where `null` and `""` both mean "not configured".
pub(crate) fn non_empty_secret<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<Secret>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// An optional identifier written as a string or a YAML number (stringified: `123` → `"123"`);
/// `null` and `""` mean absent.
pub(crate) fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(D::Error::invalid_type(unexpected(&other), &"a string")),
    }
}

/// The kind of a JSON value, for type errors (never its content when it is a collection).
pub(crate) fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (_, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "yaml_bool")]
        flag: bool,
        #[serde(default, deserialize_with = "opt_id")]
        id: Option<String>,
        #[serde(default, deserialize_with = "non_empty_secret")]
        key: Option<Secret>,
        #[serde(default, deserialize_with = "null_as_default")]
        list: Vec<u8>,
    }

    fn probe(v: Value) -> Result<Probe, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn yaml11_booleans() {
        for (text, want) in [
            ("yes", true),
            ("On", true),
            ("TRUE", true),
            ("no", false),
            ("off", false),
        ] {
            assert_eq!(probe(json!({"flag": text})).unwrap().flag, want, "{text}");
        }
        assert!(probe(json!({"flag": "maybe"})).is_err());
        assert!(probe(json!({"flag": 1})).is_err());
    }

    #[test]
    fn ids_are_stringified() {
        assert_eq!(
            probe(json!({"id": 123})).unwrap().id.as_deref(),
            Some("123")
        );
        assert_eq!(
            probe(json!({"id": "abc"})).unwrap().id.as_deref(),
            Some("abc")
        );
        assert_eq!(probe(json!({"id": null})).unwrap().id, None);
        assert_eq!(probe(json!({"id": ""})).unwrap().id, None);
        assert!(probe(json!({"id": [1]})).is_err());
    }

    #[test]
    fn empty_secret_and_null_section() {
        assert!(probe(json!({"key": ""})).unwrap().key.is_none());
        assert!(probe(json!({"key": null})).unwrap().key.is_none());
        assert_eq!(
            probe(json!({"key": "k"})).unwrap().key.unwrap().expose(),
            "k"
        );
        assert!(probe(json!({"list": null})).unwrap().list.is_empty());
    }
}
