//! The rest of the protocol (issue 4): several connectors and `max_concurrent_content_syncs`,
//! worker mode, log formats (docs/protocol.md#service-loops-and-logs), and incremental syncs (scheduled and on
//! demand) plus `skip_unchanged_documents` for full syncs.

mod common;

use common::{Fault, FaultProxy, Rule, ServiceProcess, TestWorld, doc_id, s3_configuration, secs};
use serde_json::{Value, json};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// helpers

const JOBS: &str = ".elastic-connectors-sync-jobs";

// ---------------------------------------------------------------------------------------------
// 7. several connectors, max_concurrent_content_syncs

/// Two connectors with a pending job each, bulk slowed down so each job takes seconds. Returns the
/// two finished jobs and the largest number of jobs seen `in_progress` at once (one search per
/// sample, so both statuses come from the same moment).
async fn two_connectors(max_concurrent: usize) -> (Vec<Value>, usize) {
    let world = TestWorld::start().await;
    let (a, _, _) = world.bucket_with_connector("conc-a", 30).await;
    let (b, _, _) = world.bucket_with_connector("conc-b", 30).await;
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains(
            "/_bulk",
            Fault::Delay(Duration::from_millis(700)),
        )],
    )
    .await;
    let extra = format!(
        "service.max_concurrent_content_syncs: {max_concurrent}\n\
         elasticsearch.bulk.chunk_size: 10\nelasticsearch.bulk.max_concurrency: 1\n"
    );
    let jobs = [
        world.create_pending_job(&a).await,
        world.create_pending_job(&b).await,
    ];
    let svc = ServiceProcess::start(
        &world,
        &world.config_yaml_via(&[&a, &b], &extra, &proxy.url()),
        &[],
    );

    let mut most = 0;
    let done = world
        .wait_for("both jobs terminated", secs(30), async || {
            let hits = world
                .search(JOBS, json!({"terms": {"connector.id": [&a, &b]}}))
                .await;
            let status = |h: &Value| h["_source"]["status"].as_str().unwrap_or("").to_string();
            most = most.max(hits.iter().filter(|h| status(h) == "in_progress").count());
            let finished = hits
                .iter()
                .filter(|h| ["completed", "error", "canceled"].contains(&status(h).as_str()))
                .count();
            if finished == 2 {
                Ok(hits)
            } else {
                Err(format!("{hits:?}\n{}", common::log_tail(&svc.logs(), 4000)))
            }
        })
        .await;
    let mut out = Vec::new();
    for job in jobs {
        let h = done.iter().find(|h| h["_id"] == job).expect("job listed");
        assert_eq!(h["_source"]["status"], "completed", "{h}");
        assert_eq!(h["_source"]["indexed_document_count"], 30, "{h}");
        out.push(h["_source"].clone());
    }
    (out, most)
}

fn interval(job: &Value) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let t = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(job[k].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{k} of {job}: {e}"))
            .with_timezone(&chrono::Utc)
    };
    (t("started_at"), t("completed_at"))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_sync_slot_runs_two_connectors_jobs_one_after_the_other() {
    let (jobs, most) = two_connectors(1).await;
    assert_eq!(most, 1, "both jobs were in_progress at once");
    let (a, b) = (interval(&jobs[0]), interval(&jobs[1]));
    assert!(
        a.1 <= b.0 || b.1 <= a.0,
        "the jobs' [started_at, completed_at] overlap: {a:?} {b:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sync_slots_complete_both_connectors_jobs() {
    let (_jobs, most) = two_connectors(2).await;
    assert!(most >= 1);
}

// ---------------------------------------------------------------------------------------------
// 8. worker mode

/// `worker_mode` with `service_types: [s3]` and no `connectors`: a self-managed (`is_native:
/// false`) s3 connector is handled (schema filled, `service_type`/`features` left alone, its job
/// runs); a native one and a deleted one are not.
#[tokio::test(flavor = "multi_thread")]
async fn worker_mode_handles_self_managed_connectors_of_its_service_types_only() {
    let world = TestWorld::start().await;
    if world.external_es {
        // A worker-mode service handles every self-managed s3 connector of the cluster, other
        // tests' included: on a shared Elasticsearch it would run their jobs.
        eprintln!("skipped: worker mode needs an Elasticsearch of its own");
        return;
    }
    let (worker, index, _) = world.bucket_with_connector("wk-self", 3).await;
    let (native, native_index, _) = world.bucket_with_connector("wk-native", 3).await;
    let (deleted, deleted_index, _) = world.bucket_with_connector("wk-deleted", 3).await;
    world
        .update_connector(&native, json!({"is_native": true}))
        .await;
    world
        .update_connector(&deleted, json!({"deleted": true}))
        .await;
    let jobs = [
        world.create_pending_job(&worker).await,
        world.create_pending_job(&native).await,
        world.create_pending_job(&deleted).await,
    ];
    let extra = "service.worker_mode: true\nservice.service_types: [s3]\n";
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[], extra), &[]);

    let done = world.wait_completed(&jobs[0], &svc).await;
    assert_eq!(done["indexed_document_count"], 3, "{done}");
    assert_eq!(world.count(&index).await, 3);
    let c = world.connector(&worker).await.unwrap();
    assert!(
        c["configuration"]["skip_unchanged_documents"].is_object(),
        "schema filled: {}",
        c["configuration"]
    );
    assert!(c["last_seen"].is_string(), "checked in: {c}");
    assert_eq!(
        c["features"],
        Value::Null,
        "non-main connectors keep their features"
    );
    assert_eq!(c["last_sync_status"], "completed", "{c}");

    // A few more polls: the others stay untouched.
    tokio::time::sleep(secs(2)).await;
    for (id, job, idx) in [
        (&native, &jobs[1], &native_index),
        (&deleted, &jobs[2], &deleted_index),
    ] {
        let j = world.job(job).await.unwrap();
        assert_eq!(j["status"], "pending", "{id}: {j}");
        let c = world.connector(id).await.unwrap();
        assert_eq!(c["last_seen"], Value::Null, "{id} checked in: {c}");
        assert!(
            c["configuration"].get("skip_unchanged_documents").is_none(),
            "{id}: schema filled"
        );
        assert_eq!(world.count(idx).await, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// 9. logs

/// Runs one one-object sync with `args`, stops the service with SIGTERM and returns
/// `(log, connector id, job id)`.
async fn logs_of_one_sync(args: &[&str]) -> (String, String, String) {
    let world = TestWorld::start().await;
    let (id, _, _) = world.bucket_with_connector("logs", 1).await;
    let mut svc =
        ServiceProcess::start_with_args(&world, &world.config_yaml(&[&id], ""), args, &[]);
    let job = world.create_pending_job(&id).await;
    world.wait_completed(&job, &svc).await;
    assert!(svc.send_sigterm());
    let status = svc.wait_exit(secs(15)).await;
    assert!(status.success(), "{status:?}");
    (svc.logs(), id, job)
}

#[tokio::test(flavor = "multi_thread")]
async fn filebeat_logs_are_ecs_json_lines_with_sync_labels() {
    let (log, connector_id, job_id) = logs_of_one_sync(&["--filebeat"]).await;
    let mut lines = Vec::new();
    for line in log.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{log}"));
        for key in ["log.level", "message", "@timestamp"] {
            assert!(v[key].is_string(), "{key} missing: {line}");
        }
        assert!(
            ["debug", "info", "warning", "error", "critical"]
                .contains(&v["log.level"].as_str().unwrap()),
            "{line}"
        );
        chrono::DateTime::parse_from_rfc3339(v["@timestamp"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("@timestamp ({e}): {line}"));
        lines.push(v);
    }
    assert!(lines.len() >= 3, "{log}");
    let of_job: Vec<&Value> = lines
        .iter()
        .filter(|v| v["labels"]["sync_job_id"] == json!(job_id))
        .collect();
    assert!(
        of_job.len() >= 2,
        "lines of the sync carry labels.sync_job_id:\n{log}"
    );
    for v in &of_job {
        assert_eq!(v["labels"]["connector_id"], json!(connector_id), "{v}");
    }
    let ended = lines
        .iter()
        .find(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("sync ended"))
        })
        .unwrap_or_else(|| panic!("no 'sync ended' line:\n{log}"));
    assert_eq!(ended["labels"]["sync_job_id"], json!(job_id), "{ended}");
    assert_eq!(
        ended["labels"]["connector_id"],
        json!(connector_id),
        "{ended}"
    );
}

/// `[FMWK][HH:MM:SS][LEVEL] …` (ANSI colour codes, which Elastic adds on a terminal, tolerated).
fn is_text_line(line: &str) -> bool {
    let mut s = line;
    while let Some(rest) = s.strip_prefix('\u{1b}') {
        s = rest.split_once('m').map(|(_, r)| r).unwrap_or("");
    }
    let Some(rest) = s.strip_prefix("[FMWK][") else {
        return false;
    };
    let b = rest.as_bytes();
    let time_ok = b.len() > 9
        && b[2] == b':'
        && b[5] == b':'
        && [0, 1, 3, 4, 6, 7].iter().all(|i| b[*i].is_ascii_digit())
        && &rest[8..10] == "][";
    time_ok
        && ["DEBUG]", "INFO]", "WARNING]", "ERROR]", "CRITICAL]"]
            .iter()
            .any(|l| rest[10..].starts_with(l))
}

#[tokio::test(flavor = "multi_thread")]
async fn default_logs_are_fmwk_text_lines() {
    let (log, connector_id, job_id) = logs_of_one_sync(&[]).await;
    assert!(!log.is_empty());
    for line in log.lines() {
        assert!(
            is_text_line(line),
            "not a [FMWK][HH:MM:SS][LEVEL] line: {line:?}\n{log}"
        );
    }
    let ended = log
        .lines()
        .find(|l| l.contains("sync ended"))
        .unwrap_or_else(|| panic!("no 'sync ended' line:\n{log}"));
    assert!(
        ended.contains(&job_id) && ended.contains(&connector_id),
        "the sync's lines name the connector and job: {ended}"
    );
}

// ---------------------------------------------------------------------------------------------
// 10. incremental syncs

/// Matches GetObject requests (path style `GET /<bucket>/<key>`, not a listing).
fn is_get_object(method: &str, target: &str) -> bool {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    method == "GET"
        && path
            .trim_start_matches('/')
            .split_once('/')
            .is_some_and(|(_, k)| !k.is_empty())
        && !query.contains("list-type")
}

/// All jobs of a connector that are not terminated.
async fn unfinished(world: &TestWorld, id: &str) -> Vec<Value> {
    world
        .jobs_of(id)
        .await
        .into_iter()
        .filter(|h| {
            !["completed", "error", "canceled"]
                .contains(&h["_source"]["status"].as_str().unwrap_or(""))
        })
        .collect()
}

/// Scheduled incremental syncs run (`job_type: incremental`, `trigger_method: scheduled`); an
/// incremental sync of an unchanged bucket indexes nothing and fetches no object while a full sync
/// re-indexes everything; a changed object is the only one re-indexed, a vanished one the only one
/// deleted; a full sync with `skip_unchanged_documents` indexes only new and changed objects.
#[tokio::test(flavor = "multi_thread")]
async fn incremental_syncs_index_only_what_changed() {
    const N: usize = 5;
    let world = TestWorld::start().await;
    let bucket = world.name("incr");
    world.create_bucket(&bucket, None).await;
    let keys = world.put_many(&bucket, "o/", N).await;
    let s3 = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "GetObject",
            is_get_object,
            Fault::Delay(Duration::ZERO),
        )],
    )
    .await;
    let mut cfg = s3_configuration(&world, &bucket);
    cfg["endpoint_url"]["value"] = json!(s3.url());
    let id = world.name("incr");
    let index = world.name("search-incr");
    world
        .create_connector_doc(
            &id,
            &index,
            cfg,
            json!({"incremental": {"enabled": true, "interval": "0/2 * * * * ?"}}),
        )
        .await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);

    // Scheduled: the first incremental indexes everything, the next ones nothing.
    let jobs = world
        .wait_for(
            "two scheduled incremental jobs completed",
            secs(20),
            async || {
                let done: Vec<Value> = world
                    .jobs_of(&id)
                    .await
                    .into_iter()
                    .map(|h| h["_source"].clone())
                    .filter(|j| j["status"] == "completed")
                    .collect();
                if done.len() >= 2 {
                    Ok(done)
                } else {
                    Err(format!("{done:?}\n{}", common::log_tail(&svc.logs(), 4000)))
                }
            },
        )
        .await;
    for (i, j) in jobs.iter().enumerate() {
        assert_eq!(j["job_type"], "incremental", "{j}");
        assert_eq!(j["trigger_method"], "scheduled", "{j}");
        let expected = if i == 0 { N } else { 0 };
        assert_eq!(j["indexed_document_count"], expected, "job {i}: {j}");
        assert_eq!(j["deleted_document_count"], 0, "job {i}: {j}");
    }
    let c = world.connector(&id).await.unwrap();
    assert!(c["last_incremental_sync_scheduled_at"].is_string(), "{c}");
    assert_eq!(world.count(&index).await, N as u64);

    // Stop scheduling; the rest is on demand, one job at a time.
    world
        .update_connector(
            &id,
            json!({"scheduling": {"incremental": {"enabled": false}}}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    world
        .wait_for("no job running", secs(15), async || {
            let u = unfinished(&world, &id).await;
            if u.is_empty() { Ok(()) } else { Err(u) }
        })
        .await;
    let run = async |job_type: &str| {
        let gets = s3.hits(0);
        let cursor = world.connector(&id).await.unwrap()["sync_cursor"].clone();
        assert!(
            cursor.is_object(),
            "a completed sync left a sync_cursor: {cursor}"
        );
        let job = world.create_job(&id, job_type, "on_demand").await;
        let done = world.wait_completed(&job, &svc).await;
        assert_eq!(done["job_type"], job_type);
        // docs/protocol.md#a-jobs-life: incremental jobs are claimed with the connector's cursor, others with null
        // (direct mode writes the dotted key `connector.sync_cursor` as is).
        let claimed = done
            .get("connector.sync_cursor")
            .cloned()
            .unwrap_or_else(|| done["connector"]["sync_cursor"].clone());
        let expected = if job_type == "incremental" {
            cursor
        } else {
            Value::Null
        };
        assert_eq!(
            claimed, expected,
            "{job_type} job claimed with the wrong cursor"
        );
        (done, s3.hits(0) - gets)
    };

    let (j, gets) = run("incremental").await;
    assert_eq!(
        (&j["indexed_document_count"], &j["deleted_document_count"]),
        (&json!(0), &json!(0)),
        "{j}"
    );
    assert_eq!(gets, 0, "a no-change incremental sync fetches no object");
    let (j, _) = run("full").await;
    assert_eq!(
        j["indexed_document_count"], N,
        "a full sync re-indexes everything: {j}"
    );

    world
        .put_object(&bucket, &keys[1], b"changed content\n")
        .await;
    let (j, _) = run("incremental").await;
    assert_eq!(
        (&j["indexed_document_count"], &j["deleted_document_count"]),
        (&json!(1), &json!(0)),
        "{j}"
    );
    let doc = world
        .get_doc(&index, &doc_id(&bucket, &keys[1]))
        .await
        .unwrap();
    assert_eq!(doc["size_in_bytes"], 16, "{doc}");

    world.delete_object(&bucket, &keys[2]).await;
    let (j, _) = run("incremental").await;
    assert_eq!(
        (&j["indexed_document_count"], &j["deleted_document_count"]),
        (&json!(0), &json!(1)),
        "{j}"
    );
    assert_eq!(world.count(&index).await, (N - 1) as u64);

    // Full sync with skip_unchanged_documents: one changed and one new object.
    world
        .update_connector(
            &id,
            json!({"configuration": {"skip_unchanged_documents": {"value": true}}}),
        )
        .await;
    world
        .put_object(&bucket, &keys[3], b"changed again\n")
        .await;
    world.put_object(&bucket, "o/new.txt", b"new\n").await;
    let (j, _) = run("full").await;
    assert_eq!(
        (&j["indexed_document_count"], &j["deleted_document_count"]),
        (&json!(2), &json!(0)),
        "{j}"
    );
    assert_eq!(world.count(&index).await, N as u64);
}
