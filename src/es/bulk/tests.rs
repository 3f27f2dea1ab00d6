//! The sink against a scripted in-process `_bulk` endpoint: batching, per-item retries, failures.

use super::*;
use crate::config::EsConfig;
use crate::retry::{Backoff, RetryPolicy};
use serde_json::{Value, json};
use std::sync::atomic::AtomicUsize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Decides the answer to one bulk request from its number, target (path and query) and NDJSON lines.
type Script = Arc<dyn Fn(usize, &str, &[Value]) -> (u16, Value) + Send + Sync>;

/// A one-endpoint HTTP/1.1 server; returns its URL and the number of requests served.
async fn fake_es(script: Script) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (script, counter) = (script.clone(), counter.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let target = line.split(' ').nth(1).unwrap_or("").to_string();
                    loop {
                        line.clear();
                        reader.read_line(&mut line).await.unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    let lines: Vec<Value> = body
                        .split(|b| *b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(|l| serde_json::from_slice(l).unwrap())
                        .collect();
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let (status, answer) = script(n, &target, &lines);
                    let text = answer.to_string();
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        text.len()
                    );
                    let stream = reader.get_mut();
                    stream.write_all(head.as_bytes()).await.unwrap();
                    stream.write_all(text.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (url, served)
}

/// The action lines of a bulk body, as (op, id).
fn actions(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let (op, meta) = l.as_object()?.iter().next()?;
            let id = meta["_id"].as_str()?.to_string();
            matches!(op.as_str(), "index" | "delete").then(|| (op.clone(), id))
        })
        .collect()
}

fn settings(chunk_lines: usize) -> SinkSettings {
    SinkSettings {
        index: "idx".into(),
        pipeline: None,
        pipeline_optional: false,
        chunk_lines,
        chunk_bytes: 1 << 20,
        max_concurrency: NonZeroUsize::new(2).unwrap(),
        adaptive_concurrency: true,
        retry: RetryPolicy::new(
            3,
            Backoff::new(Duration::from_millis(1), Duration::from_millis(5)),
        ),
        max_text_bytes: 0,
        queue_items: NonZeroUsize::new(8).unwrap(),
        queue_bytes: 1 << 20,
        flush_interval: Duration::from_millis(50),
        error_monitor: ErrorMonitorConfig::default(),
        log_operations: false,
    }
}

fn client(url: &str) -> EsClient {
    let cfg = EsConfig {
        host: url.to_string(),
        max_retries: 1,
        ..EsConfig::default()
    };
    EsClient::new(&cfg, None, "test").unwrap()
}

fn index_op(id: &str) -> Op {
    Op::Index {
        id: id.into(),
        source: br#"{"a":1}"#.to_vec(),
        has_attachment: false,
    }
}

#[tokio::test]
async fn throttled_items_are_retried_alone_and_failed_items_counted() {
    // Request 0: item "b" throttled, item "bad" rejected by a mapping; later requests: all succeed.
    let script: Script = Arc::new(|n, _, lines| {
        let items: Vec<Value> = actions(lines)
            .into_iter()
            .map(|(op, id)| match (n, id.as_str()) {
                (0, "b") => json!({op: {"status": 429, "error": {"type": "x", "reason": "busy"}}}),
                (_, "bad") => json!({op: {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "no"}}}),
                _ => json!({op: {"status": 201, "result": "created"}}),
            })
            .collect();
        (200, json!({"errors": true, "items": items}))
    });
    let (url, served) = fake_es(script).await;
    let counters = Arc::new(SinkCounters::default());
    let watermark = Arc::new(Watermark::default());
    let sink = BulkSink::start(
        client(&url),
        settings(100),
        counters.clone(),
        watermark.clone(),
    );
    for id in ["a", "b", "bad"] {
        sink.send(index_op(id)).await.unwrap();
    }
    sink.mark(json!("after the index ops"));
    sink.send(Op::Delete {
        id: "gone".into(),
        counted: true,
    })
    .await
    .unwrap();
    sink.finish().await.unwrap();
    // The mark commits once a, b (after its retry) and bad are settled, with exactly their tally.
    let (checkpoint, tally) = watermark.committed().unwrap();
    assert_eq!(checkpoint, json!("after the index ops"));
    assert_eq!((tally.indexed, tally.deleted), (2, 0));
    assert_eq!(
        counters.indexed.load(Ordering::Relaxed),
        2,
        "a and b (after its retry)"
    );
    assert_eq!(counters.deleted.load(Ordering::Relaxed), 1);
    assert_eq!(counters.item_errors.load(Ordering::Relaxed), 1, "bad");
    assert_eq!(counters.item_retries.load(Ordering::Relaxed), 1);
    assert_eq!(
        served.load(Ordering::SeqCst),
        2,
        "one request, then one with b alone"
    );
}

#[tokio::test]
async fn whole_request_throttling_is_retried_then_gives_up() {
    let script: Script = Arc::new(|_, _, _| {
        (
            503,
            json!({"error": {"type": "unavailable", "reason": "down"}}),
        )
    });
    // A 503 is no refusal to take more at once: it spends attempts whatever the limit.
    for (adaptive, requests, why) in [
        (true, 3, "max_attempts requests, no more"),
        (false, 3, "a fixed limit: max_attempts requests, no more"),
    ] {
        let (url, served) = fake_es(script.clone()).await;
        let settings = SinkSettings {
            adaptive_concurrency: adaptive,
            ..settings(100)
        };
        let sink = BulkSink::start(client(&url), settings, Arc::default(), Arc::default());
        sink.send(index_op("a")).await.unwrap();
        let err = sink.finish().await.unwrap_err();
        assert!(err.to_string().contains("503"), "{err}");
        assert_eq!(served.load(Ordering::SeqCst), requests, "{why}");
    }
}

#[tokio::test]
async fn refusals_while_the_limit_adapts_do_not_spend_the_attempts() {
    // Requests 0 and 1 refused whole, request 2's item refused, then accepted. With 2 attempts,
    // only the refusals at the floor (limit 1) count: 1 and 2 spend the first, 3 succeeds.
    let script: Script = Arc::new(|n, _, lines| match n {
        0 | 1 => (
            429,
            json!({"error": {"type": "es_rejected_execution_exception", "reason": "busy"}}),
        ),
        _ => {
            let items: Vec<Value> = actions(lines)
                .into_iter()
                .map(|(op, _)| match n {
                    2 => json!({op: {"status": 429, "error": {"type": "x", "reason": "busy"}}}),
                    _ => json!({op: {"status": 201, "result": "created"}}),
                })
                .collect();
            (200, json!({"errors": n == 2, "items": items}))
        }
    });
    let (url, served) = fake_es(script).await;
    let counters = Arc::new(SinkCounters::default());
    let settings = SinkSettings {
        max_concurrency: NonZeroUsize::new(4).unwrap(),
        retry: RetryPolicy::new(
            2,
            Backoff::new(Duration::from_millis(1), Duration::from_millis(5)),
        ),
        ..settings(100)
    };
    let sink = BulkSink::start(client(&url), settings, counters.clone(), Arc::default());
    sink.send(index_op("a")).await.unwrap();
    sink.finish().await.unwrap();
    assert_eq!(counters.indexed.load(Ordering::Relaxed), 1);
    assert_eq!(served.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn requests_respect_the_line_limit_and_too_many_errors_stop_the_sink() {
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let seen = sizes.clone();
    let script: Script = Arc::new(move |_, _, lines| {
        seen.lock().unwrap().push(lines.len());
        let items: Vec<Value> = actions(lines)
            .into_iter()
            .map(|(op, _)| json!({op: {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "no"}}}))
            .collect();
        (200, json!({"errors": true, "items": items}))
    });
    let (url, _) = fake_es(script).await;
    let sink = BulkSink::start(client(&url), settings(4), Arc::default(), Arc::default());
    for i in 0..40 {
        if sink.send(index_op(&format!("d{i}"))).await.is_err() {
            break; // the sink stopped on too many errors
        }
    }
    let err = sink.finish().await.unwrap_err();
    assert!(
        err.to_string().starts_with(
            "TooManyErrors: Exceeded maximum consecutive errors - saw 11 errors in a row."
        ),
        "{err}"
    );
    assert!(
        sizes.lock().unwrap().iter().all(|n| *n <= 4),
        "{:?}",
        sizes.lock().unwrap()
    );
}

/// Each request's target and NDJSON lines, in order.
type Requests = Arc<Mutex<Vec<(String, Vec<Value>)>>>;

/// Answers like a cluster without any ingest pipeline: every item of a request naming one fails.
fn no_pipelines(seen: Requests) -> Script {
    Arc::new(move |_, target, lines| {
        seen.lock()
            .unwrap()
            .push((target.to_string(), lines.to_vec()));
        let pipeline = target.split("pipeline=").nth(1).map(str::to_string);
        let items: Vec<Value> = actions(lines)
            .into_iter()
            .map(|(op, _)| match &pipeline {
                Some(p) => {
                    json!({op: {"status": 400, "error": {"type": "illegal_argument_exception",
                    "reason": format!("pipeline with id [{p}] does not exist")}}})
                }
                None => json!({op: {"status": 201, "result": "created"}}),
            })
            .collect();
        (200, json!({"errors": pipeline.is_some(), "items": items}))
    })
}

fn flagged_op(id: &str) -> Op {
    Op::Index {
        id: id.into(),
        source: br#"{"id":"x","_reduce_whitespace":true}"#.to_vec(),
        has_attachment: false,
    }
}

#[tokio::test]
async fn a_missing_default_pipeline_is_dropped_and_the_items_sent_again() {
    let seen = Requests::default();
    let (url, _) = fake_es(no_pipelines(seen.clone())).await;
    let counters = Arc::new(SinkCounters::default());
    let mut s = settings(100);
    s.pipeline = Some("search-default-ingestion".into());
    s.pipeline_optional = true;
    let sink = BulkSink::start(client(&url), s, counters.clone(), Arc::default());
    let pipeline_on = sink.pipeline_on();
    sink.send(flagged_op("a")).await.unwrap();
    sink.send(flagged_op("b")).await.unwrap();
    sink.finish().await.unwrap();
    assert_eq!(counters.indexed.load(Ordering::Relaxed), 2);
    assert_eq!(counters.item_errors.load(Ordering::Relaxed), 0);
    assert_eq!(counters.item_retries.load(Ordering::Relaxed), 0);
    assert!(
        !pipeline_on.load(Ordering::Relaxed),
        "later documents need no flags"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.len(),
        2,
        "one request naming the pipeline, one without"
    );
    assert!(seen[0].0.contains("pipeline=search-default-ingestion"));
    assert!(!seen[1].0.contains("pipeline"), "{}", seen[1].0);
    assert_eq!(seen[1].1[1], json!({"id": "x"}), "flags stripped");
}

#[tokio::test]
async fn a_missing_custom_pipeline_stops_the_sink_naming_it() {
    let seen = Requests::default();
    let (url, _) = fake_es(no_pipelines(seen.clone())).await;
    let counters = Arc::new(SinkCounters::default());
    let mut s = settings(100);
    s.pipeline = Some("my-pipeline".into());
    let sink = BulkSink::start(client(&url), s, counters.clone(), Arc::default());
    sink.send(flagged_op("a")).await.unwrap();
    let err = sink.finish().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("ingest pipeline [my-pipeline] does not exist"),
        "{err}"
    );
    assert_eq!(counters.indexed.load(Ordering::Relaxed), 0);
    assert_eq!(seen.lock().unwrap().len(), 1, "not sent again without it");
}
