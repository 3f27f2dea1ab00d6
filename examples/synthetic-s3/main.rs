//! A synthetic S3 for benchmarks: every bucket named `<anything>-<N>` holds `N` generated objects
//! (see `bucket.rs`), nothing is stored, and any SigV4 (or no) authorization is accepted.
//!
//! ```sh
//! cargo run --release --example synthetic-s3 -- --bucket scale-100000
//! # prints S3_ENDPOINT=http://127.0.0.1:<port>, then serves path-style requests until killed
//! ```
//!
//! Serves ListBuckets (the `--bucket` names), HeadBucket, GetBucketLocation (us-east-1),
//! ListObjectsV2 (`prefix`, `max-keys` ≤ 1000, `continuation-token`, `start-after`, `fetch-owner`,
//! `encoding-type=url`; no `delimiter`), HeadObject and GetObject (with a single `Range`). Writes
//! are refused. Written for speed, so that what it serves is not the limit of a benchmark: one core
//! lists well over 100 000 keys a second (`make bench-scale` measures it in each run).
//!
//! `--corpus DIR` (with `--exclude NAME`…) makes every bucket serve the files of a directory instead
//! of generated lines: object `i` is file `i % len` (sorted by name), read once at start, keyed
//! `<group>/<number>-<file name>` so that the service extracts it by its extension
//! (`make bench-extract`).

mod bucket;
mod http;

use bucket::{Bucket, Corpus, ListQuery, Page, encode_token};
use clap::Parser;
use http::{Request, Response, encode, xml};
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;

const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

#[derive(Parser, Debug, Clone)]
#[command(about = "A synthetic, read-only S3 serving generated buckets")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0: a free one; the endpoint is printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Bucket names ListBuckets returns (every `<name>-<N>` exists, listed or not).
    #[arg(long = "bucket")]
    buckets: Vec<String>,
    /// Size of every object's body in bytes (default: one line of about 70 bytes).
    #[arg(long)]
    object_size: Option<u64>,
    /// Serve the files of this directory (cycled) instead of generated bodies.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// A file of the corpus directory not to serve (repeatable).
    #[arg(long = "exclude", requires = "corpus")]
    exclude: Vec<String>,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Answer each ListObjectsV2 request this many milliseconds late, as a distant S3 would (the
    /// listing's round trip, which key ranges listed at once hide).
    #[arg(long, default_value_t = 0)]
    list_latency_ms: u64,
}

/// What every request is answered from.
struct Server {
    args: Args,
    corpus: Option<Arc<Corpus>>,
}

impl Server {
    fn new(args: Args) -> std::io::Result<Server> {
        let corpus = match &args.corpus {
            Some(dir) => Some(Arc::new(
                Corpus::load(dir, &args.exclude).map_err(std::io::Error::other)?,
            )),
            None => None,
        };
        Ok(Server { args, corpus })
    }
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    http::block_on(args.threads, run(args))?
}

async fn run(args: Args) -> std::io::Result<()> {
    let (host, port) = (args.host.clone(), args.port);
    let server = Arc::new(Server::new(args)?);
    let latency = std::time::Duration::from_millis(server.args.list_latency_ms);
    http::listen(&host, port, "S3_ENDPOINT", 0, move |r| {
        let server = server.clone();
        async move {
            if !latency.is_zero() && r.param("list-type").is_some() {
                tokio::time::sleep(latency).await;
            }
            route(&server, &r)
        }
    })
    .await
}

fn route(server: &Server, r: &Request) -> Response {
    let args = &server.args;
    let path = r.path.trim_start_matches('/');
    let (name, key) = path.split_once('/').unwrap_or((path, ""));
    let read = r.method == "GET" || r.method == "HEAD";
    if !read {
        return error(501, "NotImplemented", "synthetic-s3 is read-only");
    }
    if name.is_empty() {
        return list_buckets(args);
    }
    let Some(bucket) = Bucket::parse(name, args.object_size) else {
        return error(404, "NoSuchBucket", "The specified bucket does not exist");
    };
    let bucket = bucket.with_corpus(server.corpus.clone());
    if !key.is_empty() {
        return object(&bucket, key, r.header("range"));
    }
    if r.method == "HEAD" {
        return Response::new(200, Vec::new()).header("x-amz-bucket-region", "us-east-1");
    }
    if r.param("location").is_some() {
        // An empty constraint means us-east-1.
        let body = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="{XMLNS}"/>"#
        );
        return xml_response(body);
    }
    if r.param("list-type") == Some("2") {
        return list_objects(&bucket, r);
    }
    error(
        501,
        "NotImplemented",
        "only ListObjectsV2 (list-type=2) lists objects here",
    )
}

fn list_buckets(args: &Args) -> Response {
    let mut body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult xmlns="{XMLNS}"><Owner><ID>synthetic</ID><DisplayName>synthetic</DisplayName></Owner><Buckets>"#
    );
    let mut names: Vec<&String> = args.buckets.iter().collect();
    names.sort();
    for name in names {
        let _ = write!(
            body,
            "<Bucket><Name>{}</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket>",
            xml(name)
        );
    }
    body.push_str("</Buckets></ListAllMyBucketsResult>");
    xml_response(body)
}

fn list_objects(bucket: &Bucket, r: &Request) -> Response {
    if r.param("delimiter").is_some_and(|d| !d.is_empty()) {
        return error(501, "NotImplemented", "delimiter is not supported here");
    }
    let max_keys = match r.param("max-keys").map(str::parse::<usize>) {
        None => bucket::MAX_KEYS,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return error(
                400,
                "InvalidArgument",
                "Provided max-keys not an integer or within integer range",
            );
        }
    };
    let q = ListQuery {
        prefix: r.param("prefix").unwrap_or_default().to_owned(),
        start_after: r.param("start-after").map(str::to_owned),
        token: r.param("continuation-token").map(str::to_owned),
        max_keys,
    };
    let Ok(page) = bucket.page(&q) else {
        return error(
            400,
            "InvalidArgument",
            "The continuation token provided is incorrect",
        );
    };
    let url = r.param("encoding-type") == Some("url");
    let owner = r.param("fetch-owner") == Some("true");
    xml_response(list_xml(bucket, &q, &page, url, owner))
}

/// The ListBucketResult of a page, elements in AWS's order.
fn list_xml(bucket: &Bucket, q: &ListQuery, page: &Page, url: bool, owner: bool) -> String {
    let enc = |s: &str| if url { encode(s) } else { xml(s).into_owned() };
    let mut out = String::with_capacity(300 * (page.to - page.from) as usize + 512);
    let _ = write!(
        out,
        r#"<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{XMLNS}"><Name>{}</Name><Prefix>{}</Prefix>"#,
        xml(&bucket.name),
        enc(&q.prefix)
    );
    if let Some(token) = &q.token {
        let _ = write!(out, "<ContinuationToken>{}</ContinuationToken>", xml(token));
    }
    if let Some(next) = page.next {
        let _ = write!(
            out,
            "<NextContinuationToken>{}</NextContinuationToken>",
            encode_token(next)
        );
    }
    let _ = write!(
        out,
        "<KeyCount>{}</KeyCount><MaxKeys>{}</MaxKeys>",
        page.to - page.from,
        q.max_keys
    );
    if url {
        out.push_str("<EncodingType>url</EncodingType>");
    }
    let _ = write!(out, "<IsTruncated>{}</IsTruncated>", page.next.is_some());
    if let Some(after) = &q.start_after {
        let _ = write!(out, "<StartAfter>{}</StartAfter>", enc(after));
    }
    for i in page.from..page.to {
        // Keys need neither XML nor URL escaping (generated, or of corpus files named so).
        out.push_str("<Contents><Key>");
        bucket.write_key(i, &mut out);
        let _ = write!(
            out,
            "</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size>",
            Bucket::last_modified_iso(i),
            xml(&bucket.etag(i)),
            bucket.size(i)
        );
        if owner {
            out.push_str("<Owner><ID>synthetic</ID><DisplayName>synthetic</DisplayName></Owner>");
        }
        out.push_str("<StorageClass>STANDARD</StorageClass></Contents>");
    }
    out.push_str("</ListBucketResult>");
    out
}

fn object(bucket: &Bucket, key: &str, range: Option<&str>) -> Response {
    let Some(i) = bucket.find(key) else {
        return error(404, "NoSuchKey", "The specified key does not exist.");
    };
    let body = bucket.body(i);
    let total = body.len() as u64;
    let (status, part, content_range) = match range.map(|r| parse_range(r, total)) {
        None => (200, body, None),
        Some(Some((start, end))) => (
            206,
            body[start as usize..=end as usize].to_vec(),
            Some(format!("bytes {start}-{end}/{total}")),
        ),
        Some(None) => {
            return error(
                416,
                "InvalidRange",
                "The requested range is not satisfiable",
            );
        }
    };
    let mut response = Response::new(status, part)
        .header("Content-Type", "application/octet-stream")
        .header("ETag", bucket.etag(i))
        .header("Last-Modified", Bucket::last_modified_http(i))
        .header("Accept-Ranges", "bytes");
    if let Some(cr) = content_range {
        response = response.header("Content-Range", cr);
    }
    response
}

/// One `bytes=a-b`, `bytes=a-` or `bytes=-n` range of a body of `total` bytes, as inclusive ends.
fn parse_range(header: &str, total: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (total.checked_sub(n.min(total))?, total.checked_sub(1)?)
        }
        (a, "") => (a.parse().ok()?, total.checked_sub(1)?),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(total.checked_sub(1)?),
        ),
    };
    (start <= end && end < total).then_some((start, end))
}

fn xml_response(body: String) -> Response {
    Response::new(200, body.into_bytes()).header("Content-Type", "application/xml")
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{}</Message><RequestId>synthetic</RequestId></Error>"#,
        xml(message)
    );
    Response::new(status, body.into_bytes()).header("Content-Type", "application/xml")
}

#[cfg(test)]
mod tests;
