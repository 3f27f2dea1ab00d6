//! An in-memory source (service type `memory`), for the unit tests of the whole sync pipeline and
//! as the smallest complete example of the seam (docs/architecture.md, "Adding a source").
//!
//! A [`MemoryStore`] holds partitions of objects (key → bytes, etag, modification time). Its
//! connectors' configuration has one field, `partitions` (comma-separated names; empty = every
//! partition of the store). Advanced rules are an array of `{"partition": name, "prefix": p}`.
//! Listing pages are `page_size` objects in key order; a partition can be told to fail after a
//! number of pages, as a store failing mid-listing would.

use super::fields::stored_value;
use super::{
    Listed, ObjectReader, PageLister, Partition, PartitionError, Source, SourceError, SourceKind,
};
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// One stored object.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub etag: String,
    /// ISO 8601, the document's `_timestamp`.
    pub modified: String,
}

/// The shared contents of a test's store; tests change it between syncs.
#[derive(Default)]
pub struct MemoryStore {
    partitions: Mutex<BTreeMap<String, BTreeMap<String, Object>>>,
    /// Partition → pages listed before its listing fails.
    failing: Mutex<HashMap<String, usize>>,
    /// Called with (partition, page number from 1) before each page is handed out.
    on_page: Mutex<Option<PageHook>>,
    /// `first_key` calls so far.
    pub probes: std::sync::atomic::AtomicUsize,
    /// How long each listing page takes, as from a distant store.
    page_delay: Mutex<std::time::Duration>,
}

type PageHook = Box<dyn Fn(&str, usize) + Send + Sync>;

impl MemoryStore {
    /// Puts (or overwrites) an object; its etag is derived from the bytes.
    pub fn put(&self, partition: &str, key: &str, bytes: &[u8], modified: &str) {
        let etag = format!("\"{:x}\"", bytes.iter().map(|b| u64::from(*b)).sum::<u64>());
        self.lock().entry(partition.into()).or_default().insert(
            key.into(),
            Object {
                bytes: bytes.to_vec(),
                etag,
                modified: modified.into(),
            },
        );
    }

    pub fn remove(&self, partition: &str, key: &str) {
        if let Some(p) = self.lock().get_mut(partition) {
            p.remove(key);
        }
    }

    /// Listing `partition` fails after `pages` pages.
    pub fn fail_after(&self, partition: &str, pages: usize) {
        self.failing
            .lock()
            .expect("lock")
            .insert(partition.into(), pages);
    }

    /// Each listing page takes `delay` from now on.
    pub fn delay_pages(&self, delay: std::time::Duration) {
        *self.page_delay.lock().expect("lock") = delay;
    }

    /// Calls `hook` with (partition, page number from 1) before each page is handed out.
    pub fn on_page(&self, hook: impl Fn(&str, usize) + Send + Sync + 'static) {
        *self.on_page.lock().expect("lock") = Some(Box::new(hook));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, Object>>> {
        self.partitions.lock().expect("lock")
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("partitions", &self.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The `memory` kind over one store.
#[derive(Debug, Clone)]
pub struct MemoryKind {
    store: Arc<MemoryStore>,
    page_size: usize,
}

impl MemoryKind {
    pub fn new(store: Arc<MemoryStore>, page_size: usize) -> Self {
        Self {
            store,
            page_size: page_size.max(1),
        }
    }
}

#[async_trait]
impl SourceKind for MemoryKind {
    fn service_type(&self) -> &'static str {
        "memory"
    }

    fn configuration_schema(&self) -> Map<String, Value> {
        let Value::Object(schema) = json!({"partitions": {
            "label": "Partitions", "type": "list", "display": "textarea", "order": 1,
            "required": false, "value": "", "default_value": null,
        }}) else {
            unreachable!()
        };
        schema
    }

    fn features(&self) -> Value {
        json!({"sync_rules": {"basic": {"enabled": true}, "advanced": {"enabled": true}},
               "incremental_sync": {"enabled": true}})
    }

    fn validate_advanced_rules(&self, value: &Value) -> Result<(), String> {
        rules(value).map(|_| ())
    }

    async fn connect(
        &self,
        configuration: &Map<String, Value>,
    ) -> Result<Box<dyn Source>, SourceError> {
        let named: Vec<String> = match stored_value(configuration, "partitions") {
            Value::String(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            Value::Null => Vec::new(),
            other => {
                return Err(SourceError::new(format!(
                    "partitions must be a string, got {other}"
                )));
            }
        };
        Ok(Box::new(Connected {
            store: self.store.clone(),
            page_size: self.page_size,
            named,
        }))
    }
}

/// `[{"partition": "a", "prefix": "x/"}]` → partitions; `Err` names the first bad rule.
fn rules(value: &Value) -> Result<Vec<Partition>, String> {
    let Value::Array(items) = value else {
        return Err("data must be array".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let name = rule
                .get("partition")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("data[{i}].partition must be string"))?;
            let prefix = rule.get("prefix").and_then(Value::as_str).map(String::from);
            Ok(Partition {
                name: name.into(),
                prefix,
                filter: None,
            })
        })
        .collect()
}

struct Connected {
    store: Arc<MemoryStore>,
    page_size: usize,
    named: Vec<String>,
}

#[async_trait]
impl Source for Connected {
    async fn partitions(&self, advanced: Option<&Value>) -> Result<Vec<Partition>, PartitionError> {
        if let Some(value) = advanced {
            return rules(value).map_err(PartitionError::Rules);
        }
        let names = if self.named.is_empty() {
            self.store.lock().keys().cloned().collect()
        } else {
            self.named.clone()
        };
        Ok(names.into_iter().map(Partition::whole).collect())
    }

    async fn list(
        &self,
        partition: &Partition,
        start_after: Option<String>,
    ) -> Result<Box<dyn PageLister>, SourceError> {
        if !self.store.lock().contains_key(&partition.name) {
            return Err(SourceError::new(format!(
                "no partition named \"{}\"",
                partition.name
            )));
        }
        let fail_after = self
            .store
            .failing
            .lock()
            .expect("lock")
            .get(&partition.name)
            .copied();
        Ok(Box::new(Pages {
            store: self.store.clone(),
            page_size: self.page_size,
            partition: partition.name.clone(),
            prefix: partition.prefix.clone().unwrap_or_default(),
            after: start_after,
            pages: 0,
            fail_after,
            done: false,
        }))
    }

    async fn first_key(
        &self,
        partition: &Partition,
        prefix: &str,
        after: &str,
    ) -> Result<Option<String>, SourceError> {
        self.store
            .probes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let store = self.store.lock();
        let Some(objects) = store.get(&partition.name) else {
            return Ok(None);
        };
        let after = (
            std::ops::Bound::Excluded(after.to_owned()),
            std::ops::Bound::Unbounded,
        );
        Ok(objects
            .range::<String, _>(after)
            .map(|(key, _)| key)
            .find(|key| key.starts_with(prefix))
            .cloned())
    }

    async fn open(&self, partition: &str, key: &str) -> Result<ObjectReader, SourceError> {
        let bytes = self
            .store
            .lock()
            .get(partition)
            .and_then(|p| p.get(key))
            .map(|o| o.bytes.clone())
            .ok_or_else(|| SourceError::new(format!("no object \"{key}\" in \"{partition}\"")))?;
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }
}

struct Pages {
    store: Arc<MemoryStore>,
    page_size: usize,
    partition: String,
    prefix: String,
    after: Option<String>,
    pages: usize,
    fail_after: Option<usize>,
    done: bool,
}

#[async_trait]
impl PageLister for Pages {
    async fn next_page(&mut self) -> Result<Option<Vec<Listed>>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let delay = *self.store.page_delay.lock().expect("lock");
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.fail_after.is_some_and(|n| self.pages >= n) {
            return Err(SourceError::new(format!(
                "listing \"{}\" failed after {} pages",
                self.partition, self.pages
            )));
        }
        let store = self.store.lock();
        let objects = store.get(&self.partition).cloned().unwrap_or_default();
        drop(store);
        let page: Vec<Listed> = objects
            .range::<String, _>((
                self.after
                    .clone()
                    .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
                std::ops::Bound::Unbounded,
            ))
            .filter(|(key, _)| key.starts_with(&self.prefix))
            .take(self.page_size)
            .map(|(key, object)| listed(&self.partition, key, object))
            .collect();
        self.pages += 1;
        match page.last() {
            Some(last) => self.after = Some(last.key.clone()),
            None => {
                self.done = true;
                return Ok(None);
            }
        }
        if let Some(hook) = self.store.on_page.lock().expect("lock").as_ref() {
            hook(&self.partition, self.pages);
        }
        Ok(Some(page))
    }
}

/// The document of an object: `_id` unique across partitions, and `bucket` naming the partition
/// (what protects the documents of a partition whose listing failed).
fn listed(partition: &str, key: &str, object: &Object) -> Listed {
    let Value::Object(document) = json!({
        "_id": format!("{partition}/{key}"),
        "_timestamp": object.modified,
        "bucket": partition,
        "filename": key,
        "size_in_bytes": object.bytes.len(),
    }) else {
        unreachable!()
    };
    Listed {
        key: key.into(),
        size: object.bytes.len() as u64,
        etag: Some(object.etag.clone()),
        document: document.into(),
    }
}
