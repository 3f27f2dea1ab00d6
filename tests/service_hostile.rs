//! Hostile files next to ordinary ones, synced by the real service: a PDF bomb, a zip bomb, a gzip
//! bomb and deeply nested markup. The service survives with its own memory small, the bombs cost
//! their extraction workers (each under `extraction.max_memory_mib`) and are indexed without text,
//! the neighbours keep their text, and an incremental sync does not download the bombs again.

mod common;

use common::{Fault, FaultProxy, Rule, ServiceProcess, TestWorld, hostile, s3_configuration, secs};
use serde_json::json;

/// The field that marks a document whose text could not be read this time (retried next sync).
const MISSING: &str = "content_sync_text_missing";

/// The service's own peak resident memory, in KiB (`VmHWM`; workers are other processes).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("service status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Every `peak_rss_kib=N` the service logged about its workers.
fn worker_peaks(logs: &str) -> Vec<u64> {
    logs.split("peak_rss_kib=")
        .skip(1)
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().expect("a number of KiB")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_files_cost_their_worker_not_the_service() {
    let world = TestWorld::start().await;
    let bucket = world.name("hostile");
    world.create_bucket(&bucket, None).await;
    let bombs = [
        ("bomb.pdf", hostile::pdf_bomb(40), "out of memory"),
        ("bomb.docx", hostile::zip_bomb(100), "too large"),
        ("bomb.txt.gz", hostile::gzip_bomb(1024), "too large"),
    ];
    // With what their text must hold (JSON is plain text to us: its first 100 000 characters).
    let deep = [
        ("deep.xml", hostile::deep_xml(100_000), "deep"),
        ("deep.html", hostile::deep_html(100_000), "deep"),
        ("deep.json", hostile::deep_json(1_000_000), "[[[["),
    ];
    let ordinary = [
        ("a-first.txt", b"ordinary words before".to_vec()),
        (
            "m-middle.html",
            b"<html><body><p>ordinary page in between</p></body></html>".to_vec(),
        ),
        ("z-last.txt", b"ordinary words after".to_vec()),
    ];
    for (key, bytes, _) in &bombs {
        world.put_object(&bucket, key, bytes).await;
    }
    for (key, bytes, _) in &deep {
        world.put_object(&bucket, key, bytes).await;
    }
    for (key, bytes) in &ordinary {
        world.put_object(&bucket, key, bytes).await;
    }
    // Counts the GETs of each bomb on their way to S3.
    let rules = bombs
        .iter()
        .map(|(key, _, _)| {
            let path = format!("/{bucket}/{key}?");
            Rule::when(
                key,
                move |m, t| m == "GET" && t.starts_with(&path),
                Fault::Delay(std::time::Duration::ZERO),
            )
        })
        .collect();
    let s3 = FaultProxy::start(&world.s3_endpoint, rules).await;
    world.ensure_system_indices().await;
    let mut config = s3_configuration(&world, &bucket);
    config["endpoint_url"]["value"] = json!(s3.url());
    let (id, index) = world.configured_connector("hostile", config).await;
    // Default limits: 512 MiB per worker, 30 s per file, 64 MiB inflated.
    let service = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);

    let job = world.run_job(&id, "full", secs(240)).await;
    let logs = service.logs();
    assert_eq!(job["status"], "completed", "{job}\n{logs}");
    let total = bombs.len() + deep.len() + ordinary.len();
    assert_eq!(job["indexed_document_count"], total, "{job}");
    let docs = world.docs_by_filename(&index).await;
    for (key, bytes) in &ordinary {
        let body = docs[*key]["body"]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {}", docs[*key]));
        let text = String::from_utf8_lossy(bytes);
        let words = if key.ends_with(".html") {
            "ordinary page in between"
        } else {
            text.as_ref()
        };
        assert!(body.contains(words), "{key}: {body:?}");
    }
    // Our parsers of nested markup do not recurse: the word inside comes out.
    for (key, _, words) in &deep {
        let body = docs[*key]["body"]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {}", docs[*key]));
        assert!(
            body.contains(words),
            "{key}: {}",
            &body[..body.len().min(200)]
        );
    }
    for (key, _, reason) in &bombs {
        let doc = &docs[*key];
        assert!(doc.get("body").is_none(), "{key}: {doc}");
        assert!(doc.get(MISSING).is_none(), "{key} is not retried: {doc}");
        assert!(
            logs.lines().any(|l| l.contains(key)
                && l.contains("text extraction failed")
                && l.to_lowercase().contains(reason)),
            "{key}: no log line saying {reason:?}\n{logs}"
        );
    }
    assert_eq!(job["metadata"]["extraction_failed"], bombs.len(), "{job}");
    assert_eq!(job["metadata"]["content_unavailable"], 0, "{job}");

    // The service's own memory stayed small; the workers stayed under their limit, and the PDF
    // bomb's worker ran into it.
    let service_peak = peak_rss_kib(service.pid());
    assert!(
        service_peak <= 128 * 1024,
        "service peak RSS {service_peak} KiB"
    );
    service
        .wait_for_log("extraction workers stopped", secs(30))
        .await;
    let logs = service.logs();
    let peaks = worker_peaks(&logs);
    println!("service peak RSS {service_peak} KiB; workers' peaks {peaks:?} KiB");
    assert!(!peaks.is_empty(), "{logs}");
    assert!(
        peaks.iter().all(|kib| *kib <= 512 * 1024),
        "worker peaks {peaks:?} KiB"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("extraction worker died") && l.contains("out of memory")),
        "{logs}"
    );

    // Nothing changed: an incremental sync downloads no bomb again.
    let before: Vec<usize> = (0..bombs.len()).map(|i| s3.hits(i)).collect();
    assert_eq!(before, vec![1; bombs.len()], "each bomb downloaded once");
    let again = world.run_job(&id, "incremental", secs(120)).await;
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(again["indexed_document_count"], 0, "{again}");
    let after: Vec<usize> = (0..bombs.len()).map(|i| s3.hits(i)).collect();
    assert_eq!(after, before, "no bomb downloaded again");
}
