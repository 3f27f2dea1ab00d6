//! Excel workbooks with calamine: `.xlsx .xlsm` (streaming cell readers), `.xlsb` and legacy `.xls`.
//!
//! Output per sheet: the sheet name on its own line, then one line per row with cells separated by
//! tabs. xlsx and xlsb are read cell by cell (no dense range is allocated, so a sheet with two cells
//! at A1 and XFD1048576 costs nothing). Legacy `.xls` is parsed whole by calamine into dense ranges,
//! so the used area of each sheet is measured first ([`xls_guard`]) and oversized sheets rejected.

use super::zipped::{self, is_cfb};
use super::{ExtractError, Format, Out, Result};
use calamine::{Cell, Data, DataRef, Reader, Xls, Xlsb, Xlsx, open_workbook_from_rs};
use std::fmt::Write as _;
use std::io::{Cursor, Read};

/// Largest used area (rows × columns, per sheet) accepted from an `.xls` file: calamine allocates
/// the dense bounding box of every sheet, about 56 bytes per cell.
const XLS_MAX_CELLS: u64 = 2_000_000;

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
            xls_guard(bytes)?;
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

/// BIFF record types carrying a cell, all starting with `row: u16, col: u16`.
const CELL_RECORDS: &[u16] = &[
    0x0006, 0x0201, 0x0203, 0x0204, 0x0205, 0x027E, 0x00FD, 0x00D6, 0x00BD, 0x00BE,
];

/// Rejects `.xls` files whose sheets span more than [`XLS_MAX_CELLS`] cells (see module docs), and
/// files that are not compound files.
fn xls_guard(bytes: &[u8]) -> Result<()> {
    if !is_cfb(bytes) {
        return Err(ExtractError::Corrupt(
            "not an .xls (OLE compound) file".into(),
        ));
    }
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes))
        .map_err(|e| ExtractError::Corrupt(format!("xls: {e}")))?;
    let mut stream = Vec::new();
    for name in ["/Workbook", "/Book"] {
        if let Ok(mut s) = file.open_stream(name) {
            // A stream cannot hold more data than the file; `take` bounds corrupt sector chains.
            (&mut s)
                .take(bytes.len() as u64)
                .read_to_end(&mut stream)
                .map_err(|e| ExtractError::Corrupt(format!("xls: {e}")))?;
            break;
        }
    }
    let mut bbox: Option<(u16, u16, u16, u16)> = None;
    let mut pos = 0usize;
    while let Some(header) = stream.get(pos..pos + 4) {
        let kind = u16::from_le_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let body = stream.get(pos + 4..pos + 4 + len).unwrap_or_default();
        pos += 4 + len;
        if kind == 0x0809 {
            bbox = None; // BOF: a new substream (sheet)
        } else if CELL_RECORDS.contains(&kind) && body.len() >= 4 {
            let row = u16::from_le_bytes([body[0], body[1]]);
            let mut cols = [u16::from_le_bytes([body[2], body[3]]); 2];
            // MULRK / MULBLANK: the last column is the record's last u16.
            if matches!(kind, 0x00BD | 0x00BE) && body.len() >= 6 {
                let n = body.len();
                cols[1] = u16::from_le_bytes([body[n - 2], body[n - 1]]);
            }
            for col in cols {
                bbox = Some(match bbox {
                    None => (row, row, col, col),
                    Some((r0, r1, c0, c1)) => (r0.min(row), r1.max(row), c0.min(col), c1.max(col)),
                });
            }
            if let Some((r0, r1, c0, c1)) = bbox {
                let area = (u64::from(r1 - r0) + 1) * (u64::from(c1 - c0) + 1);
                if area > XLS_MAX_CELLS {
                    return Err(ExtractError::TooLarge(format!(
                        "xls sheet spans {area} cells (limit {XLS_MAX_CELLS})"
                    )));
                }
            }
        }
    }
    Ok(())
}
