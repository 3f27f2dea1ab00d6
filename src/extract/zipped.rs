//! Bounded access to zip containers (OOXML, OpenDocument).
//!
//! Every entry is checked against its declared size before inflating and read through
//! `Read::take`, so a zip bomb costs at most the remaining decompression budget. zip 9 itself refuses
//! to inflate past an entry's declared size, which also bounds readers we do not control (calamine).

use super::{ExtractError, Out, Result};
use std::io::{Cursor, Read};
use zip::ZipArchive;
use zip::result::ZipError;

/// Signature of OLE compound files; password-protected OOXML files are such files.
const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// A zip archive read from memory, with the remaining decompression budget.
pub(crate) struct Zip<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    budget: u64,
    limit: u64,
}

impl<'a> Zip<'a> {
    /// Opens `bytes` as a zip archive; budget is `out.max_bytes`.
    pub(crate) fn open(bytes: &'a [u8], out: &Out) -> Result<Self> {
        if is_encrypted_ooxml(bytes) {
            return Err(ExtractError::Encrypted);
        }
        let archive = ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
        Ok(Zip {
            archive,
            budget: out.max_bytes,
            limit: out.max_bytes,
        })
    }

    /// Entry names, in archive order (undecodable names are skipped).
    pub(crate) fn names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .flatten()
            .map(|n| n.into_owned())
            .collect()
    }

    /// True if the archive has an entry `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.archive.index_for_name(name).is_some()
    }

    /// Inflates entry `name`, charging it to the budget. `Ok(None)` if there is no such entry.
    pub(crate) fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        let mut file = match self.archive.by_name(name) {
            Ok(file) => file,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(zip_error(e)),
        };
        let too_large = ExtractError::TooLarge(format!("zip entries exceed {} bytes", self.limit));
        if file.size() > self.budget {
            return Err(too_large);
        }
        // Declared sizes may lie: read at most budget + 1 bytes to notice an overrun.
        let capacity = usize::try_from(file.size()).unwrap_or(0).min(1 << 24);
        let mut data = Vec::with_capacity(capacity);
        (&mut file)
            .take(self.budget.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| ExtractError::Corrupt(format!("zip entry {name}: {e}")))?;
        let used = data.len() as u64;
        if used > self.budget {
            return Err(too_large);
        }
        self.budget -= used;
        Ok(Some(data))
    }
}

/// Fails with `TooLarge` if the declared sizes of all entries add up to more than `limit`; for
/// archives handed whole to another parser.
pub(crate) fn check_declared_total(bytes: &[u8], limit: u64) -> Result<()> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
    let mut total = 0u64;
    for i in 0..archive.len() {
        // The central directory's sizes; zip 9 refuses to inflate an entry past them.
        let size = archive.by_index_raw(i).map_err(zip_error)?.size();
        total = total.saturating_add(size);
        if total > limit {
            return Err(ExtractError::TooLarge(format!(
                "zip entries declare more than {limit} bytes"
            )));
        }
    }
    Ok(())
}

/// True for an OLE compound file, the container of password-protected OOXML documents.
pub(crate) fn is_cfb(bytes: &[u8]) -> bool {
    bytes.starts_with(&CFB_MAGIC)
}

/// True for a password-protected OOXML document (a compound file with an `EncryptedPackage`).
pub(crate) fn is_encrypted_ooxml(bytes: &[u8]) -> bool {
    is_cfb(bytes)
        && cfb::CompoundFile::open(Cursor::new(bytes))
            .is_ok_and(|f| f.is_stream("/EncryptedPackage") || f.is_stream("EncryptedPackage"))
}

/// Maps a zip error to an extraction error.
fn zip_error(e: ZipError) -> ExtractError {
    match e {
        ZipError::UnsupportedArchive(msg) if msg.to_ascii_lowercase().contains("password") => {
            ExtractError::Encrypted
        }
        e => ExtractError::Corrupt(format!("zip: {e}")),
    }
}
