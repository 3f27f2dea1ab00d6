//! What the content index holds: the version of the documents of one listing page (an `ids`
//! search per page), its document count, and every id it holds (a scroll, for the stale pass of
//! `sync::reconcile`). Nothing here holds more than one page.
//!
//! A version is a fingerprint of `_timestamp` + `etag`: equal fingerprints mean the object has not
//! changed since it was indexed.

use crate::es::client::{Body, decode_typed};
use crate::es::scroll::{Next, Scrolled};
use crate::es::search::{SearchHit, SearchPage, flag, text_borrowed};
use crate::es::{EsClient, EsError};
use reqwest::Method;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
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

/// What the versions lookup reads of a document: its version, computed while the document is
/// read (`_timestamp` and `etag` borrowed from the answer where they need no unescaping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VersionSource(u64);

impl<'de> Deserialize<'de> for VersionSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(VersionVisitor)
    }
}

struct VersionVisitor;

impl<'de> Visitor<'de> for VersionVisitor {
    type Value = VersionSource;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a document's _source")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VersionSource, A::Error> {
        let (mut timestamp, mut etag, mut missing) = (None, None, None);
        while let Some(key) = map.next_key::<VersionField>()? {
            match key {
                VersionField::Timestamp => {
                    once(&mut timestamp, "_timestamp", map.next_value::<Text>()?.0)?
                }
                VersionField::Etag => once(&mut etag, "etag", map.next_value::<Text>()?.0)?,
                VersionField::Missing => {
                    once(&mut missing, TEXT_MISSING, map.next_value::<Flag>()?.0)?
                }
                VersionField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let version = fingerprint(timestamp.flatten().as_deref(), etag.flatten().as_deref());
        Ok(VersionSource(match missing.unwrap_or(false) {
            true => unfinished(version),
            false => version,
        }))
    }
}

/// The fields of `_source` a version is made of (derived: keys are matched without a copy).
#[derive(Deserialize)]
enum VersionField {
    #[serde(rename = "_timestamp")]
    Timestamp,
    #[serde(rename = "etag")]
    Etag,
    #[serde(rename = "content_sync_text_missing")]
    Missing,
    #[serde(other)]
    Other,
}

/// Sets a field read once; a field given twice fails the read, as for any struct we decode.
fn once<T, E: de::Error>(slot: &mut Option<T>, field: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(field));
    }
    *slot = Some(value);
    Ok(())
}

/// [`text_borrowed`] as a value.
struct Text<'de>(Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text_borrowed(d).map(Text)
    }
}

/// [`flag`] as a value.
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        flag(d).map(Flag)
    }
}

/// What the stale pass reads of a document, borrowed from the answer where it holds no escapes.
#[derive(Debug, Default, Deserialize)]
struct IdSource<'a> {
    #[serde(default, borrow, deserialize_with = "text_borrowed")]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "text_borrowed")]
    bucket: Option<Cow<'a, str>>,
}

/// The version of the document a hit carries (one without `_source` has neither field).
fn version_of(source: Option<&VersionSource>) -> u64 {
    source.map_or_else(|| fingerprint(None, None), |s| s.0)
}

/// The version of a document held as JSON (the in-memory index of the unit tests).
#[cfg(test)]
pub(crate) fn version_of_document(source: &serde_json::Value) -> u64 {
    VersionSource::deserialize(source).map_or_else(|_| fingerprint(None, None), |v| v.0)
}

/// The id a hit names (`_source.id`, which our documents carry, else `_id`) and its bucket.
fn id_of<'h>(hit: &'h SearchHit<'_, IdSource<'_>>) -> (&'h str, Option<&'h str>) {
    let source = hit.source.as_ref();
    let id = source.and_then(|s| s.id.as_deref()).unwrap_or(&hit.id);
    (id, source.and_then(|s| s.bucket.as_deref()))
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

/// The hits of one page, unless the page says it is partial: a page from some shards only, or
/// cut short by a timeout, would silently leave ids out.
fn page_hits<'p, 'a, S>(page: &'p SearchPage<'a, S>) -> Result<&'p [SearchHit<'a, S>], ReadCause> {
    if page.timed_out {
        return Err(ReadCause::TimedOut);
    }
    if let Some(shards) = page.shards.as_ref().filter(|s| s.failed > 0) {
        return Err(ReadCause::ShardFailures {
            failed: shards.failed,
            total: shards.total.unwrap_or(shards.failed),
            reason: page
                .first_failure()
                .unwrap_or_else(|| "no reason given".into()),
        });
    }
    page.hits
        .as_ref()
        .map(|h| h.hits.as_slice())
        .ok_or(ReadCause::NoHits)
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
    let answer = es
        .transient(
            Method::POST,
            &[index, "_search"],
            &[],
            Some(Body::JsonBytes(versions_query(ids))),
        )
        .await
        .map_err(|e| read_error(index)(e.into()))?;
    let page: SearchPage<VersionSource> = decode_typed(&answer, || format!("/{index}/_search"))
        .map_err(|e| read_error(index)(e.into()))?;
    page_hits(&page).map_err(read_error(index))?;
    let hits = page.hits.map(|h| h.hits).unwrap_or_default();
    Ok(hits
        .into_iter()
        .map(|hit| {
            let version = version_of(hit.source.as_ref());
            (hit.id.into_owned(), version)
        })
        .collect())
}

/// The versions lookup's query, written straight from the ids: `{"size":…,"query":{"ids":{"values":
/// […]}},"_source":[…],"track_total_hits":false}`.
fn versions_query(ids: &[&str]) -> Vec<u8> {
    let mut body = Vec::with_capacity(160 + ids.iter().map(|id| id.len() + 3).sum::<usize>());
    body.extend_from_slice(br#"{"size":"#);
    serde_json::to_writer(&mut body, &ids.len()).expect("a number serializes");
    body.extend_from_slice(br#","query":{"ids":{"values":"#);
    serde_json::to_writer(&mut body, ids).expect("strings serialize");
    body.extend_from_slice(br#"}},"_source":["id","bucket","_timestamp","etag",""#);
    body.extend_from_slice(TEXT_MISSING.as_bytes());
    body.extend_from_slice(br#""],"track_total_hits":false}"#);
    body
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
    // Each page is read borrowing from its answer: an id and a bucket cost no allocation.
    es.scroll_pages(index, &[], body, SCROLL_KEEP_ALIVE, |bytes, path| {
        let page: SearchPage<IdSource> = match decode_typed(bytes, || path.to_string()) {
            Ok(page) => page,
            Err(e) => {
                return Scrolled {
                    scroll_id: None,
                    next: Err(ReadCause::from(e)),
                };
            }
        };
        let mut visit_page = || {
            if seen == 0 {
                total = page.exact_total();
            }
            let hits = page_hits(&page)?;
            if hits.is_empty() {
                return Ok(Next::Stop);
            }
            seen += hits.len() as u64;
            for (id, bucket) in hits.iter().map(id_of) {
                visit(id, bucket);
            }
            Ok(Next::More)
        };
        let next = visit_page();
        Scrolled {
            scroll_id: page.scroll_id.clone(),
            next,
        }
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
    use serde_json::Value;

    /// A page read from the text of `v` (kept for the test's life: the page borrows from it).
    fn page<S: Deserialize<'static>>(v: Value) -> SearchPage<'static, S> {
        serde_json::from_str(Box::leak(v.to_string().into_boxed_str())).unwrap()
    }

    #[test]
    fn a_document_missing_its_text_never_matches_its_object() {
        let (ts, etag) = ("2024-01-02T03:04:05+00:00", "\"abc\"");
        let listed = fingerprint(Some(ts), Some(etag));
        assert_ne!(listed, fingerprint(Some(ts), Some("\"abd\"")));
        let hit = json!({"_id": "i", "_source": {"id": "i", "bucket": "b", "_timestamp": ts, "etag": etag}});
        let read = |hit: &Value| {
            let p: SearchPage<VersionSource> = page(json!({"hits": {"hits": [hit]}}));
            version_of(p.hits.unwrap().hits[0].source.as_ref())
        };
        assert_eq!(read(&hit), listed);
        let ids: SearchPage<IdSource> = page(json!({"hits": {"hits": [hit, {"_id": "x"}]}}));
        let hits = &ids.hits.as_ref().unwrap().hits;
        assert_eq!(id_of(&hits[0]), ("i", Some("b")));
        assert_eq!(id_of(&hits[1]), ("x", None));
        let source = hits[0].source.as_ref().unwrap();
        assert!(
            matches!(source.id, Some(Cow::Borrowed(_))),
            "read without a copy"
        );
        // Text with escapes is unescaped into its own string.
        let escaped = json!({"_id": "é\"", "_source": {"id": "é\"", "bucket": "b\nc"}});
        let ids: SearchPage<IdSource> = page(json!({"hits": {"hits": [escaped]}}));
        let hits = &ids.hits.as_ref().unwrap().hits;
        assert_eq!(id_of(&hits[0]), ("é\"", Some("b\nc")));
        let mut marked = hit.clone();
        marked["_source"][TEXT_MISSING] = json!(true);
        assert_ne!(read(&marked), listed);
        assert_eq!(read(&marked), unfinished(listed));
        let mut odd = hit.clone();
        odd["_source"]["_timestamp"] = json!(17);
        assert_eq!(
            read(&odd),
            fingerprint(None, Some(etag)),
            "a number reads as no timestamp"
        );
    }

    #[test]
    fn the_versions_query_is_the_json_it_always_was() {
        let ids = ["a", "b\"c"];
        let body = json!({"size": ids.len(), "query": {"ids": {"values": ids}},
            "_source": ["id", "bucket", "_timestamp", "etag", TEXT_MISSING],
            "track_total_hits": false});
        assert_eq!(
            String::from_utf8(versions_query(&ids)).unwrap(),
            serde_json::to_string(&body).unwrap()
        );
    }

    #[test]
    fn a_version_is_read_from_a_page_as_it_comes() {
        let (ts, etag) = ("2024-01-02T03:04:05+00:00", "\"abc\"");
        let answer = format!(
            r#"{{"hits":{{"hits":[{{"_id":"i","_source":{{"etag":"\"abc\"","x":[1,{{"y":2}}],"_timestamp":"{ts}"}}}},
            {{"_id":"j","_source":{{"_timestamp":"{ts}","etag":null,"{TEXT_MISSING}":true}}}},{{"_id":"k"}}]}}}}"#
        );
        let page: SearchPage<VersionSource> = serde_json::from_str(&answer).unwrap();
        let versions: Vec<u64> = page
            .hits
            .unwrap()
            .hits
            .iter()
            .map(|h| version_of(h.source.as_ref()))
            .collect();
        assert_eq!(
            versions,
            [
                fingerprint(Some(ts), Some(etag)),
                unfinished(fingerprint(Some(ts), None)),
                fingerprint(None, None)
            ]
        );
        let twice = r#"{"hits":{"hits":[{"_id":"i","_source":{"etag":"a","etag":"b"}}]}}"#;
        assert!(serde_json::from_str::<SearchPage<VersionSource>>(twice).is_err());
    }

    #[test]
    fn partial_pages_are_refused() {
        let ok = json!({"timed_out": false, "_shards": {"total": 2, "successful": 2, "failed": 0},
                        "hits": {"total": {"value": 1, "relation": "eq"}, "hits": [{"_id": "a"}]}});
        assert_eq!(page_hits(&page::<IdSource>(ok.clone())).unwrap().len(), 1);

        let mut timed_out = ok.clone();
        timed_out["timed_out"] = json!(true);
        assert!(matches!(
            page_hits(&page::<IdSource>(timed_out)),
            Err(ReadCause::TimedOut)
        ));

        let mut shards = ok.clone();
        shards["_shards"] = json!({"total": 2, "successful": 1, "failed": 1, "failures": [
            {"shard": 1, "reason": {"type": "node_disconnected_exception", "reason": "node left"}}]});
        assert_eq!(
            page_hits(&page::<IdSource>(shards))
                .unwrap_err()
                .to_string(),
            "1 of 2 shards failed (node_disconnected_exception: node left)"
        );

        let no_hits = json!({"timed_out": false, "_scroll_id": "x"});
        assert!(matches!(
            page_hits(&page::<IdSource>(no_hits)),
            Err(ReadCause::NoHits)
        ));
    }

    #[test]
    fn a_short_scroll_names_what_it_missed() {
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
