//! What an operator scrapes and probes: `/metrics` (read with the Prometheus text parser of the
//! `prometheus-client` package) during and after real syncs, checked against the jobs' own counts;
//! `/healthz` and `/readyz` through preflight, an Elasticsearch outage and its end; the progress line
//! of the log.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::prom::{get, scrape};
use common::{
    Fault, FaultProxy, Raw, Rule, ServiceProcess, TestWorld, free_port, is_listing_of, log_tail,
    s3_configuration, secs,
};
use serde_json::json;

/// Listing pages are this slow while the test wants the job to be seen running.
const SLOW_PAGE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_jobs_did() {
    let world = TestWorld::start().await;
    let n = 120;
    let page = 20;
    let bucket = world.name("metrics-bucket");
    world.create_bucket(&bucket, None).await;
    let keys = world.put_many(&bucket, "o/", n).await;
    let body_bytes: usize = (0..n).map(|i| format!("object {i}\n").len()).sum();

    // S3 through a proxy that slows every listing page while `slow` is set: the first job lasts
    // about n / page × 2 s, long enough to scrape it running and to log a progress line.
    let slow = Arc::new(AtomicBool::new(true));
    let listing = is_listing_of(&bucket);
    let slow_flag = slow.clone();
    let s3 = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "slow listing pages",
            move |m, t| slow_flag.load(Ordering::SeqCst) && listing(m, t),
            Fault::Delay(SLOW_PAGE),
        )],
    )
    .await;
    let mut configuration = s3_configuration(&world, &bucket);
    configuration["endpoint_url"]["value"] = json!(s3.url());
    configuration["page_size"]["value"] = json!(page);
    let (id, _index) = world.configured_connector("scraped", configuration).await;

    let addr = format!("127.0.0.1:{}", free_port());
    // One listing, whose slowed pages keep the job running: key ranges would add slowed probes.
    let extra = format!("service.http.listen: {addr}\nservice.listing_ranges: 1\n");
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], &extra), &[]);
    wait_ready(&world, &addr, &svc).await;

    // During the first job: the progress gauges of the running job, labelled by connector and type.
    let job_id = world.create_job(&id, "full", "on_demand").await;
    let running = [("connector_id", id.as_str()), ("job_type", "full")];
    let during = world
        .wait_for("the running job's gauges", secs(60), async || {
            let s = scrape(&addr).await;
            let listed = s.one("content_sync_job_objects_listed", &running);
            match (s.one("content_sync_job_running", &running), listed) {
                (Some(1.0), Some(l)) if l >= page as f64 => Ok(s),
                _ => Err(Raw(s.text)),
            }
        })
        .await;
    assert!(during.one("content_sync_job_objects_listed", &running) <= Some(n as f64));
    for (name, labels, _) in &during.samples {
        if name.starts_with("content_sync_job_") && !name.starts_with("content_sync_job_duration") {
            let keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys.len(), 2, "{name} {labels:?}");
            assert!(keys.contains(&"connector_id") && keys.contains(&"job_type"));
        }
    }
    assert_eq!(during.types["content_sync_job_running"], "gauge");
    assert_eq!(during.types["content_sync_documents_indexed"], "counter");
    assert_eq!(
        during.types["content_sync_s3_request_duration_seconds"],
        "histogram"
    );
    svc.wait_for_log("sync progress", secs(60)).await;
    let line = svc
        .logs()
        .lines()
        .find(|l| l.contains("sync progress"))
        .map(str::to_owned)
        .unwrap_or_default();
    for field in ["listed=", "indexed=", "deleted=", "objects_per_sec=", &id] {
        assert!(line.contains(field), "{field} missing in: {line}");
    }

    let job = world.wait_completed(&job_id, &svc).await;
    assert_eq!(job["indexed_document_count"], n);
    let after = scrape(&addr).await;
    let total = |name: &str| after.sum(name, &[]);
    assert_eq!(total("content_sync_objects_listed_total"), n as f64);
    assert_eq!(total("content_sync_documents_indexed_total"), n as f64);
    assert_eq!(total("content_sync_documents_deleted_total"), 0.0);
    assert_eq!(total("content_sync_documents_failed_total"), 0.0);
    assert_eq!(
        total("content_sync_downloaded_bytes_total"),
        body_bytes as f64
    );
    assert_eq!(job["metadata"]["downloaded_bytes"], body_bytes);
    assert_eq!(
        after.one(
            "content_sync_extractions_total",
            &[("format", "text"), ("outcome", "extracted")]
        ),
        Some(n as f64)
    );
    let s3_ok = |op: &str| {
        after.sum(
            "content_sync_s3_requests_total",
            &[("operation", op), ("outcome", "ok")],
        )
    };
    assert_eq!(s3_ok("GetObject"), n as f64);
    let pages = s3.injected(0) as f64;
    assert!(pages >= (n / page) as f64, "{pages}");
    assert_eq!(s3_ok("ListObjectsV2"), pages);
    let list_op = [("operation", "ListObjectsV2")];
    assert_eq!(
        after.one("content_sync_s3_request_duration_seconds_count", &list_op),
        Some(pages)
    );
    // Every page waited SLOW_PAGE in the proxy, inside the measured call.
    let list_secs = after
        .one("content_sync_s3_request_duration_seconds_sum", &list_op)
        .unwrap_or(0.0);
    assert!(list_secs >= pages * SLOW_PAGE.as_secs_f64(), "{list_secs}");
    let bulk = total("content_sync_bulk_requests_total");
    assert!(
        after.sum("content_sync_bulk_requests_total", &[("outcome", "ok")]) >= 1.0,
        "{}",
        after.text
    );
    assert_eq!(
        after.one("content_sync_bulk_request_duration_seconds_count", &[]),
        Some(bulk)
    );
    let completed = [("job_type", "full"), ("status", "completed")];
    assert_eq!(after.one("content_sync_jobs_total", &completed), Some(1.0));
    assert_eq!(
        after.one(
            "content_sync_job_duration_seconds_count",
            &[("job_type", "full")]
        ),
        Some(1.0)
    );
    assert_eq!(
        after.matching("content_sync_job_running", &running).count(),
        0,
        "an ended job's gauges remain:\n{}",
        after.text
    );

    // A second, fast job after 10 objects are gone: the totals add up over both jobs.
    slow.store(false, Ordering::SeqCst);
    for key in &keys[..10] {
        world.delete_object(&bucket, key).await;
    }
    let second = world.create_job(&id, "full", "on_demand").await;
    let job2 = world.wait_completed(&second, &svc).await;
    assert_eq!(job2["deleted_document_count"], 10);
    let end = scrape(&addr).await;
    assert_eq!(end.sum("content_sync_documents_deleted_total", &[]), 10.0);
    assert_eq!(
        end.sum("content_sync_documents_indexed_total", &[]),
        (n + n - 10) as f64
    );
    assert_eq!(
        end.sum("content_sync_objects_listed_total", &[]),
        (n + n - 10) as f64
    );
    assert_eq!(end.one("content_sync_jobs_total", &completed), Some(2.0));

    // Nothing secret and no object key or bucket name in any scrape.
    for text in [&during.text, &after.text, &end.text] {
        for secret in ["test-secret", bucket.as_str(), "o/000", ".txt"] {
            assert!(!text.contains(secret), "{secret:?} appears in /metrics");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_follow_preflight_and_elasticsearch() {
    let world = TestWorld::start().await;
    let id = world.name("probes");

    // Elasticsearch on a closed port: alive, never ready (preflight keeps waiting for it).
    let closed = format!("http://127.0.0.1:{}", free_port());
    let addr = format!("127.0.0.1:{}", free_port());
    // One listing, whose slowed pages keep the job running: key ranges would add slowed probes.
    let extra = format!("service.http.listen: {addr}\nservice.listing_ranges: 1\n");
    let yaml = world.with_es_host(&world.config_yaml(&[&id], &extra), &closed);
    let svc = ServiceProcess::start(&world, &yaml, &[]);
    world
        .wait_for("/healthz answers 200", secs(30), async || {
            let r = get(&addr, "/healthz").await;
            if r.0 == 200 { Ok(()) } else { Err(r) }
        })
        .await;
    let (status, body) = get(&addr, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: preflight checks not done\n")
    );
    assert_eq!(get(&addr, "/nothing").await.0, 404);
    drop(svc);

    // Elasticsearch through a proxy that can cut it off: ready, not ready during the outage, ready
    // again after it. The service tolerates the failed polls meanwhile (max_errors).
    let down = Arc::new(AtomicBool::new(false));
    let flag = down.clone();
    let es = FaultProxy::start(
        &world.es_url,
        vec![Rule::when(
            "elasticsearch down",
            move |_, _| flag.load(Ordering::SeqCst),
            Fault::Reset,
        )],
    )
    .await;
    let addr = format!("127.0.0.1:{}", free_port());
    let extra = format!("service.http.listen: {addr}\nservice.max_errors: 100000\n");
    let yaml = world.config_yaml_via(&[&id], &extra, &es.url());
    let mut svc = ServiceProcess::start(&world, &yaml, &[]);
    wait_ready(&world, &addr, &svc).await;
    down.store(true, Ordering::SeqCst);
    world
        .wait_for(
            "/readyz answers 503 during the outage",
            secs(60),
            async || {
                let r = get(&addr, "/readyz").await;
                if r == (503, "not ready: elasticsearch did not answer\n".to_owned()) {
                    Ok(())
                } else {
                    Err(r)
                }
            },
        )
        .await;
    assert_eq!(get(&addr, "/healthz").await, (200, "ok\n".to_owned()));
    let age = scrape(&addr)
        .await
        .one("content_sync_elasticsearch_last_answer_age_seconds", &[])
        .unwrap_or(-1.0);
    assert!(age >= 1.0, "{age}");
    down.store(false, Ordering::SeqCst);
    wait_ready(&world, &addr, &svc).await;

    assert!(svc.send_sigterm());
    let status = svc.wait_exit(secs(30)).await;
    assert!(
        status.success(),
        "{status:?}\n{}",
        log_tail(&svc.logs(), 4000)
    );
}

async fn wait_ready(world: &TestWorld, addr: &str, svc: &ServiceProcess) {
    world
        .wait_for("/readyz answers 200", secs(90), async || {
            let r = get(addr, "/readyz").await;
            if r == (200, "ready\n".to_owned()) {
                Ok(())
            } else {
                Err(Raw(format!("{r:?}\n{}", log_tail(&svc.logs(), 2000))))
            }
        })
        .await;
}
