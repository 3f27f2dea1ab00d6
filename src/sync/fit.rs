//! Serializing a document within `elasticsearch.bulk.max_text_document_size`.
//!
//! The cap applies to the serialized document, and JSON escaping can more than double a text
//! (`"` becomes `\"`, a control character `\u0001`): a body cut to the cap in raw bytes can still
//! make the sink drop the whole document. So the body is cut here, by its escaped length, until
//! the serialized document fits.

use crate::source::Document;
use serde_json::{Map, Value};

/// The document as JSON, its `body` cut (on a char boundary) so that the result is at most
/// `cap` bytes. A document too large without any body is returned whole: the sink decides.
pub fn serialize_within(doc: Document, cap: Option<usize>) -> Vec<u8> {
    let full = doc.into_json();
    let Some(cap) = cap.filter(|c| full.len() > *c) else {
        return full;
    };
    // Too large (rare): the body is cut in the document read back as a map, same fields, same order.
    let mut doc: Map<String, Value> =
        serde_json::from_slice(&full).expect("a serialized document parses");
    let Some(Value::String(body)) = doc.get_mut("body") else {
        return full;
    };
    let rest = full.len() - escaped_len(body);
    let cut = prefix_within(body, cap.saturating_sub(rest));
    body.truncate(cut);
    serde_json::to_vec(&doc).expect("document serializes")
}

/// Bytes `c` takes inside a JSON string as serde_json writes it.
fn escaped_char_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

fn escaped_len(s: &str) -> usize {
    s.chars().map(escaped_char_len).sum()
}

/// The byte length of the longest prefix of `s` whose escaped form takes at most `budget` bytes.
fn prefix_within(s: &str, budget: usize) -> usize {
    let mut used = 0;
    for (at, c) in s.char_indices() {
        used += escaped_char_len(c);
        if used > budget {
            return at;
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(body: &str) -> Map<String, Value> {
        let Value::Object(m) = json!({"id": "x", "filename": "q.txt", "body": body}) else {
            unreachable!()
        };
        m
    }

    #[test]
    fn a_body_of_quotes_is_cut_by_its_escaped_size() {
        let cap = 3 * 1_048_576;
        let quotes = "\"".repeat(cap);
        let out = serialize_within(doc(&quotes).into(), Some(cap));
        assert!(out.len() <= cap, "{} > {cap}", out.len());
        assert!(
            out.len() > cap - 8,
            "cut no more than needed: {}",
            out.len()
        );
        let back: Value = serde_json::from_slice(&out).unwrap();
        let body = back["body"].as_str().unwrap();
        assert!(body.len() > cap / 2 - 64 && body.chars().all(|c| c == '"'));
    }

    #[test]
    fn cuts_fall_on_char_boundaries_whatever_the_escapes() {
        let text: String = "é\u{1}\"a€\n😀".repeat(5000);
        for cap in [100, 101, 102, 103, 104, 105, 1000, 4097, 20_000] {
            let out = serialize_within(doc(&text).into(), Some(cap));
            assert!(out.len() <= cap, "cap {cap}: {}", out.len());
            let back: Value = serde_json::from_slice(&out).unwrap();
            assert!(text.starts_with(back["body"].as_str().unwrap()));
        }
    }

    #[test]
    fn fitting_and_uncapped_documents_are_left_alone() {
        let d = doc("short \"text\"");
        let whole = serde_json::to_vec(&d).unwrap();
        assert_eq!(serialize_within(d.clone().into(), Some(whole.len())), whole);
        assert_eq!(serialize_within(d.clone().into(), None), whole);
        let mut no_body = d;
        no_body.remove("body");
        let bare = serde_json::to_vec(&no_body).unwrap();
        assert_eq!(serialize_within(no_body.into(), Some(5)), bare);
    }
}
