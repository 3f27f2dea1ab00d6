//! Elasticsearch over HTTPS (a TLS front with a throw-away CA before the ES of the test world): the
//! service trusts the CA named in `elasticsearch.ca_certs`, refuses an unknown certificate with an
//! error that says so, and skips the check with `verify_certs: false`.

mod common;

use common::tls::TlsFront;
use common::{ServiceProcess, TestWorld, secs};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn syncs_through_https_trusting_the_ca_in_ca_certs() {
    let world = TestWorld::start().await;
    let front = TlsFront::start(&world.es_url).await;
    let ca = front.write_ca(world.tmp_dir());
    let (id, index, _) = world.bucket_with_connector("tls-ca", 5).await;
    let extra = format!("elasticsearch.ca_certs: {:?}\n", ca.display().to_string());
    let yaml = world.config_yaml_via(&[&id], &extra, &front.url());
    let svc = ServiceProcess::start(&world, &yaml, &[]);

    let job = world.create_pending_job(&id).await;
    let done = world
        .wait_for("job completed over https", secs(60), async || {
            let j = world.job(&job).await.unwrap_or(Value::Null);
            match j["status"].as_str() {
                Some("completed" | "error" | "canceled") => Ok(j),
                _ => Err(j),
            }
        })
        .await;
    assert_eq!(done["status"], "completed", "{done}\n{}", svc.logs());
    assert_eq!(done["indexed_document_count"], 5, "{done}");
    world.refresh(&index).await;
    assert_eq!(world.count(&index).await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_stops_the_service_with_a_clear_error() {
    let world = TestWorld::start().await;
    let front = TlsFront::start(&world.es_url).await;
    let (id, _, _) = world.bucket_with_connector("tls-unknown", 1).await;
    let extra = "elasticsearch.max_wait_duration: 1\nelasticsearch.initial_backoff_duration: 0.2\n";
    let yaml = world.config_yaml_via(&[&id], extra, &front.url());
    let mut svc = ServiceProcess::start(&world, &yaml, &[]);

    let status = svc.wait_exit(secs(60)).await;
    let logs = svc.logs();
    assert!(!status.success(), "exit {status:?}; logs:\n{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains(&front.url()) && l.to_lowercase().contains("certificate")),
        "the error names the host and the certificate problem:\n{logs}"
    );
    let c = world.connector(&id).await.expect("connector");
    assert!(c["last_seen"].is_null(), "nothing was written: {c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_certs_false_accepts_an_unknown_certificate() {
    let world = TestWorld::start().await;
    let front = TlsFront::start(&world.es_url).await;
    let (id, _, _) = world.bucket_with_connector("tls-noverify", 1).await;
    let yaml = world.config_yaml_via(&[&id], "elasticsearch.verify_certs: false\n", &front.url());
    let _svc = ServiceProcess::start(&world, &yaml, &[]);

    world
        .wait_connector(&id, "connector connected over https", secs(60), |c| {
            c["status"] == "connected"
        })
        .await;
}
