//! The connector document in `.elastic-connectors`: reading it, and every write the service makes.

use super::client::{EsClient, Hit, Occ};
use super::documents::{ConnectorDoc, FilteringDomain};
use super::error::EsError;
use super::kinds::{ConnectorStatus, JobStatus, JobType, Read};
use super::protocol::ConnectorApi;
use super::time::now_iso;
use reqwest::Method;
use serde_json::{Map, Value, json};

/// Alias every read and write goes through.
pub const CONNECTORS_INDEX: &str = ".elastic-connectors";
/// The concrete index behind the alias (only preflight names it).
pub const CONNECTORS_CONCRETE_INDEX: &str = ".elastic-connectors-v1";
/// Pipeline used when the connector names none.
pub const DEFAULT_PIPELINE: &str = "search-default-ingestion";
/// Optimistic-concurrency attempts of a read-modify-write (Elastic: 3).
pub const OCC_ATTEMPTS: u32 = 3;

/// A connector as read from the index: its id, the read's concurrency token and the typed
/// document, which carries every field it does not name (`es/documents.rs`).
#[derive(Clone)]
pub struct Connector {
    pub id: String,
    pub occ: Option<Occ>,
    pub doc: ConnectorDoc,
}

/// The connector's `pipeline` settings with Elastic's defaults filled in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Pipeline {
    pub name: String,
    pub extract_binary_content: bool,
    pub reduce_whitespace: bool,
    pub run_ml_inference: bool,
}

impl Pipeline {
    pub fn from_value(v: Option<&Value>) -> Self {
        let flag = |k: &str| {
            v.and_then(|p| p.get(k))
                .and_then(Value::as_bool)
                .unwrap_or(true)
        };
        Self {
            name: v
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_PIPELINE)
                .to_string(),
            extract_binary_content: flag("extract_binary_content"),
            reduce_whitespace: flag("reduce_whitespace"),
            run_ml_inference: flag("run_ml_inference"),
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("pipeline serializes")
    }
}

impl Connector {
    pub fn from_hit(hit: Hit) -> Self {
        let (id, occ, doc) = hit.into_document();
        Self { id, occ, doc }
    }

    pub fn index_name(&self) -> Option<&str> {
        self.doc.index_name.as_deref().filter(|s| !s.is_empty())
    }
    pub fn service_type(&self) -> Option<&str> {
        self.doc.service_type.as_deref()
    }
    /// The status as written (`unset` when missing), for messages.
    pub fn status_text(&self) -> &str {
        self.doc.status.as_ref().map_or("unset", Read::as_str)
    }
    /// The status; `None` when missing or not one this service knows.
    pub fn status(&self) -> Option<ConnectorStatus> {
        self.doc.status.as_ref().and_then(Read::known)
    }
    /// The status of the connector's last job; `None` when missing or unknown.
    pub fn last_sync_status(&self) -> Option<JobStatus> {
        self.doc.last_sync_status.as_ref().and_then(Read::known)
    }
    pub fn last_seen(&self) -> Option<&str> {
        self.doc.last_seen.as_deref()
    }
    pub fn language(&self) -> Option<&str> {
        self.doc.language.as_deref()
    }
    pub fn is_native(&self) -> bool {
        self.doc.is_native.unwrap_or(false)
    }
    pub fn configuration(&self) -> Map<String, Value> {
        self.doc.configuration.clone().unwrap_or_default()
    }
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::from_value(self.doc.pipeline.as_ref())
    }
    pub fn features(&self) -> Option<&Value> {
        self.doc.features.as_ref()
    }
    /// `scheduling.<job_type>` → (enabled, interval).
    pub fn schedule(&self, job_type: JobType) -> Option<(bool, String)> {
        let s = self.doc.scheduling.as_ref()?.get(job_type.as_str())?;
        Some((
            s.enabled.unwrap_or(false),
            s.interval.clone().unwrap_or_default(),
        ))
    }
    /// `last_sync_scheduled_at` or its incremental / access-control siblings.
    pub fn last_scheduled_at(&self, job_type: JobType) -> Option<&str> {
        match job_type {
            JobType::Incremental => &self.doc.last_incremental_sync_scheduled_at,
            JobType::AccessControl => &self.doc.last_access_control_sync_scheduled_at,
            JobType::Full => &self.doc.last_sync_scheduled_at,
        }
        .as_deref()
    }
    /// The DEFAULT domain's `active` filtering (what a new job snapshots).
    pub fn active_filtering(&self) -> Value {
        self.default_filtering()
            .and_then(|f| f.active.clone())
            .unwrap_or_else(|| json!({"advanced_snippet": {}, "rules": []}))
    }
    /// The filtering entry whose domain is DEFAULT (first match).
    pub fn default_filtering(&self) -> Option<&FilteringDomain> {
        self.doc
            .filtering
            .as_ref()?
            .iter()
            .find(|f| f.domain.as_deref() == Some("DEFAULT"))
    }
    pub fn sync_cursor(&self) -> Value {
        self.doc.sync_cursor.clone().unwrap_or(Value::Null)
    }
}

/// The connector field that records when a job of this type was last scheduled.
pub fn scheduled_at_field(job_type: JobType) -> &'static str {
    match job_type {
        JobType::Incremental => "last_incremental_sync_scheduled_at",
        JobType::AccessControl => "last_access_control_sync_scheduled_at",
        JobType::Full => "last_sync_scheduled_at",
    }
}

/// Reads and writes of `.elastic-connectors`. With `api` the writes that Elastic routes through the
/// `_connector` APIs (check-in, filtering validation) use them; everything else is direct
/// (docs/protocol.md#direct-writes-or-the-_connector-api).
#[derive(Clone)]
pub struct ConnectorStore {
    es: EsClient,
    api: bool,
    filtering_api: bool,
}

impl ConnectorStore {
    pub fn new(es: EsClient, api: ConnectorApi) -> Self {
        Self {
            es,
            api: api.enabled,
            filtering_api: api.filtering,
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Connector>, EsError> {
        Ok(self
            .es
            .get_doc(CONNECTORS_INDEX, id)
            .await?
            .map(Connector::from_hit))
    }

    /// The connectors this service handles (docs/protocol.md#connector-documents): configured ids, and/or, when `service_types` is
    /// non-empty, every non-deleted self-managed connector of those types.
    pub async fn handled(
        &self,
        ids: &[String],
        service_types: &[String],
    ) -> Result<Vec<Connector>, EsError> {
        let by_ids = json!({"bool": {"must_not": [{"term": {"deleted": true}}], "filter": [{"terms": {"_id": ids}}]}});
        let by_types = json!({"bool": {"must_not": [{"term": {"deleted": true}}],
            "filter": [{"terms": {"service_type": service_types}}, {"term": {"is_native": false}}]}});
        let query = match (ids.is_empty(), service_types.is_empty()) {
            (true, true) => return Ok(vec![]),
            (false, true) => by_ids,
            (true, false) => by_types,
            (false, false) => json!({"bool": {"should": [by_types, by_ids]}}),
        };
        let hits = self.es.search_all(CONNECTORS_INDEX, query, None).await?;
        Ok(hits.into_iter().map(Connector::from_hit).collect())
    }

    /// Every connector id, deleted ones included (the orphaned-job pass needs them all).
    pub async fn all_ids(&self) -> Result<Vec<String>, EsError> {
        let hits = self
            .es
            .search_all(CONNECTORS_INDEX, json!({"match_all": {}}), None)
            .await?;
        Ok(hits.into_iter().map(|h| h.id).collect())
    }

    /// A partial update without concurrency control.
    pub async fn update(&self, id: &str, doc: Value) -> Result<(), EsError> {
        self.es.update_doc(CONNECTORS_INDEX, id, doc, None).await
    }

    /// A partial update guarded by the read that produced `occ`.
    pub async fn update_guarded(
        &self,
        id: &str,
        doc: Value,
        occ: Option<Occ>,
    ) -> Result<(), EsError> {
        self.es.update_doc(CONNECTORS_INDEX, id, doc, occ).await
    }

    /// Check-in: `PUT /_connector/<id>/_check_in`, or `last_seen` written directly.
    pub async fn heartbeat(&self, id: &str) -> Result<(), EsError> {
        if self.api {
            return self
                .es
                .json(Method::PUT, &["_connector", id, "_check_in"], &[], None)
                .await
                .map(|_| ());
        }
        self.update(id, json!({"last_seen": now_iso()})).await
    }

    /// Records the validation of the DEFAULT draft filtering (docs/protocol.md#sync-rules): through
    /// `_filtering/_validation` (+ `_activate` when valid), or by rewriting the `filtering` list with
    /// optimistic concurrency (the draft becomes active when valid).
    pub async fn record_filtering_validation(
        &self,
        connector: &Connector,
        validation: Value,
        valid: bool,
    ) -> Result<(), EsError> {
        let id = connector.id.as_str();
        if self.filtering_api {
            let body = json!({ "validation": validation });
            self.es
                .json(
                    Method::PUT,
                    &["_connector", id, "_filtering", "_validation"],
                    &[],
                    Some(body),
                )
                .await?;
            if valid {
                self.es
                    .json(
                        Method::PUT,
                        &["_connector", id, "_filtering", "_activate"],
                        &[],
                        None,
                    )
                    .await?;
            }
            return Ok(());
        }
        let mut filtering = connector.doc.filtering.clone().unwrap_or_default();
        let Some(entry) = filtering
            .iter_mut()
            .find(|f| f.domain.as_deref() == Some("DEFAULT"))
        else {
            return Ok(());
        };
        let draft = entry.draft.get_or_insert_with(|| json!({}));
        if !draft.is_object() {
            *draft = json!({});
        }
        draft["validation"] = validation;
        if valid {
            entry.active = entry.draft.clone();
        }
        self.update_guarded(id, json!({ "filtering": filtering }), connector.occ)
            .await
    }

    pub async fn set_connected(&self, id: &str) -> Result<(), EsError> {
        self.update(
            id,
            json!({"status": ConnectorStatus::Connected, "error": null}),
        )
        .await
    }

    pub async fn set_error(&self, id: &str, error: &str) -> Result<(), EsError> {
        self.update(
            id,
            json!({"status": ConnectorStatus::Error, "error": error}),
        )
        .await
    }

    /// Runs `f` on a fresh read of the connector and writes what it returns with `if_seq_no`, re-reading
    /// and retrying on a conflict (3 attempts, as Elastic). `f` returning `None` means nothing to write.
    /// Returns the connector as last read (after the write, re-read), or `None` if it vanished.
    pub async fn read_modify_write<F>(
        &self,
        id: &str,
        mut f: F,
    ) -> Result<Option<(Connector, bool)>, EsError>
    where
        F: FnMut(&Connector) -> Option<Value>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(connector) = self.get(id).await? else {
                return Ok(None);
            };
            let Some(doc) = f(&connector) else {
                return Ok(Some((connector, false)));
            };
            match self.update_guarded(id, doc, connector.occ).await {
                Ok(()) => return Ok(self.get(id).await?.map(|c| (c, true))),
                Err(e) if e.is_conflict() && attempt < OCC_ATTEMPTS => {
                    tracing::debug!(
                        connector_id = id,
                        attempt,
                        "connector update conflicted, re-reading"
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The partial update that brings a connector's `configuration` in line with the source's schema
/// (docs/protocol.md#connector-documents): fill an empty configuration, add missing fields,
/// complete fields lacking rich keys.
/// Returns `(configuration update, whether status becomes needs_configuration)`.
pub fn configuration_update(
    stored: Option<&Map<String, Value>>,
    schema: &Map<String, Value>,
) -> Option<(Value, bool)> {
    let stored = match stored {
        Some(m) if !m.is_empty() => m,
        _ => return Some((Value::Object(schema.clone()), true)),
    };
    let missing: Vec<&String> = schema.keys().filter(|k| !stored.contains_key(*k)).collect();
    let incomplete: Vec<&String> = stored
        .iter()
        .filter(|(k, v)| schema.contains_key(*k) && RICH_KEYS.iter().any(|rk| v.get(*rk).is_none()))
        .map(|(k, _)| k)
        .collect();
    if missing.is_empty() && incomplete.is_empty() {
        return None;
    }
    let mut update = Map::new();
    for k in &missing {
        update.insert((*k).clone(), schema[*k].clone());
    }
    if !missing.is_empty() {
        // Re-sync labels, order, tooltips… of existing fields (never their values).
        for (k, v) in stored {
            let (Some(schema_field), Some(stored_field)) = (schema.get(k), v.as_object()) else {
                continue;
            };
            let mut entry = Map::new();
            for (prop, schema_val) in schema_field.as_object().into_iter().flatten() {
                if prop == "value" {
                    continue;
                }
                let stored_val = stored_field.get(prop);
                if stored_val != Some(schema_val) {
                    let keep = is_falsy(schema_val).then(|| stored_val.cloned()).flatten();
                    entry.insert(prop.clone(), keep.unwrap_or_else(|| schema_val.clone()));
                }
            }
            if !entry.is_empty() {
                update.insert(k.clone(), Value::Object(entry));
            }
        }
    }
    for k in incomplete {
        let mut merged = schema[k].as_object().cloned().unwrap_or_default();
        if let Some(stored_field) = stored[k].as_object() {
            for (p, v) in stored_field {
                merged.insert(p.clone(), v.clone());
            }
        }
        update.insert(k.clone(), Value::Object(merged));
    }
    Some((Value::Object(update), false))
}

/// The 13 keys every rich configuration field carries (docs/protocol.md#connector-documents).
pub const RICH_KEYS: [&str; 13] = [
    "default_value",
    "depends_on",
    "display",
    "label",
    "options",
    "order",
    "required",
    "sensitive",
    "tooltip",
    "type",
    "ui_restrictions",
    "validations",
    "value",
];

fn is_falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(label: &str, order: u64, value: Value) -> Value {
        let mut m = Map::new();
        for k in RICH_KEYS {
            m.insert(k.into(), Value::Null);
        }
        m.insert("label".into(), json!(label));
        m.insert("order".into(), json!(order));
        m.insert("value".into(), value);
        Value::Object(m)
    }

    fn schema() -> Map<String, Value> {
        let mut s = Map::new();
        s.insert("a".into(), field("A", 1, json!("")));
        s.insert("b".into(), field("B", 2, json!("")));
        s
    }

    #[test]
    fn empty_configuration_gets_the_whole_schema_and_needs_configuration() {
        for stored in [None, Some(Map::new())] {
            let (update, needs) = configuration_update(stored.as_ref(), &schema()).unwrap();
            assert!(needs);
            assert_eq!(update, Value::Object(schema()));
        }
    }

    #[test]
    fn complete_configuration_is_left_alone() {
        let stored = json!({"a": field("A", 1, json!("x")), "b": field("B", 2, json!("y"))});
        assert_eq!(configuration_update(stored.as_object(), &schema()), None);
    }

    #[test]
    fn missing_field_is_added_and_labels_resynced_without_touching_values() {
        let stored = json!({"a": field("Old label", 1, json!("kept"))});
        let (update, needs) = configuration_update(stored.as_object(), &schema()).unwrap();
        assert!(!needs);
        assert_eq!(update["b"], schema()["b"]);
        assert_eq!(update["a"], json!({"label": "A"}));
    }

    #[test]
    fn incomplete_field_is_completed_with_stored_values_winning() {
        let stored = json!({"a": {"label": "A", "value": "mine"}, "b": field("B", 2, json!(""))});
        let (update, _) = configuration_update(stored.as_object(), &schema()).unwrap();
        assert_eq!(update["a"]["value"], json!("mine"));
        assert_eq!(update["a"]["order"], json!(1));
        assert!(update.get("b").is_none());
    }

    #[test]
    fn pipeline_defaults() {
        let p = Pipeline::from_value(None);
        assert_eq!(p.name, DEFAULT_PIPELINE);
        assert!(p.extract_binary_content && p.reduce_whitespace && p.run_ml_inference);
        let p = Pipeline::from_value(Some(&json!({"name": "custom", "reduce_whitespace": false})));
        assert_eq!(p.name, "custom");
        assert!(!p.reduce_whitespace && p.extract_binary_content);
    }
}
