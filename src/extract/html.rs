//! HTML (`.html .htm .aspx`) with the html5ever tokenizer: visible text only.
//!
//! The tokenizer streams (no DOM), decodes entities, and is told to switch to its raw-text states
//! for `script`, `style`, `title` and friends, so their bodies are never tokenized as markup; the text
//! of `script`, `style`, `title`, `template` and `noscript` is dropped. Block
//! elements start new lines, table cells are separated by tabs, other whitespace is collapsed.
//! The charset comes from a BOM, then a `<meta charset>` / `http-equiv` declaration in the first
//! 1024 bytes, then UTF-8 if the bytes are valid UTF-8, else windows-1252.

use super::{Out, Result, text};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, CharacterTokens, EndTag, StartTag, TagToken, Token, TokenSink, TokenSinkResult,
    Tokenizer, TokenizerOpts,
};
use std::borrow::Cow;
use std::cell::RefCell;

/// Input fed to the tokenizer per step; the deadline and character cap are checked in between.
const CHUNK: usize = 64 * 1024;

/// Elements whose content is not visible text.
const HIDDEN: &[&str] = &["script", "style", "title", "template", "noscript"];

/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "ul",
    "body",
    "html",
    "option",
    "summary",
    "details",
];

/// Extracts the visible text of an HTML document.
pub(crate) fn extract(bytes: &[u8], out: &mut Out) -> Result<()> {
    let decoded = decode(bytes);
    if text::looks_binary(&decoded) {
        return Err(super::ExtractError::Corrupt("binary content".into()));
    }
    let tokenizer = Tokenizer::new(TextSink::default(), TokenizerOpts::default());
    let queue = BufferQueue::default();
    let mut rest: &str = &decoded;
    while !rest.is_empty() && !out.is_full() {
        out.check_deadline()?;
        let mut cut = rest.len().min(CHUNK);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (chunk, tail) = rest.split_at(cut);
        rest = tail;
        queue.push_back(StrTendril::from_slice(chunk));
        let _ = tokenizer.feed(&queue);
        drain(&tokenizer.sink, out);
    }
    tokenizer.end();
    drain(&tokenizer.sink, out);
    Ok(())
}

/// Moves the sink's collected text into `out`.
fn drain(sink: &TextSink, out: &mut Out) {
    let mut state = sink.state.borrow_mut();
    out.push_str(&state.text);
    state.text.clear();
}

/// Decodes `bytes` with the charset from BOM, `<meta>`, UTF-8 validity or windows-1252.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some((encoding, bom)) = Encoding::for_bom(bytes) {
        return encoding.decode_without_bom_handling(&bytes[bom..]).0;
    }
    let declared = meta_charset(&bytes[..bytes.len().min(1024)])
        // A document that declares UTF-16 without a BOM cannot be UTF-16 (HTML spec): use UTF-8.
        .map(|e| {
            if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE {
                UTF_8
            } else {
                e
            }
        });
    let encoding = match declared {
        Some(e) => e,
        None if std::str::from_utf8(bytes).is_ok() => UTF_8,
        None => WINDOWS_1252,
    };
    encoding.decode_without_bom_handling(bytes).0
}

/// The encoding named by the first `charset=` in `head` (covers `<meta charset>` and
/// `<meta http-equiv="Content-Type" content="…; charset=…">`).
fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    let lower = head.to_ascii_lowercase();
    let at = lower.windows(7).position(|w| w == b"charset")?;
    let rest = lower[at + 7..]
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'"' | b'\'' | b';' | b'>' | b'/') || b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    Encoding::for_label(&rest[..end])
}

/// The tokenizer's sink: collects visible text (interior mutability, as html5ever requires).
#[derive(Default)]
struct TextSink {
    state: RefCell<SinkState>,
}

#[derive(Default)]
struct SinkState {
    text: String,
    /// The hidden element being skipped and how deeply it is nested in itself.
    hidden: Option<(String, usize)>,
    /// Inside `<pre>` whitespace is kept as is.
    pre_depth: usize,
    /// The last character emitted was whitespace (or nothing was emitted yet).
    at_space: bool,
}

impl SinkState {
    fn push_text(&mut self, s: &str) {
        for c in s.chars() {
            if c.is_whitespace() && self.pre_depth == 0 {
                if !self.at_space {
                    self.text.push(' ');
                    self.at_space = true;
                }
            } else {
                self.text.push(c);
                self.at_space = c.is_whitespace();
            }
        }
    }

    fn line_break(&mut self, c: char) {
        if self.text.ends_with(' ') {
            self.text.pop();
        }
        if !self.text.is_empty() && !self.text.ends_with(['\n', '\t']) {
            self.text.push(c);
        }
        self.at_space = true;
    }
}

impl TokenSink for TextSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut st = self.state.borrow_mut();
        match token {
            TagToken(tag) => {
                let name: &str = &tag.name;
                if let Some((hidden, depth)) = st.hidden.as_mut() {
                    if name == hidden.as_str() {
                        match tag.kind {
                            StartTag if !tag.self_closing => *depth += 1,
                            EndTag if *depth <= 1 => st.hidden = None,
                            EndTag => *depth -= 1,
                            _ => {}
                        }
                    }
                    // Keep the tokenizer in raw mode for a nested script-like start tag.
                    return raw_kind(name, tag.kind == StartTag);
                }
                match tag.kind {
                    StartTag => {
                        if HIDDEN.contains(&name) && !tag.self_closing {
                            st.hidden = Some((name.to_string(), 1));
                        } else if name == "pre" {
                            st.pre_depth += 1;
                        }
                        if matches!(name, "td" | "th") {
                            st.line_break('\t');
                        } else if BLOCKS.contains(&name) {
                            st.line_break('\n');
                        } else if name == "img" {
                            // Alternative text is what a reader sees instead of the image.
                            if let Some(alt) = tag.attrs.iter().find(|a| &*a.name.local == "alt") {
                                let alt = alt.value.to_string();
                                st.push_text(&alt);
                                st.push_text(" ");
                            }
                        }
                    }
                    EndTag => {
                        if name == "pre" {
                            st.pre_depth = st.pre_depth.saturating_sub(1);
                        }
                        if matches!(name, "td" | "th") {
                            st.line_break('\t');
                        } else if BLOCKS.contains(&name) {
                            st.line_break('\n');
                        }
                    }
                }
                raw_kind(name, tag.kind == StartTag)
            }
            CharacterTokens(s) if st.hidden.is_none() => {
                st.push_text(&s);
                TokenSinkResult::Continue
            }
            _ => TokenSinkResult::Continue,
        }
    }
}

/// The tokenizer state to switch to after a start tag (what html5ever's tree builder would say).
fn raw_kind(name: &str, start: bool) -> TokenSinkResult<()> {
    if !start {
        return TokenSinkResult::Continue;
    }
    match name {
        "script" => TokenSinkResult::RawData(RawKind::ScriptData),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
            TokenSinkResult::RawData(RawKind::Rawtext)
        }
        "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
        "plaintext" => TokenSinkResult::Plaintext,
        _ => TokenSinkResult::Continue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Limits;

    fn run(html: &[u8]) -> String {
        let mut out = Out::new(&Limits::default());
        extract(html, &mut out).unwrap();
        out.finish()
    }

    #[test]
    fn visible_text_only() {
        let text = run(b"<html><head><title>T1</title><style>p{x:1}</style><script>var a='<p>no</p>';</script></head>\
            <body><p>Caf&eacute; &amp; <b>na</b>&#239;ve</p><noscript>NS</noscript><div>x&lt;y</div></body></html>");
        assert_eq!(text.trim(), "Café & naïve\nx<y");
    }

    #[test]
    fn latin1_meta_charset() {
        let text = run(b"<meta charset=\"iso-8859-1\"><p>Caf\xe9</p>");
        assert_eq!(text.trim(), "Café");
        let text = run(b"<p>na\xefve</p>");
        assert_eq!(text.trim(), "naïve");
    }
}
