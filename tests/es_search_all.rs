//! Connectors and jobs are read with a scroll, so no search of ours stops silently at Elasticsearch's
//! 10 000-hit window (Elastic's helper pages with `from`/`size`, which the window caps): 10 050
//! documents in, 10 050 hits out, against the cluster of the test world.

mod common;

use common::TestWorld;
use content_sync::config::{Environment, load_str};
use content_sync::es::EsClient;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

#[tokio::test(flavor = "multi_thread")]
async fn search_all_returns_every_hit_past_ten_thousand() {
    const N: usize = 10_050;
    let world = TestWorld::start().await;
    let index = world.name("many-jobs");
    let mut ndjson = String::new();
    for i in 0..N {
        ndjson += &format!("{{\"index\":{{\"_id\":\"job-{i:05}\"}}}}\n");
        ndjson += &format!("{{\"status\":\"completed\",\"n\":{i}}}\n");
    }
    let resp = world
        .es_request_raw(
            reqwest::Method::POST,
            &format!("/{index}/_bulk?refresh=true"),
            Some((b"application/x-ndjson".as_slice(), ndjson.into_bytes())),
        )
        .await;
    assert!(
        resp.status < 300 && resp.body["errors"] == false,
        "{}: {}",
        resp.request,
        resp.status
    );
    assert_eq!(world.count(&index).await, N as u64);

    let yaml = world.config_yaml(&["unused"], "");
    let config = load_str(Path::new("config.yml"), &yaml, &Environment::from_process())
        .expect("the test world's config loads");
    let es = EsClient::new(&config.elasticsearch, None, "test").expect("client");
    let hits = es
        .search_all(&index, json!({"term": {"status": "completed"}}), None)
        .await
        .expect("search_all");
    let ids: BTreeSet<String> = hits.into_iter().map(|h| h.id).collect();
    assert_eq!(ids.len(), N, "every document once");
    assert!(ids.contains("job-10049") && ids.contains("job-00000"));
    world.es_delete(&format!("/{index}")).await;
}
