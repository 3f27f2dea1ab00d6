use super::*;

#[test]
fn status_errors_keep_type_and_reason() {
    let body = br#"{"error":{"type":"index_not_found_exception","reason":"no such index [x]"},"status":404}"#;
    let e = status_error(StatusCode::NOT_FOUND, &Method::GET, "/x", body);
    assert!(e.is_not_found());
    assert_eq!(
        e.to_string(),
        "elasticsearch returned 404 Not Found for GET /x: index_not_found_exception: no such index [x]"
    );
}

#[test]
fn our_ids_look_like_elasticsearch_ids() {
    let (a, b) = (new_doc_id(), new_doc_id());
    assert_eq!(a.len(), 20);
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
    assert_ne!(a, b);
}

#[test]
fn typed_answers_decode_escapes_and_name_the_request_when_they_cannot() {
    #[derive(Debug, serde::Deserialize)]
    struct Answer {
        id: String,
    }
    let answer: Answer = decode_typed(br#"{"id":"caf\u00e9 \"x\" \u00e9t\u00e9"}"#, || {
        unreachable!("no error")
    })
    .unwrap();
    assert_eq!(answer.id, "café \"x\" été");
    let answer: Answer = decode_typed("{\"id\":\"été\"}".as_bytes(), String::new).unwrap();
    assert_eq!(answer.id, "été");
    let err = decode_typed::<Answer>(b"{\"id\":\"\xff\"}", || "/x/_search".into()).unwrap_err();
    assert!(
        matches!(&err, EsError::Decode { path, .. } if path == "/x/_search"),
        "{err}"
    );
    let err = decode_typed::<Answer>(b"{\"id\":1}", || "/_bulk".into()).unwrap_err();
    assert!(
        matches!(&err, EsError::Decode { path, .. } if path == "/_bulk"),
        "{err}"
    );
}
