//! Text-level preprocessing of `config.yml`, reproducing the `envyaml` library (v1.10) used by Elastic's
//! service: comment lines are dropped, then `$NAME`, `${NAME}`, `${NAME|default}`, `$NAME|default` and `$$`
//! are expanded before the YAML parser ever sees the text.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// Env var naming the `.env` file to read (default: `./.env` when present).
const ENV_FILE_VAR: &str = "ENV_FILE";
/// When this env var exists (any value), undefined variables are left as-is instead of failing the load.
const STRICT_DISABLE_VAR: &str = "ENVYAML_STRICT_DISABLE";

/// A snapshot of the environment the loader reads: process variables for substitution and
/// `CONNECTORS_*` overrides, and where the `.env` file is looked for when `ENV_FILE` is not set.
///
/// Deliberately not `Debug`: it holds every environment variable, secrets included.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
    default_dotenv: Option<PathBuf>,
}

impl Environment {
    /// The current process environment (variables that are not valid UTF-8 are skipped), with `./.env`
    /// as the default `.env` location.
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self {
            vars,
            default_dotenv: Some(PathBuf::from(".env")),
        }
    }

    /// An explicit set of variables and no default `.env` file (for tests and embedding).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            default_dotenv: None,
        }
    }

    /// The value of one variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// All variables, sorted by name.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether an undefined variable without default aborts loading.
    pub fn strict(&self) -> bool {
        self.get(STRICT_DISABLE_VAR).is_none()
    }

    /// The `.env` file to read, if any: `$ENV_FILE`, else the default location when it exists.
    pub fn dotenv_path(&self) -> Option<PathBuf> {
        match self.get(ENV_FILE_VAR) {
            Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
            _ => self.default_dotenv.clone().filter(|p| p.is_file()),
        }
    }

    /// Reads the `.env` file. A missing file yields no variables (envyaml ignores it too).
    pub fn read_dotenv(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        let Some(path) = self.dotenv_path() else {
            return Ok(BTreeMap::new());
        };
        match fs::read_to_string(&path) {
            Ok(text) => Ok(parse_dotenv(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), "env file not found, ignoring it");
                Ok(BTreeMap::new())
            }
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }
}

/// Parses `.env` text: `NAME=value` lines; blank lines and `#` comments are ignored; an optional `export `
/// prefix is accepted; surrounding whitespace and one pair of matching quotes around the value are stripped.
pub fn parse_dotenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (name, value) = line.split_once('=')?;
            let name = name.trim();
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            Some((name.to_owned(), unquote(value.trim()).to_owned()))
        })
        .collect()
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// Removes every line whose first non-blank character is `#` (the whole line, newline included).
pub fn strip_comment_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect()
}

/// Expands variable references in `text` using `lookup`.
///
/// * `$$` → a literal `$`; `$` followed by a digit, or by nothing usable, stays literal.
/// * `${NAME}` / `${NAME|default}`: the name runs to the first `|` or `}` on the same line.
/// * `$NAME` / `$NAME|default`: the name is letters, digits, `_`, `-` and `.` (as in envyaml); the default
///   runs to the end of the line, or up to the closing quote when the reference follows a quote.
///
/// A defined variable wins over the default. With `strict`, undefined variables without a default make the
/// call fail with their names (sorted, deduplicated); otherwise they are left untouched.
pub fn substitute<F>(text: &str, strict: bool, lookup: F) -> Result<String, Vec<String>>
where
    F: Fn(&str) -> Option<String>,
{
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let quote = out.chars().next_back().filter(|c| matches!(c, '"' | '\''));
        let after = &rest[pos + 1..];
        match parse_reference(after, quote) {
            Reference::Escaped => {
                out.push('$');
                rest = &after[1..];
            }
            Reference::Literal => {
                out.push('$');
                rest = after;
            }
            Reference::Variable { name, default, len } => {
                match lookup(name).or_else(|| default.map(str::to_owned)) {
                    Some(value) => out.push_str(&value),
                    None => {
                        missing.push(name.to_owned());
                        out.push('$');
                        out.push_str(&after[..len]);
                    }
                }
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    if strict && !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(missing);
    }
    Ok(out)
}

/// What follows one `$`.
enum Reference<'a> {
    /// `$$`.
    Escaped,
    /// Not a reference; the `$` is kept.
    Literal,
    /// A variable reference spanning `len` bytes after the `$`.
    Variable {
        name: &'a str,
        default: Option<&'a str>,
        len: usize,
    },
}

fn parse_reference(after: &str, quote: Option<char>) -> Reference<'_> {
    let line = after.split(['\n', '\r']).next().unwrap_or("");
    match line.chars().next() {
        Some('$') => Reference::Escaped,
        Some(c) if c.is_ascii_digit() => Reference::Literal,
        Some('{') => {
            let Some(close) = line.find('}') else {
                return Reference::Literal;
            };
            let body = &line[1..close];
            let (name, default) = match body.split_once('|') {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if name.is_empty() {
                return Reference::Literal;
            }
            Reference::Variable {
                name,
                default,
                len: close + 1,
            }
        }
        _ => {
            let name_len = line
                .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
                .unwrap_or(line.len());
            if name_len == 0 {
                return Reference::Literal;
            }
            let name = &line[..name_len];
            let Some(tail) = line[name_len..].strip_prefix('|') else {
                return Reference::Variable {
                    name,
                    default: None,
                    len: name_len,
                };
            };
            let default_len = quote.and_then(|q| tail.find(q)).unwrap_or(tail.len());
            Reference::Variable {
                name,
                default: Some(&tail[..default_len]),
                len: name_len + 1 + default_len,
            }
        }
    }
}

/// Comment stripping plus substitution from `env`, then from the `.env` file. `file` names the config file
/// in the error.
pub(crate) fn preprocess(
    file: &Path,
    text: &str,
    env: &Environment,
) -> Result<String, ConfigError> {
    let dotenv = env.read_dotenv()?;
    let text = strip_comment_lines(text);
    substitute(&text, env.strict(), |name| {
        env.get(name)
            .map(str::to_owned)
            .or_else(|| dotenv.get(name).cloned())
    })
    .map_err(|names| ConfigError::UndefinedVariables {
        path: file.to_path_buf(),
        names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(text: &str, vars: &[(&str, &str)]) -> Result<String, Vec<String>> {
        let vars: BTreeMap<_, _> = vars.iter().copied().collect();
        substitute(text, true, |n| vars.get(n).map(|v| v.to_string()))
    }

    #[test]
    fn all_reference_forms() {
        let vars = [("HOST", "es:9200"), ("USER", "bob")];
        assert_eq!(
            sub("h: http://${HOST}/x", &vars).unwrap(),
            "h: http://es:9200/x"
        );
        assert_eq!(
            sub("h: http://$HOST/x", &vars).unwrap(),
            "h: http://es:9200/x"
        );
        assert_eq!(sub("u: \"$USER\"", &vars).unwrap(), "u: \"bob\"");
        assert_eq!(sub("u: ${NOPE|dflt}", &vars).unwrap(), "u: dflt");
        assert_eq!(sub("u: ${USER|dflt}", &vars).unwrap(), "u: bob");
        assert_eq!(sub("u: ${NOPE|}", &vars).unwrap(), "u: ");
        assert_eq!(
            sub("u: $NOPE|rest of line\nx: 1", &vars).unwrap(),
            "u: rest of line\nx: 1"
        );
        assert_eq!(
            sub("u: \"$NOPE|a b\" # c", &vars).unwrap(),
            "u: \"a b\" # c"
        );
        assert_eq!(sub("u: '${NOPE|a:b}'", &vars).unwrap(), "u: 'a:b'");
    }

    #[test]
    fn escapes_and_literals() {
        assert_eq!(sub("p: a$$b", &[]).unwrap(), "p: a$b");
        assert_eq!(sub("p: $${X}", &[]).unwrap(), "p: ${X}");
        assert_eq!(
            sub("p: cost $5 or $ or ${} or ${ x", &[]).unwrap(),
            "p: cost $5 or $ or ${} or ${ x"
        );
        assert_eq!(sub("p: end$", &[]).unwrap(), "p: end$");
    }

    #[test]
    fn strict_mode_names_every_missing_variable() {
        let err = sub("a: $B_VAR\nb: ${A_VAR}\nc: ${A_VAR}", &[]).unwrap_err();
        assert_eq!(err, ["A_VAR", "B_VAR"]);
        let lenient = substitute("a: ${A_VAR} $B", false, |_| None).unwrap();
        assert_eq!(lenient, "a: ${A_VAR} $B");
    }

    #[test]
    fn comment_lines_are_removed_before_substitution() {
        let text = "# ${UNDEFINED}\n  #   $ALSO_UNDEFINED\nkey: value # trailing\n";
        let stripped = strip_comment_lines(text);
        assert_eq!(stripped, "key: value # trailing\n");
        assert_eq!(sub(&stripped, &[]).unwrap(), stripped);
    }

    #[test]
    fn dotenv_parsing() {
        let env =
            parse_dotenv("# c\n\nA=1\nexport B = 'two words'\nC=\"q\"\n1X=no\nbroken\nD==x\n");
        let got: Vec<_> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [("A", "1"), ("B", "two words"), ("C", "q"), ("D", "=x")]
        );
    }

    #[test]
    fn environment_strictness_and_dotenv_location() {
        assert!(Environment::from_vars([("X", "1")]).strict());
        assert!(!Environment::from_vars([("ENVYAML_STRICT_DISABLE", "")]).strict());
        let env = Environment::from_vars([("ENV_FILE", "/nonexistent/.env")]);
        assert_eq!(env.dotenv_path(), Some(PathBuf::from("/nonexistent/.env")));
        assert!(env.read_dotenv().unwrap().is_empty());
        assert_eq!(Environment::from_vars::<&str, &str>([]).dotenv_path(), None);
    }
}
