//! Never lose a document's text: a download that fails (an S3 error, a body that breaks off, a
//! body that stalls past its deadline) keeps the indexed version of a known object and leaves a
//! new one marked for the next sync; a body that JSON escaping blows up is cut to fit instead of
//! the document being dropped.

mod common;

use common::proxy::Partial;
use common::{Fault, FaultProxy, Rule, ServiceProcess, TestWorld, s3_configuration, secs};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The field that marks a document indexed without the text its object should give.
const MISSING: &str = "content_sync_text_missing";

/// An S3 error response body.
fn s3_error_xml(code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>injected</RequestId></Error>"
    )
}

/// Matches the GetObject of `bucket/key` while `on` is set.
fn get_of(
    bucket: &str,
    key: &str,
    on: &Arc<AtomicBool>,
) -> impl Fn(&str, &str) -> bool + Send + Sync + 'static {
    let (path, on) = (format!("/{bucket}/{key}?"), on.clone());
    move |m, t| on.load(Ordering::SeqCst) && m == "GET" && t.starts_with(&path)
}

/// A connector over `bucket` reading S3 through `s3` (one attempt per request, so an injected
/// error is not retried away).
async fn connector(
    world: &TestWorld,
    bucket: &str,
    s3: &FaultProxy,
    tweak: impl FnOnce(&mut Value),
) -> (String, String) {
    world.ensure_system_indices().await;
    let mut config = s3_configuration(world, bucket);
    config["endpoint_url"]["value"] = json!(s3.url());
    config["max_attempts"]["value"] = json!(0);
    tweak(&mut config);
    world.configured_connector("docs", config).await
}

/// Sync 1 indexes `a.txt` and `b.txt`. Sync 2 (full) cannot read them (a 500, a body cut mid-way)
/// nor the new `c.txt`: a and b keep their text, c is indexed without text and marked, and the
/// job counts three objects whose content was unavailable. Sync 3 (incremental, S3 healthy)
/// fetches c again, and only c.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_download_keeps_the_indexed_text() {
    let world = TestWorld::start().await;
    let bucket = world.name("keep");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "a.txt", b"alpha words").await;
    let long_b = "bravo ".repeat(2000);
    world.put_object(&bucket, "b.txt", long_b.as_bytes()).await;

    let faults = Arc::new(AtomicBool::new(false));
    let internal = Fault::status(500, s3_error_xml("InternalError", "injected"));
    let prefix = format!("/{bucket}/");
    let s3 = FaultProxy::start(
        &world.s3_endpoint,
        vec![
            Rule::when(
                "a.txt GET",
                get_of(&bucket, "a.txt", &faults),
                internal.clone(),
            ),
            Rule::when(
                "b.txt GET",
                get_of(&bucket, "b.txt", &faults),
                Fault::Partial(Partial::cut(100)),
            ),
            Rule::when("c.txt GET", get_of(&bucket, "c.txt", &faults), internal),
            Rule::when(
                "any object GET",
                move |m, t| m == "GET" && t.starts_with(&prefix) && t.contains("x-id=GetObject"),
                Fault::Delay(Duration::ZERO),
            ),
        ],
    )
    .await;
    let (id, index) = connector(&world, &bucket, &s3, |_| {}).await;
    let service = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);

    let first = world.run_job(&id, "full", secs(60)).await;
    assert_eq!(first["status"], "completed", "{first}");
    let b_body = world.docs_by_filename(&index).await["b.txt"]["body"].clone();
    assert!(
        b_body.as_str().is_some_and(|b| b.starts_with("bravo")),
        "{b_body}"
    );

    world.put_object(&bucket, "c.txt", b"charlie words").await;
    faults.store(true, Ordering::SeqCst);
    let second = world.run_job(&id, "full", secs(60)).await;
    assert_eq!(
        second["status"],
        "completed",
        "{second}\n{}",
        service.logs()
    );
    assert_eq!(s3.injected(1), 1, "b.txt's body was cut");
    let docs = world.docs_by_filename(&index).await;
    assert_eq!(docs["a.txt"]["body"], "alpha words", "{}", docs["a.txt"]);
    assert_eq!(docs["b.txt"]["body"], b_body);
    assert!(docs["a.txt"].get(MISSING).is_none());
    let c = &docs["c.txt"];
    assert!(c.get("body").is_none(), "{c}");
    assert_eq!(c[MISSING], true, "{c}");
    assert_eq!(second["indexed_document_count"], 1, "only c.txt: {second}");
    assert_eq!(second["deleted_document_count"], 0, "{second}");
    assert_eq!(second["metadata"]["content_unavailable"], 3, "{second}");

    faults.store(false, Ordering::SeqCst);
    let gets = s3.hits(3);
    let third = world.run_job(&id, "incremental", secs(60)).await;
    assert_eq!(third["status"], "completed", "{third}");
    assert_eq!(s3.hits(3) - gets, 1, "only c.txt is fetched again");
    let docs = world.docs_by_filename(&index).await;
    assert_eq!(docs["c.txt"]["body"], "charlie words", "{}", docs["c.txt"]);
    assert!(docs["c.txt"].get(MISSING).is_none(), "{}", docs["c.txt"]);
    assert_eq!(docs["a.txt"]["body"], "alpha words");
}

/// `stalled.txt` sends a few bytes and then nothing for two minutes; its deadline
/// (`extraction.download_timeout_secs: 2` + 1 s per MiB) ends the wait: the job completes well
/// before the stall would, the objects behind it are indexed with their text, and the stalled
/// one without, marked and counted.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_download_fails_at_its_deadline() {
    let world = TestWorld::start().await;
    let bucket = world.name("stall");
    world.create_bucket(&bucket, None).await;
    world
        .put_object(
            &bucket,
            "a-stalled.txt",
            "slow words ".repeat(1000).as_bytes(),
        )
        .await;
    for i in 0..4 {
        let text = format!("behind words {i}");
        world
            .put_object(&bucket, &format!("b-{i}.txt"), text.as_bytes())
            .await;
    }
    let on = Arc::new(AtomicBool::new(true));
    let s3 = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "stalled GET",
            get_of(&bucket, "a-stalled.txt", &on),
            Fault::Partial(Partial::stall(10, secs(120))),
        )],
    )
    .await;
    let (id, index) = connector(&world, &bucket, &s3, |_| {}).await;
    let yaml = world.config_yaml(
        &[&id],
        "extraction.download_timeout_secs: 2\nelasticsearch.bulk.concurrent_downloads: 1\n",
    );
    let service = ServiceProcess::start(&world, &yaml, &[]);
    let started = Instant::now();
    let job = world.run_job(&id, "full", secs(45)).await;
    assert_eq!(job["status"], "completed", "{job}\n{}", service.logs());
    assert!(started.elapsed() < secs(40), "{:?}", started.elapsed());
    assert_eq!(s3.injected(0), 1);
    let docs = world.docs_by_filename(&index).await;
    for i in 0..4 {
        assert_eq!(
            docs[&format!("b-{i}.txt")]["body"],
            format!("behind words {i}")
        );
    }
    let stalled = &docs["a-stalled.txt"];
    assert!(stalled.get("body").is_none(), "{stalled}");
    assert_eq!(stalled[MISSING], true, "{stalled}");
    assert_eq!(job["metadata"]["content_unavailable"], 1, "{job}");
    let logs = service.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("a-stalled.txt") && l.contains("deadline")),
        "{logs}"
    );
}

/// The Data Extraction Service returns a body of 1 MiB of `"`, which JSON escaping doubles; with
/// `max_text_document_size: 1` (MiB) the body is cut so the serialized document fits, and the
/// document is indexed instead of dropped.
#[tokio::test(flavor = "multi_thread")]
async fn an_escaped_body_is_cut_to_fit_not_dropped() {
    let world = TestWorld::start().await;
    let bucket = world.name("quotes");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "quotes.pdf", b"%PDF-1.4 x").await;
    let handler: common::proxy::Handler = Arc::new(|_, _, _| {
        Box::pin(async move {
            let text = "\"".repeat(1_048_576);
            (200, json!({"extracted_text": text}).to_string())
        })
    });
    let des = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains(
            "/extract_text/",
            Fault::Handle(handler),
        )],
    )
    .await;
    let s3 = FaultProxy::start(&world.s3_endpoint, vec![]).await;
    let (id, index) = connector(&world, &bucket, &s3, |c| {
        c["use_text_extraction_service"]["value"] = json!(true);
    })
    .await;
    let extra = format!(
        "extraction_service:\n  host: {}\nelasticsearch.bulk.max_text_document_size: 1\n",
        des.url()
    );
    let service = ServiceProcess::start(&world, &world.config_yaml(&[&id], &extra), &[]);
    let job = world.run_job(&id, "full", secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}\n{}", service.logs());
    assert_eq!(job["metadata"]["dropped_too_large"], 0, "{job}");
    assert_eq!(job["indexed_document_count"], 1, "{job}");
    let docs = world.docs_by_filename(&index).await;
    let doc = &docs["quotes.pdf"];
    let body = doc["body"].as_str().expect("body kept");
    assert!(
        body.len() > 400_000 && body.chars().all(|c| c == '"'),
        "{}",
        body.len()
    );
    assert!(serde_json::to_vec(doc).unwrap().len() <= 1_048_576);
}
