//! Office Open XML documents: Word (`.docx`), PowerPoint (`.pptx .potx`) and Visio (`.vsdx .vsdm`).
//!
//! Each is a zip of XML parts; the text parts are walked with [`xml::walk`] in reading order:
//! Word body, then footnotes, endnotes, headers, footers and comments; slides in numeric order
//! (`slide2` before `slide10`), then speaker notes; Visio pages in numeric order.

use super::xml::{self, Rules};
use super::zipped::Zip;
use super::{ExtractError, Format, Out, Result};

/// WordprocessingML: text lives in `w:t` (and DrawingML `a:t` in text boxes); deleted text and
/// field instructions are not in `t` elements and so are not extracted.
const WORD: Rules = Rules {
    text: &["t"],
    blocks: &["p"],
    cells: &[],
    tabs: &["tab"],
    breaks: &["br", "cr"],
    spaces: &[],
    // Paragraph properties hold tab-stop definitions (`w:tabs/w:tab`), not tabs.
    skip: &["pPr"],
    separate_elements: false,
};

/// DrawingML text in slides and notes (`a:t`, paragraphs `a:p`).
const SLIDE: Rules = Rules {
    text: &["t"],
    blocks: &["p"],
    cells: &[],
    tabs: &[],
    breaks: &["br"],
    spaces: &[],
    skip: &["pPr"],
    separate_elements: false,
};

/// Visio pages: shape text is the character data of `Text` elements.
const VISIO: Rules = Rules {
    text: &["Text"],
    blocks: &["Text"],
    cells: &[],
    tabs: &[],
    breaks: &[],
    spaces: &[],
    skip: &[],
    separate_elements: false,
};

/// Extracts a docx, pptx/potx or vsdx/vsdm file.
pub(crate) fn extract(format: Format, bytes: &[u8], out: &mut Out) -> Result<()> {
    let mut zip = Zip::open(bytes, out)?;
    let names = zip.names();
    let (parts, rules, marker) = match format {
        Format::Docx => (word_parts(&names), &WORD, "word/document.xml"),
        Format::Pptx => {
            let mut parts = numbered(&names, "ppt/slides/slide", ".xml");
            parts.extend(numbered(&names, "ppt/notesSlides/notesSlide", ".xml"));
            (parts, &SLIDE, "ppt/presentation.xml")
        }
        Format::Vsdx => (
            numbered(&names, "visio/pages/page", ".xml"),
            &VISIO,
            "visio/document.xml",
        ),
        _ => return Err(ExtractError::Unsupported),
    };
    if !zip.has(marker) {
        return Err(ExtractError::Corrupt(format!(
            "not a {format:?} file: no {marker}"
        )));
    }
    for part in parts {
        out.check_deadline()?;
        if out.is_full() {
            break;
        }
        if let Some(data) = zip.read(&part)? {
            xml::walk(&data, rules, out)?;
            out.newline();
        }
    }
    Ok(())
}

/// The text parts of a Word document in reading order.
fn word_parts(names: &[String]) -> Vec<String> {
    let mut parts = vec!["word/document.xml".to_string()];
    for single in ["word/footnotes.xml", "word/endnotes.xml"] {
        if names.iter().any(|n| n == single) {
            parts.push(single.to_string());
        }
    }
    parts.extend(numbered(names, "word/header", ".xml"));
    parts.extend(numbered(names, "word/footer", ".xml"));
    if names.iter().any(|n| n == "word/comments.xml") {
        parts.push("word/comments.xml".to_string());
    }
    parts
}

/// Entries named `{prefix}{number}{suffix}`, sorted by number.
fn numbered(names: &[String], prefix: &str, suffix: &str) -> Vec<String> {
    let mut found: Vec<(u64, &String)> = names
        .iter()
        .filter_map(|name| {
            let number = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
            number.parse::<u64>().ok().map(|n| (n, name))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, name)| name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_are_in_numeric_order() {
        let names: Vec<String> = [
            "ppt/slides/slide10.xml",
            "ppt/slides/slide2.xml",
            "ppt/slides/_rels/slide1.xml.rels",
            "ppt/slides/slide1.xml",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            numbered(&names, "ppt/slides/slide", ".xml"),
            [
                "ppt/slides/slide1.xml",
                "ppt/slides/slide2.xml",
                "ppt/slides/slide10.xml"
            ]
        );
    }
}
