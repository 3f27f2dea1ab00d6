//! `_bulk` for the synthetic index: the NDJSON body is scanned (action lines; of a source line, only
//! whether it carries a non-empty `body`), every operation is counted, and each gets the item a real
//! node would answer.

use crate::index::SyntheticIndex;
use memchr::memchr;
use memchr::memmem;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Create,
    Update,
    Delete,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "index" => Kind::Index,
            "create" => Kind::Create,
            "update" => Kind::Update,
            "delete" => Kind::Delete,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Index => "index",
            Kind::Create => "create",
            Kind::Update => "update",
            Kind::Delete => "delete",
        }
    }
}

/// One operation of a bulk body; `index` is `None` when the action line names none.
#[derive(Debug, PartialEq, Eq)]
pub struct Op<'a> {
    pub kind: Kind,
    pub index: Option<Cow<'a, str>>,
    pub id: Option<Cow<'a, str>>,
    /// Its source carries a non-empty `body` (the text the service extracted).
    pub body: bool,
}

/// The operations of an NDJSON bulk body, in order.
pub fn parse(body: &[u8]) -> Result<Vec<Op<'_>>, String> {
    let mut ops = Vec::with_capacity(body.len() / 256 + 1);
    let mut lines = Lines(body);
    while let Some(line) = lines.next() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut op = action(line).ok_or_else(|| {
            format!(
                "malformed action line: {}",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            )
        })?;
        if op.kind != Kind::Delete {
            let Some(source) = lines.next() else {
                return Err(format!("{} action without a source line", op.kind.name()));
            };
            op.body = has_body(source);
        }
        ops.push(op);
    }
    Ok(ops)
}

/// Whether a source line has a top-level `"body"` string that is not empty. In JSON text the
/// bytes `"body":"` can only be a member name and the start of its string value (a quote inside a
/// string is escaped), and the service writes its documents compact and flat.
fn has_body(source: &[u8]) -> bool {
    const NAME: &[u8] = b"\"body\":\"";
    memmem::find(source, NAME).is_some_and(|at| source.get(at + NAME.len()) != Some(&b'"'))
}

struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let end = memchr(b'\n', self.0).unwrap_or(self.0.len());
        let line = &self.0[..end];
        self.0 = &self.0[(end + 1).min(self.0.len())..];
        Some(line)
    }
}

/// An action line: the compact form `{"<kind>":{..."_index":"…"..."_id":"…"...}}` is scanned;
/// anything else (spaces, escapes) is parsed as JSON.
fn action(line: &[u8]) -> Option<Op<'_>> {
    fast_action(line).or_else(|| slow_action(line))
}

fn fast_action(line: &[u8]) -> Option<Op<'_>> {
    let rest = line.strip_prefix(b"{\"")?;
    let end = memchr(b'"', rest)?;
    let kind = Kind::parse(std::str::from_utf8(&rest[..end]).ok()?)?;
    let rest = rest[end..].strip_prefix(b"\":{")?;
    let field = |name: &[u8]| -> Option<Option<Cow<'_, str>>> {
        let Some(at) = memmem::find(rest, name) else {
            return Some(None);
        };
        let value = &rest[at + name.len()..];
        let end = memchr(b'"', value)?;
        let value = &value[..end];
        if value.contains(&b'\\') {
            return None;
        }
        std::str::from_utf8(value).ok().map(|v| Some(v.into()))
    };
    Some(Op {
        kind,
        index: field(b"\"_index\":\"")?,
        id: field(b"\"_id\":\"")?,
        body: false,
    })
}

fn slow_action(line: &[u8]) -> Option<Op<'static>> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let (kind, meta) = v.as_object()?.iter().next()?;
    let text = |k: &str| {
        meta.get(k)
            .and_then(Value::as_str)
            .map(|s| s.to_owned().into())
    };
    Some(Op {
        kind: Kind::parse(kind)?,
        index: text("_index"),
        id: text("_id"),
        body: false,
    })
}

/// How many ops go to `index` (an op names its index, or takes the request path's `default`).
pub fn count_for(ops: &[Op<'_>], default: Option<&str>, index: &str) -> usize {
    ops.iter()
        .filter(|op| op.index.as_deref().or(default) == Some(index))
        .count()
}

/// Counts the operations (all on the synthetic index) and answers each as a real node would: an index
/// of a document the index held is `updated`, of a new one `created`; a delete is `deleted` or
/// `not_found`.
pub fn answer(index: &SyntheticIndex, ops: &[Op<'_>]) -> String {
    index.stats.bulk_requests.fetch_add(1, Relaxed);
    let mut out = String::with_capacity(32 + ops.len() * 120);
    out.push_str(r#"{"took":1,"errors":false,"items":["#);
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let id = op.id.as_deref().unwrap_or("");
        let (result, status) = match op.kind {
            Kind::Delete if index.record_delete(id) => ("deleted", 200),
            Kind::Delete => ("not_found", 404),
            _ if index.record_index(id, op.body) => ("updated", 200),
            _ => ("created", 201),
        };
        let _ = write!(
            out,
            r#"{{"{}":{{"_index":"{}","_id":"{id}","_version":1,"result":"{result}","_shards":{{"total":1,"successful":1,"failed":0}},"status":{status}}}}}"#,
            op.kind.name(),
            index.name,
        );
    }
    out.push_str("]}");
    out
}
