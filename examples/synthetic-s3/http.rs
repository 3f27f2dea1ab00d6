//! Just enough HTTP/1.1 for an S3 or Elasticsearch client: requests with a Content-Length body,
//! keep-alive, responses with a Content-Length. Authorization headers are not checked. Shared by
//! the synthetic S3 and the synthetic Elasticsearch front (examples/synthetic-es).

use std::io;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Longest request head we read (S3 clients send a few KiB at most).
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query, not decoded).
    #[allow(dead_code)] // read by the Elasticsearch front only
    pub target: String,
    /// The path, percent-decoded.
    pub path: String,
    /// Query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn keep_alive(&self) -> bool {
        !self
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Runs `main` to its end on a multi-threaded runtime of `threads` worker threads (at least one).
pub fn block_on<F: std::future::Future>(threads: usize, main: F) -> io::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?
        .block_on(main))
}

/// Listens on `host:port`, prints `<banner>=http://<address>` on stdout (how the benchmark finds
/// the server), and serves each connection on its own task with `handle`.
pub async fn listen<F, Fut>(
    host: &str,
    port: u16,
    banner: &str,
    max_body: u64,
    handle: F,
) -> io::Result<()>
where
    F: Fn(Request) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Response> + Send,
{
    let listener = tokio::net::TcpListener::bind((host, port)).await?;
    println!("{banner}=http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            // A client that goes away mid-request is no concern of ours.
            let _ = serve(stream, max_body, handle).await;
        });
    }
}

/// Serves requests on one connection until the client closes it or asks to. Bodies longer than
/// `max_body` bytes are read and dropped (the request then has an empty body).
pub async fn serve<S, F, Fut>(stream: S, max_body: u64, mut handle: F) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnMut(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let mut conn = BufReader::with_capacity(64 * 1024, stream);
    let mut out = Vec::with_capacity(256 * 1024);
    while let Some(request) = read_request(&mut conn, max_body).await? {
        let head = request.method == "HEAD";
        let keep_alive = request.keep_alive();
        let response = handle(request).await;
        out.clear();
        // HEAD gets the headers of the GET, Content-Length included, and no body.
        write_response(&mut out, &response, !head);
        conn.get_mut().write_all(&out).await?;
        if !keep_alive {
            break;
        }
    }
    conn.get_mut().flush().await
}

async fn read_request<R: AsyncRead + Unpin>(
    conn: &mut BufReader<R>,
    max_body: u64,
) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(invalid("malformed request line"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        path: decode(path, false),
        query: query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k, true), decode(v, true))
            })
            .collect(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let mut head = line.len();
    loop {
        line.clear();
        head += conn.read_line(&mut line).await?;
        if head > MAX_HEAD {
            return Err(invalid("request head too long"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            request
                .headers
                .push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    if request.header("transfer-encoding").is_some() {
        return Err(invalid("chunked request bodies are not supported"));
    }
    let length: u64 = match request.header("content-length") {
        Some(v) => v.parse().map_err(|_| invalid("bad content-length"))?,
        None => 0,
    };
    if length <= max_body {
        request.body.reserve(length as usize);
        (&mut *conn)
            .take(length)
            .read_to_end(&mut request.body)
            .await?;
        if request.body.len() as u64 != length {
            return Err(invalid("request body cut short"));
        }
    } else {
        tokio::io::copy(&mut (&mut *conn).take(length), &mut tokio::io::sink()).await?;
    }
    Ok(Some(request))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn write_response(out: &mut Vec<u8>, r: &Response, with_body: bool) {
    use std::io::Write;
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nx-amz-request-id: synthetic\r\n",
        r.status,
        reason(r.status),
        r.body.len()
    );
    for (k, v) in &r.headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if with_body {
        out.extend_from_slice(&r.body);
    }
}

/// Percent-decoding (and `+` as a space in query strings).
pub fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// S3's `encoding-type=url` form of a key or prefix: every byte but unreserved ones and `/` escaped.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// XML text escaping.
pub fn xml(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return s.into();
    }
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_encoding() {
        assert_eq!(decode("a%20b+c%2B%zz%4", true), "a b c+%zz%4");
        assert_eq!(decode("/b/k+x", false), "/b/k+x");
        assert_eq!(encode("dir/a b+ü"), "dir/a%20b%2B%C3%BC");
        assert_eq!(xml("\"a\"<&>"), "&quot;a&quot;&lt;&amp;&gt;");
    }

    #[tokio::test]
    async fn keep_alive_requests_with_bodies() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(serve(server, 1 << 20, |r| {
            std::future::ready(Response::new(
                200,
                format!(
                    "{} {} {:?} {}",
                    r.method,
                    r.path,
                    r.query,
                    String::from_utf8_lossy(&r.body)
                )
                .into_bytes(),
            ))
        }));
        let (mut rd, mut wr) = tokio::io::split(client);
        wr.write_all(
            b"PUT /b/k%20x?list-type=2&prefix=a%2Fb HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
              HEAD /b HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut got = String::new();
        rd.read_to_string(&mut got).await.unwrap();
        task.await.unwrap().unwrap();
        let body = r#"PUT /b/k x [("list-type", "2"), ("prefix", "a/b")] abc"#;
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(got.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(got.contains(body));
        assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 2, "{got}");
        assert!(!got.contains("HEAD /b"), "a HEAD answer has no body: {got}");
    }
}
