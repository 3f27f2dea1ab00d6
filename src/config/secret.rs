//! A string that must never be printed: API keys, passwords, AWS secrets.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Holds a secret value. `Debug` and `Display` print `***`, so a secret cannot leak through logs,
/// error messages or `{:?}` dumps of the structs that hold it. Read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plain value, for the one place that must send it (an HTTP header, an SDK credential).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Unexpected};
        use serde_json::Value;
        // Accept numbers too: a YAML password such as `123456` parses as an integer.
        // Lists and mappings are rejected without echoing their content.
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Secret(s)),
            Value::Null => Ok(Secret(String::new())),
            Value::Array(_) => Err(D::Error::invalid_type(Unexpected::Seq, &"a string")),
            Value::Object(_) => Err(D::Error::invalid_type(Unexpected::Map, &"a string")),
            other => Ok(Secret(other.to_string())),
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn scalars_accepted_collections_rejected_without_echo() {
        let s: Secret = serde_json::from_str("123456").unwrap();
        assert_eq!(s.expose(), "123456");
        let err = serde_json::from_str::<Secret>(r#"["hunter2"]"#).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
