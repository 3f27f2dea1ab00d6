use super::*;

#[test]
fn keys_are_encoded_as_the_sdk_writes_them() {
    assert_eq!(encode_key("folder/a b+c&d.txt"), "folder/a%20b%2Bc%26d.txt");
    assert_eq!(
        encode_key("unicodé/文件"),
        "unicod%C3%A9/%E6%96%87%E4%BB%B6"
    );
    assert_eq!(
        encode_key("percent%20literal~_-.x"),
        "percent%2520literal~_-.x"
    );
    assert_eq!(encode_key("a//b/"), "a//b/");
}

#[test]
fn dot_segments_are_left_to_the_sdk() {
    assert!(has_dot_segment("a/../b") && has_dot_segment("./a") && has_dot_segment("a/."));
    assert!(!has_dot_segment("a/.b/c..d/...") && !has_dot_segment("a.txt"));
}

#[test]
fn error_documents_give_their_code_and_message() {
    let body = "<?xml version=\"1.0\"?>\n<Error><Code>NoSuchKey</Code><Message>The key &quot;a&amp;b&quot; \
                does not exist</Message></Error>";
    assert_eq!(element(body, "Code").as_deref(), Some("NoSuchKey"));
    assert_eq!(
        element(body, "Message").as_deref(),
        Some("The key \"a&b\" does not exist")
    );
    assert_eq!(element("<html>busy</html>", "Code"), None);
    let err = S3Error::answered("downloading \"a\"", 404, element(body, "Code"), None);
    assert_eq!(err.to_string(), "downloading \"a\" failed: NoSuchKey");
    let err = S3Error::answered("downloading \"a\"", 502, None, None);
    assert_eq!(err.to_string(), "downloading \"a\" failed: HTTP status 502");
}

#[test]
fn only_endpoints_signed_with_plain_sigv4_for_s3_are_served() {
    use aws_smithy_types::endpoint::{Endpoint, EndpointAuthScheme};
    let scheme = |name: &str, signing: &str| {
        EndpointAuthScheme::with_capacity(name.to_owned(), 3)
            .put("signingName", signing.to_owned())
            .put("signingRegion", "eu-west-3".to_owned())
            .put("disableDoubleEncoding", true)
    };
    let plain = Endpoint::builder()
        .url("https://b.s3.eu-west-3.amazonaws.com/")
        .auth_scheme(scheme("sigv4", "s3"))
        .build();
    let target = target_of(&plain, "us-east-1").expect("served");
    assert_eq!(target.base, "https://b.s3.eu-west-3.amazonaws.com");
    assert_eq!(target.signing_region, "eu-west-3");

    let express = Endpoint::builder()
        .url("https://b--euw3-az1--x-s3.s3express-euw3-az1.eu-west-3.amazonaws.com")
        .auth_scheme(scheme("sigv4-s3express", "s3express"))
        .build();
    let with_header = Endpoint::builder()
        .url("https://b.s3.eu-west-3.amazonaws.com")
        .header("x-amz-extra", "1")
        .auth_scheme(scheme("sigv4", "s3"))
        .build();
    let unsigned = Endpoint::builder()
        .url("https://b.s3.eu-west-3.amazonaws.com")
        .build();
    for endpoint in [express, with_header, unsigned] {
        assert!(target_of(&endpoint, "eu-west-3").is_none(), "{endpoint:?}");
    }
}

#[test]
fn part_level_checksums_are_told_apart() {
    assert!(is_part_level("vLhrxA==-3") && is_part_level("AAAAAAAAAAA=-12"));
    assert!(!is_part_level("vLhrxA==") && !is_part_level("a-b") && !is_part_level("x-"));
}

/// Counts the calls of a provider that answers `credentials` (an error when `None`).
#[derive(Debug)]
struct Counting {
    calls: Arc<std::sync::atomic::AtomicUsize>,
    credentials: Option<Credentials>,
}

impl ProvideCredentials for Counting {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let answer = self.credentials.clone().ok_or_else(|| {
            aws_credential_types::provider::error::CredentialsError::not_loaded("none here")
        });
        aws_credential_types::provider::future::ProvideCredentials::ready(answer)
    }
}

/// A direct path whose provider answers `credentials`, and the count of its calls.
fn direct_with(credentials: Option<Credentials>) -> (Direct, Arc<std::sync::atomic::AtomicUsize>) {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let provider = Counting {
        calls: calls.clone(),
        credentials,
    };
    let sdk = aws_config::SdkConfig::builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build();
    let timeouts = (Duration::from_secs(1), Duration::from_secs(1));
    let direct = Direct::new(&sdk, None, false, timeouts, 1, Default::default()).unwrap();
    (direct, calls)
}

#[tokio::test]
async fn the_credential_provider_is_not_asked_once_per_download() {
    let calls = |c: &std::sync::atomic::AtomicUsize| c.load(Ordering::Relaxed);
    // Failing (no credentials anywhere): asked once, then left alone for a while.
    let (direct, provider) = direct_with(None);
    for _ in 0..3 {
        assert!(direct.credentials().await.is_none());
    }
    assert_eq!(calls(&provider), 1);

    // Long-lived: asked once.
    let key = Credentials::new("id", "secret", None, None, "test");
    let (direct, provider) = direct_with(Some(key.clone()));
    for _ in 0..3 {
        assert_eq!(direct.credentials().await.unwrap().access_key_id(), "id");
    }
    assert_eq!(calls(&provider), 1);

    // About to expire (the provider keeps giving the same): still used while valid, and the
    // provider asked once, not on every download.
    let soon = SystemTime::now() + Duration::from_secs(60);
    let expiring = Credentials::new("id", "secret", Some("token".into()), Some(soon), "test");
    let (direct, provider) = direct_with(Some(expiring));
    for _ in 0..3 {
        assert!(direct.credentials().await.is_some());
    }
    assert_eq!(calls(&provider), 1);

    // Expired: never used.
    let past = SystemTime::now() - Duration::from_secs(1);
    let expired = Credentials::new("id", "secret", None, Some(past), "test");
    let (direct, _) = direct_with(Some(expired));
    assert!(direct.credentials().await.is_none());
}
