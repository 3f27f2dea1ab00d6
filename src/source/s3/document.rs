//! The document produced for each S3 object (docs/architecture.md#the-s3-source) and helpers shared with the sync.

use super::listing::S3Object;
use chrono::{DateTime, Datelike, Timelike, Utc};
use md5::{Digest, Md5};
use serde_json::{Map, Value};
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
    let micros = t.nanosecond() % 1_000_000_000 / 1_000;
    let mut out = String::with_capacity(32);
    let year = t.year();
    // chrono's `format` interprets its pattern on every call; years of four digits (every S3 date)
    // are written directly, others (`+10000`, negative) and leap seconds (`:60`) as chrono writes them.
    if (0..=9999).contains(&year) && t.nanosecond() < 1_000_000_000 {
        let _ = write!(
            out,
            "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
    } else {
        let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S"));
    }
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    out.push_str("+00:00");
    out
}

/// The metadata document for an object: `_id`, `filename`, `size_in_bytes`, `bucket`, `owner`,
/// `storage_class`, `_timestamp`, in that order.
pub fn to_document(obj: &S3Object) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("_id".into(), document_id(&obj.bucket, &obj.key).into());
    doc.insert("filename".into(), obj.key.clone().into());
    doc.insert("size_in_bytes".into(), obj.size.into());
    doc.insert("bucket".into(), obj.bucket.clone().into());
    doc.insert("owner".into(), obj.owner.to_value());
    doc.insert("storage_class".into(), obj.storage_class.clone().into());
    doc.insert("_timestamp".into(), iso_timestamp(obj.last_modified).into());
    doc
}

pub use crate::source::file_extension;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::s3::listing::OwnerField;
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

    #[test]
    fn document_fields_in_order() {
        let obj = S3Object {
            bucket: "b".into(),
            key: "folder/a.txt".into(),
            size: 42,
            last_modified: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
            owner: OwnerField::NoDisplayName,
            storage_class: None,
            etag: Some("\"e\"".into()),
        };
        let doc = to_document(&obj);
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            format!(
                r#"{{"_id":"{}","filename":"folder/a.txt","size_in_bytes":42,"bucket":"b","owner":null,"storage_class":null,"_timestamp":"2024-01-02T03:04:05+00:00"}}"#,
                document_id("b", "folder/a.txt")
            )
        );
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
