//! Job documents are never written twice by a retry.

mod common;

use common::{Fault, FaultProxy, Rule, TestWorld};

/// The answer to the job's creation is lost (the cluster wrote it; the connection dropped before
/// the answer came back). The retry must not create a second job: the service picks the job's id
/// itself and creates it with `_create`, so the retry finds its own job there.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_answer_to_job_creation_creates_one_job() {
    let world = TestWorld::start().await;
    let (id, _index, _bucket) = world.bucket_with_connector("lost", 1).await;
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![
            Rule::when(
                "job creation",
                |m, t| {
                    (m == "PUT" || m == "POST")
                        && t.starts_with("/.elastic-connectors-sync-jobs/_")
                        && (t.contains("/_create/") || t.contains("/_doc"))
                },
                Fault::LoseResponse,
            )
            .first(1),
        ],
    )
    .await;
    let yaml = world.config_yaml_via(
        &[&id],
        "elasticsearch.feature_use_connectors_api: false\nelasticsearch.retry_interval: 0.1\n",
        &proxy.url(),
    );
    let config = world.tmp_dir().join("lost.yml");
    std::fs::write(&config, yaml).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_content-sync"))
        .arg("-c")
        .arg(&config)
        .args(["job", "start", "--connector", &id])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .expect("run content-sync");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(proxy.injected(0), 1, "the first answer was lost");
    let jobs = world.jobs_of(&id).await;
    let ids: Vec<&str> = jobs.iter().filter_map(|j| j["_id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "jobs created: {ids:?}");
    assert_eq!(jobs[0]["_id"], stdout.trim(), "the job the CLI printed");
}
