//! The document produced for each S3 object (docs/architecture.md#the-s3-source) and helpers shared with the sync.

use super::listing::S3Object;
use chrono::{DateTime, Timelike, Utc};
use md5::{Digest, Md5};
use serde_json::{Map, Value};

/// Document `_id`: lowercase hex MD5 of `"<bucket>/<key>"`.
pub fn document_id(bucket: &str, key: &str) -> String {
    let digest = Md5::new()
        .chain_update(bucket)
        .chain_update("/")
        .chain_update(key)
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Python's `datetime.isoformat()` for a UTC time: `2024-01-02T03:04:05+00:00`, with `.ffffff`
/// microseconds only when they are non-zero (sub-microsecond digits are truncated).
pub fn iso_timestamp(t: DateTime<Utc>) -> String {
    let micros = t.nanosecond() % 1_000_000_000 / 1_000;
    if micros == 0 {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        format!("{}.{micros:06}+00:00", t.format("%Y-%m-%dT%H:%M:%S"))
    }
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
