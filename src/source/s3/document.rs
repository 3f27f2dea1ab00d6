//! The document produced for each S3 object (docs/architecture.md#the-s3-source) and helpers shared with the sync.

use super::listing::{OwnerField, S3Object};
use crate::source::Document;
use chrono::{DateTime, Datelike, Timelike, Utc};
use md5::{Digest, Md5};
use serde_json::Value;
use std::fmt::Write;

/// Document `_id`: lowercase hex MD5 of `"<bucket>/<key>"`.
pub fn document_id(bucket: &str, key: &str) -> String {
    let digest = Md5::new()
        .chain_update(bucket)
        .chain_update("/")
        .chain_update(key)
        .finalize();
    // One allocation, no formatting machinery: this runs once per listed object.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// Python's `datetime.isoformat()` for a UTC time: `2024-01-02T03:04:05+00:00`, with `.ffffff`
/// microseconds only when they are non-zero (sub-microsecond digits are truncated).
pub fn iso_timestamp(t: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(32);
    let _ = write_iso_timestamp(&mut out, t);
    out
}

/// [`iso_timestamp`] written into `out`.
fn write_iso_timestamp(out: &mut impl Write, t: DateTime<Utc>) -> std::fmt::Result {
    let micros = t.nanosecond() % 1_000_000_000 / 1_000;
    let year = t.year();
    // chrono's `format` interprets its pattern on every call; years of four digits (every S3 date)
    // are written directly, others (`+10000`, negative) and leap seconds (`:60`) as chrono writes them.
    if (0..=9999).contains(&year) && t.nanosecond() < 1_000_000_000 {
        let mut digits = [0u8; 19];
        let mut put = |at: usize, width: usize, mut n: u32| {
            for i in (0..width).rev() {
                digits[at + i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year as u32);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, t.second());
        for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
            digits[at] = sep;
        }
        out.write_str(std::str::from_utf8(&digits).expect("ASCII digits"))?;
    } else {
        write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S"))?;
    }
    if micros != 0 {
        write!(out, ".{micros:06}")?;
    }
    out.write_str("+00:00")
}

/// A short text on the stack (a timestamp), so that it needs no allocation of its own.
struct Stack {
    buf: [u8; 64],
    len: usize,
}

impl Write for Stack {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The metadata document for an object: `_id` (set apart: [`Document::take_id`]), then
/// `_timestamp`, `filename`, `size_in_bytes`, `bucket`, `owner`, `storage_class`.
///
/// That field order is the one our documents have always had: they used to be built as a map
/// starting with `_id`, whose removal moved the last field, `_timestamp`, to the front.
pub fn to_document(obj: &S3Object) -> Document {
    // Room for the fields, the ETag and id the lister adds, and the key written twice at most
    // (escaped), so that writing them never grows the buffer.
    let mut doc = Document::with_capacity(320 + 2 * obj.key.len() + obj.bucket.len());
    doc.set_id(document_id(&obj.bucket, &obj.key));
    let mut stamp = Stack {
        buf: [0; 64],
        len: 0,
    };
    if write_iso_timestamp(&mut stamp, obj.last_modified).is_ok() {
        let text = std::str::from_utf8(&stamp.buf[..stamp.len]).expect("written as text");
        doc.insert_str("_timestamp", text);
    } else {
        doc.insert_str("_timestamp", &iso_timestamp(obj.last_modified));
    }
    doc.insert_str("filename", &obj.key);
    doc.insert("size_in_bytes", obj.size.into());
    doc.insert_str("bucket", &obj.bucket);
    match &obj.owner {
        OwnerField::DisplayName(name) => doc.insert_str("owner", name),
        other => doc.insert("owner", other.to_value()),
    }
    match &obj.storage_class {
        Some(class) => doc.insert_str("storage_class", class),
        None => doc.insert("storage_class", Value::Null),
    }
    doc
}

pub use crate::source::file_extension;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn md5_vector() {
        assert_eq!(
            document_id("ent-search-ingest-dev", "1.txt"),
            "d0295955cdb6d488a4a1d3f10dbf141b"
        );
    }

    #[test]
    fn timestamps() {
        let t = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(iso_timestamp(t), "2024-01-02T03:04:05+00:00");
        assert_eq!(
            iso_timestamp(t + chrono::Duration::milliseconds(120)),
            "2024-01-02T03:04:05.120000+00:00"
        );
        assert_eq!(
            iso_timestamp(t + chrono::Duration::nanoseconds(999)),
            "2024-01-02T03:04:05+00:00"
        );
        assert_eq!(
            iso_timestamp(t + chrono::Duration::nanoseconds(1_500)),
            "2024-01-02T03:04:05.000001+00:00"
        );
        // Leap second (chrono: nanosecond >= 1e9, second 59) and years chrono writes specially.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        assert_eq!(iso_timestamp(leap), "2016-12-31T23:59:60.500000+00:00");
        let far = Utc.with_ymd_and_hms(12024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(iso_timestamp(far), "+12024-01-02T03:04:05+00:00");
        let early = Utc.with_ymd_and_hms(999, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(iso_timestamp(early), "0999-01-02T03:04:05+00:00");
    }

    /// An object of `bucket-1` listed with every field.
    fn listed() -> S3Object {
        S3Object {
            bucket: "bucket-1".into(),
            key: "folder/a.txt".into(),
            size: 42,
            last_modified: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
            owner: OwnerField::NoDisplayName,
            storage_class: Some("STANDARD".into()),
            etag: Some("\"0123abc\"".into()),
        }
    }

    #[test]
    fn document_fields_in_order() {
        let obj = S3Object {
            bucket: "b".into(),
            storage_class: None,
            etag: Some("\"e\"".into()),
            ..listed()
        };
        let mut doc = to_document(&obj);
        assert_eq!(doc.take_id(), Some(document_id("b", "folder/a.txt")));
        assert_eq!(
            String::from_utf8(doc.clone().into_json()).unwrap(),
            r#"{"_timestamp":"2024-01-02T03:04:05+00:00","filename":"folder/a.txt","size_in_bytes":42,"bucket":"b","owner":null,"storage_class":null}"#
        );
    }

    /// The document as it was built before [`Document`]: a map with `_id` first, from which the
    /// listing took `_id` out and added `etag` and `id`.
    fn as_a_map_used_to_be(obj: &S3Object) -> Vec<u8> {
        use serde_json::Map;
        let mut doc = Map::new();
        doc.insert("_id".into(), document_id(&obj.bucket, &obj.key).into());
        doc.insert("filename".into(), obj.key.clone().into());
        doc.insert("size_in_bytes".into(), obj.size.into());
        doc.insert("bucket".into(), obj.bucket.clone().into());
        doc.insert("owner".into(), obj.owner.to_value());
        doc.insert("storage_class".into(), obj.storage_class.clone().into());
        doc.insert("_timestamp".into(), iso_timestamp(obj.last_modified).into());
        let Some(Value::String(id)) = doc.remove("_id") else {
            unreachable!()
        };
        doc.insert(
            "etag".into(),
            obj.etag.clone().map_or(Value::Null, Value::String),
        );
        doc.insert("id".into(), Value::String(id));
        serde_json::to_vec(&doc).unwrap()
    }

    #[test]
    fn documents_are_the_bytes_the_map_made() {
        let base = listed();
        let variants = [
            base.clone(),
            S3Object {
                key: "unicodé/文件/\"q\\\u{1}\t.txt".into(),
                size: 0,
                owner: OwnerField::DisplayName("web\"file".into()),
                storage_class: None,
                etag: None,
                last_modified: base.last_modified + chrono::Duration::microseconds(120),
                ..base.clone()
            },
            S3Object {
                owner: OwnerField::Absent,
                size: -1,
                last_modified: Utc.with_ymd_and_hms(12024, 1, 2, 3, 4, 5).unwrap(),
                ..base.clone()
            },
        ];
        for obj in variants {
            let mut doc = to_document(&obj);
            let id = doc.take_id().unwrap();
            match &obj.etag {
                Some(etag) => doc.insert_str("etag", etag),
                None => doc.insert("etag", Value::Null),
            }
            doc.insert_str("id", &id);
            assert_eq!(
                String::from_utf8(doc.clone().into_json()).unwrap(),
                String::from_utf8(as_a_map_used_to_be(&obj)).unwrap()
            );
        }
    }

    #[test]
    fn extensions() {
        let cases = [
            ("a.txt", Some(".txt")),
            ("a.tar.gz", Some(".gz")),
            ("dir.d/file", None),
            ("dir/a.TXT", Some(".TXT")),
            (".bashrc", None),
            ("dir/.bashrc", None),
            ("..x", None),
            (".a.b", Some(".b")),
            ("dir/", None),
            ("README", None),
            ("a.", Some(".")),
        ];
        for (key, ext) in cases {
            assert_eq!(file_extension(key), ext, "{key}");
        }
    }
}
