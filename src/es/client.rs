//! A small typed Elasticsearch client on reqwest: auth, headers, timeouts, bounded retries.
//!
//! Why not the `elasticsearch` crate: it has been alpha for six years, has no retries, no connect
//! timeout and no typed responses, and brings a second TLS stack (see README, "Dependencies").

use super::error::{EsError, transport_cause};
use crate::config::{EsConfig, Secret};
use crate::retry::{Backoff, RetryPolicy, Verdict, transient_status};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A cheaply clonable handle to one Elasticsearch cluster.
#[derive(Clone)]
pub struct EsClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    /// For [`Retry::Transient`] calls.
    retry: RetryPolicy,
}

/// Whether a call may be retried by the client itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// 429, 5xx and transport errors are retried with jittered backoff, bounded by `max_retries`.
    Transient,
    /// One attempt; the caller decides (the bulk sink does, per item).
    Never,
}

/// A request body.
pub enum Body {
    Json(Value),
    /// JSON already serialized (a body written straight from its parts, no tree built).
    JsonBytes(Vec<u8>),
    Ndjson(Vec<u8>),
}

/// One document as returned by `GET /<index>/_doc/<id>` or a search hit.
#[derive(Debug, Clone, Deserialize)]
pub struct Hit {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "_seq_no", default)]
    pub seq_no: Option<i64>,
    #[serde(rename = "_primary_term", default)]
    pub primary_term: Option<i64>,
    #[serde(rename = "_source", default)]
    pub source: Value,
    #[serde(default)]
    pub sort: Option<Vec<Value>>,
}

impl Hit {
    /// Splits a hit into its id, its concurrency token and its `_source` read as `T`. Every field of
    /// the documents' structs reads leniently (`es/documents.rs`), so this fails only on a source
    /// that is not an object, which reads as an empty document.
    pub fn into_document<T: Default + serde::de::DeserializeOwned>(
        self,
    ) -> (String, Option<Occ>, T) {
        let occ = self.occ();
        let doc = T::deserialize(&self.source).unwrap_or_else(|e| {
            tracing::warn!(id = %self.id, error = %e, "document does not read; taken as empty");
            T::default()
        });
        (self.id, occ, doc)
    }

    /// The `if_seq_no`/`if_primary_term` pair of this read, for an optimistic write.
    pub fn occ(&self) -> Option<Occ> {
        Some(Occ {
            seq_no: self.seq_no?,
            primary_term: self.primary_term?,
        })
    }
}

/// Optimistic concurrency control token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occ {
    pub seq_no: i64,
    pub primary_term: i64,
}

impl EsClient {
    /// Builds a client from `elasticsearch.*`. `api_key` overrides the configured credentials
    /// (a connector's own `api_key`, used for its content index).
    pub fn new(cfg: &EsConfig, api_key: Option<&Secret>, agent: &str) -> Result<Self, EsError> {
        let base = Url::parse(cfg.host.trim_end_matches('/'))
            .map_err(|e| EsError::Setup(format!("elasticsearch.host is not a URL: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-elastic-product-origin",
            HeaderValue::from_static("connectors"),
        );
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                EsError::Setup(format!("elasticsearch.headers: bad header name {k:?}"))
            })?;
            let value = HeaderValue::from_str(v).map_err(|_| {
                EsError::Setup(format!("elasticsearch.headers: bad value for {k:?}"))
            })?;
            headers.insert(name, value);
        }
        if let Some(auth) = auth_header(cfg, api_key)? {
            headers.insert(reqwest::header::AUTHORIZATION, auth);
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(format!(
                "content-sync/{}/{agent}",
                env!("CARGO_PKG_VERSION")
            ))
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(cfg.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .gzip(true);
        if cfg.ssl {
            if !cfg.verify_certs {
                builder = builder.tls_danger_accept_invalid_certs(true);
            }
            if let Some(path) = &cfg.ca_certs {
                let pem = std::fs::read(path).map_err(|e| {
                    EsError::Setup(format!(
                        "elasticsearch.ca_certs: cannot read {}: {e}",
                        path.display()
                    ))
                })?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    EsError::Setup(format!("elasticsearch.ca_certs: {}: {e}", path.display()))
                })?;
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
        }
        let http = builder
            .build()
            .map_err(|e| EsError::Setup(transport_cause(&e)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                retry: RetryPolicy::new(
                    cfg.max_retries,
                    Backoff::new(cfg.retry_interval, MAX_BACKOFF),
                ),
            }),
        })
    }

    /// The cluster URL, for messages.
    pub fn host(&self) -> &str {
        self.inner.base.as_str()
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.inner.base.clone();
        {
            let mut path = url.path_segments_mut().expect("http url has a path");
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Sends one request and returns the status and body of a 2xx answer. Non-2xx answers become
    /// `EsError::Status` (409 → `EsError::Conflict`); transient failures are retried per `retry`.
    /// Neither body is copied: each attempt shares the request's bytes, and the answer is the
    /// buffer hyper read it into.
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Body>,
        retry: Retry,
    ) -> Result<(StatusCode, Bytes), EsError> {
        let url = self.url(segments, query);
        let path = url.path().to_string();
        let (content_type, bytes) = match body {
            None => (None, None),
            Some(Body::Json(v)) => (
                Some("application/json"),
                Some(serde_json::to_vec(&v).expect("json")),
            ),
            Some(Body::JsonBytes(b)) => (Some("application/json"), Some(b)),
            Some(Body::Ndjson(b)) => (Some("application/x-ndjson"), Some(b)),
        };
        let bytes = bytes.map(Bytes::from);
        let policy = match retry {
            Retry::Transient => self.inner.retry,
            Retry::Never => RetryPolicy::once(),
        };
        let attempt = |_| {
            let mut req = self.inner.http.request(method.clone(), url.clone());
            if let (Some(ct), Some(b)) = (content_type, &bytes) {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, ct)
                    .body(b.clone());
            }
            async move {
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        if !status.is_server_error() {
                            crate::metrics::health().es_answered();
                        }
                        match resp.bytes().await {
                            Ok(b) => Ok((status, b)),
                            Err(e) => Err(transport_cause(&e)),
                        }
                    }
                    Err(e) => Err(transport_cause(&e)),
                }
            }
        };
        // No answer, or a transient status: another attempt may do better.
        let classify = |outcome: &Result<(StatusCode, Bytes), String>| match outcome {
            Ok((status, _)) if !transient_status(status.as_u16()) => Verdict::Final,
            _ => Verdict::Retry,
        };
        let on_retry = |attempt: u32, delay: Duration, _: &_| {
            tracing::warn!(method = %method, path = %path, attempt, delay_ms = delay.as_millis() as u64,
                "elasticsearch call failed, retrying");
        };
        let outcome = policy
            .run(None, attempt, classify, on_retry)
            .await
            .expect("not cancellable");
        match outcome {
            Ok((status, body)) if status.is_success() => Ok((status, body)),
            Ok((status, _)) if status == StatusCode::CONFLICT => Err(EsError::Conflict { path }),
            Ok((status, body)) => Err(status_error(status, &method, &path, &body)),
            Err(cause) => Err(EsError::Transport {
                method: method.to_string(),
                path,
                cause,
            }),
        }
    }

    /// Like [`send`](Self::send) with transient retries, decoding the JSON answer.
    pub async fn json(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Value, EsError> {
        let bytes = self
            .transient(method, segments, query, body.map(Body::Json))
            .await?;
        decode(&bytes, segments)
    }

    /// Like [`json`](Self::json), decoding the answer straight into `T` (no JSON tree).
    pub async fn typed<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<T, EsError> {
        let bytes = self
            .transient(method, segments, query, body.map(Body::Json))
            .await?;
        decode_typed(&bytes, || format!("/{}", segments.join("/")))
    }

    /// The answer's bytes of a request retried on transient failures (a caller that reads them
    /// itself: `decode_typed`, borrowing from them).
    pub(crate) async fn transient(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Body>,
    ) -> Result<Bytes, EsError> {
        let (_, bytes) = self
            .send(method, segments, query, body, Retry::Transient)
            .await?;
        Ok(bytes)
    }

    /// `HEAD /<index>`.
    pub async fn index_exists(&self, index: &str) -> Result<bool, EsError> {
        match self
            .send(Method::HEAD, &[index], &[], None, Retry::Transient)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `PUT /<index>` with an optional body; an index that already exists is not an error.
    pub async fn create_index(&self, index: &str, body: Option<Value>) -> Result<(), EsError> {
        match self.json(Method::PUT, &[index], &[], body).await {
            Ok(_) => Ok(()),
            Err(EsError::Status { kind, .. }) if kind == "resource_already_exists_exception" => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /<index>/_doc/<id>`; `None` when the document (or the index) does not exist.
    pub async fn get_doc(&self, index: &str, id: &str) -> Result<Option<Hit>, EsError> {
        match self
            .json(Method::GET, &[index, "_doc", id], &[], None)
            .await
        {
            Ok(v) => {
                if v.get("found").and_then(Value::as_bool) == Some(false) {
                    return Ok(None);
                }
                serde_json::from_value(v)
                    .map(Some)
                    .map_err(|e| EsError::Decode {
                        path: format!("/{index}/_doc/{id}"),
                        cause: e.to_string(),
                    })
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// How often Elasticsearch itself retries an unguarded partial update that raced another write.
    pub const UNGUARDED_RETRIES: u32 = 5;

    /// `POST /<index>/_update/<id>` with a partial `doc`, optionally guarded by `occ`.
    pub async fn update_doc(
        &self,
        index: &str,
        id: &str,
        doc: Value,
        occ: Option<Occ>,
    ) -> Result<(), EsError> {
        let mut query = Vec::new();
        match occ {
            Some(o) => {
                query.push(("if_seq_no", o.seq_no.to_string()));
                query.push(("if_primary_term", o.primary_term.to_string()));
            }
            // Unguarded partial updates merge into whatever is there: a concurrent write to the same
            // document (a heartbeat, a validation) must not make them fail with a version conflict.
            None => query.push(("retry_on_conflict", Self::UNGUARDED_RETRIES.to_string())),
        }
        self.json(
            Method::POST,
            &[index, "_update", id],
            &query,
            Some(json!({ "doc": doc })),
        )
        .await
        .map(|_| ())
    }

    /// Creates a document under a fresh id of our own (`PUT /<index>/_create/<id>`); returns the id.
    /// Safe to retry: should a retry find the document there (409), only our own earlier attempt can
    /// have written it, whose answer was lost, so it is not created twice.
    pub async fn create_doc(&self, index: &str, doc: Value) -> Result<String, EsError> {
        let id = new_doc_id();
        match self
            .json(Method::PUT, &[index, "_create", &id], &[], Some(doc))
            .await
        {
            Ok(_) => Ok(id),
            Err(EsError::Conflict { .. }) => {
                tracing::debug!(index, id = %id, "document already created by an earlier attempt");
                Ok(id)
            }
            Err(e) => Err(e),
        }
    }

    /// Indexes a whole document (`PUT /<index>/_doc/<id>` or `POST /<index>/_doc`); returns its id.
    pub async fn index_doc(
        &self,
        index: &str,
        id: Option<&str>,
        doc: Value,
        refresh: bool,
    ) -> Result<String, EsError> {
        let query = if refresh {
            vec![("refresh", "true".to_string())]
        } else {
            vec![]
        };
        let resp = match id {
            Some(id) => {
                self.json(Method::PUT, &[index, "_doc", id], &query, Some(doc))
                    .await?
            }
            None => {
                self.json(Method::POST, &[index, "_doc"], &query, Some(doc))
                    .await?
            }
        };
        resp.get("_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| EsError::Decode {
                path: format!("/{index}/_doc"),
                cause: "no _id in response".into(),
            })
    }

    /// `POST /<index>/_search?expand_wildcards=hidden` with a raw body; returns the hits.
    pub async fn search(&self, index: &str, body: Value) -> Result<Vec<Hit>, EsError> {
        let query = [("expand_wildcards", "hidden".to_string())];
        let resp = self
            .json(Method::POST, &[index, "_search"], &query, Some(body))
            .await?;
        hits_of(&resp, index)
    }

    /// `POST /<index>/_refresh?ignore_unavailable=true`.
    pub async fn refresh(&self, index: &str) -> Result<(), EsError> {
        let q = [("ignore_unavailable", "true".to_string())];
        self.json(Method::POST, &[index, "_refresh"], &q, None)
            .await
            .map(|_| ())
    }

    /// `POST /<index>/_count?ignore_unavailable=true` (a missing index counts 0).
    pub async fn count(&self, index: &str) -> Result<u64, EsError> {
        let q = [("ignore_unavailable", "true".to_string())];
        match self.json(Method::POST, &[index, "_count"], &q, None).await {
            Ok(v) => Ok(v.get("count").and_then(Value::as_u64).unwrap_or(0)),
            Err(e) if e.is_not_found() => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// One `_bulk` attempt; the bulk sink owns retries because it decides per item.
    pub async fn bulk_once(
        &self,
        ndjson: Vec<u8>,
        pipeline: Option<&str>,
    ) -> Result<super::bulk::BulkResponse, EsError> {
        let query: Vec<(&str, String)> = pipeline
            .map(|p| ("pipeline", p.to_string()))
            .into_iter()
            .collect();
        let started = std::time::Instant::now();
        let sent = self
            .send(
                Method::POST,
                &["_bulk"],
                &query,
                Some(Body::Ndjson(ndjson)),
                Retry::Never,
            )
            .await;
        crate::metrics::bulk_request(started.elapsed(), sent.is_ok());
        let (_, bytes) = sent?;
        decode_typed(&bytes, || "/_bulk".into())
    }
}

/// 20 URL-safe base64 characters (120 random bits), the shape of Elasticsearch's own ids.
fn new_doc_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..20)
        .map(|_| ALPHABET[fastrand::usize(..64)] as char)
        .collect()
}

fn auth_header(cfg: &EsConfig, api_key: Option<&Secret>) -> Result<Option<HeaderValue>, EsError> {
    let api_key = api_key.or(cfg.api_key.as_ref()).filter(|k| !k.is_empty());
    let value = if let Some(key) = api_key {
        format!("ApiKey {}", key.expose())
    } else if let Some(user) = cfg.username.as_deref().filter(|u| !u.is_empty()) {
        let pass = cfg.password.as_ref().map(Secret::expose).unwrap_or("");
        format!("Basic {}", BASE64.encode(format!("{user}:{pass}")))
    } else {
        return Ok(None);
    };
    let mut header = HeaderValue::from_str(&value).map_err(|_| {
        EsError::Setup(
            "elasticsearch credentials contain characters not allowed in a header".into(),
        )
    })?;
    header.set_sensitive(true);
    Ok(Some(header))
}

/// An answer read into `T` (which may borrow from it); `path` names the request in the error.
pub(crate) fn decode_typed<'a, T: serde::Deserialize<'a>>(
    bytes: &'a [u8],
    path: impl FnOnce() -> String,
) -> Result<T, EsError> {
    serde_json::from_slice(bytes).map_err(|e| EsError::Decode {
        path: path(),
        cause: e.to_string(),
    })
}

fn decode(bytes: &[u8], segments: &[&str]) -> Result<Value, EsError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| EsError::Decode {
        path: format!("/{}", segments.join("/")),
        cause: e.to_string(),
    })
}

pub(super) fn hits_of(resp: &Value, index: &str) -> Result<Vec<Hit>, EsError> {
    let hits = resp
        .pointer("/hits/hits")
        .cloned()
        .unwrap_or(Value::Array(vec![]));
    serde_json::from_value(hits).map_err(|e| EsError::Decode {
        path: format!("/{index}/_search"),
        cause: e.to_string(),
    })
}

/// Turns an error answer into `EsError::Status`, keeping ES's `error.type` and `error.reason`.
fn status_error(status: StatusCode, method: &Method, path: &str, body: &[u8]) -> EsError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let err = parsed.get("error").cloned().unwrap_or(Value::Null);
    let (kind, reason) = match &err {
        Value::Object(o) => (
            o.get("type")
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_string(),
            o.get("reason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
        Value::String(s) => ("error".to_string(), s.clone()),
        _ => (
            "error".to_string(),
            String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        ),
    };
    EsError::Status {
        status,
        method: method.to_string(),
        path: path.to_string(),
        kind,
        reason,
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
