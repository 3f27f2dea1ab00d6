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

/// Decodes at most about `max_chars` characters of `bytes` as text, rejecting binary content.
pub(crate) fn decode(bytes: &[u8], max_chars: usize) -> Result<Cow<'_, str>> {
    // Every character takes at most 4 bytes, so this prefix holds more than `max_chars` of them.
    let cut = bytes
        .len()
        .min(max_chars.saturating_mul(4).saturating_add(4));
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
    fn binary_is_rejected() {
        let blob: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(decode(&blob, 100_000).is_err());
        assert!(decode(b"abc\0def", 100).is_err());
    }
}
