//! Which indexed documents vanished from the source, in memory that does not grow with the bucket
//! (docs/architecture.md#reconciliation).
//!
//! While it lists, a sync records the id of every object it produced ([`Seen::listed`]) and, at
//! the same time, the ids the index held when the sync began ([`Seen::indexed`], each with the
//! partition its document names). After a complete listing, what the index held and the listing
//! did not produce is stale ([`Seen::stale`]), but for the documents of partitions kept whole.
//!
//! Both sides are split on their id into [`SHARDS`] shards (our ids are MD5 digests, so the split
//! is even). While a side is small its shards stay in memory; past [`SPILL_BYTES`] they are
//! appended to one file per shard and side in the job's spill directory ([`dir::SpillDir`]). The
//! join then takes one shard at a time: its listed keys sorted in memory, its indexed records
//! streamed against them. Memory is two buffers of [`SPILL_BYTES`] plus one shard of listed keys
//! (16 bytes an object, 1/256 of the bucket: 625 KiB at 10 million objects); disk is 18 bytes per
//! listed object and 22 per indexed document (more for ids that are not MD5 hex).

mod dir;
mod shards;

pub use dir::SpillDir;
use md5::{Digest, Md5};
use shards::{Record, Shards};
use std::io;
use std::path::{Path, PathBuf};

/// Number of shards of each side.
pub const SHARDS: usize = 256;
/// Bytes a side keeps in memory before it writes its shards out.
pub const SPILL_BYTES: usize = 4 << 20;
/// The partition of an indexed document that names none of the sync's.
pub const NO_PARTITION: u32 = u32::MAX;

/// A fixed-size key for any id: the 16 bytes of an MD5-hex id (the ids our sources make), else an
/// MD5 of the id with a prefix no hex id has.
fn key_of(id: &str) -> ([u8; 16], bool) {
    if let Some(raw) = parse_md5(id) {
        return (raw, true);
    }
    let mut h = Md5::new();
    h.update(b"\0other\0");
    h.update(id.as_bytes());
    (h.finalize().into(), false)
}

fn parse_md5(id: &str) -> Option<[u8; 16]> {
    let bytes: &[u8; 32] = id.as_bytes().try_into().ok()?;
    let mut out = [0u8; 16];
    // Any byte that is not lowercase hex sets the high bit of `bad` (its table entry is 0x10).
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let (hi, lo) = (NIBBLE[pair[0] as usize], NIBBLE[pair[1] as usize]);
        bad |= hi | lo;
        *o = hi << 4 | (lo & 0x0f);
    }
    (bad & 0x10 == 0).then_some(out)
}

/// Each byte's value as a lowercase hex digit, or 0x10 when it is none.
const NIBBLE: [u8; 256] = {
    let mut table = [0x10u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

fn hex(raw: &[u8; 16]) -> String {
    use std::fmt::Write;
    raw.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Why the temporary files of a reconciliation failed.
#[derive(Debug, thiserror::Error)]
#[error("temporary files under {}: {source}; nothing was deleted", .dir.display())]
pub struct SpillError {
    pub dir: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The two sides of one sync's reconciliation.
pub struct Seen {
    dir: SpillDir,
    listed: Shards,
    indexed: Shards,
}

impl Seen {
    /// Spill files, when a side outgrows memory, go to a new directory under `base`.
    pub fn new(base: &Path) -> Seen {
        Seen {
            dir: SpillDir::new(base),
            listed: Shards::new("listed", false),
            indexed: Shards::new("indexed", true),
        }
    }

    /// The sync produced a document with this id.
    pub fn listed(&mut self, id: &str) -> Result<(), SpillError> {
        let (key, _) = key_of(id);
        self.listed
            .push(&mut self.dir, &key, 0, None)
            .map_err(|e| self.err(e))
    }

    /// The index holds a document with this id, of partition `partition` ([`NO_PARTITION`]
    /// when it names none of the sync's).
    pub fn indexed(&mut self, id: &str, partition: u32) -> Result<(), SpillError> {
        let (key, ours) = key_of(id);
        let original = (!ours).then_some(id);
        self.indexed
            .push(&mut self.dir, &key, partition, original)
            .map_err(|e| self.err(e))
    }

    /// Bytes written to the spill directory so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.listed.spilled + self.indexed.spilled
    }

    /// Every id the index holds and the listing did not produce, shard by shard, but for those of
    /// the partitions in `keep`. The spill directory goes when the returned iterator is dropped.
    pub fn stale(self, keep: Vec<u32>) -> Stale {
        Stale {
            seen: self,
            keep,
            shard: 0,
            current: None,
        }
    }

    fn err(&self, source: io::Error) -> SpillError {
        SpillError {
            dir: self.dir.path().to_path_buf(),
            source,
        }
    }
}

/// A stale id and the shard it was read from: the shards come in order, so a shard number says
/// how far the stale ids have gone (a resumed job's deletions continue from one).
#[derive(Debug, PartialEq, Eq)]
pub struct StaleId {
    pub shard: usize,
    pub id: String,
}

/// The stale ids, read shard by shard.
pub struct Stale {
    seen: Seen,
    /// Partitions whose documents are never stale.
    keep: Vec<u32>,
    /// The next shard to open.
    shard: usize,
    /// The open shard: its listed keys, sorted, and its indexed records.
    current: Option<(Vec<[u8; 16]>, shards::Records)>,
}

impl Stale {
    fn open(&mut self, shard: usize) -> io::Result<(Vec<[u8; 16]>, shards::Records)> {
        let seen = &mut self.seen;
        let mut listed = seen.listed.take_keys(&seen.dir, shard)?;
        listed.sort_unstable();
        Ok((listed, seen.indexed.records(&seen.dir, shard)?))
    }
}

impl Iterator for Stale {
    type Item = Result<StaleId, SpillError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                if self.shard == SHARDS {
                    return None;
                }
                let shard = self.shard;
                self.shard += 1;
                match self.open(shard) {
                    Ok(open) => self.current = Some(open),
                    Err(e) => {
                        self.shard = SHARDS;
                        return Some(Err(self.seen.err(e)));
                    }
                }
            }
            let (listed, records) = self.current.as_mut().expect("a shard is open");
            match records.next() {
                None => self.current = None,
                Some(Err(e)) => {
                    self.shard = SHARDS;
                    self.current = None;
                    return Some(Err(self.seen.err(e)));
                }
                Some(Ok(record))
                    if !self.keep.contains(&record.tag)
                        && listed.binary_search(&record.key).is_err() =>
                {
                    return Some(Ok(StaleId {
                        shard: self.shard - 1,
                        id: record.into_id(),
                    }));
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

impl Record {
    fn into_id(self) -> String {
        self.original.unwrap_or_else(|| hex(&self.key))
    }
}

#[cfg(test)]
mod tests;
