//! OpenDocument text, spreadsheet and presentation (`.odt .ods .odp`): the text of `content.xml`.
//!
//! All three keep their text in `text:p` / `text:h` paragraphs (in spreadsheet cells and drawing
//! frames alike), so one walker serves them; spreadsheet cells are separated by tabs and rows by line
//! breaks. Repeated cells (`table:number-columns-repeated`) are emitted once.

use super::xml::{self, Rules};
use super::zipped::Zip;
use super::{ExtractError, Out, Result};

/// `content.xml` rules: paragraphs and headings are text; `text:s` stands for `c` spaces.
const CONTENT: Rules = Rules {
    text: &["p", "h"],
    blocks: &["p", "h", "table-row"],
    cells: &["table-cell"],
    tabs: &["tab"],
    breaks: &["line-break"],
    spaces: &["s"],
    // Tracked deletions are not part of the visible text.
    skip: &["tracked-changes"],
    separate_elements: false,
};

/// Extracts an OpenDocument file.
pub(crate) fn extract(bytes: &[u8], out: &mut Out) -> Result<()> {
    let mut zip = Zip::open(bytes, out)?;
    let content = zip
        .read("content.xml")?
        .ok_or_else(|| ExtractError::Corrupt("not an OpenDocument file: no content.xml".into()))?;
    if let Some(error) = xml::walk(&content, &CONTENT, out)?
        && out.is_blank()
    {
        return Err(ExtractError::Corrupt(format!("content.xml: {error}")));
    }
    Ok(())
}
