//! One side of a reconciliation: records split into shards, in memory until they outgrow
//! [`SPILL_BYTES`](super::SPILL_BYTES), then appended to one file per shard.
//!
//! A record is the 16-byte key, on a tagged side a little-endian `u32` tag (the indexed side's
//! partition), a little-endian `u16` length and, for an id that is not an MD5 hex string, the id
//! itself (so that it can be deleted by its own name).

use super::dir::SpillDir;
use super::{SHARDS, SPILL_BYTES};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};

pub(super) struct Shards {
    name: &'static str,
    /// Whether records carry a tag.
    tagged: bool,
    buffers: Vec<Vec<u8>>,
    buffered: usize,
    /// Bytes written to files so far.
    pub spilled: u64,
    on_disk: Vec<bool>,
}

/// One record read back.
pub(super) struct Record {
    pub key: [u8; 16],
    /// The record's tag (0 on an untagged side).
    pub tag: u32,
    pub original: Option<String>,
}

impl Shards {
    pub fn new(name: &'static str, tagged: bool) -> Shards {
        Shards {
            name,
            tagged,
            buffers: vec![Vec::new(); SHARDS],
            buffered: 0,
            spilled: 0,
            on_disk: vec![false; SHARDS],
        }
    }

    fn file_name(&self, shard: usize) -> String {
        format!("{}-{shard:03}", self.name)
    }

    pub fn push(
        &mut self,
        dir: &mut SpillDir,
        key: &[u8; 16],
        tag: u32,
        original: Option<&str>,
    ) -> io::Result<()> {
        let original = original.map(str::as_bytes).unwrap_or_default();
        // Ids are short (Elasticsearch caps `_id` at 512 bytes); a longer one cannot be ours.
        let len = u16::try_from(original.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "id longer than 64 KiB"))?;
        let buffer = &mut self.buffers[usize::from(key[0])];
        let before = buffer.len();
        buffer.extend_from_slice(key);
        if self.tagged {
            buffer.extend_from_slice(&tag.to_le_bytes());
        }
        buffer.extend_from_slice(&len.to_le_bytes());
        buffer.extend_from_slice(original);
        self.buffered += buffer.len() - before;
        if self.buffered >= SPILL_BYTES {
            self.spill(dir)?;
        }
        Ok(())
    }

    /// Appends every shard's buffer to its file.
    fn spill(&mut self, dir: &mut SpillDir) -> io::Result<()> {
        let path = dir.ensure()?.to_path_buf();
        for shard in 0..SHARDS {
            if self.buffers[shard].is_empty() {
                continue;
            }
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path.join(self.file_name(shard)))?;
            file.write_all(&self.buffers[shard])?;
            self.spilled += self.buffers[shard].len() as u64;
            self.buffers[shard].clear();
            self.on_disk[shard] = true;
        }
        self.buffered = 0;
        Ok(())
    }

    /// The keys of `shard` (file and memory), leaving the shard empty.
    pub fn take_keys(&mut self, dir: &SpillDir, shard: usize) -> io::Result<Vec<[u8; 16]>> {
        let mut keys = Vec::new();
        for record in self.records(dir, shard)? {
            keys.push(record?.key);
        }
        Ok(keys)
    }

    /// The records of `shard`: its file's, then its buffer's, leaving the shard empty.
    pub fn records(&mut self, dir: &SpillDir, shard: usize) -> io::Result<Records> {
        let file = match self.on_disk[shard] {
            true => Some(BufReader::with_capacity(
                64 << 10,
                File::open(dir.path().join(self.file_name(shard)))?,
            )),
            false => None,
        };
        let memory = std::mem::take(&mut self.buffers[shard]);
        self.buffered -= memory.len();
        Ok(Records {
            file,
            memory: io::Cursor::new(memory),
            tagged: self.tagged,
        })
    }
}

/// The records of one shard, read back in the order they were written.
pub(super) struct Records {
    file: Option<BufReader<File>>,
    memory: io::Cursor<Vec<u8>>,
    tagged: bool,
}

impl Iterator for Records {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<io::Result<Record>> {
        if let Some(file) = &mut self.file {
            match read_record(file, self.tagged) {
                Ok(Some(r)) => return Some(Ok(r)),
                Ok(None) => self.file = None,
                Err(e) => return Some(Err(e)),
            }
        }
        read_record(&mut self.memory, self.tagged).transpose()
    }
}

/// The next record, `None` at a clean end; a record cut short is an error.
fn read_record(from: &mut impl Read, tagged: bool) -> io::Result<Option<Record>> {
    let mut head = [0u8; 22];
    let head = &mut head[..if tagged { 22 } else { 18 }];
    let mut got = 0;
    while got < head.len() {
        match from.read(&mut head[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&head[..16]);
    let (tag, len) = match tagged {
        true => (
            u32::from_le_bytes([head[16], head[17], head[18], head[19]]),
            [head[20], head[21]],
        ),
        false => (0, [head[16], head[17]]),
    };
    let len = usize::from(u16::from_le_bytes(len));
    let original = match len {
        0 => None,
        _ => {
            let mut bytes = vec![0u8; len];
            from.read_exact(&mut bytes)?;
            Some(
                String::from_utf8(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            )
        }
    };
    Ok(Some(Record { key, tag, original }))
}
