//! Back-pressure (docs/architecture.md, "Back-pressure"): a cluster or an S3 that can take only a
//! few requests at once, and refuses the others (429, or S3's `503 SlowDown`), slows a sync down
//! instead of failing it or losing text. The server is a throttling proxy in front of the real one;
//! the checks are a user's: the job completes, the index holds every object with its text, and the
//! log says the limit went down. `bench_backpressure` (ignored) prints the same runs with the
//! adaptive limit on and off.

mod common;

use common::prom::scrape;
use common::proxy::Throttle;
use common::{
    Fault, FaultProxy, Rule, ServiceProcess, TestWorld, free_port, log_tail, s3_configuration, secs,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OBJECTS: usize = 200;

/// Which server throttles.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    /// `_bulk`: 2 at once, 100 ms each; 429 beyond.
    Es,
    /// GetObject: 2 at once, 50 ms each; `503 SlowDown` beyond.
    S3,
}

/// What one faulted sync did.
struct Run {
    job: Value,
    /// Documents in the index whose `body` is the object's text.
    with_text: usize,
    refused: usize,
    admitted: usize,
    /// `content_sync_bulk_retries_total{kind="request"}` after the job.
    bulk_retries: f64,
    wall: Duration,
    logs: String,
}

impl Run {
    fn context(&self) -> String {
        format!(
            "{}\nrefused {} admitted {}\n{}",
            self.job,
            self.refused,
            self.admitted,
            log_tail(&self.logs, 6000)
        )
    }

    fn lowered(&self, stage: &str) -> bool {
        self.logs.lines().any(|l| {
            l.contains("concurrency limit lowered")
                && (l.contains(&format!("stage={stage}"))
                    || l.contains(&format!("\"stage\":\"{stage}\"")))
        })
    }
}

fn throttle(side: Side) -> Arc<Throttle> {
    match side {
        Side::Es => Throttle::new(
            2,
            Duration::from_millis(100),
            429,
            r#"{"error":{"type":"es_rejected_execution_exception","reason":"busy"},"status":429}"#,
        ),
        Side::S3 => Throttle::new(
            2,
            Duration::from_millis(50),
            503,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
             <Message>Please reduce your request rate.</Message><RequestId>bp</RequestId></Error>",
        ),
    }
}

async fn run(side: Side, adaptive: bool) -> Run {
    let world = TestWorld::start().await;
    let bucket = world.name("bp");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "o/", OBJECTS).await;

    let t = throttle(side);
    let throttled = Rule::when(
        "throttled",
        {
            let prefix = format!("/{bucket}/");
            move |m: &str, target: &str| match side {
                Side::Es => m == "POST" && target.contains("/_bulk"),
                Side::S3 => {
                    m == "GET" && target.starts_with(&prefix) && !target.contains("list-type")
                }
            }
        },
        Fault::Throttle(t.clone()),
    );
    let (s3_rules, es_rules) = match side {
        Side::Es => (vec![], vec![throttled]),
        Side::S3 => (vec![throttled], vec![]),
    };
    let s3 = FaultProxy::start(&world.s3_endpoint, s3_rules).await;
    let es = FaultProxy::start(&world.es_url, es_rules).await;

    world.ensure_system_indices().await;
    let mut config = s3_configuration(&world, &bucket);
    config["endpoint_url"]["value"] = json!(s3.url());
    let (id, index) = world.configured_connector("bp", config).await;
    world.without_pipeline(&id).await;
    let addr = format!("127.0.0.1:{}", free_port());
    // Small requests, several of them in flight, few retries: a sync that has to slow down.
    let extra = format!(
        "service.http.listen: {addr}\n\
         elasticsearch.bulk.chunk_size: 10\n\
         elasticsearch.bulk.max_concurrency: 8\n\
         elasticsearch.bulk.concurrent_downloads: 10\n\
         elasticsearch.bulk.max_retries: 3\n\
         elasticsearch.bulk.retry_interval: 0.2\n\
         elasticsearch.bulk.adaptive_concurrency: {adaptive}\n"
    );
    let svc = ServiceProcess::start(
        &world,
        &world.config_yaml_via(&[&id], &extra, &es.url()),
        &[],
    );

    let started = Instant::now();
    let job_id = world.create_pending_job(&id).await;
    let job = world
        .wait_job(&job_id, common::jobs::ENDED, secs(300), &[&svc])
        .await;
    let wall = started.elapsed();
    let docs = world.search(&index, json!({"match_all": {}})).await;
    let with_text = docs
        .iter()
        .filter(|d| {
            let body = d["_source"]["body"].as_str().unwrap_or_default();
            body.starts_with("object ") && d["_source"]["content_sync_text_missing"].is_null()
        })
        .count();
    let bulk_retries = scrape(&addr)
        .await
        .sum("content_sync_bulk_retries_total", &[("kind", "request")]);
    Run {
        job,
        with_text,
        refused: t.refused(),
        admitted: t.admitted(),
        bulk_retries,
        wall,
        logs: svc.logs(),
    }
}

fn assert_exact(run: &Run) {
    let context = run.context();
    assert_eq!(run.job["status"], "completed", "{context}");
    assert_eq!(run.job["indexed_document_count"], OBJECTS, "{context}");
    assert_eq!(
        run.with_text, OBJECTS,
        "every document has its text\n{context}"
    );
    assert!(run.refused > 0, "the server never throttled\n{context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_cluster_slows_the_bulk_requests_down_instead_of_failing_the_sync() {
    let run = run(Side::Es, true).await;
    assert_exact(&run);
    assert!(
        run.lowered("bulk"),
        "the bulk limit never went down\n{}",
        run.context()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_s3_slows_the_downloads_down_instead_of_losing_text() {
    let run = run(Side::S3, true).await;
    assert_exact(&run);
    assert!(
        run.lowered("download"),
        "the download limit never went down\n{}",
        run.context()
    );
    // The S3 client retries every refusal on its own, so a fixed limit completes too, but only
    // after S3 refused most downloads at least once (164 refusals for 200 objects when measured).
    assert!(
        run.refused < OBJECTS / 2,
        "S3 refused {} of {OBJECTS} downloads\n{}",
        run.refused,
        run.context()
    );
}

/// The figures for the note: `cargo test --test backpressure -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn bench_backpressure() {
    for side in [Side::Es, Side::S3] {
        for adaptive in [false, true] {
            let r = run(side, adaptive).await;
            println!(
                "{side:?} adaptive={adaptive}: status={} indexed={} with_text={}/{OBJECTS} \
                 refused={} admitted={} bulk_request_retries={} wall={:.1}s",
                r.job["status"],
                r.job["indexed_document_count"],
                r.with_text,
                r.refused,
                r.admitted,
                r.bulk_retries,
                r.wall.as_secs_f64()
            );
        }
    }
}
