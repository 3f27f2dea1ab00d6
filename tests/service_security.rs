//! What a connector's editor may make the service do, seen from the outside: the AWS default
//! credential chain and custom endpoints only as config.yml allows, connector errors that carry no
//! credential nor another host's page, jobs that write only into their connector's index, log lines
//! that an S3 key cannot forge, and `job show` without secrets.

mod common;

use common::{
    Fault, FaultProxy, Rule, ServiceProcess, TestWorld, is_listing_of, s3_configuration, secs,
};
use common::{jobs::ENDED, kibana::JOBS};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A configuration over `bucket` whose two key fields are empty.
fn without_keys(world: &TestWorld, bucket: &str) -> Value {
    let mut c = s3_configuration(world, bucket);
    c["aws_access_key_id"]["value"] = json!("");
    c["aws_secret_access_key"]["value"] = json!("");
    c
}

/// Credentials of the host's own identity, as the AWS default chain would find them.
const HOST_CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "host-role"),
    ("AWS_SECRET_ACCESS_KEY", "host-role-secret"),
];

#[tokio::test(flavor = "multi_thread")]
async fn empty_keys_use_the_default_chain_only_when_config_allows_it() {
    let world = TestWorld::start().await;
    let bucket = world.name("chain");
    world.create_bucket(&bucket, None).await;
    world.put_many(&bucket, "o/", 2).await;
    let (id, index) = world
        .configured_connector("chain", without_keys(&world, &bucket))
        .await;
    let job = world.create_pending_job(&id).await;

    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &HOST_CREDENTIALS);
    let ended = world.wait_job(&job, ENDED, secs(30), &[&svc]).await;
    assert_eq!(ended["status"], "error", "{ended}");
    let error = ended["error"].as_str().unwrap_or_default();
    assert!(error.contains("s3.allow_default_credentials"), "{error}");
    assert_eq!(world.count(&index).await, 0);
    let c = world
        .wait_connector(&id, "connector error", secs(15), |c| {
            c["status"] == "error"
                && c["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("s3.allow_default_credentials"))
        })
        .await;
    assert!(
        c["error"].as_str().unwrap().contains("aws_access_key_id"),
        "{c}"
    );
    drop(svc);

    let job = world.create_pending_job(&id).await;
    let yaml = world.config_yaml(&[&id], "s3.allow_default_credentials: true");
    let svc = ServiceProcess::start(&world, &yaml, &HOST_CREDENTIALS);
    let done = world.wait_completed(&job, &svc).await;
    assert_eq!(done["indexed_document_count"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoint_outside_the_allow_list_is_refused() {
    let world = TestWorld::start().await;
    let (id, index, _) = world.bucket_with_connector("fence", 2).await;
    let job = world.create_pending_job(&id).await;
    let yaml = world.config_yaml(&[&id], "s3.allowed_endpoints: [\"https://s3.example.com\"]");
    let svc = ServiceProcess::start(&world, &yaml, &[]);

    let ended = world.wait_job(&job, ENDED, secs(30), &[&svc]).await;
    assert_eq!(ended["status"], "error", "{ended}");
    let error = ended["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("s3.allowed_endpoints") && error.contains("endpoint_url"),
        "{error}"
    );
    assert_eq!(world.es_head(&format!("/{index}")).await, 404);
    world
        .wait_connector(&id, "connector error", secs(15), |c| {
            c["status"] == "error"
                && c["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("s3.allowed_endpoints"))
        })
        .await;
}

/// A host that answers every request with a 403 S3 error whose message echoes the request (its
/// headers carry the session token) followed by a long page ending in `marker`.
async fn echoing_host(marker: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let marker = marker.to_owned();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let marker = marker.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let echoed = String::from_utf8_lossy(&request).replace(['<', '>', '&'], " ");
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                     <Message>denied: {echoed} {} {marker}</Message></Error>",
                    "internal page text ".repeat(200)
                );
                let response = format!(
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_error_carries_no_credential_and_no_foreign_page() {
    let world = TestWorld::start().await;
    let marker = format!("END-OF-FOREIGN-PAGE-{}", world.suffix);
    let token = format!("session-token-{}", world.suffix);
    let host = echoing_host(&marker).await;
    let mut configuration = s3_configuration(&world, "any");
    configuration["endpoint_url"]["value"] = json!(host);
    configuration["max_attempts"]["value"] = json!(0);
    configuration["aws_session_token"] = json!({"value": token, "sensitive": true});
    let (id, _) = world.configured_connector("echo", configuration).await;
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);

    let c = world
        .wait_connector(&id, "connector error", secs(20), |c| c["status"] == "error")
        .await;
    let error = c["error"].as_str().unwrap_or_default();
    assert!(error.contains("AccessDenied"), "{error}");
    assert!(!error.contains(&token), "the token leaked: {error}");
    assert!(!error.contains(&marker), "the foreign page leaked: {error}");
    assert!(error.len() < 500, "{} bytes: {error}", error.len());
    assert!(!svc.logs().contains(&token), "the token is in the logs");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_index_is_not_its_connectors_is_refused() {
    let world = TestWorld::start().await;
    let (id, index, _) = world.bucket_with_connector("retarget", 2).await;
    // Another connector's index, holding documents a sync into it would delete.
    let victim = world.name("search-victim");
    for n in 0..3 {
        world
            .es_put(
                &format!("/{victim}/_doc/v{n}?refresh=true"),
                &json!({"n": n}),
            )
            .await
            .ok();
    }
    let job = world.create_pending_job(&id).await;
    world
        .es_post(
            &format!("/{JOBS}/_update/{job}?refresh=true"),
            &json!({"doc": {"connector": {"index_name": victim}}}),
        )
        .await
        .ok();
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);

    let ended = world.wait_job(&job, ENDED, secs(30), &[&svc]).await;
    assert_eq!(ended["status"], "error", "{ended}");
    let error = ended["error"].as_str().unwrap_or_default();
    assert!(error.contains(&victim) && error.contains(&index), "{error}");
    assert_eq!(world.count(&victim).await, 3);
    assert_eq!(world.es_head(&format!("/{index}")).await, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_key_cannot_forge_text_log_lines() {
    let world = TestWorld::start().await;
    let bucket = world.name("forge");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "forge.txt", &[b'x'; 100]).await;
    // moto's router cannot take a newline in an object's path, so the listing names the object
    // with the forging key on its way to the service.
    let forged = "a\n[FMWK][00:00:00][INFO] forged.txt";
    let proxy = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "the listing holds a key with a newline",
            is_listing_of(&bucket),
            Fault::rewrite(move |_, body| {
                body.replace("<Key>forge.txt</Key>", &format!("<Key>{forged}</Key>"))
            }),
        )],
    )
    .await;
    let mut configuration = s3_configuration(&world, &bucket);
    configuration["endpoint_url"]["value"] = json!(proxy.url());
    let (id, _) = world.configured_connector("forge", configuration).await;
    let job = world.create_pending_job(&id).await;
    // Too large to download: the service warns, naming the key.
    let yaml = world.config_yaml(&[&id], "service.max_file_download_size: 10");
    let svc = ServiceProcess::start(&world, &yaml, &[]);
    world.wait_completed(&job, &svc).await;

    let logs = svc.logs();
    assert!(
        logs.contains("key=a\\n[FMWK][00:00:00][INFO] forged.txt"),
        "the key is not logged escaped:\n{logs}"
    );
    assert!(
        !logs
            .lines()
            .any(|l| l.starts_with("[FMWK][00:00:00][INFO] forged")),
        "a forged line:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn job_show_redacts_secret_fields_even_when_not_marked_sensitive() {
    let world = TestWorld::start().await;
    let mut configuration = s3_configuration(&world, "b");
    let secret = format!("plain-secret-{}", world.suffix);
    let token = format!("plain-token-{}", world.suffix);
    let password = format!("plain-password-{}", world.suffix);
    configuration["aws_secret_access_key"]["value"] = json!(secret);
    configuration["aws_secret_access_key"]["sensitive"] = json!(false);
    configuration["aws_session_token"] = json!({"value": token, "sensitive": false});
    configuration["proxy_password"] = json!(password);
    let (id, _) = world.configured_connector("show", configuration).await;
    let job = world.create_pending_job(&id).await;
    let config = world.tmp_dir().join("show.yml");
    std::fs::write(&config, world.config_yaml(&[&id], "")).unwrap();

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_content-sync"))
        .arg("-c")
        .arg(&config)
        .args(["job", "show", &job])
        .env("ALLOW_ES_VERSION_MISMATCH", "true")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    for leaked in [&secret, &token, &password] {
        assert!(!shown.contains(leaked.as_str()), "{leaked} shown:\n{shown}");
    }
    let doc: Value = serde_json::from_str(&shown).unwrap();
    let cfg = &doc["connector"]["configuration"];
    assert_eq!(cfg["aws_session_token"]["value"], "***");
    assert_eq!(cfg["proxy_password"], "***");
    assert_eq!(cfg["aws_access_key_id"]["value"], "test");
}
