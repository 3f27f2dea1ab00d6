//! Native content extraction: bytes in, plain text out.
//!
//! Elastic's service ships every downloadable file base64-encoded to Elasticsearch and lets the
//! `attachment` ingest processor (Tika) extract it. This module does the extraction in-process instead.
//! [`extract`] is pure (no I/O, no async). The service does not call it itself: [`pool`] runs it in
//! supervised worker processes ([`worker`]), so that a parser that ignores its limits costs one
//! worker, not the service (see `pool`'s docs); only plain text, which has no parser, is decoded in
//! the service ([`read_in_place`]).
//!
//! Which files are extracted follows Elastic's allowlist (docs/architecture.md#content, compared on the
//! lower-cased extension) plus our additions `.htm`, `.eml` and gzip-compressed objects (`name.ext.gz`,
//! decided by the inner extension). Legacy binary formats of the allowlist that no extractor here reads
//! (`.doc .ppt .vsd`) are reported by [`is_known_unsupported`] and indexed metadata-only.
//!
//! Every extraction is bounded: at most [`Limits::max_chars`] characters come out, container formats
//! (zip, gzip) never inflate more than [`Limits::max_decompressed_bytes`], loops over pages, entries and
//! rows check [`Limits::deadline`] cooperatively, and a panic inside a parser is caught and reported as
//! [`ExtractError::Panicked`].

mod gzip;
mod html;
mod mail;
mod odf;
mod ooxml;
mod out;
mod pdf;
pub mod pool;
mod rtf;
mod spreadsheet;
mod text;
pub mod worker;
mod xls_guard;
mod xml;
mod zipped;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

pub(crate) use out::Out;

/// Bounds applied to one extraction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum number of characters returned (Elasticsearch's attachment processor default: 100 000).
    pub max_chars: usize,
    /// Cap on bytes inflated from a container (zip entries, gzip stream); guards against bombs.
    pub max_decompressed_bytes: u64,
    /// Cooperative time limit: loops over pages, entries, rows and chunks give up with
    /// [`ExtractError::Timeout`] once this instant has passed.
    pub deadline: Instant,
}

impl Limits {
    /// Default character cap, the same as Elasticsearch's attachment processor.
    pub const DEFAULT_MAX_CHARS: usize = 100_000;
    /// Default decompression cap: 64 MiB.
    pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 64 * 1024 * 1024;
    /// Default per-file time limit used by [`Limits::default`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// The defaults with a deadline `timeout` from now.
    pub fn with_timeout(timeout: Duration) -> Self {
        Limits {
            deadline: Instant::now() + timeout,
            ..Limits::default()
        }
    }
}

impl Default for Limits {
    /// 100 000 characters, 64 MiB decompressed, 30 seconds from now.
    fn default() -> Self {
        Limits {
            max_chars: Self::DEFAULT_MAX_CHARS,
            max_decompressed_bytes: Self::DEFAULT_MAX_DECOMPRESSED_BYTES,
            deadline: Instant::now() + Self::DEFAULT_TIMEOUT,
        }
    }
}

/// A file format this module extracts text from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Plain text family: `.txt .md .markdown .rst .py .rb .sh .csv .tsv .json .paper`.
    Text,
    /// XML documents (`.xml .svg`): character data, no markup.
    Xml,
    /// HTML (`.html .htm .aspx`): visible text only.
    Html,
    /// PDF.
    Pdf,
    /// Word 2007+ (`.docx`).
    Docx,
    /// Excel 2007+ (`.xlsx .xlsm`).
    Xlsx,
    /// Excel binary workbook (`.xlsb`).
    Xlsb,
    /// Excel 97–2003 (`.xls`).
    Xls,
    /// PowerPoint 2007+ and templates (`.pptx .potx`).
    Pptx,
    /// Visio 2013+ drawings (`.vsdx .vsdm`).
    Vsdx,
    /// OpenDocument text (`.odt`).
    Odt,
    /// OpenDocument spreadsheet (`.ods`).
    Ods,
    /// OpenDocument presentation (`.odp`).
    Odp,
    /// Rich Text Format (`.rtf`).
    Rtf,
    /// Outlook message (`.msg`, OLE compound file).
    Msg,
    /// Internet message (`.eml`, RFC 5322 / MIME).
    Eml,
    /// gzip-compressed object (`name.ext.gz`) whose inner extension is extractable.
    Gzip,
}

/// Elastic's allowlist (docs/architecture.md#content) that we do not extract: legacy binary formats without a reader here.
const KNOWN_UNSUPPORTED: &[&str] = &["doc", "ppt", "vsd"];

/// The lower-cased extension of `key` (after the last dot of the last path segment), if any.
fn extension(key: &str) -> Option<String> {
    // Python's os.path.splitext: leading dots belong to the stem (`.bashrc` has no extension).
    let name = key
        .rsplit('/')
        .next()
        .unwrap_or(key)
        .trim_start_matches('.');
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The format of one extension, without the gzip rule.
fn format_for_ext(ext: &str) -> Option<Format> {
    Some(match ext {
        "txt" | "md" | "markdown" | "rst" | "py" | "rb" | "sh" | "csv" | "tsv" | "json"
        | "paper" => Format::Text,
        "xml" | "svg" => Format::Xml,
        "html" | "htm" | "aspx" => Format::Html,
        "pdf" => Format::Pdf,
        "docx" => Format::Docx,
        "xlsx" | "xlsm" => Format::Xlsx,
        "xlsb" => Format::Xlsb,
        "xls" => Format::Xls,
        "pptx" | "potx" => Format::Pptx,
        "vsdx" | "vsdm" => Format::Vsdx,
        "odt" => Format::Odt,
        "ods" => Format::Ods,
        "odp" => Format::Odp,
        "rtf" => Format::Rtf,
        "msg" => Format::Msg,
        "eml" => Format::Eml,
        _ => return None,
    })
}

/// The key with a trailing `.gz` (any case) removed, if it has one.
fn strip_gz(key: &str) -> Option<&str> {
    let n = key.len();
    if n > 3 && key.is_char_boundary(n - 3) && key[n - 3..].eq_ignore_ascii_case(".gz") {
        Some(&key[..n - 3])
    } else {
        None
    }
}

/// The format to extract `key` with: Elastic's allowlist (docs/architecture.md#content, lower-cased extension) plus `.htm`,
/// `.eml`, `.ods`, `.odp` and `name.ext.gz` (the inner extension decides; one gzip layer only).
/// `None` means not extractable: the object is indexed metadata-only.
pub fn format_for(key: &str) -> Option<Format> {
    if let Some(inner) = strip_gz(key) {
        return match extension(inner).as_deref().and_then(format_for_ext) {
            Some(Format::Gzip) | None => None,
            Some(_) => Some(Format::Gzip),
        };
    }
    extension(key).as_deref().and_then(format_for_ext)
}

/// For a file extracted without isolation, how many of its first bytes the extraction reads; `None`
/// for a file that needs a worker. Only plain text qualifies: its extraction is a linear decode of
/// that bounded prefix with no parser behind it, so a hostile file can cost no more memory or time
/// than an ordinary one, and moving it to a worker and back costs more than decoding it
/// (docs/architecture.md#content).
pub fn read_in_place(key: &str, max_chars: usize) -> Option<usize> {
    (format_for(key) == Some(Format::Text)).then(|| text::bytes_read(max_chars))
}

/// True for extensions in Elastic's allowlist that we cannot extract (legacy binary `.doc .ppt .vsd`,
/// also when gzip-compressed): such objects are indexed metadata-only.
pub fn is_known_unsupported(key: &str) -> bool {
    let key = strip_gz(key).unwrap_or(key);
    extension(key).is_some_and(|ext| KNOWN_UNSUPPORTED.contains(&ext.as_str()))
}

/// Why no text came out of a file. The caller indexes the object metadata-only and logs the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// The file could not be parsed, or it holds no text.
    #[error("corrupt or unreadable file: {0}")]
    Corrupt(String),
    /// The file is password-protected.
    #[error("file is encrypted")]
    Encrypted,
    /// The file expands beyond a limit (`max_decompressed_bytes`, or a parser's size guard).
    #[error("file too large: {0}")]
    TooLarge(String),
    /// The per-file deadline passed.
    #[error("extraction timed out")]
    Timeout,
    /// No extractor for this key (not in the allowlist, or a known-unsupported legacy format).
    #[error("file format not supported")]
    Unsupported,
    /// A parser panicked; the panic was caught.
    #[error("extractor panicked: {0}")]
    Panicked(String),
}

/// Shorthand for results inside the extractors.
pub(crate) type Result<T> = std::result::Result<T, ExtractError>;

/// Extracts the text of `bytes`, choosing the format by `key` (see [`format_for`]).
///
/// Never panics (a parser panic becomes [`ExtractError::Panicked`]) and never exceeds `limits`: the
/// result holds at most `limits.max_chars` characters. The text is raw (line breaks kept); apply
/// [`reduce_whitespace`] when the pipeline asks for it.
pub fn extract(key: &str, bytes: &[u8], limits: &Limits) -> Result<String> {
    let format = format_for(key).ok_or(ExtractError::Unsupported)?;
    extract_as(format, key, bytes, limits)
}

/// Like [`extract`] with an explicit format (`key` is only used for gzip's inner extension).
pub fn extract_as(format: Format, key: &str, bytes: &[u8], limits: &Limits) -> Result<String> {
    match catch_unwind(AssertUnwindSafe(|| dispatch(format, key, bytes, limits))) {
        Ok(result) => result,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(ExtractError::Panicked(msg))
        }
    }
}

/// Runs the extractor of `format` into a fresh [`Out`] and checks that something came out.
fn dispatch(format: Format, key: &str, bytes: &[u8], limits: &Limits) -> Result<String> {
    if format == Format::Gzip {
        return gzip::extract(key, bytes, limits);
    }
    let mut out = Out::new(limits);
    out.check_deadline()?;
    match format {
        Format::Text => text::extract(bytes, &mut out)?,
        Format::Xml => xml::extract(bytes, &mut out)?,
        Format::Html => html::extract(bytes, &mut out)?,
        Format::Pdf => pdf::extract(bytes, &mut out)?,
        Format::Docx | Format::Pptx | Format::Vsdx => ooxml::extract(format, bytes, &mut out)?,
        Format::Xlsx | Format::Xlsb | Format::Xls => spreadsheet::extract(format, bytes, &mut out)?,
        Format::Odt | Format::Ods | Format::Odp => odf::extract(bytes, &mut out)?,
        Format::Rtf => rtf::extract(bytes, &mut out)?,
        Format::Msg => mail::extract_msg(bytes, &mut out)?,
        Format::Eml => mail::extract_eml(bytes, &mut out)?,
        Format::Gzip => return Err(ExtractError::Unsupported),
    }
    Ok(out.finish())
}

/// Elastic's default pipeline applied to `body` natively (docs/architecture.md#content): remove U+FFFD, replace
/// every run of whitespace (`\s+`, Java regex semantics: ASCII space, tab, line feed, vertical tab,
/// form feed, carriage return) with one space, then trim.
///
/// It works on bytes and copies each run of kept text at once: every byte it looks for is ASCII or
/// the lead byte of U+FFFD's encoding, so every cut falls between characters. A single space
/// between two kept bytes is already what the steps make of it, so it stays inside the run: a run
/// ends only at other whitespace, two spaces or a possible U+FFFD, which keeps the runs as long as
/// the text's lines rather than its words. The service runs it on every extracted text (up to
/// `max_chars`): a character at a time it took 29 % of the service's CPU on files of 100 KB of
/// text, a word at a time 21 %.
pub fn reduce_whitespace(text: &str) -> String {
    const FFFD: &[u8] = "\u{FFFD}".as_bytes();
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r');
    // The bytes a run may end at: whitespace and U+FFFD's lead byte.
    let ends_run = |b: u8| is_space(b) || b == FFFD[0];
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut pending_space = false;
    let mut i = 0;
    while i < bytes.len() {
        if is_space(bytes[i]) {
            pending_space = true;
            i += 1;
            continue;
        }
        if bytes[i..].starts_with(FFFD) {
            i += FFFD.len();
            continue;
        }
        // Kept: up to the next byte that ends a run, stepping over single spaces between kept
        // bytes.
        let run = i;
        i += 1;
        loop {
            while let Some(eight) = bytes.get(i..i + 8) {
                if !continues_run(u64::from_le_bytes(eight.try_into().expect("eight bytes"))) {
                    break;
                }
                i += 8;
            }
            while i < bytes.len() && !ends_run(bytes[i]) {
                i += 1;
            }
            if bytes[i..].first() == Some(&b' ') && bytes.get(i + 1).is_some_and(|&b| !ends_run(b))
            {
                i += 2;
                continue;
            }
            break;
        }
        if pending_space && !out.is_empty() {
            out.push(b' ');
        }
        pending_space = false;
        out.extend_from_slice(&bytes[run..i]);
    }
    let result = String::from_utf8(out).expect("cut between characters of a str");
    // ES's `trim` processor uses Java's String.trim(): it also strips other control characters
    // (<= U+0020) at both ends.
    let trimmed = result.trim_matches(|c: char| c <= ' ');
    if trimmed.len() == result.len() {
        result
    } else {
        trimmed.to_string()
    }
}

/// Whether eight bytes of text (little-endian), read inside a run, all belong to it: no control
/// character, no byte of U+FFFD's lead value, no two spaces in a row, and no space last (what
/// follows it is in the next eight). Word-at-a-time tests (each exact for "any byte"), so that
/// [`reduce_whitespace`] steps over most of a text eight bytes at a time.
fn continues_run(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    // Any byte under 0x20: the controls, tab to carriage return among them.
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH != 0;
    let lead = word ^ (ONES * 0xEF);
    let fffd_lead = lead.wrapping_sub(ONES) & !lead & HIGH != 0;
    // 0x80 in each byte that is a space, exactly (no borrow crosses bytes).
    let space = word ^ (ONES * u64::from(b' '));
    let spaces = !(((space & LOW7).wrapping_add(LOW7)) | space | LOW7);
    !control && !fffd_lead && spaces & (spaces >> 8) == 0 && spaces >> 63 == 0
}

#[cfg(test)]
mod tests;
