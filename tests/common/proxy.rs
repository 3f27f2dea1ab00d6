//! A fault-injecting HTTP/1.1 proxy on raw tokio TCP.
//!
//! Put it between the service and ES (or S3): give the service `proxy.url()` instead of the real
//! endpoint. Each request is matched against the rules in order; the first matching rule that
//! still has budget applies its [`Fault`], otherwise the request is forwarded unchanged.
//!
//! ```ignore
//! let proxy = FaultProxy::start(&world.es_url, vec![
//!     Rule::path_contains("/_bulk", Fault::too_many_requests()).first(2),
//! ]).await;
//! // ... service configured with proxy.url() ...
//! assert_eq!(proxy.injected(0), 2);
//! ```
//!
//! Supported framing: `Content-Length` and chunked bodies (passed through as is), responses
//! delimited by connection close, keep-alive on both sides, `Expect: 100-continue` (answered by
//! the proxy). Bodies are buffered in memory. No TLS. The proxy stops when dropped.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

mod http;
pub mod partial;
pub mod rewrite;
pub mod throttle;
use http::{Framing, framing, read_body, read_head, synthetic_response};
pub use partial::Partial;
pub use rewrite::Rewriter;
pub use throttle::Throttle;

/// Answers a request itself: `(method, target, body)` → `(status, JSON body)`.
pub type Handler = Arc<
    dyn Fn(
            String,
            String,
            Vec<u8>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = (u16, String)> + Send>>
        + Send
        + Sync,
>;

/// What to do with a matched request.
#[derive(Clone)]
pub enum Fault {
    /// Do not forward; answer with this status and (JSON) body. The connection stays open.
    Status { status: u16, body: String },
    /// Do not forward; reset the client connection (TCP RST, no response).
    Reset,
    /// Forward after this delay.
    Delay(Duration),
    /// Forward at once, answer after this delay: the client acts on an answer that is this old.
    Stale(Duration),
    /// Forward, then reset the client connection instead of answering: the request took effect,
    /// the client never learns it.
    LoseResponse,
    /// Do not forward; the handler answers (a test double of an API the upstream lacks).
    Handle(Handler),
    /// Forward, then replace the response body by `f(target, body)` (see [`Rewriter`]).
    Rewrite(Rewriter),
    /// Forward, then answer with the head and only part of the body (see [`Partial`]).
    Partial(Partial),
    /// Refuse beyond a number of requests in flight, hold the others (see [`Throttle`]).
    Throttle(Arc<Throttle>),
}

impl Fault {
    /// A synthetic response with a JSON body.
    pub fn status(status: u16, body: impl Into<String>) -> Fault {
        Fault::Status {
            status,
            body: body.into(),
        }
    }

    /// Forwards, then rewrites the response body with `f(target, body)`.
    pub fn rewrite(f: impl Fn(&str, &str) -> String + Send + Sync + 'static) -> Fault {
        Fault::Rewrite(Arc::new(f))
    }

    /// `429 {"error":"too many requests","status":429}`.
    pub fn too_many_requests() -> Fault {
        Fault::status(429, r#"{"error":"too many requests","status":429}"#)
    }

    /// An ES-shaped `5xx`/`4xx` error with the given type and reason.
    pub fn es_error(status: u16, error_type: &str, reason: &str) -> Fault {
        let body = serde_json::json!({
            "error": {"root_cause": [{"type": error_type, "reason": reason}],
                      "type": error_type, "reason": reason},
            "status": status
        });
        Fault::status(status, body.to_string())
    }
}

type Matcher = dyn Fn(&str, &str) -> bool + Send + Sync;

/// A request predicate plus a fault, applied to the first `K` matches (or every match).
pub struct Rule {
    desc: String,
    matcher: Box<Matcher>,
    fault: Fault,
    limit: Option<usize>,
    window: Option<Duration>,
}

impl Rule {
    /// Matches when `f(method, target)` is true; `target` is the request target as sent
    /// (path plus query string, e.g. `/_bulk?pipeline=x`).
    pub fn when(
        desc: &str,
        f: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
        fault: Fault,
    ) -> Rule {
        Rule {
            desc: desc.to_string(),
            matcher: Box::new(f),
            fault,
            limit: None,
            window: None,
        }
    }

    /// Matches any method whose target contains `fragment`.
    pub fn path_contains(fragment: &str, fault: Fault) -> Rule {
        let frag = fragment.to_string();
        Rule::when(
            &format!("target contains {fragment:?}"),
            move |_, t| t.contains(&frag),
            fault,
        )
    }

    /// Matches `method` (e.g. `"POST"`) with a target containing `fragment`.
    pub fn method_path(method: &str, fragment: &str, fault: Fault) -> Rule {
        let (m, frag) = (method.to_string(), fragment.to_string());
        Rule::when(
            &format!("{method} with target containing {fragment:?}"),
            move |mm, t| mm.eq_ignore_ascii_case(&m) && t.contains(&frag),
            fault,
        )
    }

    /// Applies the fault only during `d` from the first matching request (an outage of that
    /// length); later ones are forwarded.
    pub fn during(mut self, d: Duration) -> Rule {
        self.window = Some(d);
        self
    }

    /// Applies the fault only to the first `k` matching requests; later ones are forwarded.
    pub fn first(mut self, k: usize) -> Rule {
        self.limit = Some(k);
        self
    }
}

struct Inner {
    upstream: String,
    rules: Vec<Rule>,
    hits: Vec<AtomicUsize>,
    injected: Vec<AtomicUsize>,
    /// When each rule first matched (for [`Rule::during`]).
    first_match: Vec<std::sync::OnceLock<std::time::Instant>>,
    requests: AtomicUsize,
}

impl Inner {
    /// Counts the request against every matching rule; returns the fault to apply, if any.
    fn select(&self, method: &str, target: &str) -> Option<Fault> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut chosen = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if !(rule.matcher)(method, target) {
                continue;
            }
            self.hits[i].fetch_add(1, Ordering::SeqCst);
            if chosen.is_some() {
                continue;
            }
            let opened = *self.first_match[i].get_or_init(std::time::Instant::now);
            if rule.window.is_some_and(|w| opened.elapsed() > w) {
                continue;
            }
            let budget = self.injected[i].fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                rule.limit.is_none_or(|l| n < l).then_some(n + 1)
            });
            if budget.is_ok() {
                chosen = Some(rule.fault.clone());
            }
        }
        chosen
    }
}

/// The proxy; see the module docs. Stops (and drops its connections) when dropped.
pub struct FaultProxy {
    port: u16,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream_url` (`http://host:port`).
    pub async fn start(upstream_url: &str, rules: Vec<Rule>) -> FaultProxy {
        let rest = upstream_url.strip_prefix("http://").unwrap_or_else(|| {
            panic!("FaultProxy supports http:// upstreams only: {upstream_url}")
        });
        let authority = rest.split('/').next().unwrap_or(rest);
        let upstream = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let n = rules.len();
        let inner = Arc::new(Inner {
            upstream,
            rules,
            hits: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            injected: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            first_match: (0..n).map(|_| std::sync::OnceLock::new()).collect(),
            requests: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let task = tokio::spawn(accept_loop(listener, inner.clone()));
        FaultProxy { port, inner, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Requests that matched rule `i` (whether or not its fault was applied).
    pub fn hits(&self, i: usize) -> usize {
        self.inner.hits[i].load(Ordering::SeqCst)
    }

    /// Waits until rule `i` has matched at least `n` requests.
    pub async fn wait_hits(&self, i: usize, n: usize, timeout: Duration) {
        let desc = format!("{n} requests matching {}", self.rule_desc(i));
        super::wait_for(&desc, timeout, async || {
            let hits = self.hits(i);
            if hits >= n { Ok(()) } else { Err(hits) }
        })
        .await
    }

    /// Requests to which rule `i`'s fault was applied.
    pub fn injected(&self, i: usize) -> usize {
        self.inner.injected[i].load(Ordering::SeqCst)
    }

    /// All requests received.
    pub fn requests(&self) -> usize {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Description of rule `i`, for messages.
    pub fn rule_desc(&self, i: usize) -> &str {
        &self.inner.rules[i].desc
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    // Connection tasks live in the set: aborting this task drops the set, which aborts them.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let inner = inner.clone();
        conns.spawn(async move {
            let _ = serve(stream, inner).await;
        });
    }
}

type Upstream = (BufReader<OwnedReadHalf>, OwnedWriteHalf);

/// Serves one client connection until it closes.
async fn serve(client: TcpStream, inner: Arc<Inner>) -> io::Result<()> {
    let (cr, mut cw) = client.into_split();
    let mut cr = BufReader::new(cr);
    let mut upstream: Option<Upstream> = None;
    loop {
        let Some(mut head) = read_head(&mut cr).await? else {
            return Ok(());
        };
        let mut parts = head.start_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let version = parts.next().unwrap_or("HTTP/1.1").to_string();
        if head.has_token("expect", "100-continue") {
            head.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("expect"));
            cw.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        let body = read_body(&mut cr, &framing(&head, false, &method, 0)).await?;
        let client_close = head.has_token("connection", "close")
            || (version == "HTTP/1.0" && !head.has_token("connection", "keep-alive"));

        let mut hold = Duration::ZERO;
        let mut rewriter = None;
        let mut lose = false;
        let mut partial = None;
        let mut slot = None; // a Throttle's place, freed as the answer goes out
        match inner.select(&method, &target) {
            Some(Fault::Reset) => {
                let stream = cr.into_inner().reunite(cw).expect("halves of one stream");
                let _ = stream.set_zero_linger();
                return Ok(()); // dropping the stream sends RST
            }
            Some(Fault::Status { status, body }) => {
                cw.write_all(&synthetic_response(status, &body, method == "HEAD"))
                    .await?;
                if client_close {
                    return Ok(());
                }
                continue;
            }
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            Some(Fault::Stale(d)) => hold = d,
            Some(Fault::LoseResponse) => lose = true,
            Some(Fault::Handle(handler)) => {
                let (status, answer) = handler(method.clone(), target.clone(), body).await;
                cw.write_all(&synthetic_response(status, &answer, method == "HEAD"))
                    .await?;
                if client_close {
                    return Ok(());
                }
                continue;
            }
            Some(Fault::Rewrite(f)) => rewriter = Some(f),
            Some(Fault::Partial(p)) => partial = Some(p),
            Some(Fault::Throttle(t)) => match t.admit() {
                Some(place) => {
                    slot = Some(place);
                    tokio::time::sleep(t.hold).await;
                }
                None => {
                    cw.write_all(&synthetic_response(t.status, &t.body, method == "HEAD"))
                        .await?;
                    if client_close {
                        return Ok(());
                    }
                    continue;
                }
            },
            None => {}
        }

        if rewriter.is_some() {
            // The body is rewritten as text: ask upstream for it uncompressed (Elasticsearch
            // compresses when the client accepts it).
            head.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("accept-encoding"));
        }
        let mut request = head.to_bytes();
        request.extend_from_slice(&body);
        match forward(&inner.upstream, &mut upstream, &request, &method).await {
            Ok(_) if lose => {
                let stream = cr.into_inner().reunite(cw).expect("halves of one stream");
                let _ = stream.set_zero_linger();
                return Ok(()); // dropping the stream sends RST
            }
            Ok((response, _)) if partial.is_some() => {
                let p = partial.as_ref().expect("checked");
                p.answer(&mut cw, &response).await?;
                let stream = cr.into_inner().reunite(cw).expect("halves of one stream");
                let _ = stream.set_zero_linger();
                return Ok(());
            }
            Ok((response, close)) => {
                tokio::time::sleep(hold).await;
                let response = match &rewriter {
                    Some(f) => rewrite::rewrite_response(&response, &target, f),
                    None => response,
                };
                drop(slot.take()); // done before the client hears back, as a server would be
                cw.write_all(&response).await?;
                if close {
                    upstream = None;
                }
                if close || client_close {
                    return Ok(());
                }
            }
            Err(e) => {
                let msg = serde_json::json!({"error": format!("proxy: upstream failed: {e}"), "status": 502});
                let _ = cw
                    .write_all(&synthetic_response(502, &msg.to_string(), false))
                    .await;
                return Ok(());
            }
        }
    }
}

/// Sends one request upstream (reusing the kept-alive connection, with one retry on a fresh
/// connection if a reused one fails) and returns the raw response and whether the connection
/// must be closed afterwards.
async fn forward(
    addr: &str,
    conn: &mut Option<Upstream>,
    request: &[u8],
    method: &str,
) -> io::Result<(Vec<u8>, bool)> {
    let reused = conn.is_some();
    match exchange(addr, conn, request, method).await {
        Ok(r) => Ok(r),
        Err(_) if reused => {
            *conn = None;
            exchange(addr, conn, request, method).await
        }
        Err(e) => {
            *conn = None;
            Err(e)
        }
    }
}

async fn exchange(
    addr: &str,
    conn: &mut Option<Upstream>,
    request: &[u8],
    method: &str,
) -> io::Result<(Vec<u8>, bool)> {
    if conn.is_none() {
        let s = TcpStream::connect(addr).await?;
        let _ = s.set_nodelay(true);
        let (r, w) = s.into_split();
        *conn = Some((BufReader::new(r), w));
    }
    let (r, w) = conn.as_mut().expect("connected");
    w.write_all(request).await?;
    loop {
        let head = read_head(r)
            .await?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "upstream closed"))?;
        let status: u16 = head
            .start_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
        if (100..200).contains(&status) && status != 101 {
            continue; // interim response: drop it, read the final one
        }
        let fr = framing(&head, true, method, status);
        let body = read_body(r, &fr).await?;
        let close = matches!(fr, Framing::UntilEof)
            || head.has_token("connection", "close")
            || head.start_line.starts_with("HTTP/1.0");
        let mut out = head.to_bytes();
        out.extend_from_slice(&body);
        return Ok((out, close));
    }
}
