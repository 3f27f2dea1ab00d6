//! What the content index holds before a sync: every document id, with the bucket it came from,
//! so that after a complete listing we know what vanished.
//!
//! Memory: ids of our documents are md5 hex strings, kept as 16 raw bytes plus a 4-byte bucket
//! number (~30 bytes per document with the hash table; 1 million documents ≈ 30 MiB). Ids of other
//! shapes are kept as strings.

use crate::es::{EsClient, EsError};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;

const SCROLL_PAGE: usize = 1000;
const SCROLL_KEEP_ALIVE: &str = "5m";
/// Bucket number of documents that have no `bucket` field.
const NO_BUCKET: u32 = u32::MAX;

/// The ids seen in the index; a sync removes every id it produces, and what is left is stale.
#[derive(Debug, Default)]
pub struct ExistingIds {
    md5: HashMap<[u8; 16], u32>,
    other: HashMap<String, u32>,
    buckets: Vec<String>,
}

impl ExistingIds {
    pub fn len(&self) -> usize {
        self.md5.len() + self.other.len()
    }

    fn bucket_number(&mut self, bucket: Option<&str>) -> u32 {
        let Some(bucket) = bucket else {
            return NO_BUCKET;
        };
        if let Some(i) = self.buckets.iter().position(|b| b == bucket) {
            return i as u32;
        }
        self.buckets.push(bucket.to_string());
        (self.buckets.len() - 1) as u32
    }

    pub fn insert(&mut self, id: &str, bucket: Option<&str>) {
        let b = self.bucket_number(bucket);
        match parse_md5(id) {
            Some(raw) => self.md5.insert(raw, b),
            None => self.other.insert(id.to_string(), b),
        };
    }

    /// Marks `id` as produced by this sync; returns whether it was in the index.
    pub fn remove(&mut self, id: &str) -> bool {
        match parse_md5(id) {
            Some(raw) => self.md5.remove(&raw).is_some(),
            None => self.other.remove(id).is_some(),
        }
    }

    /// The ids left over, except those of `keep_buckets` (buckets whose listing failed: their
    /// documents must not be deleted).
    pub fn stale(self, keep_buckets: &[String]) -> impl Iterator<Item = String> {
        let keep: Vec<u32> = keep_buckets
            .iter()
            .filter_map(|k| self.buckets.iter().position(|b| b == k).map(|i| i as u32))
            .collect();
        let keep2 = keep.clone();
        self.md5
            .into_iter()
            .filter(move |(_, b)| !keep.contains(b))
            .map(|(raw, _)| hex(&raw))
            .chain(
                self.other
                    .into_iter()
                    .filter(move |(_, b)| !keep2.contains(b))
                    .map(|(id, _)| id),
            )
    }
}

fn parse_md5(id: &str) -> Option<[u8; 16]> {
    let bytes = id.as_bytes();
    if bytes.len() != 32
        || !bytes
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

fn hex(raw: &[u8; 16]) -> String {
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Scrolls the whole index (§6.3), reading only `id` and `bucket`.
pub async fn load(es: &EsClient, index: &str) -> Result<ExistingIds, EsError> {
    let mut ids = ExistingIds::default();
    if !es.index_exists(index).await? {
        return Ok(ids);
    }
    let first = es
        .json(
            Method::POST,
            &[index, "_search"],
            &[("scroll", SCROLL_KEEP_ALIVE.to_string())],
            Some(json!({"size": SCROLL_PAGE, "sort": ["_doc"], "_source": ["id", "bucket"]})),
        )
        .await?;
    let mut scroll_id = first
        .get("_scroll_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut page = first;
    loop {
        let hits = page
            .pointer("/hits/hits")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if hits.is_empty() {
            break;
        }
        for hit in &hits {
            let id = hit
                .pointer("/_source/id")
                .and_then(Value::as_str)
                .or_else(|| hit.get("_id").and_then(Value::as_str));
            if let Some(id) = id {
                ids.insert(id, hit.pointer("/_source/bucket").and_then(Value::as_str));
            }
        }
        let Some(sid) = scroll_id.clone() else { break };
        page = es
            .json(
                Method::POST,
                &["_search", "scroll"],
                &[],
                Some(json!({"scroll_id": sid, "scroll": SCROLL_KEEP_ALIVE})),
            )
            .await?;
        if let Some(next) = page.get("_scroll_id").and_then(Value::as_str) {
            scroll_id = Some(next.to_string());
        }
    }
    if let Some(sid) = scroll_id {
        let _ = es
            .json(
                Method::DELETE,
                &["_search", "scroll"],
                &[],
                Some(json!({"scroll_id": sid})),
            )
            .await;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_ids_round_trip_and_stale_skips_kept_buckets() {
        let mut ids = ExistingIds::default();
        ids.insert("d0295955cdb6d488a4a1d3f10dbf141b", Some("a"));
        ids.insert("f1e7a00575c76e9cc96a6989bc4b9c25", Some("b"));
        ids.insert("custom-id", None);
        assert_eq!(ids.len(), 3);
        assert!(ids.remove("f1e7a00575c76e9cc96a6989bc4b9c25"));
        assert!(!ids.remove("f1e7a00575c76e9cc96a6989bc4b9c25"));
        let mut stale: Vec<String> = ids.stale(&["a".to_string()]).collect();
        stale.sort();
        assert_eq!(stale, vec!["custom-id".to_string()]);
    }

    #[test]
    fn uppercase_hex_is_not_mistaken_for_our_ids() {
        assert!(parse_md5("D0295955CDB6D488A4A1D3F10DBF141B").is_none());
        assert_eq!(
            hex(&parse_md5("d0295955cdb6d488a4a1d3f10dbf141b").unwrap()),
            "d0295955cdb6d488a4a1d3f10dbf141b"
        );
    }
}
