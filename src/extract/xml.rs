//! A streaming XML-to-text walker (quick-xml) shared by `.xml`/`.svg`, OOXML and OpenDocument.
//!
//! quick-xml does not recurse, so deeply nested documents cannot exhaust the stack. Since quick-xml
//! 0.38, `&amp;` and `&#233;` arrive as separate [`Event::GeneralRef`] events; they are resolved here
//! (forgetting them silently drops every accented character and `& < >`).

use super::{Out, Result, text};
use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};

/// What the walker does with each element, by local name (namespace prefix stripped).
#[derive(Debug, Default)]
pub(crate) struct Rules {
    /// Elements whose character data (and their descendants') is text; empty: all character data.
    pub text: &'static [&'static str],
    /// Elements followed by a line break (paragraphs, rows).
    pub blocks: &'static [&'static str],
    /// Elements followed by a tab (table cells).
    pub cells: &'static [&'static str],
    /// Elements standing for a tab character.
    pub tabs: &'static [&'static str],
    /// Elements standing for a line break.
    pub breaks: &'static [&'static str],
    /// Elements standing for spaces, their count in a `c` attribute (ODF `text:s`).
    pub spaces: &'static [&'static str],
    /// Elements whose whole subtree is ignored.
    pub skip: &'static [&'static str],
    /// Separate the text of sibling elements with a space (generic XML, where elements are words).
    pub separate_elements: bool,
}

/// Rules for `.xml` and `.svg` files: all character data, words of sibling elements kept apart.
const GENERIC: Rules = Rules {
    text: &[],
    blocks: &[],
    cells: &[],
    tabs: &[],
    breaks: &[],
    spaces: &[],
    skip: &["script", "style"],
    separate_elements: true,
};

/// Extracts the character data of an `.xml` or `.svg` file (charset from BOM or content, see
/// [`text::decode`]).
pub(crate) fn extract(bytes: &[u8], out: &mut Out) -> Result<()> {
    let decoded = text::decode(bytes, usize::MAX / 8)?;
    walk(decoded.as_bytes(), &GENERIC, out)?;
    Ok(())
}

/// Walks `xml`, appending its text to `out` according to `rules`.
///
/// A syntax error ends the walk; the text before it is kept and the error message is returned as
/// `Ok(Some(message))`. Only the deadline is a hard error.
pub(crate) fn walk(xml: &[u8], rules: &Rules, out: &mut Out) -> Result<Option<String>> {
    let mut reader = Reader::from_reader(xml);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    config.allow_dangling_amp = true;
    let mut skip_depth = 0usize;
    let mut text_depth = 0usize;
    loop {
        out.tick()?;
        if out.is_full() {
            return Ok(None);
        }
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return Ok(Some(e.to_string())),
        };
        let in_text = skip_depth == 0 && (rules.text.is_empty() || text_depth > 0);
        match event {
            Event::Start(e) => {
                let name = local(&e);
                if skip_depth > 0 || rules.skip.contains(&name) {
                    skip_depth += 1;
                    continue;
                }
                if rules.text.contains(&name) {
                    text_depth += 1;
                }
                if rules.separate_elements {
                    out.separator(' ');
                }
                empty_element(&e, name, rules, out);
            }
            Event::Empty(e) if skip_depth == 0 => {
                let name = local(&e);
                empty_element(&e, name, rules, out);
                end_element(name, rules, out);
            }
            Event::End(e) => {
                if skip_depth > 0 {
                    skip_depth -= 1;
                    continue;
                }
                let qname = e.name();
                let name = qname.local_name().into_inner();
                if rules.text.contains(&name) {
                    text_depth = text_depth.saturating_sub(1);
                }
                end_element(name, rules, out);
            }
            Event::Text(t) if in_text => out.push_str(&t.xml10_content()),
            Event::CData(t) if in_text => out.push_str(&t.into_inner()),
            Event::GeneralRef(r) if in_text => push_ref(&r, out),
            Event::Eof => return Ok(None),
            _ => {}
        }
    }
}

/// The local name of an element (prefix stripped).
fn local<'a>(e: &'a BytesStart<'_>) -> &'a str {
    e.local_name().into_inner()
}

/// Handles the characters an element stands for at its start (tabs, breaks, spaces).
fn empty_element(e: &BytesStart<'_>, name: &str, rules: &Rules, out: &mut Out) {
    if rules.tabs.contains(&name) {
        out.push('\t');
    } else if rules.breaks.contains(&name) {
        out.push('\n');
    } else if rules.spaces.contains(&name) {
        let count = e
            .attributes()
            .flatten()
            .find(|a| a.key.local_name().into_inner() == "c")
            .and_then(|a| a.value.trim().parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, 64);
        for _ in 0..count {
            out.push(' ');
        }
    }
}

/// Adds the separator that follows an element's end.
fn end_element(name: &str, rules: &Rules, out: &mut Out) {
    if rules.blocks.contains(&name) {
        out.newline();
    } else if rules.cells.contains(&name) {
        out.separator('\t');
    } else if rules.separate_elements {
        out.separator(' ');
    }
}

/// Appends the character an entity or character reference stands for.
fn push_ref(r: &BytesRef<'_>, out: &mut Out) {
    match r.resolve_char_ref() {
        Ok(Some(c)) => out.push(c),
        Ok(None) => match resolve_predefined_entity(r) {
            Some(s) => out.push_str(s),
            // Unknown named entity (declared in a DTD we do not read): keep it visible.
            None => {
                out.push('&');
                out.push_str(r);
                out.push(';');
            }
        },
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Limits;

    fn run(xml: &str, rules: &Rules) -> String {
        let mut out = Out::new(&Limits::default());
        walk(xml.as_bytes(), rules, &mut out).unwrap();
        out.finish()
    }

    #[test]
    fn entities_and_char_refs_are_resolved() {
        let text = run(
            "<a>Caf&#233; &amp; &lt;b&gt; &#x2014; &unknown;</a>",
            &GENERIC,
        );
        assert_eq!(text.trim(), "Café & <b> — &unknown;");
    }

    #[test]
    fn text_elements_only_and_runs_are_joined() {
        let rules = Rules {
            text: &["t"],
            blocks: &["p"],
            ..Rules::default()
        };
        let text = run(
            r#"<w:d xmlns:w="x"><w:p><w:r><w:t>Caf</w:t></w:r><w:r><w:t>é</w:t></w:r></w:p><w:p><w:instr>NO</w:instr><w:t>x</w:t></w:p></w:d>"#,
            &rules,
        );
        assert_eq!(text, "Café\nx\n");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let depth = 100_000;
        let xml = format!("{}deep{}", "<a>".repeat(depth), "</a>".repeat(depth));
        assert_eq!(run(&xml, &GENERIC).trim(), "deep");
    }
}
