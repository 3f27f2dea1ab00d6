//! Test against a live S3-compatible server (e.g. moto). Ignored by default, since it needs one;
//! run it with `S3_TEST_ENDPOINT=http://127.0.0.1:5077 cargo test --lib source::s3::live_tests --
//! --ignored`. The integration tests (`tests/service_listing.rs`) cover the same keys end to end.

use super::{OwnerField, S3Client, S3Settings, to_document};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::StorageClass;

const KEYS: [&str; 8] = [
    "a+b&c.txt",
    "folder/",
    "folder/nested/deep/file.md",
    "percent%20literal.txt",
    "space name.txt",
    "unicodé/文件/ñ.txt",
    "z/empty",
    "z/glacier.bin",
];

/// Settings for a local test server at `endpoint`: every bucket, static test keys, pages of 3, no
/// retries.
pub(super) fn local_settings(endpoint: String) -> S3Settings {
    S3Settings {
        buckets: vec!["*".into()],
        access_key_id: Some("test".into()),
        secret_access_key: Some(crate::config::Secret::new("test")),
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint),
        page_size: 3,
        max_attempts: 0,
        ..S3Settings::default()
    }
}

#[tokio::test]
#[ignore = "needs a live S3-compatible server at S3_TEST_ENDPOINT"]
async fn lists_tricky_keys_and_reports_missing_buckets() {
    let endpoint = std::env::var("S3_TEST_ENDPOINT")
        .expect("S3_TEST_ENDPOINT names the S3-compatible server this test runs against");
    let source = S3Client::new(&local_settings(endpoint)).await.unwrap();
    source.ping().await.unwrap();
    let bucket = format!("content-sync-live-{}", fastrand::u32(..));
    let client = source.client();
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    for key in KEYS {
        let body = if key.ends_with('/') || key == "z/empty" {
            Vec::new()
        } else {
            key.as_bytes().to_vec()
        };
        let class = if key.contains("glacier") {
            StorageClass::Glacier
        } else {
            StorageClass::Standard
        };
        let put = client
            .put_object()
            .bucket(&bucket)
            .key(key)
            .storage_class(class);
        put.body(ByteStream::from(body)).send().await.unwrap();
    }
    assert!(source.resolve_buckets().await.unwrap().contains(&bucket));

    let mut lister = source.lister(&bucket, None, None).await.unwrap();
    let mut objects = Vec::new();
    let mut pages = 0;
    while let Some(page) = lister.next_page().await.unwrap() {
        assert!(page.len() <= 3);
        pages += 1;
        objects.extend(page);
    }
    assert_eq!(pages, 3);
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, KEYS);
    for o in &objects {
        assert!(matches!(o.owner, OwnerField::DisplayName(_)), "{o:?}");
        let expected = if o.key.contains("glacier") {
            "GLACIER"
        } else {
            "STANDARD"
        };
        assert_eq!(o.storage_class.as_deref(), Some(expected));
        assert_eq!(
            o.size as usize,
            if o.key == "folder/" || o.key == "z/empty" {
                0
            } else {
                o.key.len()
            }
        );
        assert_eq!(to_document(o).get_str("filename").unwrap(), o.key.as_str());
    }

    // Prefix and resume-after.
    let mut lister = source
        .lister(&bucket, Some("folder/".into()), Some("folder/".into()))
        .await
        .unwrap();
    let page = lister.next_page().await.unwrap().unwrap();
    assert_eq!(
        page.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        ["folder/nested/deep/file.md"]
    );
    assert!(lister.next_page().await.unwrap().is_none());

    let body = source
        .get_object(&bucket, "unicodé/文件/ñ.txt")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(body.into_bytes().as_ref(), "unicodé/文件/ñ.txt".as_bytes());

    let missing = format!("{bucket}-missing");
    let err = match source.lister(&missing, None, None).await {
        Ok(mut lister) => lister.next_page().await.unwrap_err(),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(
        text.contains(&format!("\"{missing}\"")) && text.contains("NoSuchBucket"),
        "{text}"
    );
    eprintln!("missing bucket error: {text}");
}
