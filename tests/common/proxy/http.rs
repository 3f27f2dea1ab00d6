//! HTTP/1.1 message framing for the fault proxy: parsing a head, telling how its body is delimited
//! (length, chunked, until close, none), reading that body, and writing a synthetic response.

use std::io;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// One parsed message head (request or response) plus its raw bytes.
pub(super) struct Head {
    pub(super) start_line: String,
    pub(super) headers: Vec<(String, String)>,
}

impl Head {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start_line);
        for (k, v) in &self.headers {
            out += &format!("{k}: {v}\r\n");
        }
        out += "\r\n";
        out.into_bytes()
    }
}

/// Reads a message head; `None` on a clean EOF before the first byte.
pub(super) async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<Head>> {
    let mut start_line = String::new();
    let mut headers = Vec::new();
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line).await?;
        if n == 0 {
            if start_line.is_empty() && headers.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF inside head",
            ));
        }
        total += n;
        if total > 256 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if start_line.is_empty() {
            if !text.is_empty() {
                start_line = text.to_string(); // (blank lines before a request are skipped)
            }
            continue;
        }
        if text.is_empty() {
            return Ok(Some(Head {
                start_line,
                headers,
            }));
        }
        if let Some((k, v)) = text.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilEof,
}

pub(super) fn framing(
    head: &Head,
    is_response: bool,
    request_method: &str,
    status: u16,
) -> Framing {
    if is_response
        && (request_method.eq_ignore_ascii_case("HEAD")
            || status < 200
            || status == 204
            || status == 304)
    {
        return Framing::Empty;
    }
    if head.has_token("transfer-encoding", "chunked") {
        return Framing::Chunked;
    }
    match head.header("content-length").and_then(|v| v.parse().ok()) {
        Some(n) => Framing::Length(n),
        None if is_response => Framing::UntilEof,
        None => Framing::Empty,
    }
}

/// Reads a body exactly as framed on the wire (chunk framing included).
pub(super) async fn read_body<R: AsyncBufRead + Unpin>(
    r: &mut R,
    framing: &Framing,
) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            out.resize(*n as usize, 0);
            r.read_exact(&mut out).await?;
        }
        Framing::UntilEof => {
            r.read_to_end(&mut out).await?;
        }
        Framing::Chunked => loop {
            let start = out.len();
            if r.read_until(b'\n', &mut out).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF in chunk size",
                ));
            }
            let line = String::from_utf8_lossy(&out[start..]).to_string();
            let hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // trailers, up to the empty line
                loop {
                    let s = out.len();
                    if r.read_until(b'\n', &mut out).await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "EOF in trailer",
                        ));
                    }
                    if out[s..].iter().all(|b| *b == b'\r' || *b == b'\n') {
                        return Ok(out);
                    }
                }
            }
            let s = out.len();
            out.resize(s + size + 2, 0);
            r.read_exact(&mut out[s..]).await?;
        },
    }
    Ok(out)
}

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    }
}

pub(super) fn synthetic_response(status: u16, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=UTF-8\r\n\
         X-Elastic-Product: Elasticsearch\r\nContent-Length: {}\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}
