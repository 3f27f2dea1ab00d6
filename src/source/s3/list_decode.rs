//! ListObjectsV2 answers decoded by us, straight into [`S3Object`]s (docs/architecture.md#the-s3-source).
//!
//! The SDK decodes a listing through its generic XML reader into its own `Object` values, which we
//! then copy: about 6 µs per object, 40 % of the CPU of a metadata-only sync. So an interceptor on
//! listing requests ([`ListingDecoder`]) wraps the body of a `200` answer: once the whole body has
//! arrived it is decoded here with quick-xml, the page is left in a slot for the lister, and the SDK
//! reads an empty `ListBucketResult` instead. Everything else stays the SDK's: signing, endpoints,
//! retries, redirects, error answers (a non-200 answer is not touched, and a body that is not a
//! listing we understand — an `<Error>` sent with 200, an unknown date form — reaches the SDK
//! unchanged, so it fails or decodes exactly as it did without us).

use super::listing::{OwnerField, S3Object, url_decode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body::{Body, Frame};
use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, Event};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

/// The largest listing body read. S3 answers at most 1 000 keys of at most 1 024 bytes, URL-encoded:
/// a few MiB. Past this a server is not answering a listing; the request fails naming the size.
const MAX_BODY: usize = 32 << 20;

/// What the SDK reads in place of a listing we decoded.
const DECODED: &[u8] = b"<ListBucketResult></ListBucketResult>";

/// One page of a listing, as the lister needs it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Listed {
    pub objects: Vec<S3Object>,
    /// `IsTruncated`, when the answer has it.
    pub truncated: Option<bool>,
    pub next_token: Option<String>,
}

/// Where the decoder leaves the page of the request's (last) answer.
pub(super) type Slot = Arc<Mutex<Option<Listed>>>;

/// The elements the decoder reads, by where they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Root,
    Contents,
    Owner,
    Key,
    Size,
    LastModified,
    Etag,
    StorageClass,
    DisplayName,
    IsTruncated,
    NextToken,
    EncodingType,
    /// Any other element (and everything under it).
    Other,
}

impl Tag {
    /// The tag of element `name` inside `parent` (`None`: the document's root).
    fn of(parent: Option<Tag>, name: &str) -> Option<Tag> {
        Some(match (parent, name) {
            (None, "ListBucketResult") => Tag::Root,
            (None, _) => return None,
            (Some(Tag::Root), "Contents") => Tag::Contents,
            (Some(Tag::Root), "IsTruncated") => Tag::IsTruncated,
            (Some(Tag::Root), "NextContinuationToken") => Tag::NextToken,
            (Some(Tag::Root), "EncodingType") => Tag::EncodingType,
            (Some(Tag::Contents), "Key") => Tag::Key,
            (Some(Tag::Contents), "Size") => Tag::Size,
            (Some(Tag::Contents), "LastModified") => Tag::LastModified,
            (Some(Tag::Contents), "ETag") => Tag::Etag,
            (Some(Tag::Contents), "StorageClass") => Tag::StorageClass,
            (Some(Tag::Contents), "Owner") => Tag::Owner,
            (Some(Tag::Owner), "DisplayName") => Tag::DisplayName,
            _ => Tag::Other,
        })
    }
}

/// Decodes a `ListBucketResult` body. `None` when the body is not one this decoder understands in
/// every part it reads (another root, a malformed number, date or flag): the SDK then decodes it.
pub(super) fn decode(body: &[u8], bucket: &str) -> Option<Listed> {
    let mut reader = Reader::from_str(std::str::from_utf8(body).ok()?);
    let mut listed = Listed::default();
    let mut encoded = false;
    let mut path: Vec<Tag> = Vec::with_capacity(8);
    let mut text = String::new();
    let mut object = Partial::default();
    let mut rooted = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let tag = Tag::of(path.last().copied(), e.local_name().into_inner())?;
                match tag {
                    Tag::Root => rooted = true,
                    Tag::Contents => object = Partial::default(),
                    Tag::Owner => object.owner = OwnerField::NoDisplayName,
                    _ => {}
                }
                path.push(tag);
                text.clear();
            }
            Event::Empty(e) => {
                // `<Owner/>`: an owner without a display name; `<Key/>`: an empty key; and so on.
                match Tag::of(path.last().copied(), e.local_name().into_inner())? {
                    Tag::Root => return Some(listed),
                    Tag::Contents => listed.objects.push(Partial::default().finish(bucket)),
                    Tag::Owner => object.owner = OwnerField::NoDisplayName,
                    tag => end(
                        tag,
                        &mut String::new(),
                        &mut object,
                        &mut listed,
                        &mut encoded,
                    )?,
                }
            }
            Event::Text(t) => text.push_str(&t.into_inner()),
            Event::CData(t) => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) => push_ref(&r, &mut text)?,
            Event::End(_) => {
                let tag = path.pop()?;
                if tag == Tag::Contents {
                    listed
                        .objects
                        .push(std::mem::take(&mut object).finish(bucket));
                } else {
                    end(tag, &mut text, &mut object, &mut listed, &mut encoded)?;
                }
                text.clear();
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    // A document that ended, and had a root (an empty body has none).
    if !path.is_empty() || !rooted {
        return None;
    }
    if encoded {
        for o in &mut listed.objects {
            o.key = url_decode(&o.key);
        }
    }
    Some(listed)
}

/// Records the text of a leaf element that just ended (taken from `value` only when kept).
fn end(
    tag: Tag,
    value: &mut String,
    object: &mut Partial,
    listed: &mut Listed,
    encoded: &mut bool,
) -> Option<()> {
    let mut take = || std::mem::take(value);
    match tag {
        Tag::Key => object.key = Some(take()),
        Tag::Etag => object.etag = Some(take()),
        Tag::StorageClass => object.storage_class = Some(take()),
        Tag::DisplayName => object.owner = OwnerField::DisplayName(take()),
        Tag::NextToken => listed.next_token = Some(take()),
        Tag::Size => object.size = Some(value.trim().parse().ok()?),
        Tag::LastModified => object.last_modified = Some(parse_time(value)?),
        Tag::IsTruncated => listed.truncated = Some(parse_bool(value)?),
        Tag::EncodingType => *encoded = value == "url",
        Tag::Root | Tag::Contents | Tag::Owner | Tag::Other => {}
    }
    Some(())
}

/// The fields of one `Contents` element read so far.
#[derive(Default)]
struct Partial {
    key: Option<String>,
    size: Option<i64>,
    last_modified: Option<DateTime<Utc>>,
    owner: OwnerField,
    storage_class: Option<String>,
    etag: Option<String>,
}

impl Partial {
    /// The object, with the SDK path's defaults for missing fields.
    fn finish(self, bucket: &str) -> S3Object {
        S3Object {
            bucket: bucket.to_owned(),
            key: self.key.unwrap_or_default(),
            size: self.size.unwrap_or_default(),
            last_modified: self.last_modified.unwrap_or_default(),
            owner: self.owner,
            storage_class: self.storage_class,
            etag: self.etag,
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `2024-01-02T03:04:05.000Z`. Only the RFC 3339 form S3 sends; anything else goes to the SDK.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    s.ends_with('Z')
        .then(|| DateTime::parse_from_rfc3339(s).ok())
        .flatten()
        .map(|t| t.with_timezone(&Utc))
}

/// Appends what an entity or character reference stands for; `None` for an unknown entity.
fn push_ref(r: &BytesRef<'_>, out: &mut String) -> Option<()> {
    match r.resolve_char_ref().ok()? {
        Some(c) => out.push(c),
        None => out.push_str(resolve_predefined_entity(r)?),
    }
    Some(())
}

/// The interceptor added to each listing request (see the module documentation).
#[derive(Debug)]
pub(super) struct ListingDecoder {
    slot: Slot,
    bucket: Arc<str>,
}

impl ListingDecoder {
    pub fn new(slot: Slot, bucket: &str) -> Self {
        ListingDecoder {
            slot,
            bucket: bucket.into(),
        }
    }
}

impl Intercept for ListingDecoder {
    fn name(&self) -> &'static str {
        "content-sync listing decoder"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // A page decoded in an earlier attempt is not this attempt's answer.
        *self.slot.lock().expect("lock") = None;
        let response = context.response_mut();
        if response.status().as_u16() == 200 {
            // Room for the whole answer when its length is known, up to the 1 MiB a page of
            // 1 000 keys stays within (a larger one grows as it arrives, up to the cap).
            let length = response
                .headers()
                .get("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let inner = std::mem::replace(response.body_mut(), SdkBody::taken());
            *response.body_mut() = SdkBody::from_body_1_x(Decoding {
                inner,
                buf: Vec::with_capacity(length.min(RESERVE_MAX)),
                out: None,
                done: false,
                slot: self.slot.clone(),
                bucket: self.bucket.clone(),
            });
        }
        Ok(())
    }
}

/// The most bytes reserved for a body before it arrives.
const RESERVE_MAX: usize = 1 << 20;

/// A listing body read whole, then decoded (see the module documentation).
struct Decoding {
    inner: SdkBody,
    buf: Vec<u8>,
    /// The body handed on, once the inner body ended.
    out: Option<Bytes>,
    done: bool,
    slot: Slot,
    bucket: Arc<str>,
}

impl Decoding {
    /// The inner body ended: decode it, and choose what the SDK reads.
    fn finish(&mut self) {
        let body = std::mem::take(&mut self.buf);
        self.out = Some(match decode(&body, &self.bucket) {
            Some(listed) => {
                *self.slot.lock().expect("lock") = Some(listed);
                Bytes::from_static(DECODED)
            }
            None => Bytes::from(body),
        });
        self.done = true;
    }
}

impl Body for Decoding {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if let Some(out) = self.out.take() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
            if self.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if self.buf.len() + data.len() > MAX_BODY {
                            self.done = true;
                            return Poll::Ready(Some(Err(format!(
                                "listing answer larger than {} MiB",
                                MAX_BODY >> 20
                            )
                            .into())));
                        }
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => self.finish(),
            }
        }
    }
}

#[cfg(test)]
#[path = "list_decode_tests.rs"]
mod tests;
