//! Job cleanup: jobs left `in_progress` by a dead worker or a deleted connector are marked `error`,
//! and the connector can sync again. A job is idle when its heartbeat stands still for the idle
//! threshold as this instance sees it, whatever the clocks of the instances say.

mod common;

use common::{TestWorld, s3_configuration, secs};
use serde_json::json;

const IDLE_ERROR: &str = "The job has not seen any update for some time.";

async fn mark_running(world: &TestWorld, job_id: &str, last_seen: &str) {
    world
        .es_post(
            &format!("/.elastic-connectors-sync-jobs/_update/{job_id}?refresh=true"),
            &json!({"doc": {"status": "in_progress", "last_seen": last_seen, "started_at": last_seen}}),
        )
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_orphaned_jobs_are_failed_and_the_connector_syncs_again() {
    let world = std::sync::Arc::new(TestWorld::start().await);
    let bucket = world.name("cleanup");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "a.txt", b"a").await;
    world.ensure_system_indices().await;

    // A connector whose worker died mid-sync ten minutes ago.
    let id = world.name("idle");
    let index = world.name("search-idle");
    world
        .create_connector_doc(&id, &index, s3_configuration(&world, &bucket), json!({}))
        .await;
    let idle_job = world.create_pending_job(&id).await;
    let ten_minutes_ago = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
    mark_running(&world, &idle_job, &ten_minutes_ago).await;
    world
        .update_connector(&id, json!({"last_sync_status": "in_progress"}))
        .await;

    // A running job whose connector was deleted.
    let gone = world.name("gone");
    world
        .create_connector_doc(
            &gone,
            &world.name("search-gone"),
            s3_configuration(&world, &bucket),
            json!({}),
        )
        .await;
    let orphan_job = world.create_pending_job(&gone).await;
    mark_running(&world, &orphan_job, &common::now_iso()).await;
    world
        .es_delete(&format!("/.elastic-connectors/_doc/{gone}?refresh=true"))
        .await
        .ok();

    // A fresh running job of a live connector is left alone.
    let busy = world.name("busy");
    world
        .create_connector_doc(
            &busy,
            &world.name("search-busy"),
            s3_configuration(&world, &bucket),
            json!({}),
        )
        .await;
    let busy_job = world.create_pending_job(&busy).await;
    mark_running(&world, &busy_job, &common::now_iso()).await;
    world
        .update_connector(&busy, json!({"last_sync_status": "in_progress"}))
        .await;

    // The busy job's instance lives elsewhere: it keeps writing heartbeats.
    let beats = {
        let world = world.clone();
        let busy_job = busy_job.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                mark_running(&world, &busy_job, &common::now_iso()).await;
            }
        })
    };

    let extra = "service.job_cleanup_interval: 1\nservice.idle_job_threshold_secs: 12\n";
    let yaml = world.config_yaml(&[&id, &busy], extra);
    let service = common::ServiceProcess::start(&world, &yaml, &[]);

    for job_id in [&idle_job, &orphan_job] {
        let job = world
            .wait_for("stale job marked error", secs(40), async || {
                world.job(job_id).await.filter(|j| j["status"] == "error")
            })
            .await;
        assert_eq!(job["error"], IDLE_ERROR);
        assert!(job["completed_at"].is_string(), "{job}");
    }
    let connector = world
        .wait_for("connector records the failed job", secs(10), async || {
            let c = world.connector(&id).await.unwrap_or_default();
            if c["last_sync_status"] == "error" {
                Ok(c)
            } else {
                Err(common::Raw(format!("{c}\n{}", service.logs())))
            }
        })
        .await;
    assert_eq!(connector["last_sync_error"], IDLE_ERROR);

    // The connector is no longer blocked: a new on-demand job runs to completion.
    let next = world.create_pending_job(&id).await;
    let done = world
        .wait_for("new job completes", secs(20), async || {
            world
                .job(&next)
                .await
                .filter(|j| j["status"] == "completed")
        })
        .await;
    assert_eq!(done["indexed_document_count"], 1, "{done}");
    assert_eq!(world.count(&index).await, 1);

    let untouched = world.job(&busy_job).await.unwrap();
    assert_eq!(untouched["status"], "in_progress", "{}", service.logs());
    beats.abort();
}

/// The preloadable libfaketime (Debian's `faketime` package, installed by `scripts/stand-ins.sh`).
fn libfaketime() -> String {
    let path = std::env::var("LIBFAKETIME")
        .unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "libfaketime not found at {path}: run `make test` (scripts/stand-ins.sh installs it)"
    );
    path
}

/// The environment that runs the binary with its wall clock `offset` seconds off (monotonic time,
/// which the service uses for durations, is left alone).
fn skewed(offset: i64) -> Vec<(&'static str, String)> {
    vec![
        ("LD_PRELOAD", libfaketime()),
        ("FAKETIME", format!("{offset:+}s")),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn seconds_off(iso: &serde_json::Value) -> i64 {
    let t = chrono::DateTime::parse_from_rfc3339(iso.as_str().unwrap_or_default())
        .expect("an RFC 3339 timestamp");
    (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds()
}

/// Two instances whose clocks are 10 minutes behind and ahead of Elasticsearch's, both cleaning up
/// every second with the default idle threshold (300 s): neither fails the other's live job (judged
/// by comparing clocks, a heartbeat written 10 minutes "ago" would look dead), and both jobs end with
/// exact counts.
#[tokio::test(flavor = "multi_thread")]
async fn clock_skew_of_ten_minutes_never_fails_a_live_job() {
    const N: usize = 600;
    let world = TestWorld::start().await;
    let mut connectors = Vec::new();
    for name in ["behind", "ahead"] {
        let bucket = world.name(name);
        world.create_bucket(&bucket, None).await;
        world.put_many(&bucket, "k/", N).await;
        let (id, index) = world
            .configured_connector(name, s3_configuration(&world, &bucket))
            .await;
        world.without_pipeline(&id).await;
        connectors.push((id, index));
    }
    // Slow bulk requests: each job lasts well past a cleanup pass and a heartbeat.
    let slow = common::FaultProxy::start(
        &world.es_url,
        vec![common::Rule::path_contains(
            "/_bulk",
            common::Fault::Delay(std::time::Duration::from_millis(600)),
        )],
    )
    .await;
    let ids: Vec<&str> = connectors.iter().map(|(id, _)| id.as_str()).collect();
    let extra = "service.job_cleanup_interval: 1\nelasticsearch.bulk.chunk_size: 25\n\
                 elasticsearch.bulk.max_concurrency: 1\n";
    let yaml = world.config_yaml_via(&ids, extra, &slow.url());
    let (behind_env, ahead_env) = (skewed(-600), skewed(600));
    let (behind_pairs, ahead_pairs) = (env_refs(&behind_env), env_refs(&ahead_env));

    // The instance behind takes the first job (one sync at a time per instance, the default)...
    let behind = common::ServiceProcess::start(&world, &yaml, &behind_pairs);
    let first = world.create_pending_job(&connectors[0].0).await;
    let running = world
        .wait_for("first job running", secs(30), async || {
            world
                .job(&first)
                .await
                .filter(|j| j["status"] == "in_progress")
        })
        .await;
    let off = seconds_off(&running["started_at"]);
    assert!(
        (-660..=-540).contains(&off),
        "the clock behind is 10 min behind: {off} s"
    );
    // ...the instance ahead the second, while each cleans up and watches the other's job.
    let ahead = common::ServiceProcess::start(&world, &yaml, &ahead_pairs);
    let second = world.create_pending_job(&connectors[1].0).await;

    for (job_id, (connector_id, index)) in [&first, &second].into_iter().zip(&connectors) {
        let done = world
            .wait_job(job_id, common::jobs::ENDED, secs(180), &[&behind, &ahead])
            .await;
        assert_eq!(
            done["status"],
            "completed",
            "{done}\n{}\n{}",
            behind.logs(),
            ahead.logs()
        );
        assert_eq!(done["indexed_document_count"], N, "{done}");
        assert_eq!(world.count(index).await, N as u64);
        let c = world.connector(connector_id).await.expect("connector");
        assert_eq!(c["last_sync_status"], "completed", "{c}");
    }
    let second_job = world.job(&second).await.expect("second job");
    let off = seconds_off(&second_job["started_at"]);
    assert!(
        (540..=660).contains(&off),
        "the second job ran on the instance ahead: {off} s"
    );
    for svc in [&behind, &ahead] {
        assert!(
            !svc.logs().contains("marked idle jobs as error"),
            "{}",
            svc.logs()
        );
    }
}

/// A connector that says `in_progress` while no job of it runs (its instance died between a job's
/// end and the connector's record of it) does not block its next job forever: after a lease (30 s)
/// of seeing the same mark, it is released and the waiting job runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_connector_left_in_progress_with_no_job_running_syncs_again() {
    let world = TestWorld::start().await;
    let bucket = world.name("stuck");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "a.txt", b"a").await;
    let (id, index) = world
        .configured_connector("stuck", s3_configuration(&world, &bucket))
        .await;
    world
        .update_connector(&id, json!({"last_sync_status": "in_progress"}))
        .await;
    let job = world.create_pending_job(&id).await;
    let svc = common::ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let done = world
        .wait_job(&job, common::jobs::ENDED, secs(90), &[&svc])
        .await;
    assert_eq!(done["status"], "completed", "{done}\n{}", svc.logs());
    assert_eq!(world.count(&index).await, 1);
    let c = world.connector(&id).await.expect("connector");
    assert_eq!(c["last_sync_status"], "completed", "{c}");
    assert!(
        svc.logs()
            .contains("released a connector marked in_progress with no job running"),
        "{}",
        svc.logs()
    );
}
