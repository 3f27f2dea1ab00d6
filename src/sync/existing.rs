//! What the content index holds before a sync: every document id, with the bucket it came from and
//! a fingerprint of its version (`_timestamp` + `etag`), so that after a complete listing we know what
//! vanished, and an incremental sync knows what did not change.
//!
//! Memory: ids of our documents are md5 hex strings, kept as 16 raw bytes plus a 4-byte bucket
//! number and an 8-byte fingerprint (~40 bytes per document with the hash table; 1 million documents
//! ≈ 40 MiB). Ids of other shapes are kept as strings.

use crate::es::scroll::Next;
use crate::es::{EsClient, EsError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

const SCROLL_PAGE: usize = 1000;
const SCROLL_KEEP_ALIVE: &str = "5m";
/// Bucket number of documents that have no `bucket` field.
const NO_BUCKET: u32 = u32::MAX;

/// The ids seen in the index; a sync removes every id it produces, and what is left is stale.
#[derive(Debug, Default)]
pub struct ExistingIds {
    md5: HashMap<[u8; 16], (u32, u64)>,
    other: HashMap<String, (u32, u64)>,
    /// Bucket name → its number (documents store the number).
    buckets: HashMap<String, u32>,
}

/// A document version: equal fingerprints mean the object has not changed since it was indexed.
pub fn fingerprint(timestamp: Option<&str>, etag: Option<&str>) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    timestamp.unwrap_or("").hash(&mut h);
    etag.unwrap_or("").hash(&mut h);
    h.finish()
}

/// Marks a document indexed without the text its object should give (the content could not be
/// read). Not one of Elastic's fields, and without a leading `_`, so that no pipeline strips it.
pub const TEXT_MISSING: &str = "content_sync_text_missing";

/// The version of a document marked [`TEXT_MISSING`]: it never equals its object's fingerprint,
/// so every later sync, incremental included, fetches the object again.
pub fn unfinished(version: u64) -> u64 {
    !version
}

/// The id, bucket and version of one scroll hit.
pub(super) fn hit_entry(hit: &Value) -> Option<(&str, Option<&str>, u64)> {
    let id = hit
        .pointer("/_source/id")
        .and_then(Value::as_str)
        .or_else(|| hit.get("_id").and_then(Value::as_str))?;
    let field = |name: &str| hit.get("_source").and_then(|s| s.get(name));
    let text = |name: &str| field(name).and_then(Value::as_str);
    let mut version = fingerprint(text("_timestamp"), text("etag"));
    if field(TEXT_MISSING) == Some(&Value::Bool(true)) {
        version = unfinished(version);
    }
    Some((id, text("bucket"), version))
}

impl ExistingIds {
    pub fn len(&self) -> usize {
        self.md5.len() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bucket_number(&mut self, bucket: Option<&str>) -> u32 {
        let Some(bucket) = bucket else {
            return NO_BUCKET;
        };
        if let Some(n) = self.buckets.get(bucket) {
            return *n;
        }
        let n = self.buckets.len() as u32;
        self.buckets.insert(bucket.to_string(), n);
        n
    }

    pub fn insert(&mut self, id: &str, bucket: Option<&str>, version: u64) {
        let b = self.bucket_number(bucket);
        match parse_md5(id) {
            Some(raw) => self.md5.insert(raw, (b, version)),
            None => self.other.insert(id.to_string(), (b, version)),
        };
    }

    /// Marks `id` as produced by this sync; returns its indexed version if it was in the index.
    pub fn take(&mut self, id: &str) -> Option<u64> {
        let entry = match parse_md5(id) {
            Some(raw) => self.md5.remove(&raw),
            None => self.other.remove(id),
        };
        entry.map(|(_, version)| version)
    }

    /// The ids left over, except those of `keep_buckets` (buckets whose listing failed: their
    /// documents must not be deleted).
    pub fn stale(self, keep_buckets: &[String]) -> impl Iterator<Item = String> {
        let keep: Vec<u32> = keep_buckets
            .iter()
            .filter_map(|k| self.buckets.get(k).copied())
            .collect();
        let keep2 = keep.clone();
        self.md5
            .into_iter()
            .filter(move |(_, (b, _))| !keep.contains(b))
            .map(|(raw, _)| hex(&raw))
            .chain(
                self.other
                    .into_iter()
                    .filter(move |(_, (b, _))| !keep2.contains(b))
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

/// Why the index's ids could not all be read. Reconciling against a partial set would decide
/// deletions from a wrong picture of the index, so the sync stops before listing and deletes
/// nothing.
#[derive(Debug, thiserror::Error)]
#[error("reading the ids in index \"{index}\" failed: {cause}; nothing was deleted")]
pub struct ReadError {
    pub index: String,
    pub cause: ReadCause,
}

/// What went wrong with one page of the scroll, or with the whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadCause {
    #[error("{0}")]
    Es(#[from] EsError),
    #[error("{failed} of {total} shards failed ({reason})")]
    ShardFailures {
        failed: u64,
        total: u64,
        reason: String,
    },
    #[error("the search timed out")]
    TimedOut,
    #[error("a page carried no hits")]
    NoHits,
    #[error("the scroll ended after {seen} of {total} documents")]
    Short { seen: u64, total: u64 },
}

/// The hits of one scroll page, unless the page says it is partial: a page from some shards
/// only, or cut short by a timeout, would silently leave ids out.
fn page_hits(page: &Value) -> Result<&[Value], ReadCause> {
    if page.get("timed_out").and_then(Value::as_bool) == Some(true) {
        return Err(ReadCause::TimedOut);
    }
    let shards = page.get("_shards");
    let count = |name: &str| shards.and_then(|s| s.get(name)).and_then(Value::as_u64);
    if let Some(failed) = count("failed").filter(|f| *f > 0) {
        let first = shards
            .and_then(|s| s.pointer("/failures/0/reason"))
            .map(|r| {
                let field = |n: &str| r.get(n).and_then(Value::as_str).unwrap_or_default();
                format!("{}: {}", field("type"), field("reason"))
            });
        return Err(ReadCause::ShardFailures {
            failed,
            total: count("total").unwrap_or(failed),
            reason: first.unwrap_or_else(|| "no reason given".into()),
        });
    }
    page.pointer("/hits/hits")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or(ReadCause::NoHits)
}

/// The exact number of documents the search matched, when the answer gives it (`hits.total` as
/// `{"value": n, "relation": "eq"}`, or a plain number from older versions).
fn exact_total(page: &Value) -> Option<u64> {
    match page.pointer("/hits/total")? {
        Value::Number(n) => n.as_u64(),
        t if t.get("relation").and_then(Value::as_str) == Some("eq") => {
            t.get("value").and_then(Value::as_u64)
        }
        _ => None,
    }
}

/// Scrolls the whole index, reading only `id`, `bucket`, `_timestamp`, `etag` and
/// [`TEXT_MISSING`]. Any page
/// that is partial, or a scroll that ends short of the total, fails the read (see [`ReadError`]).
pub async fn load(es: &EsClient, index: &str) -> Result<ExistingIds, ReadError> {
    scroll(es, index).await.map_err(|cause| ReadError {
        index: index.to_string(),
        cause,
    })
}

async fn scroll(es: &EsClient, index: &str) -> Result<ExistingIds, ReadCause> {
    let mut ids = ExistingIds::default();
    if !es.index_exists(index).await? {
        return Ok(ids);
    }
    let body = json!({"size": SCROLL_PAGE, "sort": ["_doc"],
        "_source": ["id", "bucket", "_timestamp", "etag", TEXT_MISSING]});
    let (mut total, mut seen) = (None, 0u64);
    es.scroll(index, &[], body, SCROLL_KEEP_ALIVE, |page| {
        if seen == 0 {
            total = exact_total(page);
        }
        let hits = page_hits(page)?;
        if hits.is_empty() {
            return Ok(Next::Stop);
        }
        seen += hits.len() as u64;
        for (id, bucket, version) in hits.iter().filter_map(hit_entry) {
            ids.insert(id, bucket, version);
        }
        Ok::<_, ReadCause>(Next::More)
    })
    .await?;
    if let Some(total) = total.filter(|t| *t != seen) {
        return Err(ReadCause::Short { seen, total });
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_ids_round_trip_and_stale_skips_kept_buckets() {
        let mut ids = ExistingIds::default();
        let v = fingerprint(Some("2024-01-02T03:04:05+00:00"), Some("\"abc\""));
        ids.insert("d0295955cdb6d488a4a1d3f10dbf141b", Some("a"), v);
        ids.insert("f1e7a00575c76e9cc96a6989bc4b9c25", Some("b"), v);
        ids.insert("custom-id", None, 7);
        assert_eq!(ids.len(), 3);
        assert_eq!(ids.take("f1e7a00575c76e9cc96a6989bc4b9c25"), Some(v));
        assert_eq!(ids.take("f1e7a00575c76e9cc96a6989bc4b9c25"), None);
        assert_ne!(
            v,
            fingerprint(Some("2024-01-02T03:04:05+00:00"), Some("\"abd\""))
        );
        let mut stale: Vec<String> = ids.stale(&["a".to_string()]).collect();
        stale.sort();
        assert_eq!(stale, vec!["custom-id".to_string()]);
    }

    #[test]
    fn a_document_missing_its_text_never_matches_its_object() {
        let (ts, etag) = ("2024-01-02T03:04:05+00:00", "\"abc\"");
        let listed = fingerprint(Some(ts), Some(etag));
        let hit = json!({"_id": "i", "_source": {"id": "i", "bucket": "b", "_timestamp": ts, "etag": etag}});
        assert_eq!(hit_entry(&hit), Some(("i", Some("b"), listed)));
        let mut marked = hit.clone();
        marked["_source"][TEXT_MISSING] = json!(true);
        let (_, _, version) = hit_entry(&marked).unwrap();
        assert_ne!(version, listed);
        assert_eq!(version, unfinished(listed));
    }

    #[test]
    fn uppercase_hex_is_not_mistaken_for_our_ids() {
        assert!(parse_md5("D0295955CDB6D488A4A1D3F10DBF141B").is_none());
        assert_eq!(
            hex(&parse_md5("d0295955cdb6d488a4a1d3f10dbf141b").unwrap()),
            "d0295955cdb6d488a4a1d3f10dbf141b"
        );
    }

    #[test]
    fn partial_pages_are_refused() {
        let ok = json!({"timed_out": false, "_shards": {"total": 2, "successful": 2, "failed": 0},
                        "hits": {"total": {"value": 1, "relation": "eq"}, "hits": [{"_id": "a"}]}});
        assert_eq!(page_hits(&ok).unwrap().len(), 1);
        assert_eq!(exact_total(&ok), Some(1));

        let mut timed_out = ok.clone();
        timed_out["timed_out"] = json!(true);
        assert!(matches!(page_hits(&timed_out), Err(ReadCause::TimedOut)));

        let mut shards = ok.clone();
        shards["_shards"] = json!({"total": 2, "successful": 1, "failed": 1, "failures": [
            {"shard": 1, "reason": {"type": "node_disconnected_exception", "reason": "node left"}}]});
        assert_eq!(
            page_hits(&shards).unwrap_err().to_string(),
            "1 of 2 shards failed (node_disconnected_exception: node left)"
        );

        let no_hits = json!({"timed_out": false, "_scroll_id": "x"});
        assert!(matches!(page_hits(&no_hits), Err(ReadCause::NoHits)));
    }

    #[test]
    fn only_an_exact_total_is_checked() {
        assert_eq!(exact_total(&json!({"hits": {"total": 7}})), Some(7));
        let gte = json!({"hits": {"total": {"value": 10000, "relation": "gte"}}});
        assert_eq!(exact_total(&gte), None);
        assert_eq!(exact_total(&json!({"hits": {}})), None);
        let err = ReadError {
            index: "search-x".into(),
            cause: ReadCause::Short {
                seen: 1000,
                total: 1500,
            },
        };
        assert_eq!(
            err.to_string(),
            "reading the ids in index \"search-x\" failed: the scroll ended after 1000 of 1500 \
             documents; nothing was deleted"
        );
    }
}
