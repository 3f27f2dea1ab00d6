//! Excel workbooks with calamine: `.xlsx .xlsm` (streaming cell readers), `.xlsb` and legacy `.xls`.
//!
//! Output per sheet: the sheet name on its own line, then one line per row with cells separated by
//! tabs. xlsx and xlsb are read cell by cell (no dense range is allocated, so a sheet with two cells
//! at A1 and XFD1048576 costs nothing). Legacy `.xls` is parsed whole by calamine into dense ranges,
//! so the file is checked first ([`xls_guard`]) and oversized sheets rejected.

use super::{ExtractError, Format, Out, Result};
use super::{xls_guard, zipped};
use calamine::{Cell, Data, DataRef, Reader, Xls, Xlsb, Xlsx, open_workbook_from_rs};
use std::fmt::Write as _;
use std::io::Cursor;

/// Extracts a workbook.
pub(crate) fn extract(format: Format, bytes: &[u8], out: &mut Out) -> Result<()> {
    match format {
        Format::Xlsx | Format::Xlsb => {
            if zipped::is_encrypted_ooxml(bytes) {
                return Err(ExtractError::Encrypted);
            }
            zipped::check_declared_total(bytes, out.max_bytes)?;
            if format == Format::Xlsx {
                let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).map_err(error)?;
                for name in book.sheet_names() {
                    sheet_header(&name, out)?;
                    let mut cells = book.worksheet_cells_reader(&name).map_err(error)?;
                    stream_cells(|| cells.next_cell().map_err(error), out)?;
                }
            } else {
                let mut book: Xlsb<_> = open_workbook_from_rs(Cursor::new(bytes)).map_err(error)?;
                for name in book.sheet_names() {
                    sheet_header(&name, out)?;
                    let mut cells = book.worksheet_cells_reader(&name).map_err(error)?;
                    stream_cells(|| cells.next_cell().map_err(error), out)?;
                }
            }
        }
        Format::Xls => {
            xls_guard::check(bytes)?;
            let mut book: Xls<_> = open_workbook_from_rs(Cursor::new(bytes)).map_err(error)?;
            for name in book.sheet_names() {
                sheet_header(&name, out)?;
                let range = book.worksheet_range(&name).map_err(error)?;
                for row in range.rows() {
                    out.tick()?;
                    if out.is_full() {
                        break;
                    }
                    for cell in row {
                        if !matches!(cell, Data::Empty) {
                            out.separator('\t');
                            out.push_str(&cell.to_string());
                        }
                    }
                    out.newline();
                }
            }
        }
        _ => return Err(ExtractError::Unsupported),
    }
    Ok(())
}

/// Writes the sheet name line; checks the deadline between sheets.
fn sheet_header(name: &str, out: &mut Out) -> Result<()> {
    out.check_deadline()?;
    out.newline();
    out.push_str(name);
    out.newline();
    Ok(())
}

/// Pulls cells from `next` until the end, the character cap or the deadline.
fn stream_cells<'a>(
    mut next: impl FnMut() -> Result<Option<Cell<DataRef<'a>>>>,
    out: &mut Out,
) -> Result<()> {
    let mut current_row = None;
    let mut buf = String::new();
    while let Some(cell) = next()? {
        out.tick()?;
        if out.is_full() {
            break;
        }
        let (row, _) = cell.get_position();
        if current_row.is_some_and(|r| r != row) {
            out.newline();
        }
        current_row = Some(row);
        buf.clear();
        match cell.get_value() {
            DataRef::Empty => continue,
            DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
                buf.push_str(s)
            }
            DataRef::SharedString(s) => buf.push_str(s),
            DataRef::Int(i) => {
                let _ = write!(buf, "{i}");
            }
            DataRef::Float(f) => {
                let _ = write!(buf, "{f}");
            }
            DataRef::Bool(b) => buf.push_str(if *b { "TRUE" } else { "FALSE" }),
            DataRef::DateTime(d) => {
                let _ = write!(buf, "{d}");
            }
            DataRef::Error(e) => {
                let _ = write!(buf, "{e}");
            }
        }
        out.separator('\t');
        out.push_str(&buf);
    }
    out.newline();
    Ok(())
}

/// Maps a calamine error; password-protected workbooks become [`ExtractError::Encrypted`].
fn error(e: impl std::fmt::Display) -> ExtractError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    if lower.contains("password") || lower.contains("encrypt") {
        ExtractError::Encrypted
    } else {
        ExtractError::Corrupt(msg)
    }
}
