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
