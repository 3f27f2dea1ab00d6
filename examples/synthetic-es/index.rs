//! The synthetic content index: the documents a previous sync of the synthetic bucket left (one per
//! object, as the service writes them) plus `stale` documents of objects the bucket no longer has.
//! Nothing is stored: document `p` (a position) is a pure function of `p`, ids are found again
//! through a sorted table of id prefixes, and what bulk requests did is kept in two bitmaps.

#[allow(dead_code)] // the S3 half of bucket.rs (paging, bodies) is not used here
#[path = "../synthetic-s3/bucket.rs"]
mod bucket;

pub use bucket::{Bucket, Corpus};
use md5::{Digest, Md5};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Fields a document has, in the order they are written; `_source` filters pick among them.
pub const FIELDS: [&str; 6] = [
    "id",
    "bucket",
    "filename",
    "_timestamp",
    "etag",
    "size_in_bytes",
];
/// Every field.
pub const ALL_FIELDS: u8 = (1 << FIELDS.len()) - 1;

pub struct SyntheticIndex {
    pub name: String,
    pub bucket: Bucket,
    pub stale: u64,
    /// `(first 4 bytes of the id's md5, big-endian) << 32 | position`, sorted.
    table: Vec<u64>,
    indexed: Bitmap,
    deleted: Bitmap,
    pub stats: Stats,
}

/// What the index was asked, for `GET /_synthetic/stats` (reset by `POST /_synthetic/reset`).
#[derive(Default)]
pub struct Stats {
    pub bulk_requests: AtomicU64,
    pub index_ops: AtomicU64,
    pub delete_ops: AtomicU64,
    /// Index operations on ids that are none of ours (neither an object nor a stale document).
    pub index_unknown: AtomicU64,
    /// Index operations whose document carried a non-empty `body` (extracted text).
    pub indexed_with_body: AtomicU64,
    pub delete_unknown: AtomicU64,
    pub lookup_requests: AtomicU64,
    pub lookup_ids: AtomicU64,
    pub lookup_found: AtomicU64,
    pub scrolls_opened: AtomicU64,
    pub scroll_pages: AtomicU64,
    pub scroll_hits: AtomicU64,
    pub scrolls_cleared: AtomicU64,
}

impl SyntheticIndex {
    /// The index `name` as a sync of bucket `bucket` (named `<anything>-<N>`) left it, plus `stale`
    /// documents. Builds the id table: about a second per 3 million documents.
    pub fn new(name: &str, bucket: Bucket, stale: u64) -> SyntheticIndex {
        let total = bucket.objects + stale;
        assert!(total < 1 << 32, "positions must fit 32 bits");
        let mut index = SyntheticIndex {
            name: name.to_owned(),
            bucket,
            stale,
            table: Vec::new(),
            indexed: Bitmap::new(total),
            deleted: Bitmap::new(total),
            stats: Stats::default(),
        };
        let mut table = Vec::with_capacity(total as usize);
        let mut key = String::new();
        for p in 0..total {
            key.clear();
            index.write_key(p, &mut key);
            let md5 = index.md5(&key);
            table.push((u32::from_be_bytes([md5[0], md5[1], md5[2], md5[3]]) as u64) << 32 | p);
        }
        table.sort_unstable();
        index.table = table;
        index
    }

    /// Documents in the index before the sync: the objects and the stale ones.
    pub fn total(&self) -> u64 {
        self.bucket.objects + self.stale
    }

    /// The key (`filename`) of document `p`: the object's key, or `stale/<i>.dat`.
    pub fn write_key(&self, p: u64, out: &mut String) {
        if p < self.bucket.objects {
            self.bucket.write_key(p, out);
        } else {
            let _ = write!(out, "stale/{:09}.dat", p - self.bucket.objects);
        }
    }

    fn md5(&self, key: &str) -> [u8; 16] {
        Md5::new()
            .chain_update(self.bucket.name.as_bytes())
            .chain_update(b"/")
            .chain_update(key.as_bytes())
            .finalize()
            .into()
    }

    /// Document `p`'s `_id`, as the service computes it: hex md5 of `<bucket>/<key>`.
    pub fn id(&self, p: u64) -> String {
        let mut key = String::new();
        self.write_key(p, &mut key);
        hex(&self.md5(&key))
    }

    /// The position of the document with id `id`, if the index holds it.
    pub fn find(&self, id: &str) -> Option<u64> {
        let raw = parse_hex(id)?;
        let prefix = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as u64;
        let start = self.first_at_or_after(prefix << 32);
        let mut key = String::new();
        self.table[start..]
            .iter()
            .take_while(|e| *e >> 32 == prefix)
            .map(|e| e & 0xffff_ffff)
            .find(|&p| {
                key.clear();
                self.write_key(p, &mut key);
                self.md5(&key) == raw
            })
    }

    /// The first table entry `>= target`. Prefixes of md5s are uniform, so the entry is near
    /// `target / 2⁶⁴ × len`: a gallop from there touches a few cache lines where a binary search
    /// over the whole table would miss the cache some twenty times.
    fn first_at_or_after(&self, target: u64) -> usize {
        let t = &self.table;
        let n = t.len();
        let guess = ((target as u128 * n as u128) >> 64) as usize;
        let (mut lo, mut hi) = (guess, guess);
        let mut step = 1;
        // Widen [lo, hi) until t[lo] < target <= t[hi] (or an end is reached).
        while lo > 0 && t[lo.min(n - 1)] >= target {
            lo = lo.saturating_sub(step);
            step *= 2;
        }
        step = 1;
        while hi < n && t[hi] < target {
            hi = (hi + step).min(n);
            step *= 2;
        }
        lo + t[lo..hi].partition_point(|&e| e < target)
    }

    /// Appends document `p`'s `_source`, restricted to the fields of `mask` (bits of [`FIELDS`]).
    /// `_timestamp` and `etag` are written exactly as the service writes them for the object's
    /// listing entry (examples/synthetic-s3), so that an incremental sync finds every object unchanged.
    pub fn write_source(&self, p: u64, id: &str, mask: u8, out: &mut String) {
        out.push('{');
        let mut first = true;
        let mut field = |out: &mut String, name: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "\"{name}\":");
        };
        if mask & 1 != 0 {
            field(out, "id");
            let _ = write!(out, "\"{id}\"");
        }
        if mask & 2 != 0 {
            field(out, "bucket");
            let _ = write!(out, "\"{}\"", self.bucket.name);
        }
        if mask & 4 != 0 {
            field(out, "filename");
            out.push('"');
            self.write_key(p, out);
            out.push('"');
        }
        if mask & 8 != 0 {
            // The synthetic S3's LastModified, `datetime.isoformat()`-style (src/source/s3/document.rs).
            field(out, "_timestamp");
            let s = p % 86_400;
            let _ = write!(
                out,
                "\"2024-01-01T{:02}:{:02}:{:02}+00:00\"",
                s / 3600,
                s / 60 % 60,
                s % 60
            );
        }
        if mask & 16 != 0 {
            field(out, "etag");
            if p < self.bucket.objects {
                // The ETag header value, quotes included, JSON-escaped.
                let etag = self.bucket.etag(p);
                let _ = write!(out, "\"\\\"{}\\\"\"", etag.trim_matches('"'));
            } else {
                out.push_str("\"\\\"0\\\"\"");
            }
        }
        if mask & 32 != 0 {
            field(out, "size_in_bytes");
            let _ = write!(out, "{}", self.bucket.size(p));
        }
        out.push('}');
    }

    /// Records an index operation on `id` (whose document has a non-empty `body` or not): whether
    /// the document existed before (`updated`).
    pub fn record_index(&self, id: &str, body: bool) -> bool {
        self.stats.index_ops.fetch_add(1, Relaxed);
        if body {
            self.stats.indexed_with_body.fetch_add(1, Relaxed);
        }
        match self.find(id) {
            Some(p) => {
                self.indexed.set(p);
                true
            }
            None => {
                self.stats.index_unknown.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// Records a delete of `id`: whether the document existed (in the pre-sync state).
    pub fn record_delete(&self, id: &str) -> bool {
        self.stats.delete_ops.fetch_add(1, Relaxed);
        match self.find(id) {
            Some(p) => {
                self.deleted.set(p);
                true
            }
            None => {
                self.stats.delete_unknown.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// The counters and what the bitmaps hold, as JSON.
    pub fn stats_json(&self) -> String {
        let n = self.bucket.objects;
        let total = self.total();
        let s = &self.stats;
        let get = |c: &AtomicU64| c.load(Relaxed);
        format!(
            concat!(
                r#"{{"index":"{}","objects":{},"stale":{},"bulk_requests":{},"index_ops":{},"delete_ops":{},"#,
                r#""index_unknown":{},"delete_unknown":{},"indexed_with_body":{},"indexed_objects":{},"indexed_stale":{},"#,
                r#""deleted_objects":{},"deleted_stale":{},"lookup_requests":{},"lookup_ids":{},"#,
                r#""lookup_found":{},"scrolls_opened":{},"scroll_pages":{},"scroll_hits":{},"scrolls_cleared":{}}}"#
            ),
            self.name,
            n,
            self.stale,
            get(&s.bulk_requests),
            get(&s.index_ops),
            get(&s.delete_ops),
            get(&s.index_unknown),
            get(&s.delete_unknown),
            get(&s.indexed_with_body),
            self.indexed.count(0, n),
            self.indexed.count(n, total),
            self.deleted.count(0, n),
            self.deleted.count(n, total),
            get(&s.lookup_requests),
            get(&s.lookup_ids),
            get(&s.lookup_found),
            get(&s.scrolls_opened),
            get(&s.scroll_pages),
            get(&s.scroll_hits),
            get(&s.scrolls_cleared),
        )
    }

    pub fn reset(&self) {
        self.indexed.clear();
        self.deleted.clear();
        let s = &self.stats;
        for c in [
            &s.bulk_requests,
            &s.index_ops,
            &s.delete_ops,
            &s.index_unknown,
            &s.delete_unknown,
            &s.indexed_with_body,
            &s.lookup_requests,
            &s.lookup_ids,
            &s.lookup_found,
            &s.scrolls_opened,
            &s.scroll_pages,
            &s.scroll_hits,
            &s.scrolls_cleared,
        ] {
            c.store(0, Relaxed);
        }
    }
}

/// One bit per document, set concurrently.
struct Bitmap(Vec<AtomicU64>);

impl Bitmap {
    fn new(bits: u64) -> Bitmap {
        Bitmap((0..bits.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }

    fn set(&self, bit: u64) {
        self.0[(bit / 64) as usize].fetch_or(1 << (bit % 64), Relaxed);
    }

    fn get(&self, bit: u64) -> bool {
        self.0[(bit / 64) as usize].load(Relaxed) & 1 << (bit % 64) != 0
    }

    /// Bits set in `from..to`.
    fn count(&self, from: u64, to: u64) -> u64 {
        (from..to).filter(|&b| self.get(b)).count() as u64
    }

    fn clear(&self) {
        for w in &self.0 {
            w.store(0, Relaxed);
        }
    }
}

fn hex(raw: &[u8; 16]) -> String {
    let mut out = String::with_capacity(32);
    for b in raw {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// 32 lowercase hex digits as 16 bytes.
fn parse_hex(id: &str) -> Option<[u8; 16]> {
    let b = id.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Some(out)
}
