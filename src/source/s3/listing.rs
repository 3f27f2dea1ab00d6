//! Paged, resumable listing of one bucket with ListObjectsV2 (docs/architecture.md#the-s3-source; errors are surfaced, never a short listing).

use super::error::S3Error;
use super::list_decode::{Listed, ListingDecoder, Slot};
use super::paging::{Advance, PageView, Paging};
use aws_sdk_s3::Client;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::types::{EncodingType, Object, Owner};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The `owner` of a listed object, with Elastic's three shapes (docs/architecture.md#the-s3-source).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OwnerField {
    /// No `Owner` element in the listing: `""`.
    #[default]
    Absent,
    /// `Owner` without `DisplayName`: `null`.
    NoDisplayName,
    /// `Owner.DisplayName`.
    DisplayName(String),
}

impl OwnerField {
    fn from_owner(owner: Option<&Owner>) -> Self {
        match owner {
            None => OwnerField::Absent,
            Some(o) => o.display_name().map_or(OwnerField::NoDisplayName, |n| {
                OwnerField::DisplayName(n.to_owned())
            }),
        }
    }

    /// The document value: `""`, `null` or the display name.
    pub fn to_value(&self) -> Value {
        match self {
            OwnerField::Absent => Value::String(String::new()),
            OwnerField::NoDisplayName => Value::Null,
            OwnerField::DisplayName(n) => Value::String(n.clone()),
        }
    }
}

/// One object from a bucket listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    pub bucket: String,
    /// Full key, decoded.
    pub key: String,
    pub size: i64,
    pub last_modified: DateTime<Utc>,
    pub owner: OwnerField,
    pub storage_class: Option<String>,
    pub etag: Option<String>,
}

impl S3Object {
    fn from_listing(bucket: &str, obj: &Object, url_encoded: bool) -> Self {
        let key = obj.key().unwrap_or_default();
        S3Object {
            bucket: bucket.to_owned(),
            key: if url_encoded {
                url_decode(key)
            } else {
                key.to_owned()
            },
            size: obj.size().unwrap_or_default(),
            last_modified: obj
                .last_modified()
                .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
                .unwrap_or_default(),
            owner: OwnerField::from_owner(obj.owner()),
            storage_class: obj.storage_class().map(|c| c.as_str().to_owned()),
            etag: obj.e_tag().map(str::to_owned),
        }
    }
}

/// Lists one bucket page by page (ListObjectsV2, no delimiter, so the listing is flat and recursive).
///
/// Create it with [`S3Client::lister`](super::S3Client::lister). Errors are returned to the caller, never
/// swallowed; after an error the same page can be requested again. To resume in a new lister after a
/// restart, pass [`BucketLister::last_key`] as `start_after`.
#[derive(Debug)]
pub struct BucketLister {
    client: Client,
    bucket: String,
    prefix: Option<String>,
    page_size: i32,
    paging: Paging,
    /// The store's missing continuation tokens were reported once (not once per page).
    warned_start_after: bool,
}

impl BucketLister {
    pub(super) fn new(
        client: Client,
        bucket: &str,
        prefix: Option<String>,
        start_after: Option<String>,
        page_size: i32,
    ) -> Self {
        BucketLister {
            client,
            bucket: bucket.to_owned(),
            prefix: prefix.filter(|p| !p.is_empty()),
            page_size,
            paging: Paging::new(start_after),
            warned_start_after: false,
        }
    }

    /// The bucket being listed.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The last key returned so far (`start_after` for a later, resumed listing).
    pub fn last_key(&self) -> Option<&str> {
        self.paging.last()
    }

    /// The next page of at most `page_size` objects in key order; `Ok(None)` once the listing is complete.
    /// Never returns an empty page. Pages that cannot be trusted to continue the listing (see
    /// `paging`) end it with an error.
    pub async fn next_page(&mut self) -> Result<Option<Vec<S3Object>>, S3Error> {
        while !self.paging.is_done() {
            let slot = Slot::default();
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .max_keys(self.page_size)
                .fetch_owner(true)
                // Keys may hold characters XML 1.0 cannot carry; like Elastic, ask for URL-encoded keys.
                .encoding_type(EncodingType::Url)
                .set_prefix(self.prefix.clone())
                .set_start_after(self.paging.start_after().map(str::to_owned))
                .set_continuation_token(self.paging.token().map(str::to_owned))
                .customize()
                .interceptor(ListingDecoder::new(slot.clone(), &self.bucket))
                .send()
                .await
                .map_err(|e| S3Error::from_sdk(format!("listing bucket \"{}\"", self.bucket), e))?;
            let decoded = slot.lock().expect("lock").take();
            let Listed {
                objects,
                truncated,
                next_token,
            } = decoded.unwrap_or_else(|| Listed::from_sdk(&out, &self.bucket));
            let advance = self
                .paging
                .advance(PageView {
                    first: objects.first().map(|o| o.key.as_str()),
                    last: objects.last().map(|o| o.key.as_str()),
                    // Without IsTruncated, a continuation token still says more follows.
                    truncated: truncated.unwrap_or(next_token.is_some()),
                    next_token: next_token.as_deref(),
                })
                .map_err(|cause| S3Error::Paging {
                    action: format!("listing bucket \"{}\"", self.bucket),
                    cause,
                })?;
            if advance == Advance::StartAfter && !self.warned_start_after {
                self.warned_start_after = true;
                tracing::warn!(bucket = %self.bucket, after = self.paging.last().unwrap_or_default(),
                    "truncated page without a continuation token; listing on after its last key");
            }
            tracing::debug!(bucket = %self.bucket, objects = objects.len(), done = self.paging.is_done(), "listed a page");
            if !objects.is_empty() {
                return Ok(Some(objects));
            }
        }
        Ok(None)
    }
}

impl Listed {
    /// A page as the SDK decoded it (when our decoder left it to the SDK, see `list_decode`).
    pub(super) fn from_sdk(out: &ListObjectsV2Output, bucket: &str) -> Self {
        // Decode only when the server says it encoded (some S3-compatible stores ignore the parameter).
        let encoded = out.encoding_type() == Some(&EncodingType::Url);
        Listed {
            objects: out
                .contents()
                .iter()
                .map(|o| S3Object::from_listing(bucket, o, encoded))
                .collect(),
            truncated: out.is_truncated(),
            next_token: out.next_continuation_token().map(str::to_owned),
        }
    }
}

/// The first key of `bucket` under `prefix` after `after`, or `None`: one ListObjectsV2 request for
/// one key (the probe that cuts a bucket into key ranges, docs/architecture.md#key-ranges).
pub(super) async fn first_key(
    client: &Client,
    bucket: &str,
    prefix: &str,
    after: &str,
) -> Result<Option<String>, S3Error> {
    let out = client
        .list_objects_v2()
        .bucket(bucket)
        .max_keys(1)
        .encoding_type(EncodingType::Url)
        .set_prefix((!prefix.is_empty()).then(|| prefix.to_owned()))
        .set_start_after((!after.is_empty()).then(|| after.to_owned()))
        .send()
        .await
        .map_err(|e| S3Error::from_sdk(format!("probing the keys of bucket \"{bucket}\""), e))?;
    let encoded = out.encoding_type() == Some(&EncodingType::Url);
    Ok(out
        .contents()
        .first()
        .and_then(Object::key)
        .map(|k| if encoded { url_decode(k) } else { k.to_owned() }))
}

/// Decodes S3's `encoding-type=url` form: `%XX` escapes and `+` for a space (botocore's `unquote_plus`).
pub(super) fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let hex = |b: u8| (b as char).to_digit(16);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::primitives::DateTime as SmithyTime;
    use aws_sdk_s3::types::ObjectStorageClass;

    #[test]
    fn owner_variants() {
        assert_eq!(
            OwnerField::from_owner(None).to_value(),
            Value::String(String::new())
        );
        let anon = Owner::builder().id("abc").build();
        assert_eq!(OwnerField::from_owner(Some(&anon)).to_value(), Value::Null);
        let named = Owner::builder().id("abc").display_name("webfile").build();
        assert_eq!(
            OwnerField::from_owner(Some(&named)).to_value(),
            Value::String("webfile".into())
        );
    }

    #[test]
    fn object_from_listing() {
        let o = Object::builder()
            .key("dir/a%20b+c%2Bd%E6%96%87.txt")
            .size(12)
            .last_modified(SmithyTime::from_millis(1_704_164_645_000))
            .storage_class(ObjectStorageClass::Glacier)
            .e_tag("\"x\"")
            .build();
        let obj = S3Object::from_listing("b", &o, true);
        assert_eq!(obj.key, "dir/a b c+d文.txt");
        assert_eq!(obj.size, 12);
        assert_eq!(obj.last_modified.to_rfc3339(), "2024-01-02T03:04:05+00:00");
        assert_eq!(obj.owner, OwnerField::Absent);
        assert_eq!(obj.storage_class.as_deref(), Some("GLACIER"));
        assert_eq!(
            S3Object::from_listing("b", &o, false).key,
            "dir/a%20b+c%2Bd%E6%96%87.txt"
        );
    }

    #[test]
    fn url_decoding_edge_cases() {
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
        assert_eq!(url_decode("%41%42"), "AB");
        assert_eq!(url_decode("%FF"), "\u{FFFD}");
    }
}
