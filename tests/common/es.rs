//! Plain-HTTP Elasticsearch helpers (reqwest + JSON), independent of the code under test.
//!
//! Every request carries the credentials from `ES_USERNAME`/`ES_PASSWORD` or `ES_API_KEY`.
//! Helpers that read documents refresh first, so tests behave the same on real ES (near-real-time)
//! and on osmem (which makes documents visible at once).

use reqwest::Method;
use serde_json::{Value, json};

use super::TestWorld;

/// Credentials applied to every harness request (taken from the environment).
#[derive(Clone, Debug, Default)]
pub enum EsAuth {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    ApiKey(String),
}

impl EsAuth {
    /// `ES_API_KEY` wins over `ES_USERNAME`/`ES_PASSWORD`.
    pub fn from_env() -> EsAuth {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(key) = get("ES_API_KEY") {
            EsAuth::ApiKey(key)
        } else if let Some(username) = get("ES_USERNAME") {
            let password = get("ES_PASSWORD").unwrap_or_default();
            EsAuth::Basic { username, password }
        } else {
            EsAuth::None
        }
    }

    pub(crate) fn apply(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            EsAuth::None => rb,
            EsAuth::Basic { username, password } => rb.basic_auth(username, Some(password)),
            EsAuth::ApiKey(key) => rb.header("Authorization", format!("ApiKey {key}")),
        }
    }
}

/// Status and JSON body of one ES call. A non-JSON body is kept as a JSON string, an empty one
/// (e.g. HEAD) is `null`.
#[derive(Clone, Debug)]
pub struct EsResponse {
    /// `"<METHOD> <path>"`, for messages.
    pub request: String,
    pub status: u16,
    pub body: Value,
}

impl EsResponse {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body; panics with request, status and body unless the status is 2xx.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            self.is_success(),
            "{} -> HTTP {}: {}",
            self.request,
            self.status,
            self.body
        );
        self.body
    }

    /// The ES error type (`error.type`), if any.
    pub fn error_type(&self) -> Option<&str> {
        self.body["error"]["type"].as_str()
    }
}

/// Percent-encodes one path segment (an index name or a document id).
pub fn enc(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl TestWorld {
    /// Full URL for `path` (with or without a leading `/`, may carry a query string).
    pub fn es_endpoint(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.es_url)
        } else {
            format!("{}/{path}", self.es_url)
        }
    }

    /// One ES call with an optional JSON body. Panics only on transport errors.
    pub async fn es_request(&self, method: Method, path: &str, body: Option<&Value>) -> EsResponse {
        let payload = body.map(|b| (b"application/json".as_slice(), b.to_string().into_bytes()));
        self.es_request_raw(method, path, payload).await
    }

    /// One ES call with a raw body and its content type (e.g. `application/x-ndjson` for `_bulk`).
    pub async fn es_request_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(&[u8], Vec<u8>)>,
    ) -> EsResponse {
        let request = format!("{method} {path}");
        let mut rb = self
            .es_auth
            .apply(self.http.request(method, self.es_endpoint(path)));
        if let Some((content_type, bytes)) = body {
            rb = rb
                .header(
                    "Content-Type",
                    String::from_utf8_lossy(content_type).into_owned(),
                )
                .body(bytes);
        }
        let resp = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{request}: transport error: {e}"));
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("{request}: reading body: {e}"));
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        EsResponse {
            request,
            status,
            body,
        }
    }

    pub async fn es_get(&self, path: &str) -> EsResponse {
        self.es_request(Method::GET, path, None).await
    }

    pub async fn es_put(&self, path: &str, body: &Value) -> EsResponse {
        self.es_request(Method::PUT, path, Some(body)).await
    }

    pub async fn es_post(&self, path: &str, body: &Value) -> EsResponse {
        self.es_request(Method::POST, path, Some(body)).await
    }

    pub async fn es_delete(&self, path: &str) -> EsResponse {
        self.es_request(Method::DELETE, path, None).await
    }

    /// `HEAD path` → status code.
    pub async fn es_head(&self, path: &str) -> u16 {
        self.es_request(Method::HEAD, path, None).await.status
    }

    /// `POST /<index>/_refresh`; a missing index is ignored, other errors panic.
    pub async fn refresh(&self, index: &str) {
        for _ in 0..50 {
            let r = self
                .es_request(Method::POST, &format!("/{}/_refresh", enc(index)), None)
                .await;
            match r.status {
                404 => return,
                // A shard not started yet (an index created a moment ago).
                s if s >= 500 => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                _ => {
                    r.ok();
                    return;
                }
            }
        }
    }

    /// Refreshes, then `_count` of all docs; 0 for a missing index.
    ///
    /// An index created a moment ago may have no started shard yet, and a real cluster then answers
    /// 503: asked again for a few seconds.
    pub async fn count(&self, index: &str) -> u64 {
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.refresh(index).await;
            let r = self.es_get(&format!("/{}/_count", enc(index))).await;
            match r.status {
                404 => return 0,
                s if s >= 500 && attempts < 50 => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                _ => return r.ok()["count"].as_u64().expect("_count returns a count"),
            }
        }
    }

    /// Refreshes, then returns the hits (whole hit objects: `_id`, `_source`, ...) of `query`
    /// (a query clause such as `json!({"match_all": {}})`), up to 10 000, sorted by `_doc`.
    /// Empty for a missing index.
    pub async fn search(&self, index: &str, query: Value) -> Vec<Value> {
        self.refresh(index).await;
        let body = json!({"query": query, "size": 10000, "sort": ["_doc"]});
        let r = self
            .es_post(
                &format!("/{}/_search?expand_wildcards=all", enc(index)),
                &body,
            )
            .await;
        if r.status == 404 {
            return Vec::new();
        }
        match r.ok()["hits"]["hits"].take() {
            Value::Array(hits) => hits,
            other => panic!("search on {index}: no hits array: {other}"),
        }
    }

    /// `_source` of one document, `None` if the document or the index does not exist.
    pub async fn get_doc(&self, index: &str, id: &str) -> Option<Value> {
        let r = self
            .es_get(&format!("/{}/_doc/{}", enc(index), enc(id)))
            .await;
        if r.status == 404 {
            return None;
        }
        let mut body = r.ok();
        Some(body["_source"].take())
    }
}

/// Document id the S3 connector gives an object: lowercase hex MD5 of `"<bucket>/<key>"` (docs/architecture.md#the-s3-source).
pub fn doc_id(bucket: &str, key: &str) -> String {
    use md5::{Digest, Md5};
    format!("{:x}", Md5::digest(format!("{bucket}/{key}")))
}

/// The document ids of `keys` in `bucket`.
pub fn doc_ids<K: AsRef<str>>(bucket: &str, keys: &[K]) -> std::collections::BTreeSet<String> {
    keys.iter().map(|k| doc_id(bucket, k.as_ref())).collect()
}

impl TestWorld {
    /// Ids of the documents of `bucket` in `index` (filtered client-side: works with any mapping).
    pub async fn doc_ids_of_bucket(
        &self,
        index: &str,
        bucket: &str,
    ) -> std::collections::BTreeSet<String> {
        self.search(index, json!({"match_all": {}}))
            .await
            .into_iter()
            .filter(|h| h["_source"]["bucket"] == bucket)
            .map(|h| h["_id"].as_str().expect("hit has _id").to_string())
            .collect()
    }

    /// Every document's `_source` in `index`, by its `filename`.
    pub async fn docs_by_filename(&self, index: &str) -> std::collections::BTreeMap<String, Value> {
        self.search(index, json!({"match_all": {}}))
            .await
            .into_iter()
            .map(|h| {
                let name = h["_source"]["filename"]
                    .as_str()
                    .expect("filename")
                    .to_string();
                (name, h["_source"].clone())
            })
            .collect()
    }
}
