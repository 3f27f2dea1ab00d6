//! Several instances on one cluster, signals, and the error budget, end to end: the real binary
//! against ES and S3 (stand-ins or real), with faults injected by `FaultProxy` where needed. Two
//! instances run a job once and schedule a firing once; an instance back after its lease leaves
//! the job to the instance that took it over; SIGTERM suspends a job and a restart completes it;
//! too many errors in a loop stop the process.

mod common;

use common::{
    Fault, FaultProxy, Raw, Rule, ServiceProcess, TestWorld, lines_with, s3_config, secs, wait_done,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// 4. two instances on one cluster

fn starts_of(logs: &str, job_id: &str) -> usize {
    lines_with(logs, &["sync job starting", job_id]).len()
}

/// Two identical instances, one pending job: it runs exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn two_instances_run_a_job_once() {
    let world = TestWorld::start().await;
    let bucket = world.name("twins");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "k/", 30).await;
    let (id, index) = world
        .configured_connector(
            "twins",
            s3_config(&world, &bucket, &world.s3_endpoint, |_| {}),
        )
        .await;
    let yaml = world.config_yaml(&[&id], "");
    let s1 = ServiceProcess::start(&world, &yaml, &[]);
    let s2 = ServiceProcess::start(&world, &yaml, &[]);
    s1.wait_for_log("service started", secs(20)).await;
    s2.wait_for_log("service started", secs(20)).await;

    let job = world.create_pending_job(&id).await;
    let done = wait_done(&world, &job, secs(30), &[&s1, &s2]).await;
    let started_at = done["started_at"].clone();
    // Give the other instance several polls to (wrongly) pick the job up again.
    tokio::time::sleep(secs(3)).await;

    let again = world.job(&job).await.expect("job");
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(
        again["started_at"], started_at,
        "the job ran again: {again}"
    );
    assert_eq!(again["indexed_document_count"], 30, "{again}");
    assert_eq!(world.count(&index).await, 30);
    let starts = (starts_of(&s1.logs(), &job), starts_of(&s2.logs(), &job));
    assert!(
        starts == (1, 0) || starts == (0, 1),
        "exactly one instance must run the job, starts per instance: {starts:?}"
    );
    assert_eq!(world.jobs_of(&id).await.len(), 1);
}

/// The second instance read the pending job before the first one claimed it, but reaches its
/// start only after the first one finished (its connector reads are slow): it must not run the
/// finished job again, nor leave the connector marked `in_progress`.
#[tokio::test(flavor = "multi_thread")]
async fn stale_pending_read_does_not_rerun_a_finished_job() {
    let world = TestWorld::start().await;
    let bucket = world.name("stale");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "k/", 5).await;
    let (id, _index) = world
        .configured_connector(
            "stale",
            s3_config(&world, &bucket, &world.s3_endpoint, |_| {}),
        )
        .await;
    let yaml = world.config_yaml(&[&id], "");
    // Instance 2 sees every connector read 3 s late: as it was when asked.
    let slow = FaultProxy::start(
        &world.es_url,
        vec![Rule::method_path(
            "GET",
            "/.elastic-connectors/_doc/",
            Fault::Stale(secs(3)),
        )],
    )
    .await;
    let s2 = ServiceProcess::start(&world, &world.with_es_host(&yaml, &slow.url()), &[]);
    s2.wait_for_log("service started", secs(20)).await;

    let job = world.create_pending_job(&id).await;
    // Instance 2 polls every 0.5 s: by now it has read the pending job and waits on the connector.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let s1 = ServiceProcess::start(&world, &yaml, &[]);
    let done = wait_done(&world, &job, secs(30), &[&s1, &s2]).await;
    assert_eq!(done["status"], "completed", "{done}");

    // Instance 2 gets to the job (some log line names it) and the connector settles.
    world
        .wait_for("instance 2 acted on the job", secs(30), async || {
            let logs = s2.logs();
            if logs.contains(&job) {
                Ok(())
            } else {
                Err(Raw(logs))
            }
        })
        .await;
    let c = world
        .wait_for("connector not in_progress", secs(20), async || {
            let c = world.connector(&id).await.expect("connector");
            if c["last_sync_status"] != "in_progress" {
                Ok(c)
            } else {
                Err(c)
            }
        })
        .await;
    let again = world.job(&job).await.expect("job");
    assert_eq!(
        again["started_at"], done["started_at"],
        "the job ran again: {again}"
    );
    assert_eq!(again["status"], "completed", "{again}");
    let starts = (starts_of(&s1.logs(), &job), starts_of(&s2.logs(), &job));
    assert_eq!(starts, (1, 0), "instance 2 must not start the finished job");
    assert_eq!(c["last_sync_status"], "completed", "{c}");
    assert_eq!(c["status"], "connected", "{c}");
}

/// A schedule firing every 2 s, two instances: each firing creates at most one job.
#[tokio::test(flavor = "multi_thread")]
async fn two_instances_schedule_each_firing_once() {
    let world = TestWorld::start().await;
    let bucket = world.name("cron");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "c/", 2).await;
    let id = world.name("cron");
    let index = world.name("search-cron");
    world
        .create_connector_doc(
            &id,
            &index,
            s3_config(&world, &bucket, &world.s3_endpoint, |_| {}),
            json!({"full": {"enabled": true, "interval": "0/2 * * * * ?"}}),
        )
        .await;
    let yaml = world.config_yaml(&[&id], "");
    let t0 = chrono::Utc::now();
    let mut s1 = ServiceProcess::start(&world, &yaml, &[]);
    let mut s2 = ServiceProcess::start(&world, &yaml, &[]);
    s1.wait_for_log("service started", secs(20)).await;
    s2.wait_for_log("service started", secs(20)).await;
    tokio::time::sleep(secs(7)).await;
    // Stopped cleanly, so that every job created has its log line.
    for s in [&mut s1, &mut s2] {
        s.send_sigterm();
        s.wait_exit(secs(30)).await;
    }
    let t1 = chrono::Utc::now();
    let logs = format!("{}\n{}", s1.logs(), s2.logs());

    let jobs = world.jobs_of(&id).await;
    // The schedule fires at every even second; count the firings while the services ran.
    let firings = (t1.timestamp() / 2 - t0.timestamp() / 2) as usize;
    assert!(!jobs.is_empty(), "no job was scheduled in 7 s");
    assert!(
        jobs.len() <= firings,
        "{} jobs for {firings} firings",
        jobs.len()
    );
    // Each job names the firing it was created for; no firing has two jobs, whichever instance
    // created them and however late under load.
    let fired: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("scheduled sync job created"))
        .filter_map(|l| l.split("fired_at=").nth(1)?.split_whitespace().next())
        .map(|v| v.trim_matches('"'))
        .collect();
    assert_eq!(fired.len(), jobs.len(), "one log line per job:\n{logs}");
    let distinct: std::collections::BTreeSet<&str> = fired.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        fired.len(),
        "a firing was scheduled twice: {fired:?}"
    );
    for j in &jobs {
        assert_eq!(j["_source"]["trigger_method"], "scheduled", "{j}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. SIGTERM mid-sync suspends; a restart resumes

/// A connector of a new bucket of `n` objects, and a config.yml that syncs it in bulk requests of
/// 20 documents (so that a sync of it takes many requests): its id, index and config.
async fn connector_of_n_objects(
    world: &TestWorld,
    name: &str,
    n: usize,
) -> (String, String, String) {
    let bucket = world.name(name);
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "o/", n).await;
    let (id, index) = world
        .configured_connector(name, s3_config(world, &bucket, &world.s3_endpoint, |_| {}))
        .await;
    let yaml = world.config_yaml(&[&id], "elasticsearch.bulk.chunk_size: 20\n");
    (id, index, yaml)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_suspends_the_job_and_a_restart_completes_it() {
    let world = TestWorld::start().await;
    let n = 300;
    let (id, index, yaml) = connector_of_n_objects(&world, "suspend", n).await;
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains("/_bulk", Fault::Delay(secs(1)))],
    )
    .await;
    let mut svc = ServiceProcess::start(&world, &world.with_es_host(&yaml, &proxy.url()), &[]);
    let job = world.create_pending_job(&id).await;
    let running = world
        .wait_job(&job, &["in_progress"], secs(30), &[&svc])
        .await;
    proxy.wait_hits(0, 1, secs(20)).await;

    assert!(svc.send_sigterm(), "service already gone:\n{}", svc.logs());
    let t0 = Instant::now();
    let status = svc.wait_exit(secs(20)).await;
    let took = t0.elapsed();
    assert!(status.success(), "exit status {status:?}:\n{}", svc.logs());
    assert!(took < secs(5), "shutdown took {took:?}:\n{}", svc.logs());

    let suspended = world.job(&job).await.expect("job");
    assert_eq!(suspended["status"], "suspended", "{suspended}");
    assert_eq!(suspended["completed_at"], Value::Null, "{suspended}");
    assert_eq!(suspended["error"], Value::Null, "{suspended}");
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "suspended", "{c}");
    assert_eq!(c["status"], "connected", "{c}");
    let partial = world.count(&index).await;
    assert!(
        partial < n as u64,
        "the sync was not interrupted: {partial} docs"
    );

    // A new instance (straight to ES) resumes the same job from scratch.
    let svc2 = ServiceProcess::start(&world, &yaml, &[]);
    let done = world
        .wait_job(
            &job,
            &["completed", "error", "canceled"],
            secs(30),
            &[&svc2],
        )
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["indexed_document_count"], n, "{done}");
    assert_eq!(done["total_document_count"], n, "{done}");
    assert_ne!(done["started_at"], running["started_at"], "{done}");
    assert_eq!(world.count(&index).await, n as u64);
    assert_eq!(world.jobs_of(&id).await.len(), 1);
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "completed", "{c}");
}

/// An instance paused past its lease (a stopped process; the same as one cut off from
/// Elasticsearch) comes back to find its job taken over and resumed by another instance: it stops
/// its own run of the job and writes nothing more to it nor to the index (the operations it had
/// queued are not sent), and the other instance's run completes the job with exact counts.
#[tokio::test(flavor = "multi_thread")]
async fn an_instance_back_after_its_lease_leaves_the_job_to_the_instance_that_took_it_over() {
    let world = TestWorld::start().await;
    let n = 300;
    let (id, index, yaml) = connector_of_n_objects(&world, "paused", n).await;
    let job = world.create_pending_job(&id).await;
    // Each bulk request takes a second, so that each run of the job lasts about 15 s. The first
    // instance's bulk requests and writes to the job (not its reads) are counted.
    let job_id = job.clone();
    let writes_to_job = move |method: &str, target: &str| {
        method != "GET" && target.contains(job_id.as_str()) && !target.contains("_search")
    };
    let first_proxy = FaultProxy::start(
        &world.es_url,
        vec![
            Rule::path_contains("/_bulk", Fault::Delay(secs(1))),
            Rule::when(
                "writes to the job",
                writes_to_job,
                Fault::Delay(Duration::ZERO),
            ),
        ],
    )
    .await;
    let second_proxy = FaultProxy::start(
        &world.es_url,
        vec![Rule::path_contains("/_bulk", Fault::Delay(secs(1)))],
    )
    .await;
    let first = ServiceProcess::start(&world, &world.with_es_host(&yaml, &first_proxy.url()), &[]);
    let running = world
        .wait_job(&job, &["in_progress"], secs(30), &[&first])
        .await;
    first_proxy.wait_hits(0, 2, secs(20)).await;
    assert!(first.send_signal("STOP"), "{}", first.logs());

    // No heartbeat for 30 s: the second instance takes the job over and resumes it.
    let second =
        ServiceProcess::start(&world, &world.with_es_host(&yaml, &second_proxy.url()), &[]);
    let resumed = world
        .wait_for(
            "the second instance to resume the job",
            secs(90),
            async || match world.job(&job).await {
                Some(j)
                    if j["status"] == "in_progress" && j["started_at"] != running["started_at"] =>
                {
                    Ok(j)
                }
                other => Err(other),
            },
        )
        .await;
    let (bulks_before, writes_before) = (first_proxy.hits(0), first_proxy.hits(1));
    assert!(first.send_signal("CONT"), "{}", first.logs());
    first
        .wait_for_log("was taken over: another instance runs it", secs(20))
        .await;

    let done = world
        .wait_job(&job, common::jobs::ENDED, secs(60), &[&second])
        .await;
    assert_eq!(done["status"], "completed", "{done}\n{}", second.logs());
    assert_eq!(done["started_at"], resumed["started_at"], "{done}");
    assert_eq!(done["indexed_document_count"], n, "{done}");
    assert_eq!(world.count(&index).await, n as u64);
    assert_eq!(
        first_proxy.hits(1),
        writes_before,
        "the first instance wrote to the job after it came back:\n{}",
        first.logs()
    );
    assert_eq!(
        first_proxy.hits(0),
        bulks_before,
        "the first instance sent bulk requests after it came back:\n{}",
        first.logs()
    );
    assert!(
        first
            .logs()
            .contains("job taken over or ended elsewhere; not writing its end"),
        "{}",
        first.logs()
    );
}

// ---------------------------------------------------------------------------------------------
// 7. too many errors in a service loop stop the process

/// After a healthy start, every search fails: once a loop has seen more than `service.max_errors`
/// errors within `service.max_errors_span`, the process stops with a non-zero exit code and says
/// why (so that a supervisor restarts it), as Elastic's service does.
#[tokio::test(flavor = "multi_thread")]
async fn too_many_errors_stop_the_service() {
    let world = TestWorld::start().await;
    let bucket = world.name("errors");
    world.create_bucket(&bucket, None).await;
    let broken = Arc::new(AtomicU8::new(0));
    let flag = broken.clone();
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![Rule::when(
            "searches once broken",
            move |_, target| flag.load(Ordering::SeqCst) == 1 && target.contains("/_search"),
            Fault::es_error(
                503,
                "cluster_block_exception",
                "blocked by: [SERVICE_UNAVAILABLE]",
            ),
        )],
    )
    .await;
    let (id, _) = world
        .configured_connector(
            "errors",
            s3_config(&world, &bucket, &world.s3_endpoint, |_| {}),
        )
        .await;
    let extra = "service.max_errors: 2\nservice.max_errors_span: 600\n\
                 elasticsearch.max_retries: 0\nelasticsearch.retry_interval: 0.05\n";
    let yaml = world.config_yaml(&[&id], extra);
    let mut svc = ServiceProcess::start(&world, &world.with_es_host(&yaml, &proxy.url()), &[]);
    world
        .wait_connector(&id, "connector connected", secs(30), |c| {
            c["status"] == "connected"
        })
        .await;
    assert!(svc.try_exit_status().is_none(), "{}", svc.logs());

    broken.store(1, Ordering::SeqCst);
    let status = svc.wait_exit(secs(60)).await;
    let logs = svc.logs();
    assert!(!status.success(), "exit {status:?}; logs:\n{logs}");
    let stop = lines_with(
        &logs,
        &["too many errors in the", "service.max_errors is 2"],
    );
    assert!(
        !stop.is_empty(),
        "no reason given; logs:\n{}",
        common::log_tail(&logs, 40)
    );
    assert!(
        stop.iter().any(|l| l.contains("cluster_block_exception")),
        "the last error is named: {stop:?}"
    );
    assert!(
        proxy.injected(0) >= 3,
        "at least max_errors + 1 failed searches"
    );
}
