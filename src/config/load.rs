//! The loading pipeline: read → envyaml preprocessing → YAML → un-dot → `CONNECTORS_*` env overrides →
//! typed [`Config`] → deprecated-form fallback → [`validate`].

use figment::value::{Dict, Value as FigValue};
use figment::{Figment, Metadata, Profile, Provider, Source};
use std::fs;
use std::path::{Path, PathBuf};

use super::envyaml::{self, Environment};
use super::{Config, ConfigError, tree, validate};

/// Prefix of environment variables that override keys, `__` separating levels:
/// `CONNECTORS_ELASTICSEARCH__BULK__CHUNK_SIZE=100` sets `elasticsearch.bulk.chunk_size`.
pub const ENV_PREFIX: &str = "CONNECTORS_";

/// Top-level keys Elastic's service knows; overrides for anything else are ignored.
const TOP_LEVEL_KEYS: &[&str] = &[
    "elasticsearch",
    "service",
    "connectors",
    "connector_id",
    "service_type",
    "sources",
    "extraction_service",
    "extraction",
    "s3",
];

/// Key names whose env override is kept verbatim rather than parsed (a password `0123` stays `0123`).
const VERBATIM_KEYS: &[&str] = &["password", "api_key", "username", "host", "connector_id"];

/// Loads, normalizes and validates `path` using the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, &Environment::from_process())
}

/// [`load`] with an explicit environment.
pub fn load_with(path: &Path, env: &Environment) -> Result<Config, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(path, &text, env)
}

/// Loads config `text` as if read from `path` (which is only used in messages).
pub fn load_str(path: &Path, text: &str, env: &Environment) -> Result<Config, ConfigError> {
    let text = envyaml::preprocess(path, text, env)?;
    let tree = tree::undot(tree::parse(path, &text)?);
    let figment = Figment::new()
        .merge(YamlTree {
            path: path.to_path_buf(),
            dict: tree::to_dict(tree),
        })
        .merge(EnvOverrides::from_env(env));
    let mut config: Config = figment
        .extract()
        .map_err(|e| ConfigError::from_figment(path, e))?;
    config.path = path.to_path_buf();
    config.drop_unnamed_connectors();
    config.apply_deprecated_connector();
    let warnings = validate(&config)?;
    for warning in &warnings {
        tracing::warn!(path = %path.display(), warning = %warning, "config warning");
    }
    config.warnings.extend(warnings);
    Ok(config)
}

/// The preprocessed, un-dotted YAML document as a figment provider.
struct YamlTree {
    path: PathBuf,
    dict: Dict,
}

impl Provider for YamlTree {
    fn metadata(&self) -> Metadata {
        Metadata::from("YAML file", Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<figment::value::Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// `CONNECTORS_A__B=value` overrides, parsed like figment's `Env` provider (`5` is a number, `true` a
/// boolean) except for credential-like keys, which stay strings.
struct EnvOverrides {
    vars: Vec<(Vec<String>, String)>,
}

impl EnvOverrides {
    fn from_env(env: &Environment) -> Self {
        let vars = env
            .vars()
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(ENV_PREFIX)?;
                let segments: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
                if !TOP_LEVEL_KEYS.contains(&segments[0].as_str())
                    || segments.iter().any(String::is_empty)
                {
                    tracing::debug!(
                        name,
                        "ignoring environment variable that names no config key"
                    );
                    return None;
                }
                Some((segments, value.to_owned()))
            })
            .collect();
        Self { vars }
    }
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("`{ENV_PREFIX}` environment variable(s)"))
    }

    fn data(&self) -> Result<figment::value::Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (segments, raw) in &self.vars {
            let verbatim = segments
                .last()
                .is_some_and(|k| VERBATIM_KEYS.contains(&k.as_str()));
            let value = if verbatim {
                FigValue::from(raw.clone())
            } else {
                let Ok(parsed) = raw.parse::<FigValue>();
                parsed
            };
            insert(&mut dict, segments, value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

fn insert(dict: &mut Dict, segments: &[String], value: FigValue) {
    match segments {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Dict::new().into());
            if !matches!(entry, FigValue::Dict(..)) {
                *entry = Dict::new().into();
            }
            if let FigValue::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
