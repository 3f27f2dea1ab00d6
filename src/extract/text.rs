//! Plain text family: charset detection and a binary-content guard.
//!
//! The encoding is taken from a byte-order mark (UTF-8, UTF-16LE/BE); without one, valid UTF-8 is
//! used as is, text whose every other byte is NUL is read as UTF-16, and anything else is decoded as
//! windows-1252 (which maps every byte, so nothing is lost). Files that look binary (NUL bytes or many
//! control characters) are rejected instead of producing megabytes of garbage.

use super::{ExtractError, Out, Result};
use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};
use std::borrow::Cow;

/// Bytes inspected by the binary and UTF-16 heuristics.
const SAMPLE: usize = 8192;

/// Extracts a plain text file.
pub(crate) fn extract(bytes: &[u8], out: &mut Out) -> Result<()> {
    let text = decode(bytes, out.remaining())?;
    out.push_str(&text);
    Ok(())
}

/// How many of a file's first bytes [`decode`] reads, at most, for `max_chars` characters: the
/// decoded prefix, or the sniffed sample when that is longer. The rest of the file cannot change
/// the text, so the service keeps no more of a plain text file (`super::pool`).
pub(crate) fn bytes_read(max_chars: usize) -> usize {
    decoded_prefix(max_chars).max(SAMPLE)
}

/// Every character takes at most 4 bytes, so this prefix holds more than `max_chars` of them.
fn decoded_prefix(max_chars: usize) -> usize {
    max_chars.saturating_mul(4).saturating_add(4)
}

/// Decodes at most about `max_chars` characters of `bytes` as text, rejecting binary content.
pub(crate) fn decode(bytes: &[u8], max_chars: usize) -> Result<Cow<'_, str>> {
    let cut = bytes.len().min(decoded_prefix(max_chars));
    let (encoding, bom_len) = match Encoding::for_bom(bytes) {
        Some((enc, len)) => (enc, len),
        None => (sniff(bytes), 0),
    };
    let body = &bytes[bom_len.min(cut)..cut];
    let text: Cow<'_, str> = if encoding == UTF_8 {
        match std::str::from_utf8(body) {
            Ok(s) => Cow::Borrowed(s),
            // Cut in the middle of a character: keep the complete prefix.
            Err(e) if e.error_len().is_none() => {
                Cow::Borrowed(std::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default())
            }
            Err(_) => WINDOWS_1252.decode_without_bom_handling(body).0,
        }
    } else {
        encoding.decode_without_bom_handling(body).0
    };
    if looks_binary(&text) {
        return Err(ExtractError::Corrupt("binary content".into()));
    }
    Ok(text)
}

/// Guesses the encoding of BOM-less bytes: UTF-8, UTF-16 (by NUL positions) or windows-1252.
fn sniff(bytes: &[u8]) -> &'static Encoding {
    let sample = &bytes[..bytes.len().min(SAMPLE)];
    let pairs = sample.len() / 2;
    if pairs >= 2 {
        let even_nul = sample.iter().step_by(2).filter(|&&b| b == 0).count();
        let odd_nul = sample
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|&&b| b == 0)
            .count();
        // ASCII-heavy UTF-16: the high byte of most code units is zero, the low byte never.
        if odd_nul * 10 >= pairs * 7 && even_nul * 50 < pairs {
            return UTF_16LE;
        }
        if even_nul * 10 >= pairs * 7 && odd_nul * 50 < pairs {
            return UTF_16BE;
        }
    }
    match std::str::from_utf8(sample) {
        Ok(_) => UTF_8,
        // Invalid only because the sample cuts a character at its end.
        Err(e) if e.error_len().is_none() => UTF_8,
        Err(_) => WINDOWS_1252,
    }
}

/// True when the start of `text` holds NUL or many other control characters.
pub(crate) fn looks_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut control = 0usize;
    for c in text.chars().take(SAMPLE) {
        total += 1;
        if c == '\0' {
            return true;
        }
        if (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{0C}')) || c == '\u{FFFD}' {
            control += 1;
        }
    }
    // Real text has practically no control characters; random bytes have about 12%.
    total > 0 && control * 100 > total * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_utf16_and_latin1() {
        assert_eq!(decode("héllo".as_bytes(), 100).unwrap(), "héllo");
        let mut le = vec![0xFF, 0xFE];
        le.extend("héllo".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(&le, 100).unwrap(), "héllo");
        let be: Vec<u8> = "héllo wörld"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(decode(&be, 100).unwrap(), "héllo wörld");
        assert_eq!(decode(b"caf\xe9 na\xefve", 100).unwrap(), "café naïve");
    }

    #[test]
    fn cut_inside_a_character_keeps_the_prefix() {
        let s = "ééééé".repeat(10);
        let text = decode(s.as_bytes(), 3).unwrap();
        assert!(text.starts_with("ééé"));
    }

    #[test]
    fn the_bytes_past_what_is_read_never_change_the_text() {
        // UTF-8 (cut inside a character), UTF-16 without a byte-order mark, windows-1252, binary.
        let utf8 = "ünïcode words ".repeat(2000).into_bytes();
        let utf16: Vec<u8> = "sixteen bits "
            .repeat(2000)
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let latin = b"caf\xe9 ".repeat(5000);
        // Valid UTF-8 at first, windows-1252 later in the sniffed sample.
        let mut mixed = "ünïcode ".repeat(100).into_bytes();
        mixed.extend_from_slice(&b"caf\xe9 ".repeat(100));
        let mut binary_late = b"words ".repeat(3000);
        binary_late.extend_from_slice(&[0u8; 100]);
        for bytes in [utf8, utf16, latin, mixed, binary_late] {
            for max_chars in [1, 3, 100, 2047, 2048, 100_000] {
                let prefix = &bytes[..bytes.len().min(bytes_read(max_chars))];
                let whole = decode(&bytes, max_chars).map_err(|e| e.to_string());
                let cut = decode(prefix, max_chars).map_err(|e| e.to_string());
                assert_eq!(
                    cut,
                    whole,
                    "{max_chars} characters of {} bytes",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn binary_is_rejected() {
        let blob: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(decode(&blob, 100_000).is_err());
        assert!(decode(b"abc\0def", 100).is_err());
    }
}
