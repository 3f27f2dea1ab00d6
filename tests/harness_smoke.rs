//! Proves the test harness itself works: stand-ins start, helpers round-trip, the proxy injects
//! faults. No service behaviour is tested here.

mod common;

use common::{Fault, FaultProxy, Rule, TestWorld, s3_configuration, secs};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn elasticsearch_helpers_and_kibana_docs() {
    let world = TestWorld::start().await;
    // `GET /` is optional (Elasticsearch's minimal distribution answers 405); every node says its
    // version here.
    let nodes = world
        .es_get("/_nodes/_local?filter_path=nodes.*.version")
        .await
        .ok();
    let version = nodes["nodes"]
        .as_object()
        .and_then(|n| n.values().next())
        .map(|n| &n["version"]);
    assert!(
        version.is_some_and(|v| v.is_string()),
        "GET /_nodes/_local: {nodes}"
    );

    // System indices: idempotent, reachable through their aliases.
    world.ensure_system_indices().await;
    world.ensure_system_indices().await;
    assert_eq!(world.es_head("/.elastic-connectors").await, 200);
    assert_eq!(world.es_head("/.elastic-connectors-sync-jobs").await, 200);

    // A connector as Kibana writes it, then an on-demand job snapshotting it.
    let id = world.name("conn");
    let index = world.name("search-s3");
    let config = s3_configuration(&world, "b1,b2");
    let doc = world
        .create_connector_doc(&id, &index, config, json!({"full": {"enabled": true}}))
        .await;
    assert_eq!(doc["status"], "configured");
    let stored = world.connector(&id).await.expect("connector stored");
    assert_eq!(
        stored["scheduling"]["full"],
        json!({"enabled": true, "interval": "0 0 0 * * ?"})
    );
    assert_eq!(stored["configuration"]["buckets"]["value"], "b1,b2");
    assert_eq!(
        stored["filtering"][0]["active"]["rules"][0]["id"],
        "DEFAULT"
    );

    let job_id = world.create_pending_job(&id).await;
    let job = world.job(&job_id).await.expect("job stored");
    assert_eq!(job["status"], "pending");
    assert_eq!(job["connector"]["index_name"], index.as_str());
    assert_eq!(
        job["connector"]["filtering"]["rules"][0]["policy"],
        "include"
    );
    // connector.id must be an exact-match field, as the service's term queries expect.
    let jobs = world.jobs_of(&id).await;
    assert_eq!(jobs.len(), 1, "jobs of {id}: {jobs:?}");
    assert_eq!(jobs[0]["_id"], job_id.as_str());

    // Plain document helpers on a content index.
    world
        .es_put(&format!("/{index}/_doc/a?refresh=true"), &json!({"x": 1}))
        .await
        .ok();
    world
        .es_put(&format!("/{index}/_doc/b"), &json!({"x": 2}))
        .await
        .ok();
    assert_eq!(world.count(&index).await, 2);
    assert_eq!(
        world.search(&index, json!({"term": {"x": 2}})).await.len(),
        1
    );
    assert_eq!(world.get_doc(&index, "a").await, Some(json!({"x": 1})));
    assert_eq!(world.get_doc(&index, "zzz").await, None);
    assert_eq!(world.count(&world.name("missing")).await, 0);
    let n = world
        .wait_for("count reaches 2", secs(5), async || {
            let n = world.count(&index).await;
            if n == 2 { Ok(n) } else { Err(n) }
        })
        .await;
    assert_eq!(n, 2);

    // Config for the service under test.
    let yaml = world.config_yaml(&[&id], "elasticsearch.bulk.chunk_size: 10");
    assert!(
        yaml.contains(&format!("host: \"{}\"", world.es_url)),
        "{yaml}"
    );
    assert!(yaml.contains(&format!("connector_id: \"{id}\"")), "{yaml}");
    assert!(yaml.ends_with("chunk_size: 10\n"), "{yaml}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_bucket_round_trip() {
    let world = TestWorld::start().await;
    let bucket = world.name("bucket");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "docs/a.txt", b"hello").await;
    world
        .put_object_with_class(&bucket, "cold/b.bin", b"brr", "GLACIER")
        .await;
    world.put_object(&bucket, "folder/", b"").await;
    let many = world.put_many(&bucket, "many/", 40).await;
    assert_eq!(many.len(), 40);
    assert_eq!(world.list_keys(&bucket).await.len(), 43);

    let got = world
        .s3_client()
        .get_object()
        .bucket(&bucket)
        .key("docs/a.txt")
        .send()
        .await
        .expect("get object");
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"hello"
    );

    let listing = world
        .s3_client()
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("cold/")
        .send()
        .await
        .expect("list");
    assert_eq!(
        listing.contents()[0].storage_class().map(|c| c.as_str()),
        Some("GLACIER")
    );

    for key in world.list_keys(&bucket).await {
        world.delete_object(&bucket, &key).await;
    }
    world.delete_bucket(&bucket).await;

    // A bucket in another region reports its location.
    let west = world.name("west");
    world.create_bucket(&west, Some("us-west-2")).await;
    let loc = world
        .s3_client()
        .get_bucket_location()
        .bucket(&west)
        .send()
        .await
        .expect("location");
    assert_eq!(
        loc.location_constraint().map(|c| c.as_str()),
        Some("us-west-2")
    );
    let (base, port) = world.aws_endpoint_env();
    assert_eq!(format!("{base}:{port}"), world.s3_endpoint);
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_injects_faults_then_forwards() {
    let world = TestWorld::start().await;
    let proxy = FaultProxy::start(
        &world.es_url,
        vec![
            Rule::path_contains("/_bulk", Fault::too_many_requests()).first(2),
            Rule::path_contains("/reset-me", Fault::Reset).first(1),
            Rule::method_path("GET", "/slow", Fault::Delay(secs(1))),
        ],
    )
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let index = world.name("proxied");
    let bulk = format!("{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"1\"}}}}\n{{\"a\":1}}\n");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = http
            .post(format!("{}/_bulk?refresh=true", proxy.url()))
            .header("Content-Type", "application/x-ndjson")
            .body(bulk.clone())
            .send()
            .await
            .expect("bulk through proxy");
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        if status == 429 {
            assert_eq!(body, json!({"error": "too many requests", "status": 429}));
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [429, 429, 200]);
    assert_eq!((proxy.hits(0), proxy.injected(0)), (3, 2));
    assert_eq!(world.count(&index).await, 1);

    // Reset once, then forwarded (osmem answers 404 for a missing index).
    let first = http.get(format!("{}/reset-me", proxy.url())).send().await;
    assert!(first.is_err(), "expected a connection error, got {first:?}");
    let second = http
        .get(format!("{}/reset-me", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status().as_u16(), 404);
    assert_eq!((proxy.hits(1), proxy.injected(1)), (2, 1));

    // Delay applies to every match.
    let t = std::time::Instant::now();
    http.get(format!("{}/slow", proxy.url()))
        .send()
        .await
        .unwrap();
    assert!(t.elapsed() >= secs(1));
    assert_eq!(proxy.injected(2), 1);

    // S3 through the proxy: moto closes every connection, the proxy copes.
    let s3_proxy = FaultProxy::start(&world.s3_endpoint, vec![]).await;
    let s3 = common::s3::client(&s3_proxy.url(), "us-east-1");
    let bucket = world.name("via-proxy");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create via proxy");
    for i in 0..5 {
        s3.put_object()
            .bucket(&bucket)
            .key(format!("k{i}"))
            .body(vec![b'x'; 100_000].into())
            .send()
            .await
            .expect("put via proxy");
    }
    assert_eq!(world.list_keys(&bucket).await.len(), 5);
    assert!(s3_proxy.requests() >= 6);
}

/// `Fault::Rewrite` re-frames the new body, whether the upstream sent it plain or chunked.
#[test]
fn proxy_rewrite_reframes_plain_and_chunked_bodies() {
    use common::proxy::rewrite::{Rewriter, rewrite_response};
    let f: Rewriter = std::sync::Arc::new(|t, b| format!("{t}:{}", b.to_uppercase()));
    let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc";
    assert_eq!(
        rewrite_response(plain, "/x", &f),
        b"HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 6\r\n\r\n/x:ABC".to_vec()
    );
    let chunked =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x=y\r\nc\r\n0\r\n\r\n";
    assert_eq!(
        rewrite_response(chunked, "/y", &f),
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n/y:ABC".to_vec()
    );
}
