//! Which indexed documents vanished from the source, in memory that does not grow with the bucket
//! (docs/architecture.md#reconciliation).
//!
//! While it lists, a sync records the id of every object it produced ([`Seen::listed`]). After a
//! complete listing it scans the ids the index holds ([`Seen::indexed`]); what the index holds and
//! the listing did not produce is stale ([`Seen::stale`]).
//!
//! Both sides are split on their id into [`SHARDS`] shards (our ids are MD5 digests, so the split
//! is even). While a side is small its shards stay in memory; past [`SPILL_BYTES`] they are
//! appended to one file per shard and side in the job's spill directory ([`dir::SpillDir`]). The
//! join then takes one shard at a time: its listed keys sorted in memory, its indexed records
//! streamed against them. Memory is two buffers of [`SPILL_BYTES`] plus one shard of listed keys
//! (16 bytes an object, 1/256 of the bucket: 625 KiB at 10 million objects); disk is 18 bytes per
//! listed object and per indexed document (more for ids that are not MD5 hex).

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
    let bytes = id.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

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
            listed: Shards::new("listed"),
            indexed: Shards::new("indexed"),
        }
    }

    /// The sync produced a document with this id.
    pub fn listed(&mut self, id: &str) -> Result<(), SpillError> {
        let (key, _) = key_of(id);
        self.listed
            .push(&mut self.dir, &key, None)
            .map_err(|e| self.err(e))
    }

    /// The index holds a document with this id.
    pub fn indexed(&mut self, id: &str) -> Result<(), SpillError> {
        let (key, ours) = key_of(id);
        let original = (!ours).then_some(id);
        self.indexed
            .push(&mut self.dir, &key, original)
            .map_err(|e| self.err(e))
    }

    /// Bytes written to the spill directory so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.listed.spilled + self.indexed.spilled
    }

    /// Every id the index holds and the listing did not produce, shard by shard. The spill
    /// directory goes when the returned iterator is dropped.
    pub fn stale(self) -> Stale {
        Stale {
            seen: self,
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

/// The stale ids, read shard by shard.
pub struct Stale {
    seen: Seen,
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
    type Item = Result<String, SpillError>;

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
                Some(Ok(record)) if listed.binary_search(&record.key).is_err() => {
                    return Some(Ok(record.into_id()));
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
