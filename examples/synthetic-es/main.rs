//! A synthetic Elasticsearch front for benchmarks: it answers for ONE content index as if a previous
//! sync of a synthetic bucket (examples/synthetic-s3) had filled it, and passes every other request
//! (`.elastic-connectors*`, cluster calls, other indices) to a real node unchanged.
//!
//! ```sh
//! cargo run --release --example synthetic-es -- --upstream "$ES_URL" --index bench-scale \
//!     --bucket scale-1000000 --stale 100000
//! # prints ES_URL=http://127.0.0.1:<port> once the id table is built, then serves until killed
//! ```
//!
//! The index holds the bucket's N objects (`_id` = hex md5 of `<bucket>/<key>`, `_source` with `id`,
//! `bucket`, `filename`, `_timestamp` and `etag` as the service writes them, so an incremental sync
//! finds every object unchanged) plus `--stale` documents of keys the bucket lacks
//! (`stale/<i>.dat`); with `--corpus`, the bucket's keys are those the synthetic S3 serves from the
//! same corpus. For that index it answers:
//! - `HEAD|GET /{index}`, `GET /{index}/_mapping`, `PUT /{index}/_mapping`, `POST /{index}/_refresh`,
//!   `GET|POST /{index}/_count` (always the pre-sync N + stale: nothing is stored);
//! - `_search` with an `ids` query (the hits that exist) or with `?scroll=` (every document in
//!   order, pages generated on the fly), `POST|DELETE /_search/scroll` for its own scroll ids;
//! - `_bulk`: every operation counted (which ids were indexed and deleted, how many documents carried
//!   extracted text in a non-empty `body`) and dropped.
//!
//! `GET /_synthetic/stats` tells what bulk, lookups and scrolls saw; `POST /_synthetic/reset` zeroes
//! it. Written for speed (the `_bulk` path scans action lines, and source lines only for `"body":"`), so that the front is not what
//! bounds a benchmark: `make bench-scale` measures its ceiling in each run.

mod bulk;
#[allow(dead_code)] // the S3-only helpers (URL and XML escaping)
#[path = "../synthetic-s3/http.rs"]
mod http;
mod index;
mod search;

use clap::Parser;
use http::{Request, Response};
use index::{Bucket, SyntheticIndex};
use search::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

/// Largest request body read (a bulk request of the service is a few MiB at most).
const MAX_BODY: u64 = 512 << 20;

#[derive(Parser, Debug, Clone)]
#[command(about = "A synthetic Elasticsearch content index in front of a real node")]
struct Args {
    /// The real node every other request goes to.
    #[arg(long)]
    upstream: String,
    /// The content index answered here.
    #[arg(long)]
    index: String,
    /// The synthetic bucket (`<name>-<N>`) whose N objects the index holds.
    #[arg(long)]
    bucket: String,
    /// The corpus the synthetic S3 serves the bucket from (its `--corpus`): keys end in file names.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// A file of the corpus directory it does not serve (its `--exclude`).
    #[arg(long = "exclude", requires = "corpus")]
    exclude: Vec<String>,
    /// Documents of objects the bucket does not have (a sync deletes them).
    #[arg(long, default_value_t = 0)]
    stale: u64,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0: a free one; the URL is printed on stdout).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

struct Front {
    index: SyntheticIndex,
    upstream: String,
    http: reqwest::Client,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    http::block_on(args.threads, run(args))?
}

async fn run(args: Args) -> std::io::Result<()> {
    let front = Arc::new(front(&args).map_err(std::io::Error::other)?);
    http::listen(&args.host, args.port, "ES_URL", MAX_BODY, move |r| {
        route(front.clone(), r)
    })
    .await
}

fn front(args: &Args) -> Result<Front, String> {
    let corpus = match &args.corpus {
        Some(dir) => Some(Arc::new(index::Corpus::load(dir, &args.exclude)?)),
        None => None,
    };
    let bucket = Bucket::parse(&args.bucket, None)
        .ok_or_else(|| format!("bucket {:?} is not named <name>-<N>", args.bucket))?
        .with_corpus(corpus);
    let http = reqwest::Client::builder()
        .no_gzip()
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    Ok(Front {
        index: SyntheticIndex::new(&args.index, bucket, args.stale),
        upstream: args.upstream.trim_end_matches('/').to_owned(),
        http,
    })
}

async fn route(front: Arc<Front>, r: Request) -> Response {
    let segments: Vec<&str> = r.path.trim_matches('/').split('/').collect();
    let index = front.index.name.as_str();
    let m = r.method.as_str();
    match segments.as_slice() {
        ["_synthetic", "stats"] => json(200, front.index.stats_json()),
        ["_synthetic", "reset"] if m == "POST" => {
            front.index.reset();
            json(200, r#"{"acknowledged":true}"#.into())
        }
        ["_bulk"] | [_, "_bulk"] => {
            let default = (segments.len() == 2).then_some(segments[0]);
            match bulk::parse(&r.body) {
                Ok(ops) => match bulk::count_for(&ops, default, index) {
                    0 => proxy(&front, r).await,
                    n if n == ops.len() => json(200, bulk::answer(&front.index, &ops)),
                    _ => error(400, "a bulk request mixes the synthetic index with others"),
                },
                Err(e) => error(400, &e),
            }
        }
        ["_search", "scroll"] => {
            let ids = search::scroll_ids(&r.body);
            let cursors: Vec<Option<Cursor>> = ids.iter().map(|s| Cursor::decode(s)).collect();
            match (m, cursors.as_slice()) {
                ("GET" | "POST", [Some(cursor)]) => {
                    json(200, search::scroll_page(&front.index, *cursor))
                }
                ("DELETE", c) if !c.is_empty() && c.iter().all(Option::is_some) => {
                    front
                        .index
                        .stats
                        .scrolls_cleared
                        .fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    json(
                        200,
                        format!(r#"{{"succeeded":true,"num_freed":{}}}"#, c.len()),
                    )
                }
                _ => proxy(&front, r).await,
            }
        }
        [first, rest @ ..] if *first == index => synthetic(&front, &r, rest),
        _ => proxy(&front, r).await,
    }
}

/// A request on the synthetic index (`rest`: the path after the index name).
fn synthetic(front: &Front, r: &Request, rest: &[&str]) -> Response {
    let ix = &front.index;
    let name = &ix.name;
    let shards = r#""_shards":{"total":1,"successful":1,"failed":0}"#;
    match (r.method.as_str(), rest) {
        ("HEAD" | "GET", []) => json(
            200,
            format!(r#"{{"{name}":{{"aliases":{{}},"mappings":{{}},"settings":{{}}}}}}"#),
        ),
        ("PUT", []) => json(
            400,
            format!(
                r#"{{"error":{{"type":"resource_already_exists_exception","reason":"index [{name}] already exists"}},"status":400}}"#
            ),
        ),
        ("GET", ["_mapping"]) => json(200, format!(r#"{{"{name}":{{"mappings":{{}}}}}}"#)),
        ("PUT" | "POST", ["_mapping"]) => json(200, r#"{"acknowledged":true}"#.into()),
        ("POST" | "GET", ["_refresh"]) => json(200, format!("{{{shards}}}")),
        ("POST" | "GET", ["_count"]) => {
            json(200, format!(r#"{{"count":{},{shards}}}"#, ix.total()))
        }
        ("POST" | "GET", ["_search"]) => match search::parse_search(&r.body) {
            Ok(s) if r.param("scroll").is_some() => json(200, search::open_scroll(ix, &s)),
            Ok(s) => match &s.ids {
                Some(ids) => json(200, search::lookup(ix, &s, ids)),
                None => unsupported(r, "a search that is neither a scroll nor an ids query"),
            },
            Err(e) => unsupported(r, &e),
        },
        _ => unsupported(r, "not answered by the synthetic index"),
    }
}

fn unsupported(r: &Request, why: &str) -> Response {
    eprintln!("synthetic-es: {} {}: {why}", r.method, r.target);
    error(
        501,
        &format!("synthetic-es: {} {}: {why}", r.method, r.path),
    )
}

/// Passes the request to the real node and its answer back, both unchanged (but for hop-by-hop
/// headers; compression is not asked for, so bodies pass as they are).
async fn proxy(front: &Front, r: Request) -> Response {
    let Ok(method) = reqwest::Method::from_bytes(r.method.as_bytes()) else {
        return error(400, "bad method");
    };
    let mut req = front
        .http
        .request(method, format!("{}{}", front.upstream, r.target));
    for (k, v) in &r.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "accept-encoding" | "transfer-encoding"
        ) {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    if !r.body.is_empty() {
        req = req.body(r.body);
    }
    let answer = match req.send().await {
        Ok(a) => a,
        Err(e) => return error(502, &format!("upstream: {e}")),
    };
    let status = answer.status().as_u16();
    let headers: Vec<(String, String)> = answer
        .headers()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "content-length" | "connection" | "transfer-encoding" | "keep-alive"
            )
        })
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = match answer.bytes().await {
        Ok(b) => b.to_vec(),
        Err(e) => return error(502, &format!("upstream body: {e}")),
    };
    let mut response = Response::new(status, body);
    response.headers = headers;
    response
}

fn json(status: u16, body: String) -> Response {
    Response::new(status, body.into_bytes())
        .header("Content-Type", "application/json")
        .header("X-elastic-product", "Elasticsearch")
}

fn error(status: u16, reason: &str) -> Response {
    let body = serde_json::json!({"error": {"type": "synthetic_es_exception", "reason": reason}, "status": status});
    json(status, body.to_string())
}

#[cfg(test)]
mod tests;
