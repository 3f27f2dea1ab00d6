//! The whole configuration ([`Config`]) and the connector list.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::de::{from_defaults, non_empty_secret, null_as_default, opt_id};
use super::{EsConfig, ExtractionConfig, ExtractionServiceConfig, S3Config, Secret, ServiceConfig};

/// Service types this implementation can sync.
pub const IMPLEMENTED_SERVICE_TYPES: &[&str] = &["s3"];

/// The parsed, normalized `config.yml`. Key names are Elastic's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `elasticsearch.*`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub elasticsearch: EsConfig,
    /// `service.*`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub service: ServiceConfig,
    /// The connectors this service handles, normalized: items without `connector_id` dropped, one entry per
    /// id (a later duplicate replaces the earlier one in place), and the deprecated top-level
    /// `connector_id`/`service_type` pair used when the list yields nothing.
    #[serde(default, deserialize_with = "connector_list")]
    pub connectors: Vec<ConnectorEntry>,
    /// Deprecated single-connector form (see `connectors`).
    #[serde(default, deserialize_with = "opt_id")]
    pub connector_id: Option<String>,
    /// Deprecated single-connector form (see `connectors`).
    #[serde(default, deserialize_with = "opt_id")]
    pub service_type: Option<String>,
    /// Service type → Elastic's `module:Class`. Entries in the file are merged over the default map;
    /// only used to tell which service types are enabled.
    #[serde(
        default = "default_sources",
        deserialize_with = "sources_over_defaults"
    )]
    pub sources: BTreeMap<String, String>,
    /// The Data Extraction Service, when configured.
    #[serde(default)]
    pub extraction_service: Option<ExtractionServiceConfig>,
    /// Limits of native text extraction (content-sync addition).
    #[serde(default, deserialize_with = "null_as_default")]
    pub extraction: ExtractionConfig,
    /// What connectors' S3 settings may make this host do (content-sync addition).
    #[serde(default, deserialize_with = "null_as_default")]
    pub s3: S3Config,
    /// Non-fatal findings of loading and validation, already logged.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Keys of `connectors` items skipped for lack of a `connector_id` (e.g. `connectors[0].connector_id`).
    #[serde(skip)]
    pub unnamed_connectors: Vec<String>,
    /// The file this was loaded from (empty for a default config); used in messages.
    #[serde(skip)]
    pub path: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        from_defaults()
    }
}

impl Config {
    /// Service types both enabled in `sources` and implemented here, sorted.
    pub fn supported_service_types(&self) -> Vec<&'static str> {
        IMPLEMENTED_SERVICE_TYPES
            .iter()
            .copied()
            .filter(|t| self.sources.contains_key(*t))
            .collect()
    }

    /// The configured connector with this id.
    pub fn connector(&self, connector_id: &str) -> Option<&ConnectorEntry> {
        self.connectors
            .iter()
            .find(|c| c.connector_id == connector_id)
    }

    /// Drops `connectors` items without `connector_id`, with a warning (as Elastic does).
    pub(crate) fn drop_unnamed_connectors(&mut self) {
        let (unnamed, named): (Vec<_>, Vec<_>) = std::mem::take(&mut self.connectors)
            .into_iter()
            .partition(|e| e.connector_id.is_empty());
        self.connectors = named;
        for entry in unnamed {
            let key = entry.key("connector_id");
            self.warnings.push(format!(
                "skipping connectors item without connector_id (missing key \"{key}\")"
            ));
            self.unnamed_connectors.push(key);
        }
    }

    /// Falls back to the deprecated top-level `connector_id`/`service_type` when `connectors` is empty.
    pub(crate) fn apply_deprecated_connector(&mut self) {
        if !self.connectors.is_empty() {
            return;
        }
        let Some(connector_id) = self.connector_id.clone() else {
            return;
        };
        let message = "the configuration 'connector_id' and 'service_type' has been deprecated and will be \
                       removed later; use 'connectors' instead";
        tracing::warn!(connector_id = %connector_id, "{message}");
        self.warnings.push(message.to_owned());
        self.connectors.push(ConnectorEntry {
            connector_id,
            service_type: self.service_type.clone().unwrap_or_default(),
            api_key: None,
            source: EntrySource::Deprecated,
        });
    }
}

/// One item of `connectors`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorEntry {
    /// The connector document id. Fixed quirk: an id written as a YAML integer is stringified, so it
    /// matches its connector document (Elastic keeps the integer and then fails to recognise the connector).
    pub connector_id: String,
    /// The service type (`s3`); empty when the item has none, which validation rejects.
    pub service_type: String,
    /// API key for the content-index client of this connector's syncs (never empty when `Some`).
    pub api_key: Option<Secret>,
    /// Where the entry was written, for messages.
    pub source: EntrySource,
}

impl ConnectorEntry {
    /// The dotted key of one of this entry's fields, e.g. `connectors[2].service_type`.
    pub fn key(&self, field: &str) -> String {
        match self.source {
            EntrySource::List(index) => format!("connectors[{index}].{field}"),
            EntrySource::Deprecated => field.to_owned(),
        }
    }
}

/// Where a [`ConnectorEntry`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntrySource {
    /// Item `n` (0-based) of the `connectors` list.
    List(usize),
    /// The deprecated top-level `connector_id`/`service_type`.
    Deprecated,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnector {
    #[serde(default, deserialize_with = "opt_id")]
    connector_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    service_type: Option<String>,
    #[serde(default, deserialize_with = "non_empty_secret")]
    api_key: Option<Secret>,
}

fn connector_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ConnectorEntry>, D::Error> {
    let raw = Option::<Vec<RawConnector>>::deserialize(d)?.unwrap_or_default();
    Ok(normalize_connectors(raw))
}

fn normalize_connectors(raw: Vec<RawConnector>) -> Vec<ConnectorEntry> {
    let mut entries: Vec<ConnectorEntry> = Vec::with_capacity(raw.len());
    for (index, item) in raw.into_iter().enumerate() {
        // Items without an id are kept with an empty one here, and dropped with a warning by
        // `Config::drop_unnamed_connectors` (a deserializer cannot report warnings).
        let entry = ConnectorEntry {
            connector_id: item.connector_id.unwrap_or_default(),
            service_type: item.service_type.unwrap_or_default(),
            api_key: item.api_key,
            source: EntrySource::List(index),
        };
        match entries
            .iter_mut()
            .find(|e| !e.connector_id.is_empty() && e.connector_id == entry.connector_id)
        {
            Some(previous) => {
                tracing::warn!(
                    connector_id = %entry.connector_id,
                    index,
                    "duplicate connector_id in connectors, the later item wins"
                );
                *previous = entry;
            }
            None => entries.push(entry),
        }
    }
    entries
}

fn default_sources() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "s3".to_owned(),
        "connectors.sources.s3:S3DataSource".to_owned(),
    )])
}

fn sources_over_defaults<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let mut sources = default_sources();
    sources.extend(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default());
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: serde_json::Value) -> Config {
        let mut c: Config = serde_json::from_value(v).unwrap();
        c.drop_unnamed_connectors();
        c.apply_deprecated_connector();
        c
    }

    #[test]
    fn top_level_defaults() {
        let c = Config::default();
        assert!(c.connectors.is_empty() && c.connector_id.is_none() && c.service_type.is_none());
        assert_eq!(c.sources, default_sources());
        assert_eq!(c.supported_service_types(), ["s3"]);
        assert!(c.extraction_service.is_none() && c.warnings.is_empty());
    }

    #[test]
    fn connectors_are_normalized() {
        let c = config(json!({"connectors": [
            {"connector_id": 123, "service_type": "s3"},
            {"service_type": "s3"},
            {"connector_id": "a", "service_type": "s3", "api_key": "k1"},
            {"connector_id": "a", "service_type": "s3", "api_key": ""},
        ]}));
        let ids: Vec<_> = c
            .connectors
            .iter()
            .map(|e| e.connector_id.as_str())
            .collect();
        assert_eq!(ids, ["123", "a"]);
        let a = c.connector("a").unwrap();
        assert_eq!(
            (a.source, a.api_key.is_none()),
            (EntrySource::List(3), true)
        );
        assert_eq!(a.key("api_key"), "connectors[3].api_key");
        assert_eq!(c.unnamed_connectors, ["connectors[1].connector_id"]);
        assert_eq!(
            c.warnings,
            [
                "skipping connectors item without connector_id (missing key \"connectors[1].connector_id\")"
            ]
        );
    }

    #[test]
    fn deprecated_form_only_when_the_list_is_empty() {
        let c = config(
            json!({"connector_id": 7, "service_type": "s3", "connectors": [{"service_type": "s3"}]}),
        );
        assert_eq!(c.connectors.len(), 1);
        assert_eq!(c.connectors[0].connector_id, "7");
        assert_eq!(c.connectors[0].key("service_type"), "service_type");
        assert!(c.warnings.iter().any(|w| w.contains("deprecated")));

        let c = config(
            json!({"connector_id": "x", "connectors": [{"connector_id": "y", "service_type": "s3"}]}),
        );
        assert_eq!(c.connectors.len(), 1);
        assert_eq!(c.connectors[0].connector_id, "y");
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn sources_merge_over_defaults() {
        let c = config(json!({"sources": {"mysql": "connectors.sources.mysql:MySqlDataSource"}}));
        assert_eq!(c.sources.len(), 2);
        assert_eq!(c.supported_service_types(), ["s3"]);
    }
}
