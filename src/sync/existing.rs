//! What the content index holds: the version of the documents of one listing page (an `ids`
//! search per page), its document count, and every id it holds (a scroll, for the stale pass of
//! `sync::reconcile`). Nothing here holds more than one page.
//!
//! A version is a fingerprint of `_timestamp` + `etag`: equal fingerprints mean the object has not
//! changed since it was indexed.

use crate::es::scroll::Next;
use crate::es::{EsClient, EsError};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// What a scan calls with each document's id and bucket.
pub type Visit<'v> = dyn for<'a> FnMut(&'a str, Option<&'a str>) + Send + 'v;

const SCAN_PAGE: usize = 1000;
const SCROLL_KEEP_ALIVE: &str = "5m";

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

/// The version of the document a hit carries.
pub(super) fn version_of(hit: &Value) -> u64 {
    let field = |name: &str| hit.get("_source").and_then(|s| s.get(name));
    let text = |name: &str| field(name).and_then(Value::as_str);
    let version = fingerprint(text("_timestamp"), text("etag"));
    match field(TEXT_MISSING) == Some(&Value::Bool(true)) {
        true => unfinished(version),
        false => version,
    }
}

/// The id a hit names (`_source.id`, which our documents carry, else `_id`) and its bucket.
fn id_of(hit: &Value) -> Option<(&str, Option<&str>)> {
    let id = hit
        .pointer("/_source/id")
        .and_then(Value::as_str)
        .or_else(|| hit.get("_id").and_then(Value::as_str))?;
    Some((id, hit.pointer("/_source/bucket").and_then(Value::as_str)))
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

fn read_error(index: &str) -> impl Fn(ReadCause) -> ReadError + '_ {
    move |cause| ReadError {
        index: index.to_string(),
        cause,
    }
}

/// The versions of the documents among `ids` that the index holds, keyed by `_id`, in one `ids`
/// search. A partial answer fails the read: an object whose indexed copy went unseen would be
/// taken for new, and a new object whose content cannot be read is indexed without its text.
pub async fn versions(
    es: &EsClient,
    index: &str,
    ids: &[&str],
) -> Result<HashMap<String, u64>, ReadError> {
    let body = json!({"size": ids.len(), "query": {"ids": {"values": ids}},
        "_source": ["id", "bucket", "_timestamp", "etag", TEXT_MISSING],
        "track_total_hits": false});
    let page = es
        .json(Method::POST, &[index, "_search"], &[], Some(body))
        .await
        .map_err(|e| read_error(index)(e.into()))?;
    let hits = page_hits(&page).map_err(read_error(index))?;
    Ok(hits
        .iter()
        .filter_map(|hit| {
            let id = hit.get("_id").and_then(Value::as_str)?;
            Some((id.to_string(), version_of(hit)))
        })
        .collect())
}

/// Calls `visit` with the id and bucket of every document in the index (a scroll reading only
/// `id` and `bucket`). Any page that is partial, or a scroll that ends short of the total, fails
/// the read (see [`ReadError`]).
pub async fn scan(es: &EsClient, index: &str, visit: &mut Visit<'_>) -> Result<(), ReadError> {
    scroll(es, index, visit).await.map_err(read_error(index))
}

async fn scroll(es: &EsClient, index: &str, visit: &mut Visit<'_>) -> Result<(), ReadCause> {
    if !es.index_exists(index).await? {
        return Ok(());
    }
    let body = json!({"size": SCAN_PAGE, "sort": ["_doc"], "_source": ["id", "bucket"]});
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
        for (id, bucket) in hits.iter().filter_map(id_of) {
            visit(id, bucket);
        }
        Ok::<_, ReadCause>(Next::More)
    })
    .await?;
    if let Some(total) = total.filter(|t| *t != seen) {
        return Err(ReadCause::Short { seen, total });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_missing_its_text_never_matches_its_object() {
        let (ts, etag) = ("2024-01-02T03:04:05+00:00", "\"abc\"");
        let listed = fingerprint(Some(ts), Some(etag));
        assert_ne!(listed, fingerprint(Some(ts), Some("\"abd\"")));
        let hit = json!({"_id": "i", "_source": {"id": "i", "bucket": "b", "_timestamp": ts, "etag": etag}});
        assert_eq!(version_of(&hit), listed);
        assert_eq!(id_of(&hit), Some(("i", Some("b"))));
        let mut marked = hit.clone();
        marked["_source"][TEXT_MISSING] = json!(true);
        assert_ne!(version_of(&marked), listed);
        assert_eq!(version_of(&marked), unfinished(listed));
        assert_eq!(id_of(&json!({"_id": "x"})), Some(("x", None)));
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
