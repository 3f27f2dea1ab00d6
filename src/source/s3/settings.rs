//! Reading and validating the S3 connector's configuration (docs/architecture.md#the-s3-source).

use super::schema::{FIELDS, FieldSpec, FieldType, Scalar};
use crate::config::Secret;
use crate::source::fields::{self, stored_value};
use serde_json::{Map, Value};

/// Typed S3 source settings, read from a connector's `configuration` map.
///
/// Divergences from Elastic, on purpose:
/// * **Booleans**: Elastic treats any non-empty string as `true` (so `"false"` is true). We read `"false"`,
///   `"0"`, `"no"` and `"off"` (any case, trimmed) as `false`; other non-empty strings are `true`.
/// * **Credentials**: `aws_access_key_id` and `aws_secret_access_key` may *both* be empty; the client then
///   uses the AWS default credential chain (environment, profile, web identity, ECS, IMDS), if
///   `s3.allow_default_credentials` allows it (see [`super::limits`]). Exactly one of
///   them empty is still an error, with Elastic's message for the empty one. The written schema keeps
///   Elastic's `required: true` for both.
/// * **Bad numbers**: a non-numeric int value is a validation error rather than a crash.
/// * **`max_attempts`** keeps Elastic's meaning: retry attempts after the first request.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Settings {
    /// Bucket names; exactly `["*"]` means every bucket of the account.
    pub buckets: Vec<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub read_timeout_secs: u64,
    pub connect_timeout_secs: u64,
    /// Retries after the first attempt (botocore legacy semantics).
    pub max_attempts: u32,
    /// `max-keys` of each listing request.
    pub page_size: i32,
    /// Custom endpoint from the configuration (see [`S3Settings::resolve_endpoint`] for the env fallback).
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub force_path_style: bool,
}

impl Default for S3Settings {
    /// Elastic's defaults, with no buckets and no credentials.
    fn default() -> Self {
        Self {
            buckets: Vec::new(),
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            read_timeout_secs: 90,
            connect_timeout_secs: 90,
            max_attempts: 5,
            page_size: 100,
            endpoint_url: None,
            region: None,
            force_path_style: false,
        }
    }
}

/// Why a configuration cannot be used. The texts are Elastic's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `validate_config_fields`: some of Elastic's eight keys are absent.
    #[error("Connector has missing configuration fields: {}", .0.join(", "))]
    MissingFields(Vec<String>),
    /// `validate_config`: one message per failing field, in schema order.
    #[error("Field validation errors: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// A configuration value after conversion to its schema type.
#[derive(Debug, Clone, PartialEq)]
enum Typed {
    Null,
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<String>),
}

impl Typed {
    fn is_empty(&self) -> bool {
        match self {
            Typed::Null => true,
            Typed::Str(s) => s.is_empty(),
            Typed::List(items) => items.iter().all(String::is_empty),
            Typed::Int(_) | Typed::Bool(_) => false,
        }
    }

    fn from_scalar(s: Scalar) -> Self {
        match s {
            Scalar::Null => Typed::Null,
            Scalar::EmptyStr => Typed::Str(String::new()),
            Scalar::Int(i) => Typed::Int(i),
            Scalar::Bool(b) => Typed::Bool(b),
        }
    }
}

fn value_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Converts a stored value to the schema type (docs/architecture.md#the-s3-source). `Err` carries the validation message.
fn convert(spec: &FieldSpec, v: &Value) -> Result<Typed, String> {
    let bad = |what: &str| format!("'{}' must be {what}, got {v}.", spec.label);
    Ok(match spec.field_type {
        FieldType::List => match v {
            Value::Null => Typed::List(Vec::new()),
            Value::String(s) => Typed::List(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            Value::Array(items) => Typed::List(items.iter().map(value_to_string).collect()),
            other => Typed::List(vec![value_to_string(other)]),
        },
        FieldType::Int => match v {
            Value::Null => Typed::Null,
            Value::String(s) if s.trim().is_empty() => Typed::Null,
            Value::String(s) => Typed::Int(s.trim().parse().map_err(|_| bad("an integer"))?),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Typed::Int(i),
                // Floats are truncated, as Python's int() does.
                None => Typed::Int(
                    n.as_f64()
                        .map(|f| f.trunc() as i64)
                        .ok_or_else(|| bad("an integer"))?,
                ),
            },
            _ => return Err(bad("an integer")),
        },
        FieldType::Bool => match fields::parse_flag(v) {
            Ok(Some(b)) => Typed::Bool(b),
            Ok(None) => Typed::Null,
            Err(()) => return Err(bad("a boolean")),
        },
        FieldType::Str => match v {
            Value::Null => Typed::Str(String::new()),
            other => Typed::Str(value_to_string(other)),
        },
    })
}

/// The value of one field after conversion and defaulting, or its validation message.
fn read_field(spec: &FieldSpec, cfg: &Map<String, Value>) -> Result<Typed, String> {
    let typed = convert(spec, stored_value(cfg, spec.key))?;
    if !spec.required && typed.is_empty() {
        return Ok(Typed::from_scalar(spec.default_value));
    }
    Ok(typed)
}

/// `validate_config_fields`: Elastic's eight keys must be present. Our additions may be absent.
pub fn validate_config_fields(cfg: &Map<String, Value>) -> Result<(), SettingsError> {
    let missing: Vec<String> = FIELDS
        .iter()
        .filter(|f| f.elastic && !cfg.contains_key(f.key))
        .map(|f| f.key.to_owned())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SettingsError::MissingFields(missing))
    }
}

fn empty_message(spec: &FieldSpec) -> String {
    format!("'{}' cannot be empty.", spec.label)
}

fn non_empty_str(t: Typed) -> Option<String> {
    match t {
        Typed::Str(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// Reads an int field that must lie within `min..=max`.
fn int_in<T: TryFrom<i64>>(
    spec: &FieldSpec,
    t: Typed,
    min: i64,
    max: i64,
    errors: &mut Vec<String>,
) -> Option<T> {
    match t {
        Typed::Int(i) if (min..=max).contains(&i) => T::try_from(i).ok(),
        Typed::Int(i) => {
            errors.push(format!(
                "'{}' must be between {min} and {max}, got {i}.",
                spec.label
            ));
            None
        }
        _ => None,
    }
}

impl S3Settings {
    /// Reads the connector's `configuration` map (rich fields, or plain values) and validates it:
    /// first [`validate_config_fields`], then the per-field checks of `validate_config` (docs/architecture.md#the-s3-source).
    pub fn from_configuration(cfg: &Map<String, Value>) -> Result<S3Settings, SettingsError> {
        validate_config_fields(cfg)?;
        let mut errors = Vec::new();
        let mut values = Vec::with_capacity(FIELDS.len());
        for spec in &FIELDS {
            match read_field(spec, cfg) {
                Ok(v) => values.push(v),
                Err(message) => {
                    errors.push(message);
                    values.push(Typed::Null);
                }
            }
        }
        let mut take = |key: &str| {
            let i = FIELDS
                .iter()
                .position(|f| f.key == key)
                .expect("known field");
            (&FIELDS[i], std::mem::replace(&mut values[i], Typed::Null))
        };

        let mut s = S3Settings::default();
        let (spec, buckets) = take("buckets");
        if buckets.is_empty() {
            errors.push(empty_message(spec));
        } else if let Typed::List(list) = buckets {
            s.buckets = list;
        }

        let (key_spec, key) = take("aws_access_key_id");
        let (secret_spec, secret) = take("aws_secret_access_key");
        s.access_key_id = non_empty_str(key);
        s.secret_access_key = non_empty_str(secret).map(Secret::new);
        match (&s.access_key_id, &s.secret_access_key) {
            (Some(_), None) => errors.push(empty_message(secret_spec)),
            (None, Some(_)) => errors.push(empty_message(key_spec)),
            // Both set: static credentials; both empty: the AWS default credential chain.
            _ => {}
        }

        let (spec, v) = take("read_timeout");
        s.read_timeout_secs =
            int_in(spec, v, 1, i64::from(u32::MAX), &mut errors).unwrap_or(s.read_timeout_secs);
        let (spec, v) = take("connect_timeout");
        s.connect_timeout_secs =
            int_in(spec, v, 1, i64::from(u32::MAX), &mut errors).unwrap_or(s.connect_timeout_secs);
        let (spec, v) = take("max_attempts");
        s.max_attempts = int_in(spec, v, 0, 100, &mut errors).unwrap_or(s.max_attempts);
        let (spec, v) = take("page_size");
        s.page_size = int_in(spec, v, 1, i64::from(i32::MAX), &mut errors).unwrap_or(s.page_size);

        s.endpoint_url = non_empty_str(take("endpoint_url").1);
        s.region = non_empty_str(take("region").1);
        s.force_path_style = take("force_path_style").1 == Typed::Bool(true);
        s.session_token = non_empty_str(take("aws_session_token").1).map(Secret::new);

        if errors.is_empty() {
            Ok(s)
        } else {
            Err(SettingsError::Invalid(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::s3::schema::configuration_schema;
    use serde_json::json;

    /// The schema as written, with some values set.
    fn cfg(values: Value) -> Map<String, Value> {
        let mut cfg = configuration_schema();
        for (k, v) in values.as_object().unwrap() {
            cfg[k]["value"] = v.clone();
        }
        cfg
    }

    fn valid() -> Value {
        json!({"buckets": "a, b", "aws_access_key_id": "AK", "aws_secret_access_key": "SK"})
    }

    fn read(values: Value) -> Result<S3Settings, SettingsError> {
        S3Settings::from_configuration(&cfg(values))
    }

    fn with(extra: Value) -> Result<S3Settings, SettingsError> {
        let mut v = valid();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        read(v)
    }

    #[test]
    fn defaults_from_a_fresh_schema() {
        let s = read(valid()).unwrap();
        assert_eq!(s.buckets, ["a", "b"]);
        assert_eq!(s.access_key_id.as_deref(), Some("AK"));
        assert_eq!(s.secret_access_key.as_ref().unwrap().expose(), "SK");
        assert_eq!(
            (
                s.read_timeout_secs,
                s.connect_timeout_secs,
                s.max_attempts,
                s.page_size
            ),
            (90, 90, 5, 100)
        );
        assert!(!s.force_path_style);
        assert_eq!(
            (s.endpoint_url, s.region, s.session_token),
            (None, None, None)
        );
    }

    #[test]
    fn list_conversion() {
        assert_eq!(
            with(json!({"buckets": " x ,, y ,"})).unwrap().buckets,
            ["x", "y"]
        );
        assert_eq!(with(json!({"buckets": ["*"]})).unwrap().buckets, ["*"]);
        assert_eq!(with(json!({"buckets": 7})).unwrap().buckets, ["7"]);
        for empty in [json!(""), json!(null), json!([]), json!([""]), json!(" , ")] {
            assert_eq!(
                with(json!({ "buckets": empty })).unwrap_err().to_string(),
                "Field validation errors: 'AWS Buckets' cannot be empty."
            );
        }
    }

    #[test]
    fn int_conversion() {
        let s = with(
            json!({"read_timeout": "30", "connect_timeout": 12.9, "max_attempts": 0, "page_size": " 3 "}),
        );
        let s = s.unwrap();
        assert_eq!(
            (
                s.read_timeout_secs,
                s.connect_timeout_secs,
                s.max_attempts,
                s.page_size
            ),
            (30, 12, 0, 3)
        );
        // Empty non-required values take the default.
        let s = with(json!({"read_timeout": "", "page_size": null})).unwrap();
        assert_eq!((s.read_timeout_secs, s.page_size), (90, 100));
        assert_eq!(
            with(json!({"read_timeout": "abc", "page_size": 0}))
                .unwrap_err()
                .to_string(),
            "Field validation errors: 'Read timeout' must be an integer, got \"abc\".; \
             'Maximum size of page' must be between 1 and 2147483647, got 0."
        );
    }

    #[test]
    fn bool_conversion_fixes_elastic_quirk() {
        let flag = |v: Value| {
            with(json!({ "force_path_style": v }))
                .unwrap()
                .force_path_style
        };
        for f in [
            json!(false),
            json!("false"),
            json!("FALSE"),
            json!("0"),
            json!("no"),
            json!(""),
            json!(null),
            json!(0),
        ] {
            assert!(!flag(f.clone()), "{f}");
        }
        for t in [
            json!(true),
            json!("true"),
            json!("yes"),
            json!("1"),
            json!(1),
        ] {
            assert!(flag(t.clone()), "{t}");
        }
        assert!(
            with(json!({"force_path_style": "true"}))
                .unwrap()
                .force_path_style
        );
        assert!(
            !with(json!({"force_path_style": ""}))
                .unwrap()
                .force_path_style
        );
    }

    #[test]
    fn credentials_both_or_neither() {
        let s = with(json!({"aws_access_key_id": "", "aws_secret_access_key": null})).unwrap();
        assert_eq!((s.access_key_id, s.secret_access_key), (None, None));
        assert_eq!(
            with(json!({"aws_secret_access_key": ""}))
                .unwrap_err()
                .to_string(),
            "Field validation errors: 'AWS Secret Key' cannot be empty."
        );
        assert_eq!(
            read(json!({"buckets": "", "aws_secret_access_key": "SK"}))
                .unwrap_err()
                .to_string(),
            "Field validation errors: 'AWS Buckets' cannot be empty.; 'AWS Access Key Id' cannot be empty."
        );
        let s = with(json!({"aws_session_token": "TOKEN"})).unwrap();
        assert_eq!(s.session_token.as_ref().unwrap().expose(), "TOKEN");
        let debug = format!("{s:?}");
        assert!(!debug.contains("SK") && !debug.contains("TOKEN"), "{debug}");
    }

    #[test]
    fn missing_fields() {
        let mut c = cfg(valid());
        c.shift_remove("page_size");
        c.shift_remove("buckets");
        // Our additions may be absent.
        c.shift_remove("endpoint_url");
        c.shift_remove("aws_session_token");
        assert_eq!(
            S3Settings::from_configuration(&c).unwrap_err().to_string(),
            "Connector has missing configuration fields: buckets, page_size"
        );
    }

    #[test]
    fn additions_and_plain_values() {
        let mut c = Map::new();
        for f in FIELDS.iter().filter(|f| f.elastic) {
            c.insert(f.key.to_owned(), Value::Null);
        }
        c.insert("buckets".into(), json!(["b"]));
        c.insert("endpoint_url".into(), json!(" http://minio:9000 "));
        c.insert("region".into(), json!("eu-west-3"));
        let s = S3Settings::from_configuration(&c).unwrap();
        assert_eq!(s.endpoint_url.as_deref(), Some("http://minio:9000"));
        assert_eq!(s.region.as_deref(), Some("eu-west-3"));
        assert_eq!(s.page_size, 100);
    }
}
