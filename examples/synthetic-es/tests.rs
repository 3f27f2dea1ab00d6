//! The front's parsing and paging, and the documents it serves checked against the service's own
//! functions (ids, timestamps), so that an incremental sync of the synthetic bucket skips every object.

use super::*;
use content_sync::source::s3::{document_id, iso_timestamp};
use serde_json::{Value, json};

fn world(objects: u64, stale: u64) -> SyntheticIndex {
    SyntheticIndex::new(
        "content",
        Bucket::parse(&format!("scale-{objects}"), None).unwrap(),
        stale,
    )
}

fn key(ix: &SyntheticIndex, p: u64) -> String {
    let mut k = String::new();
    ix.write_key(p, &mut k);
    k
}

fn stats(ix: &SyntheticIndex) -> Value {
    serde_json::from_str(&ix.stats_json()).unwrap()
}

#[test]
fn documents_are_what_a_sync_of_the_bucket_wrote() {
    let ix = world(2_500, 30);
    assert_eq!(ix.total(), 2_530);
    for p in [0, 1, 999, 2_499] {
        let k = key(&ix, p);
        assert_eq!(k, ix.bucket.key(p));
        assert_eq!(ix.id(p), document_id("scale-2500", &k));
        let mut src = String::new();
        ix.write_source(p, &ix.id(p), index::ALL_FIELDS, &mut src);
        let src: Value = serde_json::from_str(&src).unwrap();
        let listed = chrono::DateTime::parse_from_rfc3339(&Bucket::last_modified_iso(p))
            .unwrap()
            .to_utc();
        assert_eq!(
            src,
            json!({"id": ix.id(p), "bucket": "scale-2500", "filename": k,
                "_timestamp": iso_timestamp(listed), "etag": ix.bucket.etag(p),
                "size_in_bytes": ix.bucket.size(p)})
        );
    }
    assert_eq!(key(&ix, 2_500), "stale/000000000.dat");
    assert_eq!(key(&ix, 2_529), "stale/000000029.dat");
    assert_eq!(
        ix.id(2_529),
        document_id("scale-2500", "stale/000000029.dat")
    );
}

#[test]
fn every_id_is_found_again_and_no_other() {
    let ix = world(20_000, 2_000);
    for p in 0..ix.total() {
        assert_eq!(ix.find(&ix.id(p)), Some(p));
    }
    assert_eq!(ix.find(&document_id("scale-20000", "nope.dat")), None);
    assert_eq!(
        ix.find(&document_id("scale-19999", "00000/00000.dat")),
        None
    );
    assert_eq!(ix.find("not-an-md5"), None);
    assert_eq!(ix.find(&ix.id(3).to_uppercase()), None, "ids are lowercase");
}

#[test]
fn a_scroll_pages_through_every_document_once_in_order() {
    let ix = world(2_503, 97);
    for size in [1, 7, 1000, 5000] {
        let body = format!(r#"{{"size":{size},"sort":["_doc"],"_source":["id","bucket"]}}"#);
        let search = search::parse_search(body.as_bytes()).unwrap();
        let mut page: Value = serde_json::from_str(&search::open_scroll(&ix, &search)).unwrap();
        assert_eq!(
            page["hits"]["total"],
            json!({"value": 2_600, "relation": "eq"})
        );
        let mut ids = Vec::new();
        loop {
            assert_eq!(page["timed_out"], false);
            assert_eq!(page["_shards"]["failed"], 0);
            let hits = page["hits"]["hits"].as_array().unwrap();
            assert!(hits.len() as u64 <= size);
            if hits.is_empty() {
                break;
            }
            for h in hits {
                assert_eq!(h["_source"]["id"], h["_id"]);
                assert_eq!(h["_source"].as_object().unwrap().len(), 2, "{h}");
                ids.push(h["_id"].as_str().unwrap().to_owned());
            }
            let cursor = Cursor::decode(page["_scroll_id"].as_str().unwrap()).unwrap();
            page = serde_json::from_str(&search::scroll_page(&ix, cursor)).unwrap();
        }
        let expected: Vec<String> = (0..2_600).map(|p| ix.id(p)).collect();
        assert_eq!(ids, expected, "size {size}");
    }
    assert_eq!(
        Cursor::decode("DXF1ZXJ5QW5kRmV0Y2gBAAAAAAAAAD4W"),
        None,
        "a real node's id"
    );
    assert_eq!(Cursor::decode("synthetic-scroll-1-2-3-4"), None);
}

#[test]
fn the_source_filter_picks_fields_and_ignores_unknown_ones() {
    let s = |b: &str| search::parse_search(b.as_bytes()).unwrap();
    let today = s(
        r#"{"size":1000,"sort":["_doc"],"_source":["id","bucket","_timestamp","etag","content_sync_text_missing"]}"#,
    );
    assert_eq!((today.size, today.mask, today.ids), (1000, 0b11011, None));
    assert_eq!(s("{}").size, 10, "Elasticsearch's default");
    assert_eq!(s("").mask, index::ALL_FIELDS);
    assert_eq!(s(r#"{"_source":false}"#).mask, 0);
    assert!(search::parse_search(br#"{"query":{"match_all":{}}}"#).is_err());
    assert!(search::parse_search(b"{").is_err());
}

#[test]
fn a_lookup_answers_the_ids_that_exist_each_once() {
    let ix = world(1_000, 10);
    let unknown = document_id("scale-1000", "missing.dat");
    let body = json!({"size": 4, "query": {"ids": {"values": [ix.id(5), unknown, ix.id(1_003), ix.id(5), ix.id(7)]}},
        "_source": ["id", "bucket", "_timestamp", "etag", "content_sync_text_missing"], "track_total_hits": false});
    let search = search::parse_search(body.to_string().as_bytes()).unwrap();
    let ids = search.ids.clone().unwrap();
    let answer: Value = serde_json::from_str(&search::lookup(&ix, &search, &ids)).unwrap();
    let got: Vec<&str> = answer["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ix.id(5), ix.id(1_003), ix.id(7)]);
    let hit = &answer["hits"]["hits"][0];
    assert_eq!(hit["_index"], "content");
    assert_eq!(hit["_source"]["etag"], ix.bucket.etag(5));
    assert_eq!(answer["_shards"]["failed"], 0);
    // `size` caps the hits.
    let two = search::Search { size: 2, ..search };
    let answer: Value = serde_json::from_str(&search::lookup(&ix, &two, &ids)).unwrap();
    assert_eq!(answer["hits"]["hits"].as_array().unwrap().len(), 2);
    let st = stats(&ix);
    assert_eq!(
        (st["lookup_requests"].as_u64(), st["lookup_ids"].as_u64()),
        (Some(2), Some(10))
    );
    assert_eq!(st["lookup_found"], 5);
}

#[test]
fn bulk_bodies_are_scanned_action_lines_only() {
    // A source line that looks like an action must be skipped, not read as one.
    let body = concat!(
        r#"{"index":{"_index":"content","_id":"a"}}"#,
        "\n",
        r#"{"delete":{"_index":"content","_id":"fake"},"x":"\n"}"#,
        "\n",
        r#"{"delete":{"_id":"b","_index":"other"}}"#,
        "\n",
        r#"{ "create" : { "_id" : "c\"q" } }"#,
        "\n",
        r#"{"x":1}"#,
        "\n",
        "\n",
        r#"{"update":{"_id":"d"}}"#,
        "\n",
        r#"{"doc":{}}"#,
    );
    let ops = bulk::parse(body.as_bytes()).unwrap();
    let view: Vec<(bulk::Kind, Option<&str>, Option<&str>)> = ops
        .iter()
        .map(|o| (o.kind, o.index.as_deref(), o.id.as_deref()))
        .collect();
    assert_eq!(
        view,
        [
            (bulk::Kind::Index, Some("content"), Some("a")),
            (bulk::Kind::Delete, Some("other"), Some("b")),
            (bulk::Kind::Create, None, Some("c\"q")),
            (bulk::Kind::Update, None, Some("d")),
        ]
    );
    assert_eq!(bulk::count_for(&ops, None, "content"), 1);
    assert_eq!(bulk::count_for(&ops, Some("content"), "content"), 3);
    assert!(
        bulk::parse(br#"{"index":{"_id":"a"}}"#).is_err(),
        "no source line"
    );
    assert!(bulk::parse(b"{\"frobnicate\":{}}\n").is_err());
    assert!(bulk::parse(b"not json\n").is_err());
}

#[test]
fn bulk_counts_the_documents_that_carry_text() {
    let ix = world(10, 0);
    let mut body = String::new();
    let sources = [
        r#"{"id":"x","body":"Extracted text.","filename":"a.pdf"}"#,
        r#"{"filename":"b.pdf","body":"","id":"x"}"#,
        r#"{"filename":"c.bin","id":"x"}"#,
        r#"{"filename":"d.txt","title":"\"body\":\"not a body","id":"x"}"#,
        r#"{"filename":"e.txt","body":"\"quoted\" start","id":"x"}"#,
    ];
    for (p, source) in sources.iter().enumerate() {
        let id = ix.id(p as u64);
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"content\",\"_id\":\"{id}\"}}}}\n{source}\n"
        ));
    }
    body.push_str(&format!(
        "{{\"delete\":{{\"_index\":\"content\",\"_id\":\"{}\"}}}}\n",
        ix.id(9)
    ));
    let ops = bulk::parse(body.as_bytes()).unwrap();
    let flags: Vec<bool> = ops.iter().map(|o| o.body).collect();
    assert_eq!(flags, [true, false, false, false, true, false]);
    bulk::answer(&ix, &ops);
    let st = stats(&ix);
    assert_eq!(
        (st["index_ops"].as_u64(), st["indexed_with_body"].as_u64()),
        (Some(5), Some(2))
    );
    ix.reset();
    assert_eq!(stats(&ix)["indexed_with_body"], 0);
}

#[test]
fn a_corpus_bucket_gives_the_ids_of_its_keys() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let corpus = index::Corpus::load(std::path::Path::new(dir), &["expected.json".into()]).unwrap();
    let bucket = Bucket::parse("mixed-200", None)
        .unwrap()
        .with_corpus(Some(Arc::new(corpus)));
    let ix = SyntheticIndex::new("content", bucket, 3);
    for p in [0, 1, 150, 199] {
        let k = key(&ix, p);
        assert!(k.starts_with(&format!("000/{p:03}-")), "{k}");
        assert_eq!(ix.id(p), document_id("mixed-200", &k));
        assert_eq!(ix.find(&document_id("mixed-200", &k)), Some(p));
        let mut src = String::new();
        ix.write_source(p, &ix.id(p), index::ALL_FIELDS, &mut src);
        let src: Value = serde_json::from_str(&src).unwrap();
        assert_eq!(src["size_in_bytes"], ix.bucket.size(p));
        assert_eq!(src["etag"], ix.bucket.etag(p));
    }
    assert_ne!(ix.bucket.size(0), ix.bucket.size(1), "sizes are the files'");
    assert_eq!(key(&ix, 200), "stale/000000000.dat");
}

#[test]
fn bulk_answers_every_item_and_counts_ids_exactly() {
    let ix = world(100, 5);
    let mut body = String::new();
    for p in [0, 1, 2, 2] {
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"content\",\"_id\":\"{}\"}}}}\n{{}}\n",
            ix.id(p)
        ));
    }
    for p in [100, 104, 3] {
        body.push_str(&format!(
            "{{\"delete\":{{\"_index\":\"content\",\"_id\":\"{}\"}}}}\n",
            ix.id(p)
        ));
    }
    body.push_str("{\"index\":{\"_index\":\"content\",\"_id\":\"new\"}}\n{}\n");
    body.push_str("{\"delete\":{\"_index\":\"content\",\"_id\":\"gone\"}}\n");
    let ops = bulk::parse(body.as_bytes()).unwrap();
    let answer: Value = serde_json::from_str(&bulk::answer(&ix, &ops)).unwrap();
    assert_eq!(answer["errors"], false);
    let items: Vec<(String, u64, String)> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let (kind, body) = i.as_object().unwrap().iter().next().unwrap();
            (
                kind.clone(),
                body["status"].as_u64().unwrap(),
                body["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let item = |k: &str, s: u64, r: &str| (k.to_owned(), s, r.to_owned());
    assert_eq!(
        items,
        [
            item("index", 200, "updated"),
            item("index", 200, "updated"),
            item("index", 200, "updated"),
            item("index", 200, "updated"),
            item("delete", 200, "deleted"),
            item("delete", 200, "deleted"),
            item("delete", 200, "deleted"),
            item("index", 201, "created"),
            item("delete", 404, "not_found"),
        ]
    );
    assert_eq!(answer["items"][0]["index"]["_id"], ix.id(0));
    let st = stats(&ix);
    let got = |k: &str| st[k].as_u64().unwrap();
    assert_eq!(
        (
            got("index_ops"),
            got("indexed_objects"),
            got("index_unknown")
        ),
        (5, 3, 1)
    );
    assert_eq!(
        (
            got("delete_ops"),
            got("deleted_stale"),
            got("deleted_objects"),
            got("delete_unknown")
        ),
        (4, 2, 1, 1)
    );
    ix.reset();
    let st = stats(&ix);
    assert_eq!(
        (st["index_ops"].as_u64(), st["deleted_stale"].as_u64()),
        (Some(0), Some(0))
    );
}
