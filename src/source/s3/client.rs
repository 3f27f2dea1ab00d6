//! The S3 client: configuration (docs/architecture.md#the-s3-source), per-region clients, ping, bucket resolution, listing and download.

use super::download::{Attempt, Direct};
use super::endpoint::{is_local_or_ip, redact_userinfo};
use super::error::S3Error;
use super::listing::BucketLister;
use super::paging::{PageView, Paging};
use super::settings::S3Settings;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Region used when neither the settings nor the AWS default chain give one.
const FALLBACK_REGION: &str = "us-east-1";

/// Access to the configured S3 (or S3-compatible) service.
///
/// Holds a default client plus one client per bucket region, created on first use (docs/architecture.md#the-s3-source).
#[derive(Debug)]
pub struct S3Client {
    default: Client,
    /// Throttling answers received by this client and its regional ones.
    throttled: super::throttle::ThrottleCounter,
    default_region: String,
    custom_endpoint: bool,
    buckets: Vec<String>,
    page_size: i32,
    cache: Mutex<ClientCache>,
    /// Downloads as plain signed requests (`download.rs`); `None`: all through the SDK.
    direct: Option<Direct>,
}

#[derive(Debug, Default)]
struct ClientCache {
    /// Region → client.
    by_region: HashMap<String, Client>,
    /// Bucket → region (`None`: use the default client).
    bucket_region: HashMap<String, Option<String>>,
}

impl S3Client {
    /// Builds the default client from the settings:
    /// * credentials: static key id + secret (+ session token) when set, else the AWS default chain;
    /// * region: `region` setting, else `AWS_REGION`/`AWS_DEFAULT_REGION` or the profile, else `us-east-1`;
    /// * endpoint: see [`S3Settings::resolve_endpoint`]. Path-style addressing is used when
    ///   `force_path_style` is on, and automatically for a custom endpoint whose host is `localhost` or an
    ///   IP address (virtual-host style cannot work there: `bucket.localhost` does not resolve);
    /// * timeouts: `connect_timeout` and `read_timeout`; retries: standard mode with `max_attempts` retries
    ///   after the first attempt (Elastic's botocore meaning of the setting).
    pub async fn new(settings: &S3Settings) -> Result<S3Client, S3Error> {
        let endpoint = settings.resolve_endpoint();
        if let Some(url) = &endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(S3Error::Config(format!(
                "endpoint URL {:?} must start with http:// or https://",
                redact_userinfo(url)
            )));
        }

        // Region: the setting, else AWS_REGION / the profile file, else us-east-1. Not the instance
        // metadata service: buckets carry their own region (GetBucketLocation), and asking IMDS on every
        // connector check would stall or spam logs off EC2.
        let region = RegionProviderChain::first_try(settings.region.clone().map(Region::new))
            .or_else(aws_config::environment::region::EnvironmentVariableRegionProvider::new())
            .or_else(aws_config::profile::ProfileFileRegionProvider::builder().build())
            .or_else(Region::from_static(FALLBACK_REGION));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .read_timeout(Duration::from_secs(settings.read_timeout_secs))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .timeout_config(timeouts)
            .retry_config(
                RetryConfig::standard().with_max_attempts(settings.max_attempts.saturating_add(1)),
            );
        if let (Some(key_id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key)
        {
            let token = settings
                .session_token
                .as_ref()
                .map(|t| t.expose().to_owned());
            loader = loader.credentials_provider(Credentials::new(
                key_id,
                secret.expose(),
                token,
                None,
                "content-sync-configuration",
            ));
        }
        if let Some(url) = &endpoint {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;

        let path_style =
            settings.force_path_style || endpoint.as_deref().is_some_and(is_local_or_ip);
        let throttled = super::throttle::ThrottleCounter::default();
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .interceptor(crate::metrics::S3Interceptor)
            .interceptor(throttled.clone())
            .build();
        let direct = Direct::new(
            &sdk,
            endpoint.clone(),
            path_style,
            (
                Duration::from_secs(settings.connect_timeout_secs),
                Duration::from_secs(settings.read_timeout_secs),
            ),
            settings.max_attempts.saturating_add(1),
            throttled.clone(),
        );
        let default_region = config
            .region()
            .map_or_else(|| FALLBACK_REGION.to_owned(), |r| r.to_string());
        tracing::debug!(
            region = %default_region,
            endpoint = %endpoint.as_deref().map_or_else(|| "aws".into(), redact_userinfo),
            path_style,
            static_credentials = settings.access_key_id.is_some(),
            "s3 client configured"
        );
        Ok(S3Client {
            default: Client::from_conf(config),
            throttled,
            default_region,
            custom_endpoint: endpoint.is_some(),
            buckets: settings.buckets.clone(),
            page_size: settings.page_size,
            cache: Mutex::new(ClientCache::default()),
            direct,
        })
    }

    /// The default client (no bucket-specific region), e.g. for test fixtures.
    pub fn client(&self) -> &Client {
        &self.default
    }

    /// Throttling answers (503 `SlowDown`, 429) received so far, the SDK's retried attempts included.
    pub fn throttled(&self) -> u64 {
        self.throttled.get()
    }

    /// The region of the default client.
    pub fn default_region(&self) -> &str {
        &self.default_region
    }

    /// Connectivity check: ListBuckets with the default client (docs/architecture.md#the-s3-source).
    pub async fn ping(&self) -> Result<(), S3Error> {
        self.default
            .list_buckets()
            .send()
            .await
            .map_err(|e| S3Error::from_sdk("listing buckets", e))?;
        tracing::debug!("successfully connected to s3");
        Ok(())
    }

    /// The buckets to sync: the `buckets` setting, or every bucket (ListBuckets order) when it is exactly
    /// `["*"]`. A `*` among other names is a literal bucket name.
    pub async fn resolve_buckets(&self) -> Result<Vec<String>, S3Error> {
        if self.buckets != ["*"] {
            return Ok(self.buckets.clone());
        }
        let mut names: Vec<String> = Vec::new();
        let mut paging = Paging::new(None);
        while !paging.is_done() {
            let out = self
                .default
                .list_buckets()
                .set_continuation_token(paging.token().map(str::to_owned))
                .send()
                .await
                .map_err(|e| S3Error::from_sdk("listing buckets", e))?;
            let page: Vec<String> = out
                .buckets()
                .iter()
                .filter_map(|b| b.name().map(str::to_owned))
                .collect();
            // ListBuckets has no IsTruncated: a continuation token is the only sign that more follows.
            paging
                .advance(PageView {
                    first: page.first().map(String::as_str),
                    last: page.last().map(String::as_str),
                    truncated: out.continuation_token().is_some(),
                    next_token: out.continuation_token(),
                })
                .map_err(|cause| S3Error::Paging {
                    action: "listing buckets".into(),
                    cause,
                })?;
            names.extend(page);
        }
        Ok(names)
    }

    /// The client for `bucket`'s region, from GetBucketLocation (cached per bucket and per region).
    ///
    /// An empty location means `us-east-1` (with a custom endpoint: the default client's region); the legacy
    /// `EU` means `eu-west-1`. If S3 refuses to tell the location (a service error such as AccessDenied),
    /// a warning is logged and the default client is used; transport errors are returned.
    pub async fn client_for_bucket(&self, bucket: &str) -> Result<Client, S3Error> {
        let region = self.bucket_region(bucket).await?;
        let Some(region) = region.filter(|r| *r != self.default_region) else {
            return Ok(self.default.clone());
        };
        let mut cache = self.lock();
        let client = cache.by_region.entry(region.clone()).or_insert_with(|| {
            tracing::debug!(bucket = %bucket, region = %region, "creating a regional s3 client");
            Client::from_conf(
                self.default
                    .config()
                    .to_builder()
                    .region(Region::new(region))
                    .build(),
            )
        });
        Ok(client.clone())
    }

    /// The region of `bucket` (`None`: the default client's), asked once per bucket.
    async fn bucket_region(&self, bucket: &str) -> Result<Option<String>, S3Error> {
        if let Some(region) = self.lock().bucket_region.get(bucket) {
            return Ok(region.clone());
        }
        let region = self.fetch_bucket_region(bucket).await?;
        self.lock()
            .bucket_region
            .insert(bucket.to_owned(), region.clone());
        Ok(region)
    }

    async fn fetch_bucket_region(&self, bucket: &str) -> Result<Option<String>, S3Error> {
        match self
            .default
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => {
                let location = out.location_constraint().map(|c| c.as_str());
                Ok(region_from_location(location, self.custom_endpoint))
            }
            Err(err @ SdkError::ServiceError(_)) => {
                let err =
                    S3Error::from_sdk(format!("fetching the region of bucket \"{bucket}\""), err);
                tracing::warn!(bucket = %bucket, error = %err, "unable to fetch the region for bucket");
                Ok(None)
            }
            Err(err) => Err(S3Error::from_sdk(
                format!("fetching the region of bucket \"{bucket}\""),
                err,
            )),
        }
    }

    /// A lister over `bucket` (optionally under `prefix`, optionally after key `start_after`), using the
    /// bucket's regional client and `page_size` keys per request.
    pub async fn lister(
        &self,
        bucket: &str,
        prefix: Option<String>,
        start_after: Option<String>,
    ) -> Result<BucketLister, S3Error> {
        let client = self.client_for_bucket(bucket).await?;
        Ok(BucketLister::new(
            client,
            bucket,
            prefix,
            start_after,
            self.page_size,
        ))
    }

    /// The first key of `bucket` under `prefix` after `after` (ListObjectsV2 with one key), or `None`.
    pub async fn first_key(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
    ) -> Result<Option<String>, S3Error> {
        let client = self.client_for_bucket(bucket).await?;
        super::listing::first_key(&client, bucket, prefix, after).await
    }

    /// Starts downloading an object (GetObject in the bucket's region); read the body from the
    /// returned stream. Plain signed requests (`download.rs`); what that path leaves to the SDK goes
    /// through the SDK's GetObject.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<ByteStream, S3Error> {
        let Some(direct) = &self.direct else {
            return self.sdk_get_object(bucket, key).await;
        };
        let region = self.bucket_region(bucket).await?;
        let region = region.as_deref().unwrap_or(&self.default_region);
        match direct.get(bucket, region, key).await {
            Attempt::Body(body) => Ok(body),
            Attempt::Failed(err) => Err(err),
            Attempt::Unsupported => self.sdk_get_object(bucket, key).await,
            Attempt::AskSdk(why) => {
                let body = self.sdk_get_object(bucket, key).await?;
                direct.sdk_succeeded_after(&why, bucket);
                Ok(body)
            }
        }
    }

    /// GetObject through the SDK, with the bucket's regional client.
    async fn sdk_get_object(&self, bucket: &str, key: &str) -> Result<ByteStream, S3Error> {
        let client = self.client_for_bucket(bucket).await?;
        let out = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                S3Error::from_sdk(format!("downloading \"{key}\" from bucket \"{bucket}\""), e)
            })?;
        Ok(out.body)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientCache> {
        // The cache holds no invariant a panic could break, so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Maps a GetBucketLocation answer to a region; `None` means "use the default client".
fn region_from_location(location: Option<&str>, custom_endpoint: bool) -> Option<String> {
    match location.unwrap_or_default() {
        "" if custom_endpoint => None,
        "" => Some(FALLBACK_REGION.to_owned()),
        // Legacy constraint of the first EU region (Elastic used it verbatim, docs/architecture.md#the-s3-source).
        "EU" => Some("eu-west-1".to_owned()),
        region => Some(region.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_location_to_region() {
        assert_eq!(
            region_from_location(None, false).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            region_from_location(Some(""), false).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(region_from_location(None, true), None);
        assert_eq!(
            region_from_location(Some("EU"), false).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_from_location(Some("us-west-2"), true).as_deref(),
            Some("us-west-2")
        );
    }

    #[tokio::test]
    async fn builds_without_network_and_hides_secrets() {
        let settings = S3Settings {
            access_key_id: Some("AKID".into()),
            secret_access_key: Some(crate::config::Secret::new("very-secret")),
            session_token: Some(crate::config::Secret::new("tok-secret")),
            region: Some("eu-west-3".into()),
            endpoint_url: Some("http://localhost:1".into()),
            ..S3Settings::default()
        };
        let source = S3Client::new(&settings).await.unwrap();
        assert_eq!(source.default_region(), "eu-west-3");
        let debug = format!("{source:?}");
        assert!(!debug.contains("very-secret") && !debug.contains("tok-secret"));

        let bad = S3Settings {
            endpoint_url: Some("minio:9000".into()),
            ..settings
        };
        assert_eq!(
            S3Client::new(&bad).await.unwrap_err().to_string(),
            "invalid S3 configuration: endpoint URL \"minio:9000\" must start with http:// or https://"
        );
    }
}
