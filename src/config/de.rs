//! Serde helpers for values written the way PyYAML and Elastic's loader accept them.

use serde::de::{DeserializeOwned, Error, Unexpected, value::MapDeserializer};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::num::NonZeroUsize;
use std::time::Duration;

use super::Secret;

/// Bytes in a MiB, the unit of Elastic's size keys.
pub(crate) const MIB: u64 = 1024 * 1024;

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

/// Seconds written as a number (integer or fraction) as a [`Duration`]; a negative or non-finite
/// number is an error naming the value (figment adds the key).
pub(crate) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = f64::deserialize(d)?;
    Duration::try_from_secs_f64(value).map_err(|_| {
        D::Error::custom(format_args!(
            "must be a non-negative number of seconds, got {value}"
        ))
    })
}

/// [`seconds`], raised to at least `FLOOR_MS` milliseconds: the one place where a pause too short
/// to be useful (a poll loop that would spin, a request that could not complete) is lifted.
pub(crate) fn seconds_at_least<'de, D: Deserializer<'de>, const FLOOR_MS: u64>(
    d: D,
) -> Result<Duration, D::Error> {
    Ok(seconds(d)?.max(Duration::from_millis(FLOOR_MS)))
}

/// A size written in MiB (integer or fraction) as bytes; negative or non-finite is an error.
pub(crate) fn mebibytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let value = f64::deserialize(d)?;
    if !value.is_finite() || value < 0.0 {
        return Err(D::Error::custom(format_args!(
            "must be a non-negative number of MiB, got {value}"
        )));
    }
    // Saturating: a size beyond u64 bytes is no limit at all.
    Ok((value * MIB as f64) as u64)
}

/// [`mebibytes`], raised to at least `FLOOR` bytes.
pub(crate) fn mebibytes_at_least<'de, D: Deserializer<'de>, const FLOOR: u64>(
    d: D,
) -> Result<u64, D::Error> {
    Ok(mebibytes(d)?.max(FLOOR))
}

/// [`mebibytes`] where 0 means "no limit" (`None`).
pub(crate) fn mebibytes_or_unlimited<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<u64>, D::Error> {
    Ok(Some(mebibytes(d)?).filter(|&bytes| bytes > 0))
}

/// A count that sizes a pool or a batch: 0 is an error.
pub(crate) fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<NonZeroUsize, D::Error> {
    let value = usize::deserialize(d)?;
    NonZeroUsize::new(value)
        .ok_or_else(|| D::Error::custom(format_args!("must be at least 1, got {value}")))
}

/// A count where 0 is accepted and acts as 1 (the error report keeps at least the last error).
pub(crate) fn zero_as_one<'de, D: Deserializer<'de>>(d: D) -> Result<NonZeroUsize, D::Error> {
    Ok(NonZeroUsize::new(usize::deserialize(d)?).unwrap_or(NonZeroUsize::MIN))
}

/// A rate or ratio: negative or non-finite is an error.
pub(crate) fn non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(d)?;
    if !value.is_finite() || value < 0.0 {
        return Err(D::Error::custom(format_args!(
            "must be a non-negative number, got {value}"
        )));
    }
    Ok(value)
}

/// A growth factor: negative or non-finite is an error; below 1 is taken as 1 (no shrinking).
pub(crate) fn multiplier<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(non_negative(d)?.max(1.0))
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
