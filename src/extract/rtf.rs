//! Rich Text Format: a small, iterative RTF-to-text stripper.
//!
//! Handles groups, control words and symbols, `\'hh` bytes in the document code page
//! (`\ansicpg`, default windows-1252), `\uN` Unicode escapes with their `\ucN` fallback skipping,
//! and drops non-text destinations (font/colour/style tables, metadata, pictures, objects, field
//! instructions and every `{\* …}` group). Nesting is tracked on a heap stack, never recursion.

use super::{ExtractError, Out, Result};
use encoding_rs::{Encoding, WINDOWS_1252};

/// Destinations whose content is not document text.
const SKIPPED: &[&str] = &[
    "fonttbl",
    "colortbl",
    "stylesheet",
    "info",
    "pict",
    "object",
    "objdata",
    "themedata",
    "colorschememapping",
    "latentstyles",
    "datastore",
    "xmlnstbl",
    "listtable",
    "listoverridetable",
    "rsidtbl",
    "generator",
    "fldinst",
    "filetbl",
    "revtbl",
    "pgdsctbl",
    "xe",
    "tc",
    "bkmkstart",
    "bkmkend",
    "operator",
    "author",
    "title",
    "subject",
    "keywords",
    "comment",
    "doccomm",
    "nonshppict",
    "shpinst",
    "blipuid",
    "mmathPr",
    "falt",
];

/// Deepest group nesting tracked; deeper groups inherit the state of this level.
const MAX_DEPTH: usize = 4096;

#[derive(Clone, Copy)]
struct Group {
    skip: bool,
    /// Fallback characters after `\uN` (`\ucN`).
    uc: usize,
}

/// Extracts the text of an RTF document.
pub(crate) fn extract(bytes: &[u8], out: &mut Out) -> Result<()> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    if !bytes[start..].starts_with(b"{\\rtf") {
        return Err(ExtractError::Corrupt(
            "not an RTF file (no {\\rtf header)".into(),
        ));
    }
    Parser {
        bytes,
        pos: start,
        stack: Vec::new(),
        depth: 0,
        group: Group { skip: false, uc: 1 },
        encoding: WINDOWS_1252,
        pending: Vec::new(),
        fallback_left: 0,
    }
    .run(out)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Group>,
    /// Nesting depth including levels beyond [`MAX_DEPTH`].
    depth: usize,
    group: Group,
    encoding: &'static Encoding,
    /// Code-page bytes not yet decoded (so double-byte code pages decode whole characters).
    pending: Vec<u8>,
    /// Fallback characters still to skip after a `\uN`.
    fallback_left: usize,
}

impl Parser<'_> {
    fn run(mut self, out: &mut Out) -> Result<()> {
        while let Some(&b) = self.bytes.get(self.pos) {
            out.tick()?;
            if out.is_full() {
                break;
            }
            self.pos += 1;
            match b {
                b'{' => {
                    self.flush(out);
                    self.fallback_left = 0;
                    self.depth += 1;
                    if self.depth <= MAX_DEPTH {
                        self.stack.push(self.group);
                    }
                }
                b'}' => {
                    self.flush(out);
                    self.fallback_left = 0;
                    if self.depth <= MAX_DEPTH
                        && let Some(g) = self.stack.pop()
                    {
                        self.group = g;
                    }
                    self.depth = self.depth.saturating_sub(1);
                }
                b'\\' => self.control(out),
                b'\r' | b'\n' | 0 => {}
                _ => self.byte(b),
            }
        }
        self.flush(out);
        Ok(())
    }

    /// A literal byte of text in the document code page.
    fn byte(&mut self, b: u8) {
        if self.fallback_left > 0 {
            self.fallback_left -= 1;
        } else if !self.group.skip {
            self.pending.push(b);
        }
    }

    /// Decodes pending code-page bytes into `out`.
    fn flush(&mut self, out: &mut Out) {
        if !self.pending.is_empty() {
            out.push_str(&self.encoding.decode_without_bom_handling(&self.pending).0);
            self.pending.clear();
        }
    }

    /// Emits a character produced by a control word (unless skipping).
    fn emit(&mut self, c: char, out: &mut Out) {
        if !self.group.skip {
            self.flush(out);
            out.push(c);
        }
    }

    /// Parses the control word or symbol after a backslash.
    fn control(&mut self, out: &mut Out) {
        let Some(&c) = self.bytes.get(self.pos) else {
            return;
        };
        if !c.is_ascii_alphabetic() {
            self.pos += 1;
            match c {
                b'\'' => {
                    let hex = self.bytes.get(self.pos..self.pos + 2);
                    self.pos += 2;
                    let value = hex
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    if let Some(v) = value {
                        self.byte(v);
                    }
                }
                b'\\' | b'{' | b'}' => self.byte(c),
                b'~' => self.emit('\u{A0}', out),
                b'_' => self.emit('-', out),
                b'*' => self.group.skip = true,
                b'\r' | b'\n' => self.emit('\n', out),
                _ => {}
            }
            return;
        }
        let start = self.pos;
        while self.pos - start < 32
            && self
                .bytes
                .get(self.pos)
                .is_some_and(u8::is_ascii_alphabetic)
        {
            self.pos += 1;
        }
        let word = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default();
        let num_start = self.pos;
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        while self.pos - num_start < 11 && self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit)
        {
            self.pos += 1;
        }
        let param = std::str::from_utf8(&self.bytes[num_start..self.pos])
            .ok()
            .and_then(|s| s.parse::<i64>().ok());
        if self.bytes.get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
        self.word(word, param, out);
    }

    /// Acts on one control word.
    fn word(&mut self, word: &str, param: Option<i64>, out: &mut Out) {
        match word {
            "par" | "line" | "sect" | "page" | "row" => self.emit('\n', out),
            "tab" | "cell" => self.emit('\t', out),
            "emdash" => self.emit('—', out),
            "endash" => self.emit('–', out),
            "bullet" => self.emit('•', out),
            "lquote" => self.emit('‘', out),
            "rquote" => self.emit('’', out),
            "ldblquote" => self.emit('“', out),
            "rdblquote" => self.emit('”', out),
            "u" => {
                if let Some(n) = param {
                    // Signed 16-bit in the file; negative values stand for code units above 32767.
                    let unit = if n < 0 { n + 65536 } else { n };
                    let c = u32::try_from(unit)
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or('\u{FFFD}');
                    self.emit(c, out);
                    self.fallback_left = self.group.uc;
                }
            }
            "uc" => {
                self.group.uc = param
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(1)
                    .min(16)
            }
            "ansicpg" => {
                if let Some(enc) = param
                    .and_then(|n| u16::try_from(n).ok())
                    .and_then(|cp| codepage::to_encoding(cp))
                {
                    self.flush(out);
                    self.encoding = enc;
                }
            }
            w if SKIPPED.contains(&w) => self.group.skip = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Limits;

    fn run(rtf: &[u8]) -> String {
        let mut out = Out::new(&Limits::default());
        extract(rtf, &mut out).unwrap();
        out.finish()
    }

    #[test]
    fn text_escapes_and_destinations() {
        let rtf =
            br"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}{\*\generator X;}{\info{\title T}}
\f0 Caf\'e9 na\u239?ve \emdash  \ldblquote q\rdblquote  \{x\}\par Next}";
        assert_eq!(run(rtf), "Café naïve — “q” {x}\nNext");
    }

    #[test]
    fn deep_groups_are_fine() {
        let mut rtf = b"{\\rtf1 ".to_vec();
        rtf.extend(std::iter::repeat_n(b'{', 100_000));
        rtf.extend(b"deep");
        rtf.extend(std::iter::repeat_n(b'}', 100_001));
        assert_eq!(run(&rtf), "deep");
    }
}
