//! The `_connector` API double itself (tests/common/connector_api/): request validation as pure
//! functions, version emulation, and each endpoint against the real Elasticsearch behind it. No
//! service behaviour is tested here.

mod common;

use common::TestWorld;
use common::connector_api::parse::{Node, did_you_mean, scan};
use common::connector_api::requests::{self, Claim, PostJob};
use common::connector_api::version::{Endpoint, absent_answer, no_handler, unrecognized_params};
use common::connector_api::{EsError, EsVersion};
use serde_json::{Value, json};

fn err(r: Result<impl std::fmt::Debug, EsError>) -> (String, String) {
    let e = r.expect_err("the request must be rejected");
    assert_eq!(e.status, 400, "{e:?}");
    (e.kind, e.reason)
}

fn pair(kind: &str, reason: &str) -> (String, String) {
    (kind.to_string(), reason.to_string())
}

#[test]
fn positions_are_line_and_byte_column_of_the_token() {
    let Node::Object(fields, ..) = scan(b"{\"a\": 1,\n  \"b\": [true]}").unwrap() else {
        panic!("an object");
    };
    assert_eq!(fields[0].1.to_string(), "[1:2]");
    assert_eq!(fields[1].1.to_string(), "[2:3]");
    assert_eq!(fields[1].2.pos().to_string(), "[2:8]");
}

#[test]
fn sync_job_post_follows_post_connector_sync_job_action() {
    let ok = requests::post_job(br#"{"id":"c1","job_type":"ACCESS_CONTROL","trigger_method":"x"}"#);
    let expected = PostJob {
        id: "c1".into(),
        job_type: "access_control",
        trigger_method: "on_demand",
    };
    assert_eq!(ok.unwrap(), expected);
    assert_eq!(
        err(requests::post_job(b"")),
        pair("parse_exception", "request body is required")
    );
    assert_eq!(
        err(requests::post_job(br#"{"job_type":"full"}"#)),
        pair("illegal_argument_exception", "Required [id]")
    );
    assert_eq!(
        err(requests::post_job(br#"{"id":""}"#)),
        pair(
            "action_request_validation_exception",
            "Validation Failed: 1: [id] of the connector cannot be null or empty;"
        )
    );
    assert_eq!(
        err(requests::post_job(br#"{"id":"c1","jobtype":"full"}"#)),
        pair(
            "x_content_parse_exception",
            "[1:12] [connector_sync_job_post_request] unknown field [jobtype] did you mean [job_type]?"
        )
    );
    assert_eq!(
        err(requests::post_job(br#"{"id":null}"#)),
        pair(
            "x_content_parse_exception",
            "[1:7] [connector_sync_job_post_request] id doesn't support values of type: VALUE_NULL"
        )
    );
    assert_eq!(
        err(requests::post_job(b"[1]")),
        pair(
            "x_content_parse_exception",
            "[1:1] [connector_sync_job_post_request] Expected START_OBJECT but was: START_ARRAY"
        )
    );
}

#[test]
fn sync_job_claim_follows_claim_connector_sync_job_action() {
    let ok = requests::claim(br#"{"worker_hostname":"h","sync_cursor":{"k":1}}"#).unwrap();
    let expected = Claim {
        worker_hostname: "h".into(),
        sync_cursor: Some(json!({"k": 1})),
    };
    assert_eq!(ok, expected);
    assert_eq!(
        err(requests::claim(b"{}")),
        pair("illegal_argument_exception", "Required [worker_hostname]")
    );
    assert_eq!(
        err(requests::claim(
            br#"{"worker_hostname":"h","sync_cursor":"s"}"#
        )),
        pair(
            "x_content_parse_exception",
            "[1:38] [claim_connector_sync_job] sync_cursor doesn't support values of type: VALUE_STRING"
        )
    );
}

#[test]
fn sync_job_stats_follows_the_ingestion_stats_action_of_each_version() {
    let body = br#"{"deleted_document_count":0,"indexed_document_count":"3","indexed_document_volume":1,"metadata":{"m":1}}"#;
    let doc = requests::stats(body, &EsVersion::parse("8.15.0")).unwrap();
    assert_eq!(
        doc,
        json!({"deleted_document_count": 0, "indexed_document_count": 3,
               "indexed_document_volume": 1, "metadata": {"m": 1}})
    );
    // `metadata` arrived in 8.15: 8.14's parser does not know it.
    assert_eq!(
        err(requests::stats(body, &EsVersion::parse("8.14.3"))),
        pair(
            "x_content_parse_exception",
            "[1:86] [connector_sync_job_update_ingestion_stats] unknown field [metadata]"
        )
    );
    let v = EsVersion::current();
    assert_eq!(
        err(requests::stats(br#"{"indexed_document_count":1}"#, &v)),
        pair(
            "illegal_argument_exception",
            "Required [deleted_document_count, indexed_document_volume]"
        )
    );
    let negative =
        br#"{"deleted_document_count":-1,"indexed_document_count":0,"indexed_document_volume":-2}"#;
    assert_eq!(
        err(requests::stats(negative, &v)),
        pair(
            "action_request_validation_exception",
            "Validation Failed: 1: [deleted_document_count] cannot be negative.;\
             2: [indexed_document_volume] cannot be negative.;"
        )
    );
}

#[test]
fn filtering_validation_follows_update_connector_filtering_validation_action() {
    let ok = requests::filtering_validation(
        br#"{"validation":{"state":"INVALID","errors":[{"ids":["a"],"messages":["m"],"x":1}]}}"#,
    );
    assert_eq!(
        ok.unwrap(),
        json!({"state": "invalid", "errors": [{"ids": ["a"], "messages": ["m"], "x": 1}]})
    );
    assert_eq!(
        err(requests::filtering_validation(
            br#"{"state":"valid","errors":[]}"#
        )),
        pair(
            "x_content_parse_exception",
            "[1:2] [connector_update_filtering_validation] unknown field [state]"
        )
    );
    // A nested failure: the outer parser wraps the inner one, whose error is the root cause.
    let e = requests::filtering_validation(br#"{"validation":{"state":"valid"}}"#).unwrap_err();
    assert_eq!(
        e.body(),
        json!({"error": {
            "root_cause": [{"type": "x_content_parse_exception",
                "reason": "[1:31] [connector_update_filtering_validation] failed to parse field [validation]"}],
            "type": "x_content_parse_exception",
            "reason": "[1:31] [connector_update_filtering_validation] failed to parse field [validation]",
            "caused_by": {"type": "illegal_argument_exception", "reason": "Required [errors]"}},
            "status": 400})
    );
}

#[test]
fn body_less_endpoints_refuse_a_body() {
    assert!(requests::no_body("PUT", "/_connector/c/_check_in", b"").is_ok());
    assert_eq!(
        err(requests::no_body(
            "PUT",
            "/_connector/c/_check_in?x=1",
            b"{}"
        )),
        pair(
            "illegal_argument_exception",
            "request [PUT /_connector/c/_check_in] does not support having a body"
        )
    );
}

#[test]
fn list_parameters_follow_connector_list_spec() {
    let p = requests::list_params("/_connector?size=1&from=2&index_name=a,b").unwrap();
    assert_eq!(
        (p.size, p.from, p.index_name),
        (1, 2, vec!["a".into(), "b".into()])
    );
    assert_eq!(
        err(requests::list_params("/_connector?sise=1&zz")),
        pair(
            "illegal_argument_exception",
            "request [/_connector] contains unrecognized parameters: [sise], [zz]"
        )
    );
    assert_eq!(
        err(requests::list_params("/_connector?size=x")),
        pair(
            "illegal_argument_exception",
            "Failed to parse int parameter [size] with value [x]"
        )
    );
}

#[test]
fn suggestions_use_lucene_levenshtein_similarity() {
    assert_eq!(
        did_you_mean("prority", &["priority", "version"]),
        " did you mean [priority]?"
    );
    assert_eq!(did_you_mean("zzz", &["priority"]), "");
    assert_eq!(
        did_you_mean("idx", &["ids", "idz"]),
        " did you mean any of [ids, idz]?"
    );
}

#[test]
fn versions_decide_which_endpoints_exist() {
    let at = |v: &str, e: Endpoint| {
        let (major, minor) = e.since();
        EsVersion::parse(v).at_least(major, minor)
    };
    assert!(!at("8.11.4", Endpoint::List));
    assert!(at("8.12.0", Endpoint::SyncJobStats));
    assert!(!at("8.13.4", Endpoint::FilteringActivate));
    assert!(at("8.14.0", Endpoint::FilteringValidation));
    assert!(!at("8.14.3", Endpoint::SyncJobClaim));
    assert!(at("8.15.0", Endpoint::SyncJobClaim));
    assert!(at("9.5.4", Endpoint::SyncJobClaim));
    let info = EsVersion::parse("8.14.3").root_info();
    assert_eq!(info["version"]["number"], "8.14.3");
    assert_eq!(info["version"]["build_flavor"], "default");
    assert_eq!(info["tagline"], "You Know, for Search");
}

#[test]
fn absent_routes_answer_like_a_node_without_them() {
    let (status, body) = absent_answer("PUT", "/_connector/_sync_job/x/_claim");
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": "no handler found for uri [/_connector/_sync_job/x/_claim] and method [PUT]"})
    );
    let (_, body) = absent_answer("GET", "/_connector");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["type"], "invalid_index_name_exception");
    assert_eq!(body["error"]["index"], "_connector");
    let (_, body) = absent_answer("GET", "/_connector?size=1");
    assert!(body.contains("request [/_connector] contains unrecognized parameter: [size]"));
    assert!(unrecognized_params("/_connector?pretty", &[]).is_none());
}

/// Requests through a double at `version`: `(status, body)`.
async fn call(url: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = http.request(method, format!("{url}{path}"));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_read_and_write_the_indices_as_elasticsearch_does() {
    let world = TestWorld::start().await;
    let id = world.name("dbl");
    let index = world.name("search-dbl");
    world
        .create_connector_doc(&id, &index, json!({}), json!({}))
        .await;
    let api = world.connector_api().await;
    let url = api.url();

    let (status, root) = call(&url, "GET", "/", None).await;
    assert_eq!((status, &root["version"]["number"]), (200, &json!("9.5.4")));

    let (status, list) = call(&url, "GET", "/_connector?size=1000", None).await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str())
    );

    let check_in = format!("/_connector/{id}/_check_in");
    assert_eq!(
        call(&url, "PUT", &check_in, None).await,
        (200, json!({"result": "updated"}))
    );
    let (status, _) = call(&url, "PUT", "/_connector/nope-x/_check_in", None).await;
    assert_eq!(status, 404);
    let (status, wrong) = call(&url, "POST", &check_in, None).await;
    assert_eq!(
        (status, wrong["status"].clone()),
        (405, json!(405)),
        "{wrong}"
    );

    let (status, created) = call(
        &url,
        "POST",
        "/_connector/_sync_job",
        Some(json!({"id": id})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let job = created["id"].as_str().unwrap().to_string();
    let missing = call(
        &url,
        "POST",
        "/_connector/_sync_job",
        Some(json!({"id": "nope-x"})),
    )
    .await;
    assert_eq!(
        missing,
        (
            404,
            EsError::not_found("Connector with id 'nope-x' does not exist.").body()
        )
    );

    let claim = json!({"worker_hostname": "h1", "sync_cursor": {"c": 1}});
    let path = format!("/_connector/_sync_job/{job}/_claim");
    assert_eq!(call(&url, "PUT", &path, Some(claim.clone())).await.0, 200);
    let stored = world.job(&job).await.unwrap();
    assert_eq!(
        (&stored["status"], &stored["worker_hostname"]),
        (&json!("in_progress"), &json!("h1"))
    );
    assert_eq!(stored["connector"]["sync_cursor"], json!({"c": 1}));
    let missing = call(
        &url,
        "PUT",
        "/_connector/_sync_job/nope-x/_claim",
        Some(claim),
    )
    .await;
    assert_eq!(missing, (404, EsError::not_found("nope-x").body()));

    let stats = json!({"deleted_document_count": 0, "indexed_document_count": 2,
                       "indexed_document_volume": 5, "metadata": {"m": 1}});
    let path = format!("/_connector/_sync_job/{job}/_stats");
    assert_eq!(call(&url, "PUT", &path, Some(stats.clone())).await.0, 200);
    let stored = world.job(&job).await.unwrap();
    assert_eq!(
        (&stored["indexed_document_count"], &stored["metadata"]),
        (&json!(2), &json!({"m": 1}))
    );
    let missing = call(
        &url,
        "PUT",
        "/_connector/_sync_job/nope-x/_stats",
        Some(stats),
    )
    .await;
    assert_eq!(
        missing,
        (
            404,
            EsError::not_found("connector sync job [nope-x] not found").body()
        )
    );

    // Only a `valid` draft can be activated.
    let validate = format!("/_connector/{id}/_filtering/_validation");
    let activate = format!("/_connector/{id}/_filtering/_activate");
    for (state, activated) in [("edited", 400), ("valid", 200)] {
        let validation = json!({"validation": {"state": state, "errors": []}});
        let (status, answer) = call(&url, "PUT", &validate, Some(validation)).await;
        assert_eq!((status, answer), (200, json!({"result": "updated"})));
        let (status, answer) = call(&url, "PUT", &activate, None).await;
        assert_eq!(status, activated, "{answer}");
    }
    let c = world.connector(&id).await.unwrap();
    assert_eq!(c["filtering"][0]["active"]["validation"]["state"], "valid");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_version_lacks_the_newer_endpoints_as_a_real_node_does() {
    let world = TestWorld::start().await;
    let api = world.connector_api_version("8.14.3").await;
    let url = api.url();
    let (status, root) = call(&url, "GET", "/", None).await;
    assert_eq!(
        (status, &root["version"]["number"]),
        (200, &json!("8.14.3"))
    );

    let claim = "/_connector/_sync_job/x/_claim";
    let body = json!({"worker_hostname": "h"});
    let (status, answer) = call(&url, "PUT", claim, Some(body.clone())).await;
    let expected: Value = serde_json::from_str(&no_handler("PUT", claim).1).unwrap();
    assert_eq!((status, &answer), (400, &expected));

    // Against a real node, the double's synthesized answers must be the node's own.
    if !world.es_stand_in {
        for (method, path) in [
            ("PUT", claim),
            ("GET", "/_connector"),
            ("GET", "/_connector?size=1"),
        ] {
            let body = (method == "PUT").then(|| body.clone());
            let (status, real) = call(&world.es_url, method, path, body).await;
            let (s, synth) = absent_answer(method, path);
            let synth: Value = serde_json::from_str(&synth).unwrap();
            assert_eq!((s, synth), (status, real), "{method} {path}");
        }
        let old = world.connector_api_version("8.11.0").await;
        let (status, answer) = call(&old.url(), "GET", "/_connector?size=1", None).await;
        let (s, synth) = absent_answer("GET", "/_connector?size=1");
        assert_eq!((status, answer), (s, serde_json::from_str(&synth).unwrap()));
    }
}
