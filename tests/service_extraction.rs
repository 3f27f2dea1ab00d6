//! Content extraction end to end: every corpus file synced from S3 is findable by its words; hostile
//! and oversized files are indexed without text and counted; the Data Extraction Service mode; and
//! a no-change incremental sync downloads nothing.

mod common;

use common::{Fault, FaultProxy, Rule, ServiceProcess, TestWorld, s3_configuration, secs};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn connector(
    world: &TestWorld,
    bucket: &str,
    tweak: impl FnOnce(&mut Value),
) -> (String, String) {
    world.ensure_system_indices().await;
    let mut config = s3_configuration(world, bucket);
    tweak(&mut config);
    world.configured_connector("extract", config).await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_file_is_found_by_its_words() {
    let world = TestWorld::start().await;
    let bucket = world.name("corpus");
    world.create_bucket(&bucket, None).await;
    let expected: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(corpus_dir().join("expected.json")).unwrap())
            .unwrap();
    for name in expected.keys() {
        world
            .put_object(
                &bucket,
                name,
                &std::fs::read(corpus_dir().join(name)).unwrap(),
            )
            .await;
    }
    let (id, index) = connector(&world, &bucket, |_| {}).await;
    let service = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job = world.run_job(&id, "full", secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}\n{}", service.logs());
    assert_eq!(job["indexed_document_count"], expected.len() as u64);

    let docs = world.docs_by_filename(&index).await;
    let mut extracted = 0;
    for (name, spec) in &expected {
        let doc = &docs[name];
        match spec.get("sentences").and_then(Value::as_array) {
            Some(sentences) => {
                let body = doc["body"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name} has no body: {doc}"));
                for s in sentences {
                    assert!(
                        body.contains(&squash(s.as_str().unwrap())),
                        "{name}: {s} not in {body:?}"
                    );
                }
                for s in spec
                    .get("absent")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    assert!(
                        !body.contains(s.as_str().unwrap()),
                        "{name}: {s} leaked into {body:?}"
                    );
                }
                extracted += 1;
                // Search finds the file by its own sentence.
                let own = sentences
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|s| s.contains("belongs to"))
                    .unwrap();
                let hits = world
                    .search(
                        &index,
                        json!({"match": {"body": {"query": own, "operator": "and"}}}),
                    )
                    .await;
                let names: Vec<&str> = hits
                    .iter()
                    .filter_map(|h| h["_source"]["filename"].as_str())
                    .collect();
                assert!(
                    names.contains(&name.as_str()),
                    "search for {own:?} found {names:?}"
                );
            }
            None => assert!(
                doc.get("body").is_none(),
                "{name} must be metadata-only: {doc}"
            ),
        }
    }
    let metadata = &job["metadata"];
    assert_eq!(metadata["extracted_files"], extracted, "{metadata}");
    assert_eq!(metadata["skipped_unsupported"], 1, "sample.doc: {metadata}");
    assert_eq!(
        metadata["extraction_failed"], 1,
        "encrypted.pdf: {metadata}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_and_oversized_files_are_indexed_without_text() {
    let world = TestWorld::start().await;
    let bucket = world.name("hostile");
    world.create_bucket(&bucket, None).await;
    let pdf = std::fs::read(corpus_dir().join("sample.pdf")).unwrap();
    world
        .put_object(&bucket, "truncated.pdf", &pdf[..pdf.len() / 3])
        .await;
    world
        .put_object(&bucket, "garbage.docx", b"PK\x03\x04 not really a zip")
        .await;
    world
        .put_object(&bucket, "ok.txt", b"plain words here")
        .await;
    world
        .put_object(&bucket, "big.txt", &vec![b'a'; 4096])
        .await;
    let (id, index) = connector(&world, &bucket, |_| {}).await;
    let yaml = world.config_yaml(&[&id], "service.max_file_download_size: 1024\n");
    let service = ServiceProcess::start(&world, &yaml, &[]);
    let job = world.run_job(&id, "full", secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(
        job["indexed_document_count"], 4,
        "every file is indexed: {job}"
    );
    let docs = world.docs_by_filename(&index).await;
    assert_eq!(docs["ok.txt"]["body"], "plain words here");
    for name in ["truncated.pdf", "garbage.docx", "big.txt"] {
        assert!(docs[name].get("body").is_none(), "{name}: {}", docs[name]);
    }
    let metadata = &job["metadata"];
    assert_eq!(metadata["skipped_too_large"], 1, "{metadata}");
    assert_eq!(metadata["extraction_failed"], 2, "{metadata}");
    let logs = service.logs();
    assert!(
        logs.contains("garbage.docx") && logs.contains("text extraction failed"),
        "{logs}"
    );
}

/// A Data Extraction Service test double answering `PUT /extract_text/` with `handler`, and a
/// connector over `bucket` that uses it; returns `(service, connector id, index)`.
async fn extraction_service_connector(
    world: &TestWorld,
    bucket: &str,
    handler: common::proxy::Handler,
) -> (FaultProxy, String, String) {
    let des = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains(
            "/extract_text/",
            Fault::Handle(handler),
        )],
    )
    .await;
    let (id, index) = connector(world, bucket, |c| {
        c["use_text_extraction_service"]["value"] = json!(true);
    })
    .await;
    (des, id, index)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_extraction_service_fills_body() {
    let world = TestWorld::start().await;
    let bucket = world.name("des");
    world.create_bucket(&bucket, None).await;
    world
        .put_object(&bucket, "report.pdf", b"%PDF-1.4 whatever")
        .await;
    world
        .put_object(&bucket, "notes.bin", b"not extractable")
        .await;
    let handler: common::proxy::Handler = Arc::new(|method, target, body| {
        Box::pin(async move {
            assert_eq!(method, "PUT");
            assert!(target.starts_with("/extract_text/"), "{target}");
            let text = format!("extracted {} bytes by the service", body.len());
            (200, json!({"extracted_text": text}).to_string())
        })
    });
    let (des, id, index) = extraction_service_connector(&world, &bucket, handler).await;
    let extra = format!("extraction_service:\n  host: {}\n", des.url());
    let _service = ServiceProcess::start(&world, &world.config_yaml(&[&id], &extra), &[]);
    let job = world.run_job(&id, "full", secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let docs = world.docs_by_filename(&index).await;
    assert_eq!(
        docs["report.pdf"]["body"],
        "extracted 17 bytes by the service"
    );
    assert!(docs["notes.bin"].get("body").is_none());
    assert_eq!(des.hits(0), 1, "one file sent to the service");
}

/// File-pointer mode (docs/architecture.md#content): the file is written to `shared_volume_dir`, the service gets its path in
/// `local_file_path` and no body, and the temp file is gone once the sync is done.
#[tokio::test(flavor = "multi_thread")]
async fn the_data_extraction_service_reads_a_shared_file() {
    let world = TestWorld::start().await;
    let bucket = world.name("des-files");
    world.create_bucket(&bucket, None).await;
    world
        .put_object(&bucket, "slides.pptx", b"pretend this is a deck")
        .await;
    let shared = tempfile::tempdir().expect("shared volume");
    let shared_dir = shared.path().to_path_buf();
    let handler: common::proxy::Handler = Arc::new(move |method, target, body| {
        let shared_dir = shared_dir.clone();
        Box::pin(async move {
            assert_eq!(method, "PUT");
            assert!(body.is_empty(), "file-pointer requests carry no body");
            let url = reqwest::Url::parse(&format!("http://des{target}")).expect("target");
            assert_eq!(url.path(), "/extract_text/");
            let path = url
                .query_pairs()
                .find(|(k, _)| k == "local_file_path")
                .map(|(_, v)| std::path::PathBuf::from(v.into_owned()))
                .expect("local_file_path");
            assert_eq!(path.parent(), Some(shared_dir.as_path()), "{path:?}");
            assert_eq!(path.extension().and_then(|e| e.to_str()), Some("pptx"));
            let bytes = std::fs::read(&path).expect("the shared file exists during the request");
            let text = format!("the service read: {}", String::from_utf8_lossy(&bytes));
            (200, json!({"extracted_text": text}).to_string())
        })
    });
    let (des, id, index) = extraction_service_connector(&world, &bucket, handler).await;
    let extra = format!(
        "extraction_service:\n  host: {}\n  use_file_pointers: true\n  shared_volume_dir: {:?}\n",
        des.url(),
        shared.path().display().to_string()
    );
    let _service = ServiceProcess::start(&world, &world.config_yaml(&[&id], &extra), &[]);
    let job = world.run_job(&id, "full", secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let docs = world.docs_by_filename(&index).await;
    assert_eq!(
        docs["slides.pptx"]["body"],
        "the service read: pretend this is a deck"
    );
    assert_eq!(des.hits(0), 1);
    let left: Vec<_> = std::fs::read_dir(shared.path())
        .expect("read dir")
        .collect();
    assert!(left.is_empty(), "temp files left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_no_change_incremental_sync_downloads_nothing() {
    let world = TestWorld::start().await;
    let bucket = world.name("incr");
    world.create_bucket(&bucket, None).await;
    for i in 0..5 {
        world
            .put_object(
                &bucket,
                &format!("doc-{i}.txt"),
                format!("words {i}").as_bytes(),
            )
            .await;
    }
    world.put_object(&bucket, "folder/", b"").await;
    // Count GetObject requests (`GET /<bucket>/<key>?x-id=GetObject`) on their way to S3.
    let prefix = format!("/{bucket}/");
    let counting = Rule::when(
        "object GET",
        move |m, t| m == "GET" && t.starts_with(&prefix) && t.contains("x-id=GetObject"),
        Fault::Delay(std::time::Duration::ZERO),
    );
    let s3 = FaultProxy::start(&world.s3_endpoint, vec![counting]).await;
    let (id, index) = connector(&world, &bucket, |c| {
        c["endpoint_url"]["value"] = json!(s3.url())
    })
    .await;
    let _service = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);

    let full = world.run_job(&id, "full", secs(60)).await;
    assert_eq!(full["indexed_document_count"], 6, "{full}");
    assert_eq!(s3.hits(0), 5, "the five text files were downloaded");

    let incremental = world.run_job(&id, "incremental", secs(60)).await;
    assert_eq!(incremental["status"], "completed", "{incremental}");
    assert_eq!(incremental["indexed_document_count"], 0, "{incremental}");
    assert_eq!(incremental["deleted_document_count"], 0);
    assert_eq!(
        incremental["metadata"]["unchanged_skipped"], 6,
        "{incremental}"
    );
    assert_eq!(s3.hits(0), 5, "no GET during a no-change incremental sync");

    world.put_object(&bucket, "doc-0.txt", b"new words").await;
    world.delete_object(&bucket, "doc-1.txt").await;
    let changed = world.run_job(&id, "incremental", secs(60)).await;
    assert_eq!(changed["indexed_document_count"], 1, "{changed}");
    assert_eq!(changed["deleted_document_count"], 1, "{changed}");
    assert_eq!(s3.hits(0), 6, "only the changed object was downloaded");
    let docs = world.docs_by_filename(&index).await;
    assert_eq!(docs["doc-0.txt"]["body"], "new words");
    assert!(!docs.contains_key("doc-1.txt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_mode_sends_the_bytes_as_attachment() {
    use base64::Engine;
    let world = TestWorld::start().await;
    let bucket = world.name("attach");
    world.create_bucket(&bucket, None).await;
    let pdf = std::fs::read(corpus_dir().join("sample.pdf")).unwrap();
    world.put_object(&bucket, "report.pdf", &pdf).await;
    world
        .put_object(&bucket, "photo.jpg", b"\xff\xd8 not extractable")
        .await;
    // An Elasticsearch whose default pipeline runs the attachment processor (our test node has no
    // ingest processors): the proxy takes the bulk requests naming it, recording every document.
    let seen: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let record = seen.clone();
    let bulk: common::proxy::Handler = Arc::new(move |_, _, body| {
        let record = record.clone();
        Box::pin(async move {
            let lines: Vec<Value> = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            let mut items = Vec::new();
            let mut i = 0;
            while i < lines.len() {
                if lines[i].get("index").is_some() {
                    record.lock().unwrap().push(lines[i + 1].clone());
                    items.push(json!({"index": {"status": 201, "result": "created"}}));
                    i += 2;
                } else {
                    items.push(json!({"delete": {"status": 200, "result": "deleted"}}));
                    i += 1;
                }
            }
            (200, json!({"errors": false, "items": items}).to_string())
        })
    });
    let es = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains(
            "/_bulk?pipeline=search-default-ingestion",
            Fault::Handle(bulk),
        )],
    )
    .await;
    let (id, _index) = connector(&world, &bucket, |c| {
        c["use_pipeline_extraction"] = json!({"label": "Extract text in Elasticsearch", "order": 14,
            "type": "bool", "value": true});
    })
    .await;
    let extra = format!("elasticsearch.host: {}\n", es.url());
    let _service = ServiceProcess::start(&world, &world.config_yaml(&[&id], &extra), &[]);
    let job = world.run_job(&id, "full", secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}");
    let docs: BTreeMap<String, Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|d| (d["filename"].as_str().unwrap().to_string(), d.clone()))
        .collect();
    let report = &docs["report.pdf"];
    let expected = base64::engine::general_purpose::STANDARD.encode(&pdf);
    assert_eq!(
        report["_attachment"],
        json!(expected),
        "the file's bytes, base64"
    );
    assert_eq!(report["_extract_binary_content"], true);
    assert!(
        report.get("body").is_none(),
        "the pipeline extracts, not us"
    );
    assert!(docs["photo.jpg"].get("_attachment").is_none());
}
