use super::*;
use crate::source::s3::{BucketLister, S3Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer in S3's own form: namespace, escaped ETags, owners, fields we do not read (some nested),
/// URL-encoded keys.
const S3_PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>3</KeyCount><MaxKeys>3</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><Contents><Key>dir/a%20b+c%2Bd%E6%96%87.txt</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified><ETag>&quot;0f343b0931126a20f133d67c2b018a3b&quot;</ETag><ChecksumAlgorithm>CRC32</ChecksumAlgorithm><Size>12</Size><Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>web&amp;file</DisplayName></Owner><StorageClass>GLACIER</StorageClass><RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress><RestoreExpiryDate>2024-01-09T00:00:00.000Z</RestoreExpiryDate></RestoreStatus></Contents><Contents><Key>e%CC%81t%C3%A9</Key><LastModified>2025-06-30T23:59:59.123456Z</LastModified><ETag>"plain"</ETag><Size>0</Size><Owner><ID>abc</ID></Owner><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>z</Key><LastModified>2025-01-01T00:00:00Z</LastModified><Size>9007199254740993</Size><Owner/></Contents><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>"#;

/// Moto's form: indented, no encoding type (keys as they are), no owner, last page.
const MOTO_PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name>
  <Prefix></Prefix>
  <MaxKeys>1000</MaxKeys>
  <KeyCount>1</KeyCount>
  <IsTruncated>false</IsTruncated>
  <Contents>
    <Key>a &lt;b&gt; &#233;.txt</Key>
    <LastModified>2026-11-30T11:22:46.000Z</LastModified>
    <ETag>&#34;x&#34;</ETag>
    <Size>5</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
</ListBucketResult>
"#;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn an_s3_page_decodes_every_field_we_index() {
    let listed = decode(S3_PAGE.as_bytes(), "b").expect("a listing");
    assert_eq!(listed.truncated, Some(true));
    assert_eq!(
        listed.next_token.as_deref(),
        Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
    );
    let keys: Vec<&str> = listed.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["dir/a b c+d文.txt", "e\u{301}té", "z"]);
    let first = &listed.objects[0];
    assert_eq!(first.bucket, "b");
    assert_eq!(first.size, 12);
    assert_eq!(first.last_modified, at("2024-01-02T03:04:05Z"));
    assert_eq!(
        first.etag.as_deref(),
        Some("\"0f343b0931126a20f133d67c2b018a3b\"")
    );
    assert_eq!(first.owner, OwnerField::DisplayName("web&file".into()));
    assert_eq!(first.storage_class.as_deref(), Some("GLACIER"));
    let second = &listed.objects[1];
    assert_eq!(second.owner, OwnerField::NoDisplayName);
    assert_eq!(second.last_modified, at("2025-06-30T23:59:59.123456Z"));
    assert_eq!(second.size, 0);
    let third = &listed.objects[2];
    assert_eq!(third.owner, OwnerField::NoDisplayName, "<Owner/>");
    assert_eq!(third.size, 9_007_199_254_740_993);
    assert_eq!(
        (third.etag.as_ref(), third.storage_class.as_ref()),
        (None, None)
    );
}

#[test]
fn a_moto_page_decodes_with_its_keys_as_they_are() {
    let listed = decode(MOTO_PAGE.as_bytes(), "b").expect("a listing");
    assert_eq!((listed.truncated, listed.next_token), (Some(false), None));
    let [o] = listed.objects.as_slice() else {
        panic!("{:?}", listed.objects)
    };
    assert_eq!(o.key, "a <b> é.txt");
    assert_eq!(o.etag.as_deref(), Some("\"x\""));
    assert_eq!(o.owner, OwnerField::Absent);
    assert_eq!(o.size, 5);
}

#[test]
fn what_the_decoder_does_not_understand_is_left_to_the_sdk() {
    let with = |from: &str, to: &str| {
        assert!(S3_PAGE.contains(from), "{from}");
        S3_PAGE.replacen(from, to, 1)
    };
    let not_ours = [
        "<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>x</Message></Error>"
            .to_string(),
        with("<Size>12</Size>", "<Size>twelve</Size>"),
        with("2024-01-02T03:04:05.000Z", "2024-01-02T03:04:05+01:00"),
        with("2024-01-02T03:04:05.000Z", "Tue, 02 Jan 2024 03:04:05 GMT"),
        with(
            "<IsTruncated>true</IsTruncated>",
            "<IsTruncated>yes</IsTruncated>",
        ),
        with("&amp;file", "&nbsp;file"),
        with("</ListBucketResult>", ""),
        with("</Key>", "</Kex>"),
        String::new(),
    ];
    for body in &not_ours {
        assert_eq!(decode(body.as_bytes(), "b"), None, "{body}");
    }
    assert!(decode(&[0xff, 0xfe], "b").is_none());
}

/// Serves `body` with status `status` to every request, as an S3 endpoint would.
async fn serve(status: u16, body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

async fn client(endpoint: String) -> S3Client {
    S3Client::new(&crate::source::s3::live_tests::local_settings(endpoint))
        .await
        .unwrap()
}

/// The page the lister returns (our decoder) equals the SDK's own decoding of the same answer.
async fn both_ways(body: &'static str) -> (Vec<S3Object>, Listed) {
    let s3 = client(serve(200, body).await).await;
    let mut lister = BucketLister::new(s3.client().clone(), "b", None, None, 3);
    let ours = lister.next_page().await.unwrap().unwrap_or_default();
    let out = s3
        .client()
        .list_objects_v2()
        .bucket("b")
        .send()
        .await
        .unwrap();
    (ours, Listed::from_sdk(&out, "b"))
}

#[tokio::test]
async fn the_lister_gives_what_the_sdk_decodes() {
    for body in [S3_PAGE, MOTO_PAGE] {
        let (ours, sdk) = both_ways(body).await;
        assert!(!ours.is_empty());
        assert_eq!(ours, sdk.objects, "{body}");
    }
}

#[tokio::test]
async fn an_answer_left_to_the_sdk_lists_as_before() {
    // A date form the decoder does not take: the SDK decodes the page.
    const OFFSET: &str = r#"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key><LastModified>2024-01-02T04:04:05+01:00</LastModified><Size>1</Size></Contents></ListBucketResult>"#;
    assert_eq!(decode(OFFSET.as_bytes(), "b"), None);
    let (ours, sdk) = both_ways(OFFSET).await;
    assert_eq!(ours, sdk.objects);
    assert_eq!(ours[0].last_modified, at("2024-01-02T03:04:05Z"));
}

#[tokio::test]
async fn an_error_sent_with_200_still_fails_the_listing() {
    const ERROR: &str = "<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>";
    let s3 = client(serve(200, ERROR).await).await;
    let mut lister = BucketLister::new(s3.client().clone(), "b", None, None, 3);
    let err = lister.next_page().await.expect_err("an error answer");
    assert!(err.to_string().contains("InternalError"), "{err}");
}
