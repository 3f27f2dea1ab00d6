//! A listed object's document, written as JSON while it is built (docs/architecture.md#memory-and-cpu).
//!
//! A metadata-only sync builds a document per listed object and, when the object changed,
//! serializes it once. Most documents are never read field by field, so a source writes its
//! fields straight into the document's JSON; the few stages that do need a map (basic rules, a
//! field that replaces or removes another) turn it into one, with the same fields in the same order.
//! Either way the serialized document is what the `Map` would serialize to.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::ops::Range;

/// The fields of one document, in order.
#[derive(Debug, Clone)]
pub struct Document {
    /// `_id`, kept apart from the fields of the JSON form: the sync takes it out of the document.
    id: Option<String>,
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// `{"k":v,"k":v` (no closing brace), each member's key and the byte range of its value.
    Json {
        json: Vec<u8>,
        members: Vec<(Cow<'static, str>, Range<usize>)>,
    },
    Map(Map<String, Value>),
}

impl Default for Document {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl From<Map<String, Value>> for Document {
    fn from(map: Map<String, Value>) -> Self {
        Document {
            id: None,
            repr: Repr::Map(map),
        }
    }
}

impl Document {
    /// An empty document with room for `bytes` of JSON.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut json = Vec::with_capacity(bytes.max(1));
        json.push(b'{');
        Document {
            id: None,
            repr: Repr::Json {
                json,
                members: Vec::with_capacity(10),
            },
        }
    }

    /// Sets the `_id` that [`Document::take_id`] hands out (not one of the serialized fields).
    pub fn set_id(&mut self, id: String) {
        self.id = Some(id);
    }

    /// Takes the `_id` out of the document: the one set apart, else a map's `_id` field when it
    /// is a string (removed as [`Map::remove`] removes it).
    pub fn take_id(&mut self) -> Option<String> {
        if let Some(id) = self.id.take() {
            return Some(id);
        }
        match &mut self.repr {
            Repr::Map(map) if map.contains_key("_id") => match map.remove("_id") {
                Some(Value::String(id)) => Some(id),
                _ => None,
            },
            _ => None,
        }
    }

    /// Appends a field whose key the document does not hold yet, its value written by `write`.
    fn append(&mut self, key: Cow<'static, str>, write: impl FnOnce(&mut Vec<u8>)) {
        let Repr::Json { json, members, .. } = &mut self.repr else {
            unreachable!("append is only called on the JSON form")
        };
        if !members.is_empty() {
            json.push(b',');
        }
        write_str(json, &key);
        json.push(b':');
        let start = json.len();
        write(json);
        members.push((key, start..json.len()));
    }

    fn holds(&self, key: &str) -> bool {
        match &self.repr {
            Repr::Json { members, .. } => members.iter().any(|(k, _)| k == key),
            Repr::Map(map) => map.contains_key(key),
        }
    }

    /// Sets a text field (as `insert`).
    pub fn insert_str(&mut self, key: &'static str, value: &str) {
        if self.holds(key) || matches!(self.repr, Repr::Map(_)) {
            self.map().insert(key.into(), Value::String(value.into()));
        } else {
            self.append(Cow::Borrowed(key), |json| write_str(json, value));
        }
    }

    /// Sets a number field (as `insert`).
    pub fn insert_u64(&mut self, key: &'static str, value: u64) {
        if self.holds(key) || matches!(self.repr, Repr::Map(_)) {
            self.map().insert(key.into(), value.into());
        } else {
            self.append(Cow::Borrowed(key), |json| {
                serde_json::to_writer(json, &value).expect("a number serializes")
            });
        }
    }

    /// Sets a field: a new key goes last, a key the document holds keeps its place (as
    /// [`Map::insert`]).
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, value: Value) {
        let key = key.into();
        if self.holds(&key) || matches!(self.repr, Repr::Map(_)) {
            self.map().insert(key.into_owned(), value);
        } else {
            self.append(key, |json| {
                serde_json::to_writer(json, &value).expect("a value serializes")
            });
        }
    }

    /// Removes a field, as [`Map::remove`] does (the last field takes its place).
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if !self.holds(key) {
            return None;
        }
        self.map().remove(key)
    }

    /// A text field's value, when the document holds one.
    pub fn get_str(&self, key: &str) -> Option<Cow<'_, str>> {
        match &self.repr {
            Repr::Json { json, members, .. } => {
                let (_, range) = members.iter().find(|(k, _)| k == key)?;
                let raw = &json[range.clone()];
                let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
                if inner.contains(&b'\\') {
                    serde_json::from_slice::<String>(raw).ok().map(Cow::Owned)
                } else {
                    std::str::from_utf8(inner).ok().map(Cow::Borrowed)
                }
            }
            Repr::Map(map) => map.get(key)?.as_str().map(Cow::Borrowed),
        }
    }

    /// The document as a map (built once, on the first call).
    pub fn map(&mut self) -> &mut Map<String, Value> {
        if let Repr::Json { json, .. } = &mut self.repr {
            let mut text = std::mem::take(json);
            text.push(b'}');
            let map = serde_json::from_slice(&text).expect("the document's own JSON parses");
            self.repr = Repr::Map(map);
        }
        match &mut self.repr {
            Repr::Map(map) => map,
            Repr::Json { .. } => unreachable!("converted above"),
        }
    }

    /// The serialized document (its buffer, when written as JSON).
    pub fn into_json(self) -> Vec<u8> {
        match self.repr {
            Repr::Json { mut json, .. } => {
                json.push(b'}');
                json
            }
            Repr::Map(map) => serde_json::to_vec(&map).expect("document serializes"),
        }
    }
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `s` as a JSON string, escaped as serde_json escapes it, the runs between escapes copied whole:
/// serde_json looks at one byte at a time, which took 7 % of the service's CPU on bodies of 100 KB
/// of text (docs/architecture.md#memory-and-cpu).
fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    while let Some(at) = next_escape(bytes, run) {
        out.extend_from_slice(&bytes[run..at]);
        write_escape(out, bytes[at]);
        run = at + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// The first byte from `from` on that needs an escape. A block at a time, with no early exit
/// inside a block, so that the compiler tests the block's bytes together.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const BLOCK: usize = 32;
    let mut start = from;
    while start < bytes.len() {
        let block = &bytes[start..bytes.len().min(start + BLOCK)];
        if block.iter().fold(false, |any, &b| any | needs_escape(b)) {
            return block
                .iter()
                .position(|&b| needs_escape(b))
                .map(|i| start + i);
        }
        start += block.len();
    }
    None
}

/// serde_json's escape of one byte: a short form where JSON has one, else `\u00XX` in lower case.
fn write_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0C => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => 0,
    };
    if short != 0 {
        out.extend_from_slice(&[b'\\', short]);
    } else {
        let hex = |nibble: u8| HEX[usize::from(nibble)];
        out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xF)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        // Every byte that needs an escape, at every place in and around a block of 32 bytes.
        let pieces = [
            "\u{0}",
            "\u{1}",
            "\u{8}",
            "\t",
            "\n",
            "\u{B}",
            "\u{C}",
            "\r",
            "\u{1F}",
            "\"",
            "\\",
            "/",
            "\u{7F}",
            "é",
            "€",
            "😀",
            "a",
            "plain words ",
            "\u{2028}",
        ];
        let mut texts = crate::testing::RandomTexts::new(0x9e37_79b9_7f4a_7c15, &pieces);
        for round in 0..20_000 {
            let text = texts.next(if round % 2 == 0 { 9 } else { 80 });
            let mut ours = Vec::new();
            write_str(&mut ours, &text);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&text).unwrap(),
                "{text:?}"
            );
        }
    }

    /// The same steps on a document and on a map: the same JSON, byte for byte.
    fn same(steps: impl Fn(&mut Document, &mut Map<String, Value>)) {
        let mut doc = Document::with_capacity(8);
        let mut map = Map::new();
        steps(&mut doc, &mut map);
        assert_eq!(
            String::from_utf8(doc.clone().into_json()).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        let mut read_back = doc.clone();
        assert_eq!(read_back.map(), &map, "as a map");
        assert_eq!(doc.into_json(), serde_json::to_vec(&map).unwrap());
    }

    #[test]
    fn new_fields_go_last_with_text_escaped_as_serde_json_escapes_it() {
        same(|doc, map| {
            for (key, text) in [
                ("a", "plain"),
                ("b", "q\"uote\\ \u{1}\n\t"),
                ("c", "文件 é"),
            ] {
                doc.insert_str(key, text);
                map.insert(key.into(), json!(text));
            }
            doc.insert("n", json!(-3));
            map.insert("n".into(), json!(-3));
            doc.insert_u64("u", u64::MAX);
            map.insert("u".into(), json!(u64::MAX));
            doc.insert(String::from("nested"), json!({"x": [1, null, 2.5]}));
            map.insert("nested".into(), json!({"x": [1, null, 2.5]}));
        });
        same(|_, _| {});
    }

    #[test]
    fn a_field_set_again_keeps_its_place_and_a_removal_moves_the_last_field() {
        same(|doc, map| {
            for key in ["a", "b", "c", "d"] {
                doc.insert_str(key, key);
                map.insert(key.into(), json!(key));
            }
            doc.insert_u64("b", 2);
            map.insert("b".into(), json!(2));
            assert_eq!(doc.remove("a"), map.remove("a"));
            assert_eq!(doc.remove("absent"), None);
            doc.insert_str("e", "after");
            map.insert("e".into(), json!("after"));
        });
        // A removal of a field the document lacks changes nothing, and no map is built for it.
        let mut doc = Document::with_capacity(8);
        doc.insert_str("a", "x");
        assert_eq!(doc.remove("body"), None);
        assert!(matches!(doc.repr, Repr::Json { .. }));
    }

    #[test]
    fn text_fields_read_back_as_written() {
        let mut doc = Document::with_capacity(8);
        doc.insert_str("plain", "2024-01-02T03:04:05+00:00");
        doc.insert_str("escaped", "a\"b");
        doc.insert_u64("n", 1);
        assert_eq!(
            doc.get_str("plain").as_deref(),
            Some("2024-01-02T03:04:05+00:00")
        );
        assert_eq!(doc.get_str("escaped").as_deref(), Some("a\"b"));
        assert_eq!(doc.get_str("n"), None);
        assert_eq!(doc.get_str("absent"), None);
        doc.map();
        assert_eq!(doc.get_str("escaped").as_deref(), Some("a\"b"));
    }

    #[test]
    fn the_id_is_set_apart_or_taken_out_of_a_map() {
        let mut doc = Document::with_capacity(8);
        doc.set_id("i".into());
        doc.insert_str("a", "x");
        doc.map();
        assert_eq!(doc.take_id().as_deref(), Some("i"));
        assert_eq!(doc.take_id(), None);
        assert_eq!(doc.clone().into_json(), br#"{"a":"x"}"#);

        let Value::Object(map) = json!({"_id": "m", "a": 1, "b": 2}) else {
            unreachable!()
        };
        let mut from_map = Document::from(map);
        assert_eq!(from_map.take_id().as_deref(), Some("m"));
        assert_eq!(
            from_map.clone().into_json(),
            br#"{"b":2,"a":1}"#,
            "as Map::remove leaves it"
        );
        let Value::Object(map) = json!({"_id": 7, "a": 1}) else {
            unreachable!()
        };
        assert_eq!(Document::from(map).take_id(), None);
    }
}
