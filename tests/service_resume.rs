//! Suspend, resume from a checkpoint, and cancel (docs/protocol.md#a-jobs-life, issue 4): what a user sees in
//! the job documents and the index, and what the service sent to Elasticsearch.

mod common;

use common::proxy::Handler;
use common::{
    Fault, FaultProxy, Rule, ServiceProcess, TestWorld, doc_id, now_iso, s3_configuration, secs,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// helpers

/// `_id`s of the `index` actions of every `_bulk` request, tagged with the run (phase) that sent
/// them. The proxy answers `_bulk` itself by forwarding it (after `delay`) to the real ES, so it
/// sees the bodies.
#[derive(Clone, Default)]
struct BulkLog {
    phase: Arc<AtomicUsize>,
    index_ids: Arc<Mutex<Vec<(usize, String)>>>,
}

impl BulkLog {
    fn ids_of(&self, phase: usize) -> Vec<String> {
        let all = self.index_ids.lock().unwrap();
        all.iter()
            .filter(|(p, _)| *p == phase)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// A proxy rule that delays, records and forwards every `_bulk` request.
    fn rule(&self, world: &TestWorld, delay: Duration) -> Rule {
        let log = self.clone();
        let es_url = world.es_url.clone();
        let auth = world.es_auth.clone();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let handler: Handler = Arc::new(move |method, target, body| {
            let (log, es_url, auth, http) =
                (log.clone(), es_url.clone(), auth.clone(), http.clone());
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                let phase = log.phase.load(Ordering::SeqCst);
                for line in body.split(|b| *b == b'\n') {
                    let Ok(v) = serde_json::from_slice::<Value>(line) else {
                        continue;
                    };
                    if let Some(id) = v.get("index").and_then(|a| a["_id"].as_str()) {
                        log.index_ids.lock().unwrap().push((phase, id.to_string()));
                    }
                }
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let resp = auth
                    .apply(http.request(method, format!("{es_url}{target}")))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                    .expect("ES answers the forwarded _bulk");
                let status = resp.status().as_u16();
                (status, resp.text().await.unwrap_or_default())
            })
        });
        Rule::path_contains("/_bulk", Fault::Handle(handler))
    }
}

// ---------------------------------------------------------------------------------------------
// 5. suspend and resume from a checkpoint

/// 3000 objects, pages of 100, one slowed bulk request of 100 documents at a time. SIGTERM at
/// about half: the process exits 0, the job is `suspended` with `metadata.checkpoint` and counters
/// exactly as of that checkpoint. Objects are deleted meanwhile (3 already indexed, 1 not yet).
/// A new process resumes the same job: it skips what the checkpoint covers, indexes every other
/// object exactly once, its counters continue (final counts exact), the deleted objects' documents
/// are deleted after the complete listing, and at most one page of documents Elasticsearch already
/// had is sent again for each key range listed at once.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_suspends_at_a_checkpoint_and_the_restart_resumes_from_it() {
    suspend_and_resume(1).await;
}

/// The same over four key ranges listed at once: the checkpoint records where each range got,
/// and the resumed job redoes only the keys of the unfinished ranges past their positions.
#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_listed_over_key_ranges_resumes_each_range_from_its_checkpoint() {
    suspend_and_resume(4).await;
}

/// Whether the job checkpoint `cp` covers `key`: up to `last_key`, or outside every `pending`
/// range (docs/architecture.md#key-ranges).
fn covers(cp: &Value, key: &str) -> bool {
    if let Some(last) = cp["last_key"].as_str() {
        return key <= last;
    }
    let pending = cp["pending"]
        .as_array()
        .unwrap_or_else(|| panic!("no checkpoint: {cp}"));
    !pending.iter().any(|r| {
        r["after"].as_str().is_none_or(|a| key > a) && r["up_to"].as_str().is_none_or(|u| key <= u)
    })
}

async fn suspend_and_resume(ranges: usize) {
    const N: usize = 3000;
    const PAGE: usize = 100;
    let world = TestWorld::start().await;
    let bucket = world.name("resume");
    world.create_bucket(&bucket, None).await;
    let keys = world.put_many(&bucket, "p/", N).await;

    let bulk = BulkLog::default();
    bulk.phase.store(1, Ordering::SeqCst);
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![bulk.rule(&world, Duration::from_millis(150))],
    )
    .await;
    let mut cfg = s3_configuration(&world, &bucket);
    cfg["page_size"]["value"] = json!(PAGE);
    // Over ranges: a distant S3 (each listing request 400 ms late, longer than a page's work), so
    // that the sync waits on the listing, which is what makes it cut the bucket into ranges.
    let listing = common::is_listing_of(&bucket);
    let _distant = if ranges > 1 {
        let s3 = FaultProxy::start(
            &world.s3_endpoint,
            vec![Rule::when(
                "distant listing",
                move |m, t| listing(m, t),
                Fault::Delay(Duration::from_millis(400)),
            )],
        )
        .await;
        cfg["endpoint_url"]["value"] = json!(s3.url());
        Some(s3)
    } else {
        None
    };
    let (id, index) = world.configured_connector("resume", cfg).await;
    world.without_pipeline(&id).await;
    if ranges > 1 {
        // Metadata only: a page's work is quick beside its listing.
        world
            .update_connector(
                &id,
                json!({"pipeline": {"name": "", "extract_binary_content": false,
                                    "reduce_whitespace": true, "run_ml_inference": false}}),
            )
            .await;
    }
    let extra = format!(
        "elasticsearch.bulk.chunk_size: 100\nelasticsearch.bulk.max_concurrency: 1\n\
         service.listing_ranges: {ranges}\n"
    );
    let yaml = world.config_yaml_via(&[&id], &extra, &proxy.url());
    let job = world.create_pending_job(&id).await;

    let mut svc = ServiceProcess::start(&world, &yaml, &[]);
    let first = world
        .wait_job(&job, &["in_progress"], secs(20), &[&svc])
        .await;
    world
        .wait_for(
            "about half of the documents indexed",
            secs(40),
            async || {
                let n = world.count(&index).await;
                if n >= (N / 2) as u64 { Ok(n) } else { Err(n) }
            },
        )
        .await;
    assert!(svc.send_sigterm());
    let status = svc.wait_exit(secs(15)).await;
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        common::log_tail(&svc.logs(), 4000)
    );
    // A request the proxy was delaying still reaches ES: let it land before taking stock.
    tokio::time::sleep(Duration::from_millis(800)).await;
    bulk.phase.store(2, Ordering::SeqCst);

    let suspended = world.job(&job).await.expect("job");
    assert_eq!(suspended["status"], "suspended", "{suspended}");
    let cp = &suspended["metadata"]["checkpoint"];
    assert_eq!(cp["bucket"], json!(bucket), "{suspended}");
    let is_covered: Vec<bool> = keys.iter().map(|k| covers(cp, k)).collect();
    let covered = is_covered.iter().filter(|c| **c).count();
    if ranges == 1 {
        assert!(
            is_covered[..covered].iter().all(|c| *c),
            "one range: the keys up to a point: {cp}"
        );
        assert_eq!(covered % PAGE, 0, "checkpoints are at page ends: {cp}");
    } else {
        let pending = cp["pending"].as_array().map_or(0, Vec::len);
        assert!(
            pending >= 2,
            "several ranges were left at suspension: {cp}\n{}",
            common::log_tail(&svc.logs(), 3000)
        );
    }
    assert!((1000..N).contains(&covered), "checkpoint at {covered}");
    assert_eq!(
        suspended["indexed_document_count"], covered,
        "counters as of the checkpoint: {suspended}"
    );
    assert_eq!(suspended["deleted_document_count"], 0, "{suspended}");
    let in_es_at_suspension = world.count(&index).await as usize;
    assert!(in_es_at_suspension >= covered);
    let run1: BTreeSet<String> = bulk.ids_of(1).into_iter().collect();
    assert_eq!(run1.len(), bulk.ids_of(1).len(), "run 1 sent nothing twice");

    // Deleted while suspended: 3 indexed objects, and one the first run did not reach.
    let mut unreached = None;
    for (i, key) in keys.iter().enumerate().rev() {
        if !is_covered[i] && world.get_doc(&index, &doc_id(&bucket, key)).await.is_none() {
            unreached = Some(i);
            break;
        }
    }
    let unreached = unreached.expect("an object the first run did not reach");
    let gone = [&keys[0], &keys[1], &keys[2], &keys[unreached]];
    for key in gone {
        world.delete_object(&bucket, key).await;
    }
    // Changed while suspended, among what the checkpoint covers: an overwritten object and a new
    // key sorting before the checkpoint's (found by `make chaos`: the resumed job skipped both).
    let (changed, added) = (&keys[10], format!("{}-new.txt", &keys[20]));
    world
        .put_object(&bucket, changed, b"changed while suspended")
        .await;
    world
        .put_object(&bucket, &added, b"added while suspended")
        .await;

    let svc2 = ServiceProcess::start(&world, &yaml, &[]);
    let done = world
        .wait_job(
            &job,
            &["completed", "error", "canceled"],
            secs(40),
            &[&svc2],
        )
        .await;
    assert_eq!(
        done["status"],
        "completed",
        "{done}\n{}",
        common::log_tail(&svc2.logs(), 4000)
    );
    assert_ne!(done["started_at"], first["started_at"], "claimed again");
    assert_eq!(
        done["indexed_document_count"],
        N - 1 + 2,
        "counters continued (+ the changed and the added object): {done}"
    );
    assert_eq!(done["deleted_document_count"], 3, "{done}");
    assert_eq!(done["total_document_count"], N - 4 + 1, "{done}");
    assert_eq!(
        done["metadata"]["resumed_skipped"],
        covered - 3 - 1,
        "every listed object the checkpoint covers and that did not change was skipped: {done}"
    );
    assert_eq!(world.count(&index).await as usize, N - 4 + 1);
    for (key, body) in [
        (changed.as_str(), "changed while suspended"),
        (&added, "added while suspended"),
    ] {
        let doc = world.get_doc(&index, &doc_id(&bucket, key)).await;
        let doc = doc.unwrap_or_else(|| panic!("{key} is not indexed"));
        assert_eq!(doc["size_in_bytes"], body.len(), "{key}: {doc}");
    }
    for key in gone {
        let doc = world.get_doc(&index, &doc_id(&bucket, key)).await;
        assert!(
            doc.is_none(),
            "{key} was deleted from S3 but is still indexed"
        );
    }

    let run2 = bulk.ids_of(2);
    let run2_set: BTreeSet<String> = run2.iter().cloned().collect();
    assert_eq!(run2.len(), run2_set.len(), "run 2 sent nothing twice");
    let mut expected_run2: BTreeSet<String> = (0..N)
        .filter(|&i| !is_covered[i] && i != unreached)
        .map(|i| doc_id(&bucket, &keys[i]))
        .collect();
    expected_run2.extend([doc_id(&bucket, changed), doc_id(&bucket, &added)]);
    assert_eq!(
        run2_set, expected_run2,
        "run 2 indexed exactly what the checkpoint did not cover"
    );
    // Sent again though ES had it, but for the object changed while suspended (sent again by design).
    let changed_id = doc_id(&bucket, changed);
    let redone = run1
        .intersection(&run2_set)
        .filter(|id| **id != changed_id)
        .count();
    assert!(
        redone <= PAGE * ranges,
        "{redone} documents ES already had were sent again (at suspension ES had \
         {in_es_at_suspension}, the checkpoint covered {covered})"
    );
    let c = world.connector(&id).await.unwrap();
    assert_eq!(c["last_sync_status"], "completed", "{c}");
    assert_eq!(c["last_indexed_document_count"], N - 1 + 2, "{c}");
    assert_eq!(world.jobs_of(&id).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 6. cancel

/// A running job set to `canceling` the way Kibana does ends `canceled` within 5 s of the request;
/// the connector goes back to `connected` with `last_sync_status: canceled`.
#[tokio::test(flavor = "multi_thread")]
async fn running_job_set_to_canceling_ends_canceled_within_5_seconds() {
    const N: usize = 300;
    let world = TestWorld::start().await;
    let bucket = world.name("cancel");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "c/", N).await;
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains("/_bulk", Fault::Delay(secs(1)))],
    )
    .await;
    let (id, index) = world
        .configured_connector("cancel", s3_configuration(&world, &bucket))
        .await;
    let extra = "elasticsearch.bulk.chunk_size: 20\nelasticsearch.bulk.max_concurrency: 1\n";
    let svc = ServiceProcess::start(
        &world,
        &world.config_yaml_via(&[&id], extra, &proxy.url()),
        &[],
    );
    let job = world.create_pending_job(&id).await;
    world
        .wait_job(&job, &["in_progress"], secs(20), &[&svc])
        .await;
    proxy.wait_hits(0, 2, secs(20)).await;

    let requested = now_iso();
    world
        .es_post(
            &format!("/.elastic-connectors-sync-jobs/_update/{job}?refresh=true"),
            &json!({"doc": {"status": "canceling", "cancelation_requested_at": requested}}),
        )
        .await
        .ok();
    let t0 = Instant::now();
    let done = world
        .wait_job(&job, &["canceled", "completed", "error"], secs(10), &[&svc])
        .await;
    let took = t0.elapsed();
    assert_eq!(done["status"], "canceled", "{done}");
    assert!(took <= secs(5), "cancel took {took:?}");
    assert!(done["canceled_at"].is_string(), "{done}");
    assert!(done["completed_at"].is_string(), "{done}");
    assert_eq!(done["error"], Value::Null, "{done}");
    assert_eq!(done["cancelation_requested_at"], json!(requested), "{done}");
    let c = world.connector(&id).await.unwrap();
    assert_eq!(c["last_sync_status"], "canceled", "{c}");
    assert_eq!(c["status"], "connected", "{c}");
    assert!(
        world.count(&index).await < N as u64,
        "the sync did not run to the end"
    );
}

/// A `pending` and a `suspended` job set to `canceling` while no service runs: the next service
/// marks both `canceled` and runs neither.
#[tokio::test(flavor = "multi_thread")]
async fn pending_and_suspended_jobs_set_to_canceling_end_canceled_without_running() {
    let world = TestWorld::start().await;
    let bucket = world.name("unclaimed");
    world.create_bucket(&bucket, None).await;
    for key in ["a.txt", "b.txt", "c.txt"] {
        world.put_object(&bucket, key, b"x").await;
    }
    let (id, index) = world
        .configured_connector("unclaimed", s3_configuration(&world, &bucket))
        .await;
    let jobs_index = ".elastic-connectors-sync-jobs";
    let pending = world.create_pending_job(&id).await;
    let suspended = world.create_pending_job(&id).await;
    let started = now_iso();
    world
        .es_post(
            &format!("/{jobs_index}/_update/{suspended}?refresh=true"),
            &json!({"doc": {"status": "suspended", "started_at": started, "worker_hostname": "gone",
                            "metadata": {"checkpoint": {"target": 0, "bucket": bucket, "last_key": "a.txt"}}}}),
        )
        .await
        .ok();
    world
        .update_connector(&id, json!({"last_sync_status": "suspended"}))
        .await;
    for job in [&pending, &suspended] {
        world
            .es_post(
                &format!("/{jobs_index}/_update/{job}?refresh=true"),
                &json!({"doc": {"status": "canceling", "cancelation_requested_at": now_iso()}}),
            )
            .await
            .ok();
    }

    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    for job in [&pending, &suspended] {
        let done = world
            .wait_job(job, &["canceled", "completed", "error"], secs(15), &[&svc])
            .await;
        assert_eq!(done["status"], "canceled", "{done}");
        assert!(done["canceled_at"].is_string(), "{done}");
        assert!(done["completed_at"].is_string(), "{done}");
        assert_eq!(done["indexed_document_count"], 0, "{done}");
    }
    assert_eq!(
        world.job(&pending).await.unwrap()["started_at"],
        Value::Null
    );
    assert_eq!(
        world.job(&suspended).await.unwrap()["started_at"],
        json!(started)
    );
    // Give a wrongly started run time to show up.
    tokio::time::sleep(secs(2)).await;
    assert_eq!(world.count(&index).await, 0, "a canceled job ran");
    assert!(!svc.logs().contains("sync job starting"), "{}", svc.logs());
}
