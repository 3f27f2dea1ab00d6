//! PDF with lopdf (no default features): every page in order, NFKC-normalised.
//!
//! lopdf keeps ligature code points (`ﬁ` U+FB01), which NFKC turns back into letters. A document
//! with a user password loads "successfully" with no text, so `is_encrypted()` is checked; and a
//! PDF that yields no text at all (scanned images, broken fonts) is reported as `Corrupt("no text")`
//! rather than indexed with an empty body.

use super::{ExtractError, Out, Result};
use lopdf::Document;
use unicode_normalization::UnicodeNormalization;

/// Extracts the text of every page.
pub(crate) fn extract(bytes: &[u8], out: &mut Out) -> Result<()> {
    let doc = Document::load_mem(bytes).map_err(|e| {
        let msg = e.to_string();
        let lower = msg.to_ascii_lowercase();
        if lower.contains("decrypt") || lower.contains("password") || lower.contains("encrypt") {
            ExtractError::Encrypted
        } else {
            ExtractError::Corrupt(format!("pdf: {msg}"))
        }
    })?;
    if doc.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    // Bound on the decompressed content streams of one page.
    let page_limit = usize::try_from(out.max_bytes).unwrap_or(usize::MAX);
    let mut first_error = None;
    for page in doc.get_pages().into_keys() {
        out.check_deadline()?;
        if out.is_full() {
            break;
        }
        match doc.extract_text_with_limit(&[page], page_limit) {
            Ok(text) => {
                out.push_str(&text.nfkc().collect::<String>());
                out.newline();
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("pdf page {page}: {e}"));
            }
        }
    }
    if out.is_blank() {
        return Err(ExtractError::Corrupt(
            first_error.unwrap_or_else(|| "no text".into()),
        ));
    }
    Ok(())
}
