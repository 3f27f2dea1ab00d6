//! GETs every key of a bucket and prints what it cost: the S3 GET ceiling of `make bench-extract`.
//!
//! `get-ceiling --endpoint URL --bucket B --keys FILE [--connections C] [--client plain|service]`
//! reads one key per line from FILE and downloads each object once, C at a time, on a two-thread
//! runtime (the service's own shape). It prints one JSON line: objects, bytes, wall seconds and the
//! CPU seconds of this process.
//!
//! * `plain`: a bare HTTP GET per object (reqwest, keep-alive, no signing, no retries). With a fast
//!   server this is the server's ceiling, and its CPU per object the least a download costs a client.
//! * `service`: the service's own download path, `S3Client::get_object` (signed requests with the
//!   SDK's credentials and endpoint rules, its retries; `src/source/s3/download.rs`) with the body
//!   read whole. Its CPU per object beside `plain`'s is what signing and the rest add to a download.
//!
//! The keys are sent as given: give keys made of URL-safe characters.

use content_sync::config::Secret;
use content_sync::source::s3::{S3Client, S3Settings};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The service's allocator (jemalloc, src/allocator.rs), so that a download costs here what it
/// costs the service: under glibc's, the service path's extra allocations also pay for lock
/// contention between the two runtime threads that the service never sees.
#[global_allocator]
static ALLOCATOR: content_sync::allocator::PerProcess = content_sync::allocator::PerProcess::new();

struct Args {
    endpoint: String,
    bucket: String,
    keys: Vec<String>,
    connections: usize,
    service: bool,
}

fn args() -> Result<Args, String> {
    let (mut endpoint, mut bucket, mut keys_file) = (None, None, None);
    let (mut connections, mut service) = (10, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--endpoint" => endpoint = Some(value()?),
            "--bucket" => bucket = Some(value()?),
            "--keys" => keys_file = Some(value()?),
            "--connections" => {
                connections = value()?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?
            }
            "--client" => match value()?.as_str() {
                "plain" => service = false,
                "service" => service = true,
                other => return Err(format!("--client {other}: plain or service")),
            },
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let keys_file = keys_file.ok_or("--keys FILE is required")?;
    let keys = std::fs::read_to_string(&keys_file)
        .map_err(|e| format!("{keys_file}: {e}"))?
        .lines()
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Args {
        endpoint: endpoint.ok_or("--endpoint URL is required")?,
        bucket: bucket.ok_or("--bucket B is required")?,
        keys,
        connections: connections.max(1),
        service,
    })
}

enum Client {
    Plain(reqwest::Client, String),
    Service(Box<S3Client>, String),
}

impl Client {
    /// Downloads one object whole; its size.
    async fn get(&self, key: &str) -> Result<usize, String> {
        match self {
            Client::Plain(http, base) => {
                let answer = http
                    .get(format!("{base}/{key}"))
                    .send()
                    .await
                    .map_err(|e| format!("GET {key}: {e}"))?;
                if !answer.status().is_success() {
                    return Err(format!("GET {key}: HTTP {}", answer.status()));
                }
                let body = answer
                    .bytes()
                    .await
                    .map_err(|e| format!("GET {key}: {e}"))?;
                Ok(body.len())
            }
            Client::Service(s3, bucket) => {
                let stream = s3
                    .get_object(bucket, key)
                    .await
                    .map_err(|e| e.to_string())?;
                let body = stream
                    .collect()
                    .await
                    .map_err(|e| format!("GET {key}: {e}"))?;
                Ok(body.into_bytes().len())
            }
        }
    }
}

/// CPU seconds (user + system) of this process so far, from `/proc/self/stat` (Linux; ticks of
/// 1/100 s, the kernel's fixed `USER_HZ`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) and its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

async fn run(args: Args) -> Result<String, String> {
    let client = if args.service {
        let settings = S3Settings {
            buckets: vec![args.bucket.clone()],
            access_key_id: Some("bench".into()),
            secret_access_key: Some(Secret::new("bench")),
            endpoint_url: Some(args.endpoint.clone()),
            region: Some("us-east-1".into()),
            ..S3Settings::default()
        };
        let s3 = S3Client::new(&settings).await.map_err(|e| e.to_string())?;
        Client::Service(Box::new(s3), args.bucket.clone())
    } else {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        let base = format!("{}/{}", args.endpoint.trim_end_matches('/'), args.bucket);
        Client::Plain(http, base)
    };
    let client = Arc::new(client);
    let keys = Arc::new(args.keys);
    let next = Arc::new(AtomicUsize::new(0));
    let (cpu, started) = (cpu_seconds(), Instant::now());
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (client, keys, next) = (client.clone(), keys.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut bytes = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(key) = keys.get(i) else {
                    return Ok::<usize, String>(bytes);
                };
                bytes += client.get(key).await?;
            }
        }));
    }
    let mut bytes = 0;
    for task in tasks {
        bytes += task.await.map_err(|e| e.to_string())??;
    }
    let (seconds, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    Ok(format!(
        r#"{{"client": "{}", "objects": {}, "bytes": {bytes}, "seconds": {seconds:.3}, "cpu_seconds": {cpu:.3}}}"#,
        if args.service { "service" } else { "plain" },
        keys.len()
    ))
}

fn main() {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("get-ceiling: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("get-ceiling: {e}");
            std::process::exit(1);
        }
    }
}
