//! What Kibana / the ES connector APIs would do: system indices, connector documents and
//! on-demand sync jobs, written directly into `.elastic-connectors*` (osmem has no `_connector` API).

use serde_json::{Map, Value, json};

use super::es::enc;
use super::{TestWorld, now_iso};

/// Alias of the connectors index.
pub const CONNECTORS: &str = ".elastic-connectors";
/// Alias of the sync-jobs index.
pub const JOBS: &str = ".elastic-connectors-sync-jobs";
/// (concrete index, alias) pairs, as created by the service's preflight / ES's templates.
pub const SYSTEM_INDICES: [(&str, &str); 2] = [
    (".elastic-connectors-v1", CONNECTORS),
    (".elastic-connectors-sync-jobs-v1", JOBS),
];

/// The DEFAULT filtering rule Kibana/ES create.
pub fn default_rule(ts: &str) -> Value {
    json!({"id": "DEFAULT", "order": 0, "policy": "include", "field": "_", "rule": "regex",
           "value": ".*", "created_at": ts, "updated_at": ts})
}

/// One filtering state (`active` or `draft`) holding only the default rule, validated.
pub fn default_filter(ts: &str) -> Value {
    json!({
        "rules": [default_rule(ts)],
        "advanced_snippet": {"value": {}, "created_at": ts, "updated_at": ts},
        "validation": {"state": "valid", "errors": []}
    })
}

/// Scheduling with every job type disabled at midnight; `overrides` is deep-merged over it.
pub fn scheduling(overrides: &Value) -> Value {
    let off = json!({"enabled": false, "interval": "0 0 0 * * ?"});
    let mut s = json!({"access_control": off, "full": off, "incremental": off});
    merge(&mut s, overrides);
    s
}

/// Deep merge: objects key by key, anything else replaces. `null` overrides are ignored.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A filled S3 `configuration`: the 8 schema entries of the Python connector (docs/architecture.md#the-s3-source, with
/// all 13 rich-field keys) plus `endpoint_url` (this world's S3), `region` and `force_path_style`.
/// `buckets` is stored like Kibana stores a list field: a comma-separated string.
///
/// (The Python-compatible way to point the service at a custom S3 endpoint is the process
/// environment; see [`TestWorld::aws_endpoint_env`].)
pub fn s3_configuration(world: &TestWorld, buckets: &str) -> Value {
    let field = |label: &str, order: u32, ty: &str, display: &str, value: Value| {
        json!({"default_value": null, "depends_on": [], "display": display, "label": label,
               "options": [], "order": order, "required": true, "sensitive": false,
               "tooltip": null, "type": ty, "ui_restrictions": [], "validations": [],
               "value": value})
    };
    let advanced = |mut f: Value, default: Value| {
        f["default_value"] = default;
        f["required"] = json!(false);
        f["ui_restrictions"] = json!(["advanced"]);
        f
    };
    let mut buckets_f = field("AWS Buckets", 1, "list", "textarea", json!(buckets));
    buckets_f["tooltip"] = json!("AWS Buckets are ignored when Advanced Sync Rules are used.");
    let mut secret = field("AWS Secret Key", 3, "str", "text", json!("test-secret"));
    secret["sensitive"] = json!(true);
    let mut tes = field(
        "Use text extraction service",
        8,
        "bool",
        "toggle",
        json!(false),
    );
    tes["ui_restrictions"] = json!(["advanced"]);
    tes["tooltip"] = json!(
        "Requires a separate deployment of the Elastic Text Extraction Service. \
         Requires that pipeline settings disable text extraction."
    );
    let num = |label: &str, order: u32, v: i64| {
        advanced(field(label, order, "int", "numeric", json!(v)), json!(v))
    };
    let text = |label: &str, order: u32, v: &str| {
        advanced(field(label, order, "str", "text", json!(v)), Value::Null)
    };
    let mut path_style = field(
        "Force path-style addressing",
        11,
        "bool",
        "toggle",
        json!(true),
    );
    path_style = advanced(path_style, json!(false));
    json!({
        "buckets": buckets_f,
        "aws_access_key_id": field("AWS Access Key Id", 2, "str", "text", json!("test")),
        "aws_secret_access_key": secret,
        "read_timeout": num("Read timeout", 4, 90),
        "connect_timeout": num("Connection timeout", 5, 90),
        "max_attempts": num("Maximum retry attempts", 6, 5),
        "page_size": num("Maximum size of page", 7, 100),
        "use_text_extraction_service": tes,
        "endpoint_url": text("Endpoint URL", 9, &world.s3_endpoint),
        "region": text("Region", 10, "us-east-1"),
        "force_path_style": path_style,
    })
}

impl TestWorld {
    /// Creates the system indices the way the service does (its own preflight code, run through
    /// its CLI), so that connector documents can be written before a service starts.
    pub async fn ensure_system_indices(&self) {
        self.system_indices
            .get_or_init(|| self.create_system_indices())
            .await;
    }

    async fn create_system_indices(&self) {
        let yaml = self.config_yaml(&["unused"], "");
        let path = self
            .tmp_dir()
            .join(format!("ensure-{}.yml", fastrand::u32(..)));
        std::fs::write(&path, yaml).expect("write config");
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_content-sync"))
            .arg("-c")
            .arg(&path)
            .args(["connector", "list"])
            .env("ALLOW_ES_VERSION_MISMATCH", "true")
            .output()
            .await
            .expect("run content-sync");
        assert!(
            out.status.success(),
            "content-sync connector list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes a connector document as Kibana/ES create it (`PUT /.elastic-connectors/_doc/<id>`,
    /// refreshed). Status is `created` for an empty `configuration` (`{}` or null), else
    /// `configured`. `scheduling` is deep-merged over "everything disabled", e.g.
    /// `json!({"full": {"enabled": true, "interval": "* * * * * ?"}})`. Returns the document.
    pub async fn create_connector_doc(
        &self,
        id: &str,
        index_name: &str,
        configuration: Value,
        scheduling_overrides: Value,
    ) -> Value {
        self.ensure_system_indices().await;
        let ts = now_iso();
        let empty = match &configuration {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            _ => false,
        };
        let configuration = if configuration.is_null() {
            json!({})
        } else {
            configuration
        };
        let doc = json!({
            "api_key_id": null,
            "api_key_secret_id": null,
            "configuration": configuration,
            "custom_scheduling": {},
            "deleted": false,
            "description": null,
            "error": null,
            "features": null,
            "filtering": [{"domain": "DEFAULT", "active": default_filter(&ts),
                           "draft": default_filter(&ts)}],
            "index_name": index_name,
            "is_native": false,
            "language": null,
            "last_access_control_sync_error": null,
            "last_access_control_sync_scheduled_at": null,
            "last_access_control_sync_status": null,
            "last_deleted_document_count": null,
            "last_incremental_sync_scheduled_at": null,
            "last_indexed_document_count": null,
            "last_seen": null,
            "last_sync_error": null,
            "last_sync_scheduled_at": null,
            "last_sync_status": null,
            "last_synced": null,
            "name": id,
            "pipeline": {"name": "search-default-ingestion", "extract_binary_content": true,
                         "reduce_whitespace": true, "run_ml_inference": true},
            "scheduling": scheduling(&scheduling_overrides),
            "service_type": "s3",
            "status": if empty { "created" } else { "configured" },
            "sync_cursor": null
        });
        let path = format!("/{CONNECTORS}/_doc/{}?refresh=true", enc(id));
        self.es_put(&path, &doc).await.ok();
        doc
    }

    /// Partial update of a connector doc (`{"doc": partial}`), refreshed — e.g. a Kibana edit.
    pub async fn update_connector(&self, id: &str, partial: Value) {
        let path = format!("/{CONNECTORS}/_update/{}?refresh=true", enc(id));
        self.es_post(&path, &json!({ "doc": partial })).await.ok();
    }

    /// Sets the connector's ingest pipeline to none. For tests that count bulk requests or their
    /// items: the connector's default pipeline (as Kibana sets it) costs a test node without it one
    /// more request per job, the one that learns it is missing.
    pub async fn without_pipeline(&self, id: &str) {
        self.update_connector(
            id,
            json!({"pipeline": {"name": "", "extract_binary_content": true,
                                "reduce_whitespace": true, "run_ml_inference": false}}),
        )
        .await;
    }

    /// The connector document's `_source`, if it exists.
    pub async fn connector(&self, id: &str) -> Option<Value> {
        self.get_doc(CONNECTORS, id).await
    }

    /// A configured connector (no schedule) named after `base`, with index `search-<base>` (both
    /// made unique by [`TestWorld::name`]); returns `(id, index)`.
    pub async fn configured_connector(&self, base: &str, configuration: Value) -> (String, String) {
        let id = self.name(base);
        let index = self.name(&format!("search-{base}"));
        self.create_connector_doc(&id, &index, configuration, json!({}))
            .await;
        (id, index)
    }

    /// A new bucket `base` with `n` objects (`o/…`) and a configured connector over it; returns
    /// `(id, index, bucket)`.
    pub async fn bucket_with_connector(&self, base: &str, n: usize) -> (String, String, String) {
        let bucket = self.name(base);
        self.create_bucket(&bucket, None).await;
        self.put_many(&bucket, "o/", n).await;
        let (id, index) = self
            .configured_connector(base, s3_configuration(self, &bucket))
            .await;
        (id, index, bucket)
    }

    /// Waits until the connector document satisfies `pred`; returns it. Times out showing the
    /// connector's status fields.
    pub async fn wait_connector(
        &self,
        id: &str,
        desc: &str,
        timeout: std::time::Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_for(desc, timeout, async || {
            let c = self.connector(id).await.unwrap_or(Value::Null);
            if pred(&c) {
                Ok(c)
            } else {
                Err(status_summary(&c))
            }
        })
        .await
    }

    /// The sync job document's `_source`, if it exists.
    pub async fn job(&self, id: &str) -> Option<Value> {
        self.get_doc(JOBS, id).await
    }

    /// All job hits (`_id` + `_source`) of one connector, oldest first.
    pub async fn jobs_of(&self, connector_id: &str) -> Vec<Value> {
        let mut hits = self
            .search(JOBS, json!({"term": {"connector.id": connector_id}}))
            .await;
        hits.sort_by(|a, b| {
            let ts = |h: &Value| {
                h["_source"]["created_at"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            };
            ts(a).cmp(&ts(b))
        });
        hits
    }

    /// Creates a job like `POST /_connector/_sync_job` would (connector snapshot from the
    /// connector doc, status `pending`, counters 0). Returns the job id.
    pub async fn create_job(&self, connector_id: &str, job_type: &str, trigger: &str) -> String {
        let c = self
            .connector(connector_id)
            .await
            .unwrap_or_else(|| panic!("connector {connector_id} does not exist"));
        let active = c["filtering"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["domain"] == "DEFAULT"))
            .map(|f| f["active"].clone())
            .unwrap_or_else(|| json!({"advanced_snippet": {}, "rules": []}));
        let index_name = match (job_type, c["index_name"].as_str()) {
            ("access_control", Some(i)) => json!(format!(".search-acl-filter-{i}")),
            _ => c["index_name"].clone(),
        };
        let ts = now_iso();
        let job = json!({
            "cancelation_requested_at": null,
            "canceled_at": null,
            "completed_at": null,
            "connector": {
                "id": connector_id,
                "filtering": active,
                "index_name": index_name,
                "language": c["language"],
                "pipeline": c["pipeline"],
                "service_type": c["service_type"],
                "configuration": c["configuration"]
            },
            "created_at": ts,
            "deleted_document_count": 0,
            "error": null,
            "indexed_document_count": 0,
            "indexed_document_volume": 0,
            "job_type": job_type,
            "last_seen": ts,
            "metadata": {},
            "started_at": null,
            "status": "pending",
            "total_document_count": 0,
            "trigger_method": trigger,
            "worker_hostname": null
        });
        self.ensure_system_indices().await;
        let r = self
            .es_post(&format!("/{JOBS}/_doc?refresh=true"), &job)
            .await
            .ok();
        r["_id"]
            .as_str()
            .expect("index response has _id")
            .to_string()
    }

    /// An on-demand full sync job, as Kibana's "Sync" button creates. Returns the job id.
    pub async fn create_pending_job(&self, connector_id: &str) -> String {
        self.create_job(connector_id, "full", "on_demand").await
    }
}

/// The fields worth showing when a connector wait times out.
fn status_summary(c: &Value) -> String {
    let keys = [
        "status",
        "error",
        "last_sync_status",
        "last_sync_error",
        "last_seen",
        "last_sync_scheduled_at",
    ];
    let m: std::collections::BTreeMap<&str, &Value> = keys.iter().map(|k| (*k, &c[*k])).collect();
    format!("{m:?}")
}

/// [`s3_configuration`] pointing at `endpoint`; `tweak` edits it further.
pub fn s3_config(
    world: &TestWorld,
    buckets: &str,
    endpoint: &str,
    tweak: impl FnOnce(&mut Value),
) -> Value {
    let mut c = s3_configuration(world, buckets);
    c["endpoint_url"]["value"] = serde_json::json!(endpoint);
    tweak(&mut c);
    c
}

/// Elastic's S3 configuration schema (docs/architecture.md#the-s3-source), verbatim.
pub const ELASTIC_S3_SCHEMA: &str = r#"{"buckets":{"default_value":null,"depends_on":[],"display":"textarea","label":"AWS Buckets","options":[],"order":1,"required":true,"sensitive":false,"tooltip":"AWS Buckets are ignored when Advanced Sync Rules are used.","type":"list","ui_restrictions":[],"validations":[],"value":""},
 "aws_access_key_id":{"default_value":null,"depends_on":[],"display":"text","label":"AWS Access Key Id","options":[],"order":2,"required":true,"sensitive":false,"tooltip":null,"type":"str","ui_restrictions":[],"validations":[],"value":""},
 "aws_secret_access_key":{"default_value":null,"depends_on":[],"display":"text","label":"AWS Secret Key","options":[],"order":3,"required":true,"sensitive":true,"tooltip":null,"type":"str","ui_restrictions":[],"validations":[],"value":""},
 "read_timeout":{"default_value":90,"depends_on":[],"display":"numeric","label":"Read timeout","options":[],"order":4,"required":false,"sensitive":false,"tooltip":null,"type":"int","ui_restrictions":["advanced"],"validations":[],"value":""},
 "connect_timeout":{"default_value":90,"depends_on":[],"display":"numeric","label":"Connection timeout","options":[],"order":5,"required":false,"sensitive":false,"tooltip":null,"type":"int","ui_restrictions":["advanced"],"validations":[],"value":""},
 "max_attempts":{"default_value":5,"depends_on":[],"display":"numeric","label":"Maximum retry attempts","options":[],"order":6,"required":false,"sensitive":false,"tooltip":null,"type":"int","ui_restrictions":["advanced"],"validations":[],"value":""},
 "page_size":{"default_value":100,"depends_on":[],"display":"numeric","label":"Maximum size of page","options":[],"order":7,"required":false,"sensitive":false,"tooltip":null,"type":"int","ui_restrictions":["advanced"],"validations":[],"value":""},
 "use_text_extraction_service":{"default_value":null,"depends_on":[],"display":"toggle","label":"Use text extraction service","options":[],"order":8,"required":true,"sensitive":false,"tooltip":"Requires a separate deployment of the Elastic Text Extraction Service. Requires that pipeline settings disable text extraction.","type":"bool","ui_restrictions":["advanced"],"validations":[],"value":false}}"#;
