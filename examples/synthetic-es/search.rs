//! Reading the synthetic index: a search by ids (the per-page lookup) and a scroll over every
//! document in position order (the full scan), its pages generated on the fly. A scroll id is the
//! scroll's whole state (`synthetic-scroll-<next>-<size>-<fields>`), so nothing is kept per scroll.

use crate::index::{ALL_FIELDS, FIELDS, SyntheticIndex};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

const SCROLL_PREFIX: &str = "synthetic-scroll-";
const SHARDS: &str = r#""_shards":{"total":1,"successful":1,"skipped":0,"failed":0}"#;

/// What a `_search` body asks for, as far as this index answers it.
#[derive(Debug, PartialEq, Eq)]
pub struct Search {
    pub size: u64,
    /// Bits of [`FIELDS`] that `_source` asks for.
    pub mask: u8,
    /// `query.ids.values`, when the query is one.
    pub ids: Option<Vec<String>>,
}

pub fn parse_search(body: &[u8]) -> Result<Search, String> {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|e| format!("search body is not JSON: {e}"))?
    };
    // Elasticsearch's default page is 10 hits.
    let size = v
        .get("size")
        .map_or(Some(10), Value::as_u64)
        .ok_or("size is not a number")?;
    let mask = match v.get("_source") {
        None | Some(Value::Bool(true)) => ALL_FIELDS,
        Some(Value::Bool(false)) => 0,
        Some(Value::Array(fields)) => fields_mask(fields),
        Some(Value::String(f)) => fields_mask(&[Value::String(f.clone())]),
        Some(Value::Object(o)) => match o.get("includes") {
            Some(Value::Array(fields)) => fields_mask(fields),
            _ => ALL_FIELDS,
        },
        Some(other) => return Err(format!("unsupported _source: {other}")),
    };
    let ids = match v.get("query") {
        None => None,
        Some(q) => {
            let values = q
                .pointer("/ids/values")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("only an ids query is answered here, not {q}"))?;
            Some(
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            )
        }
    };
    Ok(Search { size, mask, ids })
}

/// Fields we do not have (`content_sync_text_missing`) select nothing, as in Elasticsearch.
fn fields_mask(fields: &[Value]) -> u8 {
    fields
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|f| FIELDS.iter().position(|k| *k == f))
        .fold(0, |m, i| m | 1 << i)
}

/// The answer to an ids query: the requested ids the index holds (each once), at most `size`.
pub fn lookup(index: &SyntheticIndex, search: &Search, ids: &[String]) -> String {
    let stats = &index.stats;
    stats.lookup_requests.fetch_add(1, Relaxed);
    stats.lookup_ids.fetch_add(ids.len() as u64, Relaxed);
    let mut out = String::with_capacity(64 + ids.len() * 160);
    let _ = write!(
        out,
        r#"{{"took":1,"timed_out":false,{SHARDS},"hits":{{"max_score":1.0,"hits":["#
    );
    let mut seen = HashSet::new();
    let mut found = 0u64;
    for id in ids {
        if found == search.size {
            break;
        }
        let Some(p) = index.find(id) else { continue };
        if !seen.insert(p) {
            continue;
        }
        if found > 0 {
            out.push(',');
        }
        found += 1;
        let _ = write!(
            out,
            r#"{{"_index":"{}","_id":"{id}","_score":1.0,"_source":"#,
            index.name
        );
        index.write_source(p, id, search.mask, &mut out);
        out.push('}');
    }
    out.push_str("]}}");
    stats.lookup_found.fetch_add(found, Relaxed);
    out
}

/// Where a scroll stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub next: u64,
    pub size: u64,
    pub mask: u8,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{SCROLL_PREFIX}{}-{}-{}", self.next, self.size, self.mask)
    }

    /// The cursor of one of our scroll ids; `None` for any other (the real node's).
    pub fn decode(scroll_id: &str) -> Option<Cursor> {
        let mut parts = scroll_id.strip_prefix(SCROLL_PREFIX)?.split('-');
        let cursor = Cursor {
            next: parts.next()?.parse().ok()?,
            size: parts.next()?.parse().ok()?,
            mask: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(cursor)
    }
}

/// Opens a scroll: its first page.
pub fn open_scroll(index: &SyntheticIndex, search: &Search) -> String {
    index.stats.scrolls_opened.fetch_add(1, Relaxed);
    scroll_page(
        index,
        Cursor {
            next: 0,
            size: search.size,
            mask: search.mask,
        },
    )
}

/// The page at `cursor`: documents `next..next + size` in position order (none past the end).
pub fn scroll_page(index: &SyntheticIndex, cursor: Cursor) -> String {
    let total = index.total();
    let to = cursor.next.saturating_add(cursor.size).min(total);
    let from = cursor.next.min(to);
    let after = Cursor { next: to, ..cursor };
    index.stats.scroll_pages.fetch_add(1, Relaxed);
    index.stats.scroll_hits.fetch_add(to - from, Relaxed);
    let mut out = String::with_capacity(256 + (to - from) as usize * 200);
    let _ = write!(
        out,
        r#"{{"_scroll_id":"{}","took":1,"timed_out":false,{SHARDS},"hits":{{"total":{{"value":{total},"relation":"eq"}},"max_score":null,"hits":["#,
        after.encode()
    );
    for p in from..to {
        if p > from {
            out.push(',');
        }
        let id = index.id(p);
        let _ = write!(
            out,
            r#"{{"_index":"{}","_id":"{id}","_score":null,"_source":"#,
            index.name
        );
        index.write_source(p, &id, cursor.mask, &mut out);
        let _ = write!(out, r#","sort":[{p}]}}"#);
    }
    out.push_str("]}}");
    out
}

/// The scroll ids of a `/_search/scroll` body (`scroll_id`: one string or a list).
pub fn scroll_ids(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    match v.get("scroll_id") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
