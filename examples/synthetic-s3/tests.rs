//! The server through the AWS SDK the service uses: if the SDK reads our answers as S3's, so will
//! the service.

use super::*;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use md5::Digest;

async fn start() -> Client {
    start_with(&[]).await
}

/// The server with the buckets `b-2500` and `a-1` and `extra` arguments, and a client of it.
async fn start_with(extra: &[&str]) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let args = ["synthetic-s3", "--bucket", "b-2500", "--bucket", "a-1"];
    let args = Args::parse_from(args.iter().chain(extra));
    let server = Arc::new(Server::new(args).unwrap());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let server = server.clone();
            tokio::spawn(async move {
                http::serve(stream, 0, |r| std::future::ready(route(&server, &r))).await
            });
        }
    });
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("any", "thing", None, None, "test"))
        .endpoint_url(format!("http://{addr}"))
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

#[tokio::test]
async fn the_sdk_pages_through_a_bucket() {
    let s3 = start().await;
    let mut pages = s3
        .list_objects_v2()
        .bucket("b-2500")
        .max_keys(700)
        .fetch_owner(true)
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .into_paginator()
        .send();
    let (mut keys, mut sizes, mut truncated) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        truncated.push((page.key_count(), page.is_truncated()));
        for o in page.contents() {
            keys.push(o.key().unwrap().to_owned());
            sizes.push(o.size().unwrap());
            assert_eq!(o.owner().and_then(|o| o.display_name()), Some("synthetic"));
        }
    }
    assert_eq!(
        truncated,
        [
            (Some(700), Some(true)),
            (Some(700), Some(true)),
            (Some(700), Some(true)),
            (Some(400), Some(false))
        ]
    );
    let b = Bucket::parse("b-2500", None).unwrap();
    assert_eq!(keys, (0..2500).map(|i| b.key(i)).collect::<Vec<_>>());
    assert!(sizes.iter().all(|s| *s as u64 == b.size(0)));

    let after = s3
        .list_objects_v2()
        .bucket("b-2500")
        .prefix("0002000/")
        .start_after("0002000/0002497.dat")
        .send()
        .await;
    // The width of 2 499 is 4 digits: that prefix matches nothing.
    assert_eq!(after.unwrap().key_count(), Some(0));
    let tail = s3
        .list_objects_v2()
        .bucket("b-2500")
        .prefix("2000/")
        .start_after("2000/2497.dat")
        .send()
        .await
        .unwrap();
    let tail: Vec<&str> = tail.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(tail, ["2000/2498.dat", "2000/2499.dat"]);
}

#[tokio::test]
async fn buckets_and_objects_answer_like_s3() {
    let s3 = start().await;
    let buckets = s3.list_buckets().send().await.unwrap();
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["a-1", "b-2500"]);
    s3.head_bucket().bucket("unlisted-5").send().await.unwrap();
    assert!(s3.head_bucket().bucket("no-count").send().await.is_err());
    let location = s3
        .get_bucket_location()
        .bucket("b-2500")
        .send()
        .await
        .unwrap();
    // An empty constraint (us-east-1), as the service reads it.
    assert_eq!(
        location.location_constraint().map_or("", |c| c.as_str()),
        ""
    );

    let head = s3
        .head_object()
        .bucket("b-2500")
        .key("1000/1234.dat")
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("b-2500")
        .key("1000/1234.dat")
        .send()
        .await
        .unwrap();
    assert_eq!(head.e_tag(), got.e_tag());
    assert_eq!(head.last_modified(), got.last_modified());
    assert_eq!(head.content_length(), got.content_length());
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(
        body.as_ref(),
        b"synthetic object 1000/1234.dat of bucket b-2500\n"
    );
    let part = s3
        .get_object()
        .bucket("b-2500")
        .key("1000/1234.dat")
        .range("bytes=10-15")
        .send()
        .await
        .unwrap();
    assert_eq!(part.content_range(), Some("bytes 10-15/48"));
    assert_eq!(
        part.body.collect().await.unwrap().into_bytes().as_ref(),
        b"object"
    );
    let missing = s3
        .get_object()
        .bucket("b-2500")
        .key("1000/2500.dat")
        .send()
        .await;
    assert!(missing.unwrap_err().into_service_error().is_no_such_key());
}

#[tokio::test]
async fn a_corpus_bucket_serves_the_files_with_their_sizes_and_etags() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let s3 = start_with(&["--corpus", dir, "--exclude", "expected.json"]).await;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "expected.json")
        .collect();
    names.sort();
    let mut pages = s3
        .list_objects_v2()
        .bucket("mixed-100")
        .into_paginator()
        .send();
    let mut listed = Vec::new();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            listed.push((
                o.key().unwrap().to_owned(),
                o.size().unwrap(),
                o.e_tag().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(listed.len(), 100);
    for (i, (key, size, etag)) in listed.iter().enumerate() {
        let name = &names[i % names.len()];
        assert_eq!(key, &format!("00/{i:02}-{name}"));
        let file = std::fs::read(format!("{dir}/{name}")).unwrap();
        assert_eq!(*size as usize, file.len(), "{key}");
        let got = s3
            .get_object()
            .bucket("mixed-100")
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(got.e_tag(), Some(etag.as_str()), "{key}");
        assert_eq!(got.content_length(), Some(*size), "{key}");
        let body = got.body.collect().await.unwrap().into_bytes();
        assert!(body.as_ref() == file.as_slice(), "{key}: the file's bytes");
        let md5: String = md5::Md5::digest(&file)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(etag, &format!("\"{md5}\""), "{key}: S3's ETag of the bytes");
    }
    // A range of a corpus object is that range of the file.
    let (key, size, _) = &listed[names.iter().position(|n| n == "sample.pdf").unwrap()];
    let file = std::fs::read(format!("{dir}/sample.pdf")).unwrap();
    let part = s3
        .get_object()
        .bucket("mixed-100")
        .key(key)
        .range("bytes=100-299")
        .send()
        .await
        .unwrap();
    assert_eq!(
        part.content_range(),
        Some(format!("bytes 100-299/{size}").as_str())
    );
    let part = part.body.collect().await.unwrap().into_bytes();
    assert!(part.as_ref() == &file[100..300]);
}

#[test]
fn ranges() {
    assert_eq!(parse_range("bytes=0-0", 10), Some((0, 0)));
    assert_eq!(parse_range("bytes=5-", 10), Some((5, 9)));
    assert_eq!(parse_range("bytes=-3", 10), Some((7, 9)));
    assert_eq!(parse_range("bytes=8-100", 10), Some((8, 9)));
    assert_eq!(parse_range("bytes=10-", 10), None);
    assert_eq!(parse_range("bytes=3-2", 10), None);
    assert_eq!(parse_range("items=1-2", 10), None);
}
