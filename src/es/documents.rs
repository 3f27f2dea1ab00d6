//! The connector and sync job documents as typed structs (docs/protocol.md#connector-documents,
//! docs/protocol.md#a-jobs-life).
//!
//! Every struct names the fields this service reads and carries every other field in `rest`
//! (`#[serde(flatten)]`), so a read-modify-write — the `filtering` list the service rewrites when it
//! validates a draft — gives back what Kibana or a newer Elasticsearch put there unchanged. Fields
//! are read as leniently as Elastic's service reads them: a field of an unexpected JSON type reads
//! as absent instead of failing the whole document, and a status this service does not know is kept
//! as written ([`Read`]). The service never writes a whole document back: its writes are partial
//! updates naming their fields (`es/connector.rs`, `es/job.rs`), so no field is lost there either.

use super::kinds::{ConnectorStatus, JobStatus, JobType, Read, TriggerMethod};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `Some` when the field is present and of the expected type; `None` when absent, `null` or of
/// another type (as the service's getters always read them).
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// A count of a job document; read from `3.0` as well as `3` (a client may have written either).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = f64::deserialize(d)?;
        if n >= 0.0 && n.fract() == 0.0 {
            Ok(Count(n as u64))
        } else {
            Err(serde::de::Error::custom(format_args!("{n} is not a count")))
        }
    }
}

/// A field read with [`lenient`], written back only when present.
macro_rules! lenient_fields {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Default, Serialize, Deserialize)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
            /// Every field this struct does not name, unchanged.
            #[serde(flatten)]
            pub rest: Map<String, Value>,
        }
    };
}

lenient_fields! {
    /// A connector's `_source` in `.elastic-connectors`. (No `Debug`: the configuration holds
    /// secrets.)
    pub struct ConnectorDoc {
        pub index_name: String,
        pub service_type: String,
        pub status: Read<ConnectorStatus>,
        pub error: Value,
        pub last_sync_status: Read<JobStatus>,
        pub last_sync_error: Value,
        pub last_seen: String,
        pub language: String,
        pub is_native: bool,
        /// The rich configuration fields by key (each `{label, value, sensitive, …}`).
        pub configuration: Map<String, Value>,
        pub pipeline: Value,
        pub features: Value,
        /// `scheduling.<job type>`.
        pub scheduling: BTreeMap<String, Schedule>,
        pub last_sync_scheduled_at: String,
        pub last_incremental_sync_scheduled_at: String,
        pub last_access_control_sync_scheduled_at: String,
        pub filtering: Vec<FilteringDomain>,
        pub sync_cursor: Value,
    }
}

lenient_fields! {
    /// One `scheduling` entry.
    pub struct Schedule {
        pub enabled: bool,
        pub interval: String,
    }
}

lenient_fields! {
    /// One entry of a connector's `filtering` list: the rules of one domain (`DEFAULT`), the
    /// `active` ones a new job snapshots and the `draft` a user edits.
    pub struct FilteringDomain {
        pub domain: String,
        pub active: Value,
        pub draft: Value,
    }
}

lenient_fields! {
    /// A sync job's `_source` in `.elastic-connectors-sync-jobs`. (No `Debug`: the configuration
    /// snapshot holds secrets.)
    pub struct JobDoc {
        pub status: Read<JobStatus>,
        pub job_type: Read<JobType>,
        pub trigger_method: Read<TriggerMethod>,
        /// The snapshot of the connector taken when the job was created.
        pub connector: JobConnector,
        pub indexed_document_count: Count,
        pub indexed_document_volume: Count,
        pub deleted_document_count: Count,
        /// Our checkpoint and counters live here (docs/architecture.md#checkpoints-and-resume).
        pub metadata: Map<String, Value>,
        pub last_seen: Value,
        pub started_at: Value,
    }
}

lenient_fields! {
    /// The connector as a job snapshots it (`connector.*` of the job document).
    pub struct JobConnector {
        pub id: String,
        pub index_name: String,
        pub service_type: String,
        pub language: String,
        pub configuration: Map<String, Value>,
        pub filtering: Value,
        pub pipeline: Value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A connector as Kibana 9 writes it, with fields this service does not model at every level.
    fn kibana_connector() -> Value {
        json!({
            "api_key_id": "k1", "api_key_secret_id": null, "custom_scheduling": {},
            "description": "docs", "index_name": "search-docs", "is_native": false,
            "language": null, "last_seen": "2026-11-30T05:00:00Z", "service_type": "s3",
            "status": "connected", "last_sync_status": "paused",
            "configuration": {"buckets": {"label": "AWS Buckets", "value": "b1", "order": 1}},
            "pipeline": {"name": "search-default-ingestion", "reduce_whitespace": true},
            "scheduling": {"full": {"enabled": true, "interval": "0 0 * * * ?", "kibana_note": 1},
                           "incremental": {"enabled": false, "interval": null}},
            "filtering": [{"domain": "DEFAULT",
                           "active": {"rules": [], "advanced_snippet": {"value": {}}},
                           "draft": {"rules": [], "validation": {"state": "edited", "errors": []}},
                           "ui_revision": 7}],
            "sync_now": false
        })
    }

    #[test]
    fn a_connector_reads_its_fields_and_writes_back_everything_else_unchanged() {
        let doc: ConnectorDoc = serde_json::from_value(kibana_connector()).unwrap();
        assert_eq!(doc.index_name.as_deref(), Some("search-docs"));
        assert_eq!(
            doc.status.as_ref().and_then(Read::known),
            Some(ConnectorStatus::Connected)
        );
        assert_eq!(
            doc.last_sync_status.as_ref().map(Read::as_str),
            Some("paused")
        );
        assert_eq!(doc.scheduling.as_ref().unwrap()["full"].enabled, Some(true));
        assert_eq!(
            doc.scheduling.as_ref().unwrap()["incremental"].interval,
            None
        );
        assert_eq!(doc.rest["description"], json!("docs"));
        let back = serde_json::to_value(&doc).unwrap();
        // A field this struct names reads `null` as absent and is not written back; a `null` in a
        // field it does not name (`api_key_secret_id`) is kept, like every other such field.
        let mut expected = kibana_connector();
        expected.as_object_mut().unwrap().remove("language");
        expected["scheduling"]["incremental"]
            .as_object_mut()
            .unwrap()
            .remove("interval");
        assert_eq!(back, expected);
    }

    #[test]
    fn the_filtering_list_survives_a_rewrite_with_the_fields_kibana_added() {
        let doc: ConnectorDoc = serde_json::from_value(kibana_connector()).unwrap();
        let mut filtering = doc.filtering.unwrap();
        filtering[0].draft.as_mut().unwrap()["validation"] =
            json!({"state": "valid", "errors": []});
        let written = serde_json::to_value(&filtering).unwrap();
        assert_eq!(written[0]["ui_revision"], json!(7));
        assert_eq!(written[0]["draft"]["validation"]["state"], json!("valid"));
        assert_eq!(
            written[0]["active"],
            kibana_connector()["filtering"][0]["active"]
        );
    }

    #[test]
    fn a_field_of_another_type_reads_as_absent_and_the_document_still_reads() {
        let doc: ConnectorDoc = serde_json::from_value(json!({
            "index_name": 5, "is_native": "no", "scheduling": [], "status": "connected"
        }))
        .unwrap();
        assert!(doc.index_name.is_none() && doc.is_native.is_none() && doc.scheduling.is_none());
        assert_eq!(
            doc.status.and_then(|s| s.known()),
            Some(ConnectorStatus::Connected)
        );
    }

    #[test]
    fn a_job_reads_its_counters_status_and_snapshot_and_keeps_the_rest() {
        let source = json!({
            "status": "in_progress", "job_type": "incremental", "trigger_method": "scheduled",
            "indexed_document_count": 12, "indexed_document_volume": 3.0,
            "deleted_document_count": 1, "worker_hostname": "vm", "cancelation_requested_at": null,
            "metadata": {"content_sync": {"listed": true}},
            "connector": {"id": "c1", "index_name": "search-c1", "service_type": "s3",
                          "configuration": {"buckets": {"value": "b"}}, "sync_cursor": null,
                          "filtering": {"rules": []}},
        });
        let job: JobDoc = serde_json::from_value(source.clone()).unwrap();
        assert_eq!(
            job.status.as_ref().and_then(Read::known),
            Some(JobStatus::InProgress)
        );
        assert_eq!(
            job.job_type.as_ref().and_then(Read::known),
            Some(JobType::Incremental)
        );
        assert_eq!(
            (
                job.indexed_document_count,
                job.indexed_document_volume,
                job.deleted_document_count
            ),
            (Some(Count(12)), Some(Count(3)), Some(Count(1)))
        );
        let connector = job.connector.as_ref().unwrap();
        assert_eq!(connector.id.as_deref(), Some("c1"));
        assert_eq!(connector.rest["sync_cursor"], Value::Null);
        assert_eq!(job.rest["worker_hostname"], json!("vm"));
        let mut expected = source;
        expected["indexed_document_volume"] = json!(3);
        assert_eq!(serde_json::to_value(&job).unwrap(), expected);
    }
}
