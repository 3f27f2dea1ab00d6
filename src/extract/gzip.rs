//! gzip-compressed objects (`name.ext.gz`): inflate under the decompression cap, then extract by the
//! inner extension. Only one gzip layer is accepted ([`super::format_for`] refuses `.gz.gz`).

use super::{ExtractError, Limits, Result, extract_as, format_for, strip_gz};
use flate2::read::MultiGzDecoder;
use std::io::Read;

/// Inflation step; the deadline is checked between steps.
const STEP: u64 = 1 << 20;

/// Inflates `bytes` (at most `limits.max_decompressed_bytes`) and extracts the inner file.
pub(crate) fn extract(key: &str, bytes: &[u8], limits: &Limits) -> Result<String> {
    let inner_key = strip_gz(key).ok_or(ExtractError::Unsupported)?;
    let format = match format_for(inner_key) {
        Some(super::Format::Gzip) | None => return Err(ExtractError::Unsupported),
        Some(format) => format,
    };
    let cap = limits.max_decompressed_bytes;
    let mut decoder = MultiGzDecoder::new(bytes);
    let mut data = Vec::new();
    loop {
        if std::time::Instant::now() >= limits.deadline {
            return Err(ExtractError::Timeout);
        }
        let room = cap.saturating_add(1).saturating_sub(data.len() as u64);
        let n = (&mut decoder)
            .take(STEP.min(room))
            .read_to_end(&mut data)
            .map_err(|e| ExtractError::Corrupt(format!("gzip: {e}")))?;
        if data.len() as u64 > cap {
            return Err(ExtractError::TooLarge(format!(
                "gzip expands beyond {cap} bytes"
            )));
        }
        if n == 0 {
            break;
        }
    }
    extract_as(format, inner_key, &data, limits)
}
