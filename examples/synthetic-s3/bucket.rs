//! One synthetic bucket: `N` objects whose key, body, size, ETag and date are pure functions of
//! their number, so nothing is stored and any page of the listing costs the same.
//!
//! Keys are `<group>/<number>.dat`, both zero-padded to the width of `N - 1` (group = number
//! rounded down to a thousand), so their byte order — S3's listing order — is their number order,
//! and the first key at or after any string is found by binary search. A bucket given a corpus
//! (`corpus.rs`) serves real files instead: key `<group>/<number>-<file name>`, in the same order.

#[path = "corpus.rs"]
pub mod corpus;

pub use corpus::Corpus;
use md5::{Digest, Md5};
use std::fmt::Write;
use std::sync::Arc;

/// Keys per "folder" of the generated names.
const GROUP: u64 = 1000;
/// The most keys one ListObjectsV2 page returns (AWS caps `max-keys` there).
pub const MAX_KEYS: usize = 1000;

#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub objects: u64,
    width: usize,
    /// Every body padded (or cut) to this many bytes; `None`: one short line.
    object_size: Option<u64>,
    /// Files the objects cycle through, instead of generated bodies.
    corpus: Option<Arc<Corpus>>,
}

/// What a ListObjectsV2 request asks for, as far as paging goes.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub start_after: Option<String>,
    pub token: Option<String>,
    pub max_keys: usize,
}

/// Objects `from..to` (by number) answer the request; `next` is where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub from: u64,
    pub to: u64,
    pub next: Option<u64>,
}

/// A continuation token we did not issue.
#[derive(Debug, PartialEq, Eq)]
pub struct BadToken;

impl Bucket {
    /// The bucket called `name` if it ends in `-<N>` (e.g. `scale-100000`): it holds `N` objects.
    pub fn parse(name: &str, object_size: Option<u64>) -> Option<Bucket> {
        let (_, count) = name.rsplit_once('-')?;
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let objects: u64 = count.parse().ok()?;
        let width = objects.saturating_sub(1).max(1).to_string().len();
        Some(Bucket {
            name: name.to_owned(),
            objects,
            width,
            object_size,
            corpus: None,
        })
    }

    /// The same bucket serving the files of `corpus` (object `i`: file `i % len`).
    pub fn with_corpus(mut self, corpus: Option<Arc<Corpus>>) -> Bucket {
        self.corpus = corpus;
        self
    }

    pub fn key(&self, i: u64) -> String {
        let mut out = String::with_capacity(2 * self.width + 5);
        self.write_key(i, &mut out);
        out
    }

    pub fn write_key(&self, i: u64, out: &mut String) {
        let w = self.width;
        let _ = write!(out, "{:0w$}/{:0w$}", i / GROUP * GROUP, i);
        match &self.corpus {
            // The number is fixed-width: what follows it does not change the keys' order.
            Some(corpus) => {
                out.push('-');
                out.push_str(&corpus.file(i).name);
            }
            None => out.push_str(".dat"),
        }
    }

    /// The number of the object called `key`, if there is one.
    pub fn find(&self, key: &str) -> Option<u64> {
        let (_, file) = key.split_once('/')?;
        let digits = file.bytes().take_while(u8::is_ascii_digit).count();
        let i: u64 = file[..digits].parse().ok()?;
        (i < self.objects && self.key(i) == key).then_some(i)
    }

    /// The first object whose key sorts at or after `s` (`objects` when none does).
    fn first_from(&self, s: &str, inclusive: bool) -> u64 {
        let (mut lo, mut hi) = (0, self.objects);
        let mut key = String::new();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            key.clear();
            self.write_key(mid, &mut key);
            let before = if inclusive {
                key.as_str() < s
            } else {
                key.as_str() <= s
            };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The page a ListObjectsV2 request gets: a continuation token wins over `start-after` (as on
    /// AWS); the page holds at most `max_keys` (≤ 1000) keys under the prefix, in key order, and says
    /// where to go on only when a key under the prefix is left.
    pub fn page(&self, q: &ListQuery) -> Result<Page, BadToken> {
        let mut start = self.first_from(&q.prefix, true);
        if let Some(token) = &q.token {
            start = start.max(decode_token(token).ok_or(BadToken)?);
        } else if let Some(after) = q.start_after.as_deref().filter(|s| !s.is_empty()) {
            start = start.max(self.first_from(after, false));
        }
        let start = start.min(self.objects);
        let max_keys = q.max_keys.min(MAX_KEYS) as u64;
        let under = |i: u64| i < self.objects && self.key(i).starts_with(&q.prefix);
        // Keys under a prefix are contiguous: only the page's ends need checking.
        let mut to = (start + max_keys).min(self.objects);
        if to > start && !under(to - 1) {
            to = start + self.count_under(start, to, &q.prefix);
        }
        let next = (max_keys > 0 && to - start == max_keys && under(to)).then_some(to);
        Ok(Page {
            from: start,
            to,
            next,
        })
    }

    /// How many objects from `start` on (before `end`) are under `prefix` (binary search).
    fn count_under(&self, start: u64, end: u64, prefix: &str) -> u64 {
        let (mut lo, mut hi) = (start, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid).starts_with(prefix) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo - start
    }

    pub fn body(&self, i: u64) -> Vec<u8> {
        if let Some(corpus) = &self.corpus {
            return corpus.file(i).bytes.clone();
        }
        let line = format!("synthetic object {} of bucket {}\n", self.key(i), self.name);
        match self.object_size {
            None => line.into_bytes(),
            Some(size) => line.bytes().cycle().take(size as usize).collect(),
        }
    }

    /// Object `i`'s size (the same for every object of a generated bucket).
    pub fn size(&self, i: u64) -> u64 {
        if let Some(corpus) = &self.corpus {
            return corpus.file(i).bytes.len() as u64;
        }
        match self.object_size {
            Some(size) => size,
            // The line's length without building it: its variable parts are the key and the name.
            // Every key is `2 * width + 5` bytes long (numbers below `objects` fit the width).
            None => {
                ("synthetic object  of bucket \n".len() + 2 * self.width + 5 + self.name.len())
                    as u64
            }
        }
    }

    /// A stable ETag: a corpus file's own (the MD5 of its bytes, as S3's), else the quoted hex MD5
    /// of the bucket, key and size (not of the body).
    pub fn etag(&self, i: u64) -> String {
        if let Some(corpus) = &self.corpus {
            return corpus.file(i).etag.clone();
        }
        let digest = Md5::new()
            .chain_update(self.name.as_bytes())
            .chain_update(b"/")
            .chain_update(self.key(i).as_bytes())
            .chain_update(self.size(i).to_le_bytes())
            .finalize();
        let mut out = String::with_capacity(34);
        out.push('"');
        for b in digest {
            let _ = write!(out, "{b:02x}");
        }
        out.push('"');
        out
    }

    /// Seconds into 2024-01-01 (a Monday) at which object `i` was last modified.
    fn second_of_day(i: u64) -> (u64, u64, u64) {
        let s = i % 86_400;
        (s / 3600, s / 60 % 60, s % 60)
    }

    /// `LastModified` in a listing: `2024-01-01T13:45:07.000Z`.
    pub fn last_modified_iso(i: u64) -> String {
        let (h, m, s) = Self::second_of_day(i);
        format!("2024-01-01T{h:02}:{m:02}:{s:02}.000Z")
    }

    /// `Last-Modified` of HeadObject/GetObject: `Mon, 01 Jan 2024 13:45:07 GMT`.
    pub fn last_modified_http(i: u64) -> String {
        let (h, m, s) = Self::second_of_day(i);
        format!("Mon, 01 Jan 2024 {h:02}:{m:02}:{s:02} GMT")
    }
}

pub fn encode_token(next: u64) -> String {
    format!("syn-{next:x}")
}

fn decode_token(token: &str) -> Option<u64> {
    u64::from_str_radix(token.strip_prefix("syn-")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(n: u64) -> Bucket {
        Bucket::parse(&format!("scale-{n}"), None).unwrap()
    }

    /// Follows continuation tokens to the end, checking each page as a client would.
    fn list_all(b: &Bucket, mut q: ListQuery) -> Vec<String> {
        let mut keys = Vec::new();
        loop {
            let page = b.page(&q).unwrap();
            assert!(page.to - page.from <= q.max_keys.min(MAX_KEYS) as u64);
            keys.extend((page.from..page.to).map(|i| b.key(i)));
            match page.next {
                Some(next) => {
                    assert_eq!(page.to - page.from, q.max_keys.min(MAX_KEYS) as u64);
                    q.token = Some(encode_token(next));
                }
                None => return keys,
            }
        }
    }

    #[test]
    fn names_give_counts() {
        assert_eq!(bucket(12_345).objects, 12_345);
        assert_eq!(Bucket::parse("a-b-0", None).unwrap().objects, 0);
        assert!(Bucket::parse("plain", None).is_none());
        assert!(Bucket::parse("scale-", None).is_none());
        assert!(Bucket::parse("scale-1e3", None).is_none());
    }

    #[test]
    fn keys_sort_in_number_order_and_round_trip() {
        for n in [1, 10, 11, 1000, 1001, 12_345] {
            let b = bucket(n);
            let keys: Vec<String> = (0..n).map(|i| b.key(i)).collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "n={n}");
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(b.find(k), Some(i as u64));
                assert_eq!(b.size(i as u64), b.body(i as u64).len() as u64, "{k}");
            }
            assert_eq!(b.find(&b.key(n)), None, "past the end");
        }
        let b = bucket(12_345);
        assert_eq!(b.key(0), "00000/00000.dat");
        assert_eq!(b.key(12_344), "12000/12344.dat");
        assert_eq!(b.find("0/0.dat"), None, "not zero-padded");
    }

    #[test]
    fn paging_lists_every_key_once_in_order() {
        let b = bucket(2_503);
        for max_keys in [1, 7, 1000, 5000] {
            let keys = list_all(
                &b,
                ListQuery {
                    max_keys,
                    ..ListQuery::default()
                },
            );
            let expected: Vec<String> = (0..2_503).map(|i| b.key(i)).collect();
            assert_eq!(keys, expected, "max_keys={max_keys}");
        }
        // A bucket of exactly one full page is not truncated.
        let one = bucket(1000);
        let page = one
            .page(&ListQuery {
                max_keys: 1000,
                ..ListQuery::default()
            })
            .unwrap();
        assert_eq!(
            page,
            Page {
                from: 0,
                to: 1000,
                next: None
            }
        );
        assert_eq!(
            list_all(
                &bucket(0),
                ListQuery {
                    max_keys: 10,
                    ..ListQuery::default()
                }
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn prefix_and_start_after_narrow_the_listing() {
        let b = bucket(12_345);
        let q = |prefix: &str, after: Option<&str>| ListQuery {
            prefix: prefix.into(),
            start_after: after.map(str::to_owned),
            max_keys: 300,
            token: None,
        };
        let group = list_all(&b, q("01000/", None));
        assert_eq!(group.len(), 1000);
        assert_eq!(group[0], "01000/01000.dat");
        assert_eq!(group[999], "01000/01999.dat");
        assert_eq!(list_all(&b, q("12000/", None)).len(), 345, "last group");
        assert_eq!(list_all(&b, q("01000/0150", None)).len(), 10);
        assert!(list_all(&b, q("zzz", None)).is_empty());
        assert!(list_all(&b, q("", Some("~"))).is_empty());
        // start-after: strictly after the key, whether or not it exists.
        let after = list_all(&b, q("", Some("12000/12340.dat")));
        assert_eq!(
            after,
            [
                "12000/12341.dat",
                "12000/12342.dat",
                "12000/12343.dat",
                "12000/12344.dat"
            ]
        );
        assert_eq!(list_all(&b, q("", Some("12000/12340"))).len(), 5);
        // start-after before the prefix starts the prefix; inside it, cuts it.
        assert_eq!(list_all(&b, q("01000/", Some("00999"))).len(), 1000);
        assert_eq!(
            list_all(&b, q("01000/", Some("01000/01499.dat"))).len(),
            500
        );
    }

    #[test]
    fn a_token_wins_over_start_after_and_unknown_tokens_are_refused() {
        let b = bucket(100);
        let q = ListQuery {
            start_after: Some("00/50.dat".into()),
            token: Some(encode_token(10)),
            max_keys: 5,
            ..ListQuery::default()
        };
        assert_eq!(
            b.page(&q).unwrap(),
            Page {
                from: 10,
                to: 15,
                next: Some(15)
            }
        );
        let bad = ListQuery {
            token: Some("opaque".into()),
            ..q
        };
        assert_eq!(b.page(&bad), Err(BadToken));
    }

    /// A bucket of `n` objects cycling through three files (one name with two dots).
    fn corpus_bucket(n: u64) -> (Bucket, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pdf"), "%PDF-1.4 a").unwrap();
        std::fs::write(dir.path().join("b.txt.gz"), "gz").unwrap();
        std::fs::write(dir.path().join("c.docx"), "PK docx bytes").unwrap();
        let corpus = Arc::new(Corpus::load(dir.path(), &[]).unwrap());
        let b = Bucket::parse(&format!("mixed-{n}"), None)
            .unwrap()
            .with_corpus(Some(corpus));
        (b, dir)
    }

    #[test]
    fn a_corpus_bucket_serves_its_files_under_their_names() {
        let (b, _dir) = corpus_bucket(2_503);
        assert_eq!(b.key(0), "0000/0000-a.pdf");
        assert_eq!(b.key(1), "0000/0001-b.txt.gz");
        assert_eq!(b.key(2_502), "2000/2502-a.pdf");
        let keys: Vec<String> = (0..2_503).map(|i| b.key(i)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "listing order");
        for (i, k) in keys.iter().enumerate() {
            let i = i as u64;
            assert_eq!(b.find(k), Some(i), "{k}");
            assert_eq!(b.size(i), b.body(i).len() as u64, "{k}");
        }
        assert_eq!(b.body(5), b"PK docx bytes");
        assert_eq!(b.body(3), b"%PDF-1.4 a");
        assert_eq!(b.etag(0), b.etag(3), "same bytes, same ETag (as on S3)");
        assert_ne!(b.etag(0), b.etag(1));
        assert_eq!(b.find("0000/0001-a.pdf"), None, "object 1 is not a.pdf");
        assert_eq!(b.find("0000/0001.dat"), None);
        assert_eq!(b.find("2000/2503-c.docx"), None, "past the end");
        // Paging, prefixes and start-after work as for generated keys.
        let all = list_all(
            &b,
            ListQuery {
                max_keys: 700,
                ..ListQuery::default()
            },
        );
        assert_eq!(all, keys);
        let q = ListQuery {
            prefix: "1000/".into(),
            start_after: Some("1000/1997-c.docx".into()),
            max_keys: 1000,
            token: None,
        };
        assert_eq!(list_all(&b, q), ["1000/1998-a.pdf", "1000/1999-b.txt.gz"]);
    }

    #[test]
    fn objects_are_stable() {
        let b = Bucket::parse("x-10", Some(100)).unwrap();
        assert_eq!(b.body(3), b.body(3));
        assert_eq!(b.body(3).len(), 100);
        assert_eq!(b.etag(3), b.etag(3));
        assert_ne!(b.etag(3), b.etag(4));
        assert_eq!(Bucket::last_modified_iso(3_723), "2024-01-01T01:02:03.000Z");
        assert_eq!(
            Bucket::last_modified_http(86_400 + 3_723),
            "Mon, 01 Jan 2024 01:02:03 GMT"
        );
    }
}
