//! [`super::Fault::Rewrite`]: forward the request, then hand the upstream's response body to a
//! function and send its result instead (status and headers kept, re-framed with `Content-Length`).
//! This is how a test plays an S3-compatible store that answers slightly differently from the
//! stand-in, e.g. a truncated ListObjectsV2 page without `NextContinuationToken`.

use std::sync::Arc;

/// Rewrites a response body: `(request target, body)` → new body.
pub type Rewriter = Arc<dyn Fn(&str, &str) -> String + Send + Sync>;

/// `response` (head and body exactly as received) with its body replaced by `f(target, body)`.
/// A response that cannot be parsed is returned unchanged.
pub fn rewrite_response(response: &[u8], target: &str, f: &Rewriter) -> Vec<u8> {
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response.to_vec();
    };
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let body = &response[end + 4..];
    let mut lines = head.split("\r\n");
    let start_line = lines.next().unwrap_or_default();
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let new_body = f(target, &String::from_utf8_lossy(&body));
    let mut out = format!("{start_line}\r\n");
    for (k, v) in headers.iter().filter(|(k, _)| {
        !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("transfer-encoding")
    }) {
        out += &format!("{k}: {v}\r\n");
    }
    out += &format!("Content-Length: {}\r\n\r\n", new_body.len());
    let mut out = out.into_bytes();
    out.extend_from_slice(new_body.as_bytes());
    out
}

/// The payload of a chunked body (chunk extensions and trailers dropped).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let hex = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(hex, 16) else {
            break;
        };
        if size == 0 || raw.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[(eol + 4 + size).min(raw.len())..];
    }
    out
}
