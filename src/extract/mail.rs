//! E-mail: `.eml` (RFC 5322 / MIME, with mail-parser) and Outlook `.msg` (OLE compound file, with
//! cfb). Both yield the subject line, then the plain-text body (or the HTML body's visible text).

use super::{ExtractError, Out, Result, html};
use encoding_rs::{UTF_16LE, WINDOWS_1252};
use mail_parser::MessageParser;
use std::io::{Cursor, Read};

/// Extracts subject and text bodies of an `.eml` message.
pub(crate) fn extract_eml(bytes: &[u8], out: &mut Out) -> Result<()> {
    let message = MessageParser::default()
        .parse(bytes)
        // Without a single header this is some other text file, not a message.
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| ExtractError::Corrupt("not an e-mail message".into()))?;
    if let Some(subject) = message.subject() {
        out.push_str(subject);
        out.newline();
    }
    // `body_text` renders HTML-only parts as text.
    for i in 0..message.text_body_count().min(64) {
        out.check_deadline()?;
        if let Some(body) = message.body_text(i) {
            out.push_str(&body);
            out.newline();
        }
    }
    Ok(())
}

/// MAPI property streams of a `.msg` file: (Unicode, 8-bit) variants.
const SUBJECT: (&str, &str) = ("/__substg1.0_0037001F", "/__substg1.0_0037001E");
const BODY: (&str, &str) = ("/__substg1.0_1000001F", "/__substg1.0_1000001E");
/// HTML body: binary (in the message's charset) or Unicode.
const HTML_BODY: (&str, &str) = ("/__substg1.0_10130102", "/__substg1.0_1013001F");

/// Extracts subject and body of an Outlook `.msg` file.
pub(crate) fn extract_msg(bytes: &[u8], out: &mut Out) -> Result<()> {
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes))
        .map_err(|e| ExtractError::Corrupt(format!("msg: {e}")))?;
    let limit = out.max_bytes.min(bytes.len() as u64);
    if let Some(subject) = string_prop(&mut file, SUBJECT, limit)? {
        out.push_str(&subject);
        out.newline();
    }
    out.check_deadline()?;
    if let Some(body) = string_prop(&mut file, BODY, limit)? {
        out.push_str(&body);
    } else if let Some(raw) = stream(&mut file, HTML_BODY.0, limit)? {
        html::extract(&raw, out)?;
    } else if let Some(raw) = stream(&mut file, HTML_BODY.1, limit)? {
        let text = UTF_16LE.decode_without_bom_handling(&raw).0;
        html::extract(text.as_bytes(), out)?;
    }
    if out.is_blank() && !file.is_stream("/__properties_version1.0") {
        return Err(ExtractError::Corrupt("not an Outlook message".into()));
    }
    Ok(())
}

/// A string property from its Unicode (UTF-16LE) or 8-bit (windows-1252) stream.
fn string_prop<F: Read + std::io::Seek>(
    file: &mut cfb::CompoundFile<F>,
    (unicode, ansi): (&str, &str),
    limit: u64,
) -> Result<Option<String>> {
    if let Some(raw) = stream(file, unicode, limit)? {
        let text = UTF_16LE.decode_without_bom_handling(&raw).0;
        return Ok(Some(text.trim_end_matches('\0').to_string()));
    }
    Ok(stream(file, ansi, limit)?.map(|raw| {
        let text = WINDOWS_1252.decode_without_bom_handling(&raw).0;
        text.trim_end_matches('\0').to_string()
    }))
}

/// The content of stream `path`, at most `limit` bytes; `None` if absent.
fn stream<F: Read + std::io::Seek>(
    file: &mut cfb::CompoundFile<F>,
    path: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>> {
    if !file.is_stream(path) {
        return Ok(None);
    }
    let mut s = file
        .open_stream(path)
        .map_err(|e| ExtractError::Corrupt(format!("msg: {e}")))?;
    let mut data = Vec::new();
    (&mut s)
        .take(limit)
        .read_to_end(&mut data)
        .map_err(|e| ExtractError::Corrupt(format!("msg: {e}")))?;
    Ok(Some(data))
}
