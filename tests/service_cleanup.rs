//! Job cleanup: jobs left `in_progress` by a dead worker or a deleted connector are marked `error`,
//! and the connector can sync again.

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
    let world = TestWorld::start().await;
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

    let yaml = world.config_yaml(&[&id, &busy], "");
    let service = common::ServiceProcess::start(&world, &yaml, &[]);

    for job_id in [&idle_job, &orphan_job] {
        let job = world
            .wait_for("stale job marked error", secs(20), async || {
                world.job(job_id).await.filter(|j| j["status"] == "error")
            })
            .await;
        assert_eq!(job["error"], IDLE_ERROR);
        assert!(job["completed_at"].is_string(), "{job}");
    }
    let connector = world
        .wait_for("connector records the failed job", secs(10), async || {
            world
                .connector(&id)
                .await
                .filter(|c| c["last_sync_status"] == "error")
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
}
