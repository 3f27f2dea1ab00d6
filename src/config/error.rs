//! [`ConfigError`] and the translation of figment/serde errors into one-line messages that name the
//! offending key and file, and never echo a secret value.

use figment::error::{Actual, Kind};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// Key names whose values are secrets: errors about them never show the value.
const SECRET_KEYS: &[&str] = &["password", "api_key"];

/// Why the configuration could not be loaded. Every message is one line, starts with the file and names the
/// key at fault where there is one. No message contains a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file (or the `.env` file) could not be read.
    #[error("{}: cannot read file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// envyaml strict mode: variables referenced without default are not defined.
    #[error(
        "{}: strict mode enabled, variables {} are not defined (define them, add a default with \
         `${{NAME|default}}`, or set ENVYAML_STRICT_DISABLE)",
        path.display(),
        names.iter().map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
    )]
    UndefinedVariables { path: PathBuf, names: Vec<String> },
    /// The text is not valid YAML, or its top level is not a mapping.
    #[error("{}: invalid YAML: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A key does not fit the schema: unknown key, wrong type, bad value.
    #[error("{}: {message}", path.display())]
    Key {
        path: PathBuf,
        /// Dotted path of the key, e.g. `elasticsearch.bulk.chunk_size` or `connectors[0].api_key`.
        key: String,
        message: String,
    },
    /// The configuration is well-formed but unusable (see `validate`).
    #[error("{}: {message}", path.display())]
    Validation {
        path: PathBuf,
        /// Dotted path of the key at fault.
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// The dotted key at fault, when the error is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Key { key, .. } | Self::Validation { key, .. } => Some(key),
            _ => None,
        }
    }

    /// A YAML syntax error, with the line number inserted unless the parser already gave it.
    pub(crate) fn syntax(path: &Path, message: String, location: Option<(usize, usize)>) -> Self {
        let mut message = message;
        if let Some((line, column)) = location.filter(|_| !message.contains(" line ")) {
            let _ = write!(message, " at line {line} column {column}");
        }
        Self::Syntax {
            path: path.to_path_buf(),
            line: location.map(|(line, _)| line),
            message,
        }
    }

    /// Translates the first error figment reports while extracting the config from `path`.
    pub(crate) fn from_figment(path: &Path, error: figment::Error) -> Self {
        let error = error
            .into_iter()
            .next()
            .expect("a figment error holds at least one error");
        let mut segments = error.path.clone();
        // figment usually has the field in the path already; make sure it is there once.
        let field = match &error.kind {
            Kind::UnknownField(field, _) => Some(field.as_str()),
            Kind::MissingField(field) => Some(field.as_ref()),
            _ => None,
        };
        if let Some(field) = field.filter(|f| segments.last().map(String::as_str) != Some(*f)) {
            segments.push(field.to_owned());
        }
        let key = render_key(&segments);
        let redact = segments.iter().any(|s| SECRET_KEYS.contains(&s.as_str()));
        let mut message = match &error.kind {
            Kind::UnknownField(field, expected) => {
                format!("unknown key \"{key}\"{}", suggestion(field, expected))
            }
            Kind::MissingField(_) => format!("missing key \"{key}\""),
            Kind::InvalidType(actual, expected) => format!(
                "invalid type for key \"{key}\": expected {}, found {}",
                expected_phrase(expected),
                describe(actual, redact)
            ),
            Kind::InvalidValue(actual, expected) => format!(
                "invalid value for key \"{key}\": expected {}, found {}",
                expected_phrase(expected),
                describe(actual, redact)
            ),
            _ if redact => format!("invalid value for key \"{key}\""),
            Kind::Message(text) => format!("invalid value for key \"{key}\": {text}"),
            other => format!("invalid value for key \"{key}\": {other}"),
        };
        let from_env = error
            .metadata
            .as_ref()
            .is_some_and(|m| m.name.contains("environment"));
        if from_env {
            let var: Vec<_> = error.path.iter().map(|s| s.to_uppercase()).collect();
            let _ = write!(
                message,
                " (set by environment variable CONNECTORS_{})",
                var.join("__")
            );
        }
        Self::Key {
            path: path.to_path_buf(),
            key,
            message,
        }
    }
}

/// `["connectors", "1", "api_key"]` → `connectors[1].api_key`; the empty path is the whole document.
pub(crate) fn render_key(segments: &[String]) -> String {
    if segments.is_empty() {
        return "<top level>".to_owned();
    }
    let mut key = String::new();
    for segment in segments {
        if !key.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            let _ = write!(key, "[{segment}]");
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(segment);
        }
    }
    key
}

/// Serde's expectation phrased for a YAML user.
fn expected_phrase(expected: &str) -> &str {
    match expected {
        "f32" | "f64" => "a number",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "a sequence" => "a list",
        e if e.starts_with("struct ") || e.starts_with("a map") || e == "map" => "a mapping",
        e => e,
    }
}

/// What was found; with `redact`, only its kind (the value may be a secret).
fn describe(actual: &Actual, redact: bool) -> String {
    match (actual, redact) {
        (Actual::Str(_) | Actual::Char(_), true) => "a string".to_owned(),
        (Actual::Unsigned(_) | Actual::Signed(_) | Actual::Float(_), true) => "a number".to_owned(),
        (Actual::Bool(_), true) => "a boolean".to_owned(),
        (Actual::Str(s), false) => format!("string {s:?}"),
        (Actual::Char(c), false) => format!("string {:?}", c.to_string()),
        (Actual::Unsigned(n), false) => format!("number {n}"),
        (Actual::Signed(n), false) => format!("number {n}"),
        (Actual::Float(n), false) => format!("number {n}"),
        (Actual::Bool(b), false) => format!("boolean {b}"),
        (Actual::Unit | Actual::Option, _) => "null".to_owned(),
        (Actual::Seq, _) => "a list".to_owned(),
        (Actual::Map, _) => "a mapping".to_owned(),
        (_, true) => "a value".to_owned(),
        (other, false) => other.to_string(),
    }
}

/// ` (did you mean "host"?)` when a valid key is within two edits of the unknown one.
fn suggestion(field: &str, expected: &[&str]) -> String {
    expected
        .iter()
        .map(|candidate| (edit_distance(field, candidate), candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, candidate)| format!(" (did you mean \"{candidate}\"?)"))
        .unwrap_or_default()
}

/// Levenshtein distance, counted in chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_render_with_list_indexes() {
        let segments = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            render_key(&segments(&["connectors", "1", "api_key"])),
            "connectors[1].api_key"
        );
        assert_eq!(
            render_key(&segments(&["elasticsearch", "bulk"])),
            "elasticsearch.bulk"
        );
        assert_eq!(render_key(&[]), "<top level>");
    }

    #[test]
    fn suggestions_for_typos() {
        assert_eq!(edit_distance("hots", "host"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(
            suggestion("hots", &["host", "ssl"]),
            " (did you mean \"host\"?)"
        );
        assert_eq!(suggestion("zzzzzz", &["host", "ssl"]), "");
    }

    #[test]
    fn secrets_are_described_by_kind_only() {
        assert_eq!(describe(&Actual::Str("hunter2".into()), true), "a string");
        assert_eq!(
            describe(&Actual::Str("soon".into()), false),
            "string \"soon\""
        );
        assert_eq!(describe(&Actual::Seq, true), "a list");
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let e = ConfigError::syntax(Path::new("c.yml"), "bad".into(), Some((3, 4)));
        assert_eq!(e.to_string(), "c.yml: invalid YAML: bad at line 3 column 4");
        let e = ConfigError::syntax(
            Path::new("c.yml"),
            "bad at line 3 column 4".into(),
            Some((3, 4)),
        );
        assert_eq!(e.to_string(), "c.yml: invalid YAML: bad at line 3 column 4");
    }
}
