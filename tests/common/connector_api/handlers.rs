//! What each endpoint does to the connector and job indices once its request is valid: the reads
//! and writes of ES's ConnectorIndexService / ConnectorSyncJobIndexService, with their 404s.

use serde_json::{Value, json};

use super::parse::EsError;
use super::requests::{Claim, ListParams, PostJob};
use crate::common::{EsAuth, now_iso};

const CONNECTORS: &str = ".elastic-connectors";
const JOBS: &str = ".elastic-connectors-sync-jobs";

/// Plain HTTP to the real Elasticsearch behind the double.
#[derive(Clone)]
pub struct Es {
    pub http: reqwest::Client,
    pub url: String,
    pub auth: EsAuth,
}

/// A handler's answer: status and JSON body.
pub type Answer = (u16, String);

impl Es {
    pub async fn raw(&self, method: &str, target: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
        let mut rb = self
            .auth
            .apply(self.http.request(method, format!("{}{target}", self.url)));
        if !body.is_empty() {
            rb = rb.header("content-type", "application/json").body(body);
        }
        let resp = rb.send().await.expect("Elasticsearch answers");
        let status = resp.status().as_u16();
        (
            status,
            resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
        )
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, out) = self.raw(method, path, bytes).await;
        (status, serde_json::from_slice(&out).unwrap_or(Value::Null))
    }

    /// `Ok(Some(source))`, `Ok(None)` for a missing document, `Err` for a failed read (e.g. a
    /// missing index).
    async fn source(&self, index: &str, id: &str) -> Result<Option<Value>, (u16, Value)> {
        let (status, body) = self.call("GET", &format!("/{index}/_doc/{id}"), None).await;
        match status {
            200 => Ok(Some(body["_source"].clone())),
            404 if body["found"] == false => Ok(None),
            _ => Err((status, body)),
        }
    }

    /// A partial update with `refresh=true`; ES answers `{"result": <the update's result>}`.
    async fn update(&self, index: &str, id: &str, doc: Value) -> Result<Answer, (u16, Value)> {
        let path = format!("/{index}/_update/{id}?refresh=true");
        let (status, body) = self.call("POST", &path, Some(json!({ "doc": doc }))).await;
        if status == 200 {
            Ok((200, json!({"result": body["result"]}).to_string()))
        } else {
            Err((status, body))
        }
    }
}

fn is_index_missing(body: &Value) -> bool {
    body["error"]["type"] == "index_not_found_exception"
}

fn passthrough((status, body): (u16, Value)) -> Answer {
    (status, body.to_string())
}

/// connector.list.json: a search of the connector index, sorted by index name (an absent index lists
/// nothing); soft-deleted connectors only with `include_deleted`.
pub async fn list(es: &Es, p: ListParams) -> Answer {
    let mut must = vec![];
    for (field, values) in [
        ("index_name", &p.index_name),
        ("name", &p.connector_name),
        ("service_type", &p.service_type),
    ] {
        if !values.is_empty() {
            must.push(json!({"terms": {field: values}}));
        }
    }
    if let Some(q) = p.query.filter(|q| !q.is_empty()) {
        let w = format!("*{q}*");
        must.push(json!({"bool": {"should": [
            {"wildcard": {"index_name": w}}, {"wildcard": {"name": w}}, {"wildcard": {"description": w}}
        ]}}));
    }
    let mut query = json!({"bool": {"must": must}});
    if !p.include_deleted {
        query["bool"]["must_not"] = json!([{"term": {"is_deleted": true}}]);
    }
    let search = json!({"from": p.from, "size": p.size, "query": query,
        "sort": [{"index_name": {"order": "asc", "unmapped_type": "keyword"}}]});
    let (status, body) = es
        .call("POST", &format!("/{CONNECTORS}/_search"), Some(search))
        .await;
    if is_index_missing(&body) {
        return (200, json!({"count": 0, "results": []}).to_string());
    }
    if status != 200 {
        return passthrough((status, body));
    }
    let results: Vec<Value> = body["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let mut c = json!({"id": h["_id"]});
            if let (Some(c), Some(src)) = (c.as_object_mut(), h["_source"].as_object()) {
                c.extend(src.clone());
            }
            c
        })
        .collect();
    let count = body["hits"]["total"]["value"].clone();
    (200, json!({"count": count, "results": results}).to_string())
}

/// connector.check_in.json: `last_seen` = now. ES updates without reading first: a missing document
/// fails with the update's own `document_missing_exception`, a missing index with
/// `connector [id] not found`.
pub async fn check_in(es: &Es, id: &str) -> Answer {
    match es
        .update(CONNECTORS, id, json!({"last_seen": now_iso()}))
        .await
    {
        Ok(a) => a,
        Err(e) if is_index_missing(&e.1) => {
            EsError::not_found(format!("connector [{id}] not found")).answer()
        }
        Err(e) => passthrough(e),
    }
}

/// connector.sync_job_post.json: a pending job built from the connector (201 `{"id": ..}`).
pub async fn post_job(es: &Es, req: PostJob) -> Answer {
    let id = req.id.as_str();
    let c = match es.source(CONNECTORS, id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return EsError::not_found(format!("Connector with id '{id}' does not exist."))
                .answer();
        }
        Err(e) => return passthrough(e),
    };
    let blank = |v: &Value| v.as_str().is_none_or(str::is_empty);
    if blank(&c["index_name"]) {
        let reason = format!(
            "Cannot start a sync for connector [{id}] with no index attached. Set the [index_name] \
             property for the connector to enable syncing data."
        );
        return EsError::bad_request("status_exception", reason).answer();
    }
    if blank(&c["service_type"]) {
        let reason = format!(
            "Cannot start a sync for connector [{id}] with [service_type] not defined. Set the \
             service type of your connector before starting the sync."
        );
        return EsError::bad_request("status_exception", reason).answer();
    }
    let index_name = match req.job_type {
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
        "trigger_method": req.trigger_method,
        "job_type": req.job_type,
    });
    let path = format!("/{JOBS}/_doc?refresh=true");
    let (status, resp) = es.call("POST", &path, Some(job)).await;
    if status >= 300 {
        return passthrough((status, resp));
    }
    (201, json!({"id": resp["_id"]}).to_string())
}

/// A job missing at update time: ES turns both a missing index and a missing document into this.
fn job_not_found(job: &str) -> Answer {
    EsError::not_found(format!("connector sync job [{job}] not found")).answer()
}

/// connector.sync_job_claim.json: reads the job (a missing document is `ResourceNotFoundException(id)`,
/// whose reason is the bare id), then marks it in progress for the worker.
pub async fn claim(es: &Es, job: &str, req: Claim) -> Answer {
    match es.source(JOBS, job).await {
        Ok(Some(_)) => {}
        Ok(None) => return EsError::not_found(job).answer(),
        Err(e) if is_index_missing(&e.1) => return job_not_found(job),
        Err(e) => return passthrough(e),
    }
    let now = now_iso();
    let mut doc = json!({"worker_hostname": req.worker_hostname, "status": "in_progress",
        "last_seen": now, "started_at": now});
    if let Some(cursor) = req.sync_cursor {
        doc["connector"] = json!({ "sync_cursor": cursor });
    }
    match es.update(JOBS, job, doc).await {
        Ok(a) => a,
        Err((404, _)) => job_not_found(job),
        Err(e) => passthrough(e),
    }
}

/// connector.sync_job_update_stats.json: the counters, `last_seen` (now unless given), and
/// `total_document_count` / `metadata` when given.
pub async fn stats(es: &Es, job: &str, mut doc: Value) -> Answer {
    if doc.get("last_seen").is_none() {
        doc["last_seen"] = json!(now_iso());
    }
    match es.update(JOBS, job, doc).await {
        Ok(a) => a,
        Err((404, _)) => job_not_found(job),
        Err(e) => passthrough(e),
    }
}

/// connector.update_filtering_validation.json / connector.update_active_filtering.json: both read the
/// connector first (missing or soft-deleted → `connector [id] not found`); activation needs a draft
/// in state `valid`.
pub async fn filtering(es: &Es, id: &str, validation: Option<Value>) -> Answer {
    let connector = match es.source(CONNECTORS, id).await {
        Ok(Some(c)) if c["is_deleted"] != true => c,
        Ok(_) => return EsError::not_found(format!("connector [{id}] not found")).answer(),
        Err(e) if is_index_missing(&e.1) => {
            return EsError::not_found(format!("connector [{id}] not found")).answer();
        }
        Err(e) => return passthrough(e),
    };
    let mut filtering = connector["filtering"].clone();
    if let Some(entry) = filtering
        .as_array_mut()
        .and_then(|a| a.iter_mut().find(|f| f["domain"] == "DEFAULT"))
    {
        match validation {
            Some(v) => entry["draft"]["validation"] = v,
            None => {
                let state = entry["draft"]["validation"]["state"]
                    .as_str()
                    .unwrap_or("edited");
                if state != "valid" {
                    let reason = format!(
                        "Filtering draft needs to be validated by the connector service before \
                         activation. Current filtering draft validation state [{state}] is not \
                         equal to [valid]."
                    );
                    return EsError::bad_request("status_exception", reason).answer();
                }
                entry["active"] = entry["draft"].clone();
            }
        }
    }
    match es
        .update(CONNECTORS, id, json!({ "filtering": filtering }))
        .await
    {
        Ok(a) => a,
        Err((404, _)) => EsError::not_found(format!("connector [{id}] not found")).answer(),
        Err(e) => passthrough(e),
    }
}
