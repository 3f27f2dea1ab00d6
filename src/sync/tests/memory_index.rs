//! An in-memory content index: the documents a sync leaves, its `_bulk` answered item by item.

use crate::es::EsError;
use crate::es::bulk::{BulkItem, BulkResponse, BulkTransport};
use crate::sync::ContentIndex;
use crate::sync::existing::{ReadError, Visit, version_of_document};
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct MemoryIndex {
    docs: Mutex<BTreeMap<String, Map<String, Value>>>,
    /// Bulk requests received (each with its operations).
    pub requests: Mutex<Vec<Vec<String>>>,
    /// How long each bulk request takes, as on a busy cluster.
    pub bulk_delay: Mutex<std::time::Duration>,
}

impl MemoryIndex {
    pub fn insert(&self, id: &str, doc: Value) {
        let Value::Object(doc) = doc else {
            panic!("a document is an object")
        };
        self.docs.lock().unwrap().insert(id.into(), doc);
    }

    pub fn ids(&self) -> Vec<String> {
        self.docs.lock().unwrap().keys().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<Map<String, Value>> {
        self.docs.lock().unwrap().get(id).cloned()
    }

    /// The ids sent in index operations, over every request.
    pub fn indexed_ids(&self) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .flatten()
            .filter_map(|op| op.strip_prefix("index ").map(String::from))
            .collect()
    }
}

#[async_trait]
impl ContentIndex for Arc<MemoryIndex> {
    async fn create_if_missing(&self, _index: &str) -> Result<(), EsError> {
        Ok(())
    }

    async fn count(&self, _index: &str) -> Result<u64, EsError> {
        Ok(self.docs.lock().unwrap().len() as u64)
    }

    async fn versions(
        &self,
        _index: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, u64>, ReadError> {
        let docs = self.docs.lock().unwrap();
        Ok(ids
            .iter()
            .filter_map(|id| {
                let doc = docs.get(*id)?;
                Some((id.to_string(), version_of_document(&json!(doc))))
            })
            .collect())
    }

    async fn scan(&self, _index: &str, visit: &mut Visit<'_>) -> Result<(), ReadError> {
        let docs = self.docs.lock().unwrap().clone();
        for (id, doc) in &docs {
            let id = doc.get("id").and_then(Value::as_str).unwrap_or(id);
            visit(id, doc.get("bucket").and_then(Value::as_str));
        }
        Ok(())
    }

    fn bulk(&self) -> Arc<dyn BulkTransport> {
        self.clone()
    }
}

#[async_trait]
impl BulkTransport for MemoryIndex {
    async fn bulk_once(
        &self,
        ndjson: Vec<u8>,
        _pipeline: Option<&str>,
    ) -> Result<BulkResponse, EsError> {
        let delay = *self.bulk_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let text = String::from_utf8(ndjson).expect("utf-8 request");
        let mut lines = text.lines();
        let (mut items, mut ops) = (Vec::new(), Vec::new());
        let mut docs = self.docs.lock().unwrap();
        while let Some(action) = lines.next() {
            let action: Value = serde_json::from_str(action).expect("action line");
            let (kind, meta) = action.as_object().unwrap().iter().next().unwrap();
            let id = meta["_id"].as_str().unwrap().to_string();
            ops.push(format!("{kind} {id}"));
            let result = match kind.as_str() {
                "index" => {
                    let source: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
                    let Value::Object(source) = source else {
                        panic!("a source is an object")
                    };
                    match docs.insert(id.clone(), source) {
                        Some(_) => "updated",
                        None => "created",
                    }
                }
                "delete" => match docs.remove(&id) {
                    Some(_) => "deleted",
                    None => "not_found",
                },
                other => panic!("unexpected bulk action {other}"),
            };
            items.push(BulkItem::new(kind, 200, Some(result), None));
        }
        self.requests.lock().unwrap().push(ops);
        Ok(BulkResponse { items })
    }
}
