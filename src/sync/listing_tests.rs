use super::*;
use serde_json::json;

fn prepared(indexed: bool) -> Prepared {
    let Value::Object(doc) = json!({"id": "i", "filename": "a.txt"}) else {
        unreachable!()
    };
    Prepared {
        id: "i".into(),
        key: "a.txt".into(),
        size: 3,
        doc: doc.into(),
        indexed,
    }
}

fn source(op: Option<Op>) -> Value {
    match op {
        Some(Op::Index { source, .. }) => serde_json::from_slice(&source).unwrap(),
        other => panic!("expected an index op: {other:?}"),
    }
}

#[test]
fn unreadable_content_keeps_an_indexed_document_and_marks_a_new_one() {
    let timeout = || Err(Unavailable::ExtractionTimeout);
    assert!(op_for(prepared(true), timeout(), None).is_none());
    let new = source(op_for(prepared(false), timeout(), None));
    assert_eq!(
        new,
        json!({"id": "i", "filename": "a.txt", TEXT_MISSING: true})
    );
    let deadline = Err(Unavailable::Deadline(std::time::Duration::from_secs(31)));
    assert!(op_for(prepared(true), deadline, None).is_none());
}

#[test]
fn readable_content_is_indexed_unmarked_and_fitted() {
    let mut p = prepared(true);
    p.doc.insert("body", json!("\"".repeat(1000)));
    let doc = source(op_for(p, Ok(false), Some(1000)));
    assert!(doc.get(TEXT_MISSING).is_none());
    let body = doc["body"].as_str().unwrap();
    assert!(body.len() > 400 && body.len() < 500, "{}", body.len());
    let unparsed = source(op_for(prepared(false), Ok(false), None));
    assert!(
        unparsed.get(TEXT_MISSING).is_none(),
        "a corrupt file is not retried"
    );
}

#[test]
fn a_listing_is_cut_when_it_is_the_wait_and_not_for_a_slow_start() {
    let ms = Duration::from_millis;
    // A distant store: 50 ms a page, the sync waits for most of it.
    assert!(split_due(2, ms(80), ms(110)));
    // A listing that keeps up, whose first two pages came late by a start-up's few milliseconds.
    assert!(!split_due(2, ms(7), ms(12)));
    // The same wait later on, when it is no longer half the time.
    assert!(!split_due(30, ms(25), ms(150)));
    // One page is no listing to cut.
    assert!(!split_due(1, ms(80), ms(110)));
}
