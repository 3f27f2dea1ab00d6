//! GetObject as plain signed requests, the SDK kept for everything else
//! (docs/architecture.md#the-s3-source).
//!
//! The SDK spends 150–230 µs of CPU on each GetObject more than the request itself (its
//! orchestrator, interceptors, endpoint rules and type-erased config): with small files and a fast
//! store that, not the extraction, bounds a sync. So a download is a plain request: the bucket's
//! endpoint resolved once by the SDK's own rules, signed by `aws-sigv4` (the SDK's signer) with the
//! SDK's credentials, sent with reqwest, retried as the SDK would (the same attempts, statuses and
//! error codes), its errors worded as the SDK's are ([`S3Error`]).
//!
//! The SDK still does what it does better. Buckets whose endpoint its rules sign other than with
//! SigV4 for `s3` (S3 Express, multi-region access points…), FIPS or dual-stack endpoints, keys with
//! `.` or `..` segments (a URL would fold them) and anonymous access are downloaded through its
//! GetObject. So is a download answered with a redirect or an error the SDK corrects by itself
//! (wrong region, clock skew, expired token, a signature refused), or one whose connection could
//! not be made (the SDK's client may reach what this one cannot): and when the SDK then succeeds,
//! this path is turned off for the client with a warning, so a request this path gets wrong never
//! costs more than one extra request.

use super::error::S3Error;
use crate::retry::{Backoff, RetryPolicy, Verdict, transient_status};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sdk_s3::primitives::ByteStream;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_checksums::ChecksumAlgorithm;
use aws_smithy_checksums::body::validate::ChecksumBody;
use aws_smithy_checksums::http::CHECKSUM_ALGORITHMS_IN_PRIORITY_ORDER;
use aws_smithy_types::body::SdkBody;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// The credential provider is asked at most this often.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(10);

/// The credentials last given by the provider, and when it was last asked.
#[derive(Default)]
struct CredentialCache {
    current: Option<Credentials>,
    asked: Option<Instant>,
}

/// The SDK's standard retry pauses: up to 1 s × 2ⁿ, at most 20 s.
const BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(20));

/// Bytes of an error answer read for its code and message.
const ERROR_BODY_MAX: usize = 16 * 1024;

/// Error codes the SDK retries whatever the status (its throttling and transient codes).
const RETRIED_CODES: [&str; 12] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "RequestTimeout",
];

/// Error codes the SDK recovers from by itself (a region redirect, a corrected clock, new
/// credentials) or that may mean this path signed wrongly: such downloads go through the SDK.
const SDK_CODES: [&str; 8] = [
    "AuthorizationHeaderMalformed",
    "PermanentRedirect",
    "TemporaryRedirect",
    "RequestTimeTooSkewed",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "IncorrectEndpoint",
];

/// How a download went on this path.
pub enum Attempt {
    /// The object's body.
    Body(ByteStream),
    /// It failed for good, as the SDK's GetObject would have.
    Failed(S3Error),
    /// This path does not serve it: use the SDK.
    Unsupported,
    /// Answered with a redirect or an error the SDK handles itself, or no connection could be
    /// made (the SDK's client may reach what this one cannot): use the SDK. Why, for the log.
    AskSdk(String),
}

/// One request's outcome.
enum Answer {
    Body(reqwest::Response),
    Status {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    /// No answer: the error's chain, and whether no connection could be made at all.
    Transport {
        cause: String,
        connect: bool,
    },
}

impl Answer {
    /// Whether another attempt may change it, as the SDK judges: a lost connection, 5xx, 429 or
    /// a throttling or transient code. A connection that could not be made goes to the SDK.
    fn verdict(&self) -> Verdict {
        match self {
            Answer::Transport { connect: false, .. } => Verdict::Retry,
            Answer::Status { status, code, .. }
                if transient_status(*status)
                    || code.as_deref().is_some_and(|c| RETRIED_CODES.contains(&c)) =>
            {
                Verdict::Retry
            }
            _ => Verdict::Final,
        }
    }
}

/// Where a bucket's objects are, for this path.
struct Target {
    /// The URL up to the key: `https://bucket.s3.eu-west-3.amazonaws.com`,
    /// `http://127.0.0.1:9000/bucket`.
    base: String,
    /// The region the SDK's rules sign this bucket's requests for.
    signing_region: String,
}

/// Bucket → its target, `None` when the SDK's rules need the SDK. A bucket's region does not
/// change for a client (it is asked once), so the bucket alone is the key.
type Targets = HashMap<String, Option<Arc<Target>>>;

/// The direct download path of one S3 client.
pub struct Direct {
    /// Built on the first download: a metadata-only sync never pays for it (reading the system's
    /// root certificates costs tens of milliseconds of CPU). `None` if it could not be built.
    http: OnceLock<Option<reqwest::Client>>,
    /// Connect and read timeouts of `http`.
    timeouts: (Duration, Duration),
    provider: SharedCredentialsProvider,
    credentials: tokio::sync::Mutex<CredentialCache>,
    endpoint: Option<String>,
    path_style: bool,
    targets: Mutex<Targets>,
    /// Off once the SDK fetched an object this path was refused.
    on: AtomicBool,
    throttled: super::throttle::ThrottleCounter,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("on", &self.on.load(Ordering::Relaxed))
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

impl Direct {
    /// The path for a client configured with these (`attempts` counts the first); `None` (every
    /// download through the SDK) without credentials or with FIPS or dual-stack endpoints.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        endpoint: Option<String>,
        path_style: bool,
        timeouts: (Duration, Duration),
        attempts: u32,
        throttled: super::throttle::ThrottleCounter,
    ) -> Option<Direct> {
        if sdk.use_fips() == Some(true) || sdk.use_dual_stack() == Some(true) {
            return None;
        }
        let provider = sdk.credentials_provider()?;
        Some(Direct {
            http: OnceLock::new(),
            timeouts,
            provider,
            credentials: tokio::sync::Mutex::new(CredentialCache::default()),
            endpoint,
            path_style,
            targets: Mutex::new(HashMap::new()),
            on: AtomicBool::new(true),
            throttled,
            retry: RetryPolicy::new(attempts, BACKOFF),
        })
    }

    /// The HTTP client, built on first use.
    fn http(&self) -> Option<&reqwest::Client> {
        self.http
            .get_or_init(|| {
                let (connect, read) = self.timeouts;
                reqwest::Client::builder()
                    // As the SDK's client: no proxy from the environment, bodies as stored (an
                    // object stored with `Content-Encoding: gzip` is downloaded compressed).
                    .no_proxy()
                    .no_gzip()
                    .connect_timeout(connect)
                    .read_timeout(read)
                    .build()
                    .ok()
            })
            .as_ref()
    }

    /// Downloads `key` of `bucket` in `region`, with the SDK's attempts.
    pub async fn get(&self, bucket: &str, region: &str, key: &str) -> Attempt {
        if !self.on.load(Ordering::Relaxed) || has_dot_segment(key) {
            return Attempt::Unsupported;
        }
        let Some(target) = self.target(bucket, region).await else {
            return Attempt::Unsupported;
        };
        let url = format!("{}/{}?x-id=GetObject", target.base, encode_key(key));
        let started = Instant::now();
        let outcome = self
            .retry
            .run(
                None,
                |_| self.once(&url, &target.signing_region),
                |answer| answer.as_ref().map_or(Verdict::Final, Answer::verdict),
                |attempt, pause, _| {
                    tracing::debug!(bucket = %bucket, key = %key, attempt, ?pause, "retrying a download");
                },
            )
            .await;
        // Without a cancellation token the policy is never interrupted.
        let Ok(Some(answer)) = outcome else {
            return Attempt::Unsupported;
        };
        let ok = matches!(answer, Answer::Body(_));
        crate::metrics::s3_request("GetObject", started.elapsed(), ok);
        let action = || format!("downloading \"{key}\" from bucket \"{bucket}\"");
        match answer {
            Answer::Body(answer) => Attempt::Body(checked_body(answer)),
            Answer::Status { status, code, .. }
                if (300..400).contains(&status)
                    || code.as_deref().is_some_and(|c| SDK_CODES.contains(&c)) =>
            {
                Attempt::AskSdk(format!("HTTP status {status}"))
            }
            Answer::Status {
                status,
                code,
                message,
            } => Attempt::Failed(S3Error::answered(action(), status, code, message)),
            Answer::Transport {
                cause,
                connect: true,
            } => Attempt::AskSdk(cause),
            Answer::Transport { cause, .. } => {
                Attempt::Failed(S3Error::transport(action(), &cause))
            }
        }
    }

    /// One signed request; `None` when it cannot be signed (no credentials) or sent (no client).
    async fn once(&self, url: &str, region: &str) -> Option<Answer> {
        let credentials = self.credentials().await?;
        let headers = signed_headers(url, region, &credentials)?;
        let mut request = self.http()?.get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let answer = match request.send().await {
            Ok(answer) => answer,
            Err(e) => {
                return Some(Answer::Transport {
                    connect: e.is_connect(),
                    cause: super::error::source_chain(&e.without_url()),
                });
            }
        };
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            return Some(Answer::Body(answer));
        }
        if super::throttle::throttling(status) {
            self.throttled.add();
        }
        let body = error_body(answer).await;
        Some(Answer::Status {
            status,
            code: element(&body, "Code"),
            message: element(&body, "Message"),
        })
    }

    /// The SDK fetched an object this path could not (`why`): this path asks wrongly (endpoint,
    /// region, signature, clock, TLS), so it is turned off.
    pub fn sdk_succeeded_after(&self, why: &str, bucket: &str) {
        if self.on.swap(false, Ordering::Relaxed) {
            tracing::warn!(bucket = %bucket, why = %why,
                "a direct download was refused where the sdk's succeeded; downloads now go through the sdk");
        }
    }

    async fn target(&self, bucket: &str, region: &str) -> Option<Arc<Target>> {
        if let Some(known) = self.lock().get(bucket) {
            return known.clone();
        }
        let params = Params::builder()
            .bucket(bucket)
            .region(region)
            .use_fips(false)
            .use_dual_stack(false)
            .force_path_style(self.path_style)
            .accelerate(false)
            .set_endpoint(self.endpoint.clone())
            .build()
            .ok()?;
        let target = DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .ok()
            .and_then(|endpoint| target_of(&endpoint, region))
            .map(Arc::new);
        self.lock().insert(bucket.to_owned(), target.clone());
        target
    }

    /// The credentials, asked of the provider again when they are about to expire (at most once
    /// per [`ASK_AGAIN_AFTER`], so a provider that fails, say an unreachable instance metadata
    /// service, is not asked once per download); `None` when there are none still valid.
    async fn credentials(&self) -> Option<Credentials> {
        let mut cache = self.credentials.lock().await;
        let now = SystemTime::now();
        let valid_at = |c: &Credentials, at: SystemTime| c.expiry().is_none_or(|end| end > at);
        let fresh = cache
            .current
            .as_ref()
            .is_some_and(|c| valid_at(c, now + REFRESH_BEFORE_EXPIRY));
        if !fresh && cache.asked.is_none_or(|at| at.elapsed() >= ASK_AGAIN_AFTER) {
            cache.asked = Some(Instant::now());
            match self.provider.provide_credentials().await {
                Ok(credentials) => cache.current = Some(credentials),
                Err(e) => tracing::debug!(error = %e, "no credentials for direct downloads"),
            }
        }
        cache.current.clone().filter(|c| valid_at(c, now))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Targets> {
        // A cache: a panic elsewhere cannot leave it inconsistent.
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The answer's body, checked against the checksum S3 sent with it as the SDK checks it: the
/// first of CRC64NVME, CRC32C, CRC32, SHA-1, SHA-256 present, unless it is the checksum of a
/// multipart object's parts (`…-3`), which no reader can check. A body that does not match fails
/// at its end, so its text is never indexed.
fn checked_body(answer: reqwest::Response) -> ByteStream {
    let checksum = CHECKSUM_ALGORITHMS_IN_PRIORITY_ORDER
        .iter()
        .filter_map(|name| name.parse::<ChecksumAlgorithm>().ok())
        .find_map(|algorithm| {
            let sent = answer
                .headers()
                .get(algorithm.into_impl().header_name())?
                .to_str()
                .ok()?;
            if is_part_level(sent) {
                return None;
            }
            let sent = aws_smithy_types::base64::decode(sent).ok()?;
            Some((algorithm, bytes::Bytes::from(sent)))
        });
    let body = SdkBody::from_body_1_x(http::Response::from(answer).into_body());
    match checksum {
        Some((algorithm, sent)) => {
            ByteStream::from_body_1_x(ChecksumBody::new(body, algorithm.into_impl(), sent))
        }
        None => ByteStream::new(body),
    }
}

/// Whether a checksum is of a multipart object's parts: base64 then `-` and the number of parts.
fn is_part_level(checksum: &str) -> bool {
    checksum
        .rsplit_once('-')
        .is_some_and(|(_, parts)| !parts.is_empty() && parts.bytes().all(|b| b.is_ascii_digit()))
}

/// The start of an error answer's body (S3 sends an `<Error>` document of a few hundred bytes).
async fn error_body(mut answer: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_MAX {
        match answer.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_MAX);
    String::from_utf8_lossy(&body).into_owned()
}

/// The text of the first `<name>` element of an error document, unescaped.
fn element(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let len = body[start..].find(&format!("</{name}>"))?;
    let raw = &body[start..start + len];
    Some(quick_xml::escape::unescape(raw).map_or_else(|_| raw.to_owned(), |t| t.into_owned()))
}

/// The bucket's target from the endpoint the SDK's rules chose, when they add no header and sign
/// it with plain SigV4 for `s3` and single URI encoding.
fn target_of(endpoint: &aws_smithy_types::endpoint::Endpoint, region: &str) -> Option<Target> {
    use aws_smithy_types::Document;
    let scheme = endpoint.auth_schemes().first()?;
    let text = |name: &str| match scheme.get(name) {
        Some(Document::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let single_encoding = matches!(
        scheme.get("disableDoubleEncoding"),
        Some(Document::Bool(true))
    );
    if scheme.name() != "sigv4"
        || text("signingName") != Some("s3")
        || !single_encoding
        || endpoint.headers().next().is_some()
    {
        return None;
    }
    Some(Target {
        base: endpoint.url().trim_end_matches('/').to_owned(),
        signing_region: text("signingRegion").unwrap_or(region).to_owned(),
    })
}

/// Asks S3 for the object's checksum with its body (signed, as every `x-amz-` header must be).
const CHECKSUM_MODE: (&str, &str) = ("x-amz-checksum-mode", "ENABLED");

/// The headers of a GET of `url` signed as the SDK signs S3 requests (SigV4, the URI encoded once
/// and not normalized, `x-amz-content-sha256` of the empty body, the session token when there is
/// one), with [`CHECKSUM_MODE`].
fn signed_headers(
    url: &str,
    region: &str,
    credentials: &Credentials,
) -> Option<Vec<(&'static str, String)>> {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .ok()?
        .into();
    let asked = [(CHECKSUM_MODE.0, CHECKSUM_MODE.1)];
    let request =
        SignableRequest::new("GET", url, asked.into_iter(), SignableBody::Bytes(&[])).ok()?;
    let (instructions, _) = sign(request, &params).ok()?.into_parts();
    let (headers, _) = instructions.into_parts();
    let mut headers: Vec<(&'static str, String)> = headers
        .into_iter()
        .map(|h| (h.name(), h.value().to_owned()))
        .collect();
    headers.push((CHECKSUM_MODE.0, CHECKSUM_MODE.1.to_owned()));
    Some(headers)
}

/// A key as the path of its URL, as the SDK writes it: every byte but `A-Z a-z 0-9 - . _ ~ /`
/// percent-encoded.
fn encode_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(key.len() + key.len() / 2);
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// Whether a URL would fold a segment of the key (`a/../b` is `b` to a URL, not to S3).
fn has_dot_segment(key: &str) -> bool {
    key.split('/').any(|s| s == "." || s == "..")
}

#[cfg(test)]
#[path = "download_tests.rs"]
mod tests;
