//! A test double of Elasticsearch's `_connector` APIs (8.12+) for the stand-in, which lacks them.
//!
//! It implements the endpoints the service uses in API mode (§2.3 of the protocol spec) — check-in,
//! sync job creation, claim, stats, filtering validation and activation, and the `GET /_connector`
//! probe — by reading and writing the connector and job indices the way ES does, and forwards every
//! other request to the real (stand-in) server.

use std::sync::Arc;

use serde_json::{Value, json};

use super::proxy::{Fault, FaultProxy, Handler, Rule};
use super::{TestWorld, now_iso};

#[derive(Clone)]
struct Es {
    http: reqwest::Client,
    url: String,
    auth: super::EsAuth,
}

impl Es {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self
            .auth
            .apply(self.http.request(method, format!("{}{path}", self.url)));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("stand-in answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn source(&self, index: &str, id: &str) -> Option<Value> {
        let (status, body) = self
            .call(reqwest::Method::GET, &format!("/{index}/_doc/{id}"), None)
            .await;
        (status == 200).then(|| body["_source"].clone())
    }

    async fn update(&self, index: &str, id: &str, doc: Value) -> (u16, String) {
        let path = format!("/{index}/_update/{id}?refresh=true");
        let (status, body) = self
            .call(reqwest::Method::POST, &path, Some(json!({ "doc": doc })))
            .await;
        if status == 200 {
            (200, json!({"result": "updated"}).to_string())
        } else {
            (status, body.to_string())
        }
    }
}

fn not_found(what: &str) -> (u16, String) {
    (
        404,
        json!({"error": {"type": "resource_not_found_exception", "reason": what}, "status": 404})
            .to_string(),
    )
}

/// Path segments of a target, without the query string.
fn segments(target: &str) -> Vec<String> {
    let path = target.split('?').next().unwrap_or("");
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

async fn handle(es: Es, method: String, target: String, body: Vec<u8>) -> (u16, String) {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let seg = segments(&target);
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    match (method.as_str(), seg.as_slice()) {
        ("GET", ["_connector"]) => (200, json!({"count": 0, "results": []}).to_string()),
        ("PUT", ["_connector", id, "_check_in"]) => {
            if es.source(".elastic-connectors", id).await.is_none() {
                return not_found(id);
            }
            es.update(".elastic-connectors", id, json!({"last_seen": now_iso()}))
                .await
        }
        ("POST", ["_connector", "_sync_job"]) => create_job(&es, &body).await,
        ("PUT", ["_connector", "_sync_job", job, "_claim"]) => {
            let now = now_iso();
            let mut doc = json!({"worker_hostname": body["worker_hostname"], "status": "in_progress",
                "last_seen": now, "started_at": now});
            if !body["sync_cursor"].is_null() {
                doc["connector"] = json!({"sync_cursor": body["sync_cursor"]});
            }
            es.update(".elastic-connectors-sync-jobs", job, doc).await
        }
        ("PUT", ["_connector", "_sync_job", job, "_stats"]) => {
            let mut doc = json!({
                "indexed_document_count": body["indexed_document_count"],
                "indexed_document_volume": body["indexed_document_volume"],
                "deleted_document_count": body["deleted_document_count"],
                "last_seen": body.get("last_seen").cloned().unwrap_or_else(|| json!(now_iso())),
            });
            for key in ["total_document_count", "metadata"] {
                if let Some(v) = body.get(key) {
                    doc[key] = v.clone();
                }
            }
            es.update(".elastic-connectors-sync-jobs", job, doc).await
        }
        (
            "PUT",
            [
                "_connector",
                id,
                "_filtering",
                action @ ("_validation" | "_activate"),
            ],
        ) => {
            let Some(connector) = es.source(".elastic-connectors", id).await else {
                return not_found(id);
            };
            let mut filtering = connector["filtering"].clone();
            if let Some(entry) = filtering
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|f| f["domain"] == "DEFAULT"))
            {
                if *action == "_validation" {
                    entry["draft"]["validation"] = body["validation"].clone();
                } else {
                    entry["active"] = entry["draft"].clone();
                }
            }
            es.update(".elastic-connectors", id, json!({"filtering": filtering}))
                .await
        }
        _ => (
            400,
            json!({"error": format!("no handler for {method} {target} in the test double")})
                .to_string(),
        ),
    }
}

/// `POST /_connector/_sync_job`, built from the connector as ES builds it.
async fn create_job(es: &Es, body: &Value) -> (u16, String) {
    let Some(id) = body["id"].as_str() else {
        return (400, json!({"error": "id is required"}).to_string());
    };
    let Some(c) = es.source(".elastic-connectors", id).await else {
        return not_found(id);
    };
    if c["index_name"].is_null() || c["service_type"].is_null() {
        return (
            400,
            json!({"error": "connector lacks index_name or service_type"}).to_string(),
        );
    }
    let job_type = body["job_type"].as_str().unwrap_or("full");
    let index_name = match job_type {
        "access_control" => json!(format!(
            ".search-acl-filter-{}",
            c["index_name"].as_str().unwrap_or("")
        )),
        _ => c["index_name"].clone(),
    };
    let active = c["filtering"]
        .as_array()
        .and_then(|f| f.first())
        .map(|f| f["active"].clone())
        .unwrap_or(Value::Null);
    let now = now_iso();
    let job = json!({
        "connector": {"id": id, "filtering": active, "index_name": index_name, "language": c["language"],
                      "pipeline": c["pipeline"], "service_type": c["service_type"],
                      "configuration": c["configuration"]},
        "status": "pending", "created_at": now, "last_seen": now,
        "indexed_document_count": 0, "indexed_document_volume": 0, "deleted_document_count": 0,
        "total_document_count": 0,
        "trigger_method": body["trigger_method"].as_str().unwrap_or("on_demand"),
        "job_type": job_type,
    });
    let (status, resp) = es
        .call(
            reqwest::Method::POST,
            "/.elastic-connectors-sync-jobs/_doc?refresh=true",
            Some(job),
        )
        .await;
    if status >= 300 {
        return (status, resp.to_string());
    }
    (200, json!({"id": resp["_id"]}).to_string())
}

impl TestWorld {
    /// Starts the `_connector` API double in front of this world's Elasticsearch; give the service
    /// its `url()` as `elasticsearch.host`. Rule `i` of the returned proxy counts calls of endpoint `i`
    /// in this order: probe, check-in, create job, claim, stats, filtering.
    pub async fn connector_api(&self) -> FaultProxy {
        self.connector_api_with(vec![]).await
    }

    /// Like [`connector_api`](Self::connector_api), with more rules after the six (e.g. delays).
    pub async fn connector_api_with(&self, extra: Vec<Rule>) -> FaultProxy {
        let es = Es {
            http: reqwest::Client::new(),
            url: self.es_url.clone(),
            auth: self.es_auth.clone(),
        };
        let handler: Handler = Arc::new(move |method, target, body| {
            Box::pin(handle(es.clone(), method, target, body))
        });
        let rule = |desc: &str, f: fn(&str, &str) -> bool| {
            Rule::when(desc, f, Fault::Handle(handler.clone()))
        };
        let mut rules = vec![
            rule("probe", |m, t| {
                m == "GET" && t.split('?').next() == Some("/_connector")
            }),
            rule("check-in", |m, t| m == "PUT" && t.ends_with("/_check_in")),
            rule("create job", |m, t| {
                m == "POST" && t.split('?').next() == Some("/_connector/_sync_job")
            }),
            rule("claim", |m, t| {
                m == "PUT" && t.starts_with("/_connector/_sync_job/") && t.ends_with("/_claim")
            }),
            rule("stats", |m, t| {
                m == "PUT" && t.starts_with("/_connector/_sync_job/") && t.ends_with("/_stats")
            }),
            rule("filtering", |m, t| m == "PUT" && t.contains("/_filtering/")),
        ];
        rules.extend(extra);
        FaultProxy::start(&self.es_url, rules).await
    }
}
