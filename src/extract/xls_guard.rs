//! A pre-flight check of legacy `.xls` workbooks before calamine parses them.
//!
//! calamine parses every sheet when it opens an `.xls` file, reserving room for the area a
//! `DIMENSIONS` record declares and allocating the dense bounding box of all cells. Both come from
//! the file: a crafted record (or, in calamine 0.38, an inverted one whose subtraction wraps in
//! release builds) asks for hundreds of gigabytes, and an allocation failure aborts the process — no
//! `catch_unwind` can stop it. So the BIFF record stream is walked here first, from the start and
//! from every sheet offset a `BOUNDSHEET` record names (where calamine starts reading), and files
//! whose declared or used area exceeds [`MAX_CELLS`] are refused.

use super::{ExtractError, Result, zipped::is_cfb};
use std::io::{Cursor, Read};

/// Largest area (rows × columns, per sheet) accepted: calamine spends about 56 bytes per cell.
pub(crate) const MAX_CELLS: u64 = 2_000_000;

/// Sheet offsets followed at most (one workbook rarely has more than a few dozen sheets).
const MAX_SHEETS: usize = 1024;

/// BIFF record types carrying a cell, all starting with `row: u16, col: u16`.
const CELL_RECORDS: &[u16] = &[
    0x0006, 0x0201, 0x0203, 0x0204, 0x0205, 0x027E, 0x00FD, 0x00D6, 0x00BD, 0x00BE,
];

/// Refuses `.xls` files calamine could not open within bounded memory (see the module docs).
pub(crate) fn check(bytes: &[u8]) -> Result<()> {
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
    let mut sheets = Vec::new();
    scan(&stream, 0, Some(&mut sheets))?;
    sheets.sort_unstable();
    sheets.dedup();
    for start in sheets.into_iter().take(MAX_SHEETS) {
        scan(&stream, start, None)?;
    }
    Ok(())
}

/// Walks records from `start` (to the end of the stream when `sheets` is given, collecting sheet
/// offsets; else to the sheet's `EOF` record), checking declared and used areas.
fn scan(stream: &[u8], start: usize, mut sheets: Option<&mut Vec<usize>>) -> Result<()> {
    let mut bbox: Option<(u16, u16, u16, u16)> = None;
    let mut nested = 0usize;
    let mut pos = start;
    while let Some(header) = stream.get(pos..pos.saturating_add(4)) {
        let kind = u16::from_le_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let body = stream.get(pos + 4..pos + 4 + len).unwrap_or_default();
        pos += 4 + len;
        match kind {
            0x0085 => {
                if let (Some(list), Some(offset)) = (sheets.as_deref_mut(), body.get(..4)) {
                    let offset = u32::from_le_bytes([offset[0], offset[1], offset[2], offset[3]]);
                    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
                    // calamine slices the stream at this offset without checking it.
                    if offset > stream.len() {
                        return Err(ExtractError::Corrupt(
                            "xls: sheet offset beyond the stream".into(),
                        ));
                    }
                    list.push(offset);
                }
            }
            0x0809 => {
                // BOF: a new substream. Nested ones (embedded charts) are skipped by calamine.
                nested += 1;
                if nested == 1 {
                    bbox = None;
                }
            }
            0x000A => {
                nested = nested.saturating_sub(1);
                if sheets.is_none() && nested == 0 {
                    return Ok(());
                }
            }
            0x0200 => dimensions(body)?,
            k if CELL_RECORDS.contains(&k) && body.len() >= 4 && nested <= 1 => {
                let row = u16::from_le_bytes([body[0], body[1]]);
                let mut cols = [u16::from_le_bytes([body[2], body[3]]); 2];
                // MULRK / MULBLANK: the last column is the record's last u16.
                if matches!(kind, 0x00BD | 0x00BE) && body.len() >= 6 {
                    let n = body.len();
                    cols[1] = u16::from_le_bytes([body[n - 2], body[n - 1]]);
                }
                for col in cols {
                    let (r0, r1, c0, c1) = bbox.unwrap_or((row, row, col, col));
                    bbox = Some((r0.min(row), r1.max(row), c0.min(col), c1.max(col)));
                }
                if let Some((r0, r1, c0, c1)) = bbox {
                    area_ok(u64::from(r1 - r0) + 1, u64::from(c1 - c0) + 1)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a `DIMENSIONS` record the way calamine 0.38 reads it (`parse_dimensions`).
fn dimensions(body: &[u8]) -> Result<()> {
    let u16_at = |i: usize| u32::from(u16::from_le_bytes([body[i], body[i + 1]]));
    let u32_at = |i: usize| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
    let (rf, rl, mut cf, cl) = match body.len() {
        10 => (u16_at(0), u16_at(2), u16_at(4), u16_at(6)),
        14 | 16 => (u32_at(0), u32_at(4), u16_at(8), u16_at(10)),
        _ => return Ok(()), // calamine rejects other lengths itself
    };
    if cf > 0xFF || cl < cf {
        cf = 0;
    }
    let (end_row, end_col) = if rl >= 1 && cl >= 1 {
        (rl - 1, cl - 1)
    } else {
        (rf, cf)
    };
    if end_row < rf || end_col < cf {
        return Err(ExtractError::Corrupt(
            "xls: inverted DIMENSIONS record".into(),
        ));
    }
    area_ok(u64::from(end_row - rf) + 1, u64::from(end_col - cf) + 1)
}

/// Fails with `TooLarge` when `rows × cols` exceeds [`MAX_CELLS`].
fn area_ok(rows: u64, cols: u64) -> Result<()> {
    let area = rows.saturating_mul(cols);
    if area > MAX_CELLS {
        return Err(ExtractError::TooLarge(format!(
            "xls sheet spans {area} cells (limit {MAX_CELLS})"
        )));
    }
    Ok(())
}
