//! Downloads are plain signed requests, not the SDK's GetObject (docs/architecture.md#the-s3-source):
//! S3 must accept their signatures, for every kind of key; a download S3 refuses the way the SDK
//! would correct goes through the SDK instead; a body that is not what S3 checksummed is never
//! indexed.

mod common;

use aws_sdk_s3::error::ProvideErrorMetadata;
use common::{Fault, FaultProxy, Rule, ServiceProcess, TestWorld, s3_configuration, secs};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Keys the signature must encode as S3 does: spaces, reserved characters, a literal `%20`,
/// UTF-8 in several segments.
const OBJECTS: [(&str, &str); 5] = [
    ("plain.txt", "plain words"),
    ("folder/a+b&c (1).txt", "reserved words"),
    ("percent%20literal.txt", "percent words"),
    ("unicodé/文件/ñ.txt", "unicode words"),
    ("deep/tilde~under_score-dash.txt", "unreserved words"),
];

/// What the service logs when it stops downloading on its own (`download.rs`).
const SDK_FALLBACK: &str = "downloads now go through the sdk";

/// A full sync of `bucket` read from S3 at `endpoint` (the connector's configuration tweaked by
/// `tweak`), which must complete: the job, the documents by file name, the service's logs.
async fn full_sync(
    world: &TestWorld,
    bucket: &str,
    endpoint: &str,
    tweak: impl FnOnce(&mut Value),
) -> (Value, BTreeMap<String, Value>, String) {
    world.ensure_system_indices().await;
    let mut config = s3_configuration(world, bucket);
    config["endpoint_url"]["value"] = json!(endpoint);
    tweak(&mut config);
    let (id, index) = world.configured_connector("signing", config).await;
    let service = ServiceProcess::start(world, &world.config_yaml(&[&id], ""), &[]);
    let job = world.run_job(&id, "full", secs(60)).await;
    assert_eq!(job["status"], "completed", "{job}\n{}", service.logs());
    (job, world.docs_by_filename(&index).await, service.logs())
}

/// A moto server that checks every request's SigV4 signature (with botocore's signer) holds the
/// objects; the service syncs them with the only key it accepts. Every document has its text,
/// and the service never had to fall back on the SDK for a download.
#[tokio::test(flavor = "multi_thread")]
async fn downloads_are_signed_as_s3_checks_them() {
    let mut world = TestWorld::start().await;
    // The four IAM calls of moto_iam.py are not checked; every request after them is.
    let moto = world
        .private_moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", "4")])
        .await;
    let bucket = world.name("signed");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/moto_iam.py");
    let out = std::process::Command::new(common::python())
        .arg(script)
        .arg(&moto)
        .arg(&bucket)
        .args(OBJECTS.map(|(key, text)| format!("{key}={text}")))
        .output()
        .expect("run moto_iam.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key: Value = serde_json::from_slice(&out.stdout).expect("the key as JSON");

    // The server does check: a request signed with another secret for the same key is refused.
    let forged = common::s3::client_with(&moto, "us-east-1", key["id"].as_str().unwrap(), "forged")
        .get_object()
        .bucket(&bucket)
        .key("plain.txt")
        .send()
        .await
        .expect_err("a forged signature is refused");
    assert_eq!(forged.code(), Some("SignatureDoesNotMatch"), "{forged:?}");

    let (_, docs, logs) = full_sync(&world, &bucket, &moto, |config| {
        config["aws_access_key_id"]["value"] = key["id"].clone();
        config["aws_secret_access_key"]["value"] = key["secret"].clone();
    })
    .await;
    for (key, text) in OBJECTS {
        let doc = docs
            .get(key)
            .unwrap_or_else(|| panic!("{key}: not indexed: {docs:?}"));
        assert_eq!(doc["body"], text, "{key}: {doc}");
    }
    assert!(!logs.contains(SDK_FALLBACK), "{logs}");
}

/// A download answered `SignatureDoesNotMatch` (as when a request is signed wrongly) is fetched
/// through the SDK's GetObject instead, and the service says it now downloads through the SDK:
/// the document keeps its text.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_signature_falls_back_on_the_sdk() {
    let world = TestWorld::start().await;
    let bucket = world.name("refused");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "a.txt", b"alpha words").await;
    let path = format!("/{bucket}/a.txt?");
    let s3 = FaultProxy::start(
        &world.s3_endpoint,
        vec![
            Rule::when(
                "refused GET",
                move |m, t| m == "GET" && t.starts_with(&path),
                Fault::status(
                    403,
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch\
                     </Code><Message>injected</Message></Error>",
                ),
            )
            .first(1),
        ],
    )
    .await;
    let (job, docs, logs) = full_sync(&world, &bucket, &s3.url(), |_| {}).await;
    assert_eq!(s3.injected(0), 1);
    assert_eq!(docs["a.txt"]["body"], "alpha words", "{}", docs["a.txt"]);
    assert_eq!(job["metadata"]["content_unavailable"], 0, "{job}");
    assert!(logs.contains(SDK_FALLBACK), "{logs}");
}

/// The bytes of `a.txt` change on the way (the proxy upper-cases them, same length): they no
/// longer match the checksum S3 sent with them, so the download fails and `a.txt` is indexed
/// without text, marked for the next sync, while `b.txt` keeps its text.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_fails_its_checksum_is_not_indexed() {
    let world = TestWorld::start().await;
    let bucket = world.name("checksum");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "a.txt", b"alpha words").await;
    world.put_object(&bucket, "b.txt", b"beta words").await;
    let path = format!("/{bucket}/a.txt?");
    let s3 = FaultProxy::start(
        &world.s3_endpoint,
        vec![Rule::when(
            "changed body",
            move |m, t| m == "GET" && t.starts_with(&path),
            Fault::rewrite(|_, body| body.to_uppercase()),
        )],
    )
    .await;
    let (job, docs, logs) = full_sync(&world, &bucket, &s3.url(), |config| {
        config["max_attempts"]["value"] = json!(0);
    })
    .await;
    assert_eq!(s3.injected(0), 1);
    assert_eq!(docs["b.txt"]["body"], "beta words", "{}", docs["b.txt"]);
    let changed = &docs["a.txt"];
    assert!(changed.get("body").is_none(), "{changed}");
    assert_eq!(changed["content_sync_text_missing"], true, "{changed}");
    assert_eq!(job["metadata"]["content_unavailable"], 1, "{job}");
    assert!(
        logs.lines()
            .any(|l| l.contains("a.txt") && l.to_lowercase().contains("checksum")),
        "{logs}"
    );
}
