//! S3 helpers (aws-sdk-s3 against the world's endpoint: path style, static credentials
//! `test`/`test-secret`). Moto does not check signatures, so any credentials work there.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, StorageClass};
use futures_util::StreamExt;

use super::TestWorld;

/// Access key id used by the harness (and by [`super::s3_configuration`]).
pub const ACCESS_KEY_ID: &str = "test";
/// Secret access key used by the harness (and by [`super::s3_configuration`]).
pub const SECRET_ACCESS_KEY: &str = "test-secret";
/// Objects uploaded concurrently by [`TestWorld::put_many`].
const PUT_CONCURRENCY: usize = 16;

/// An S3 client for `endpoint` in `region` (path style, static test credentials).
pub fn client(endpoint: &str, region: &str) -> Client {
    client_with(endpoint, region, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
}

/// A path-style client of `endpoint` signing with this key.
pub fn client_with(endpoint: &str, region: &str, key_id: &str, secret: &str) -> Client {
    let creds = Credentials::new(key_id, secret, None, None, "content-sync-tests");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// `unwrap` for SDK results that panics with the full error chain.
trait OrPanic<T> {
    fn or_panic(self, what: impl std::fmt::Display) -> T;
}

impl<T, E: std::error::Error> OrPanic<T> for Result<T, E> {
    #[track_caller]
    fn or_panic(self, what: impl std::fmt::Display) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("S3 {what}: {}", DisplayErrorContext(e)),
        }
    }
}

impl TestWorld {
    /// The us-east-1 harness client.
    pub fn s3_client(&self) -> &Client {
        &self.s3
    }

    /// A client bound to another region (needed to create buckets there on moto).
    pub fn s3_client_in(&self, region: &str) -> Client {
        client(&self.s3_endpoint, region)
    }

    /// `("http://127.0.0.1", "<port>")`: values for `AWS_ENDPOINT_URL` / `AWS_PORT`, the way the
    /// Python service (and Elastic's ftest) are pointed at a custom S3 endpoint.
    pub fn aws_endpoint_env(&self) -> (String, String) {
        let (base, port) = self
            .s3_endpoint
            .rsplit_once(':')
            .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or_else(|| panic!("S3 endpoint {} has no port", self.s3_endpoint));
        (base.to_string(), port.to_string())
    }

    /// Creates a bucket; `region` other than us-east-1 sets its `LocationConstraint`.
    pub async fn create_bucket(&self, name: &str, region: Option<&str>) {
        match region.filter(|r| *r != "us-east-1") {
            None => {
                self.s3
                    .create_bucket()
                    .bucket(name)
                    .send()
                    .await
                    .or_panic(format!("create bucket {name}"));
            }
            Some(r) => {
                let cfg = CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(r))
                    .build();
                self.s3_client_in(r)
                    .create_bucket()
                    .bucket(name)
                    .create_bucket_configuration(cfg)
                    .send()
                    .await
                    .or_panic(format!("create bucket {name} in {r}"));
            }
        }
    }

    /// Uploads one object (STANDARD storage class).
    pub async fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        self.put_object_with_class(bucket, key, body, "STANDARD")
            .await
    }

    /// Uploads one object with a storage class such as `GLACIER` or `STANDARD_IA`.
    pub async fn put_object_with_class(&self, bucket: &str, key: &str, body: &[u8], class: &str) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .storage_class(StorageClass::from(class))
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .or_panic(format!("put s3://{bucket}/{key}"));
    }

    /// Deletes one object (no error if it does not exist).
    pub async fn delete_object(&self, bucket: &str, key: &str) {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .or_panic(format!("delete s3://{bucket}/{key}"));
    }

    /// Deletes an (empty) bucket.
    pub async fn delete_bucket(&self, bucket: &str) {
        self.s3
            .delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .or_panic(format!("delete bucket {bucket}"));
    }

    /// All keys of a bucket, in listing order.
    pub async fn list_keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.or_panic(format!("list {bucket}"));
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        keys
    }

    /// Uploads `n` small objects `<prefix>00000.txt`, `<prefix>00001.txt`, ... (body
    /// `"object <i>\n"`), at most 16 in flight. Returns the keys in order.
    pub async fn put_many(&self, bucket: &str, prefix: &str, n: usize) -> Vec<String> {
        let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{i:05}.txt")).collect();
        futures_util::stream::iter(keys.iter().enumerate())
            .map(|(i, key)| async move {
                self.put_object(bucket, key, format!("object {i}\n").as_bytes())
                    .await
            })
            .buffer_unordered(PUT_CONCURRENCY)
            .collect::<Vec<()>>()
            .await;
        keys
    }
}

/// Matches `ListObjectsV2` requests of one bucket (path style: `GET /<bucket>[/]?list-type=2&…`), for
/// [`super::Rule::when`].
pub fn is_listing_of(bucket: &str) -> impl Fn(&str, &str) -> bool + Send + Sync + 'static {
    let bucket = bucket.to_string();
    move |method, target| {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        method == "GET"
            && path.trim_end_matches('/') == format!("/{bucket}")
            && query.split('&').any(|p| p == "list-type=2")
    }
}
