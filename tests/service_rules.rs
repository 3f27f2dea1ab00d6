//! Sync rules end to end (docs/protocol.md#sync-rules, docs/protocol.md#a-jobs-life): basic rules decide per document,
//! advanced rules decide what is listed (the prefix narrows the LIST itself), the scheduler
//! validates and activates drafts with Elastic's messages (direct-index and `_connector` API mode),
//! and a job whose filtering snapshot is invalid fails.

mod common;

use common::jobs::ENDED;
use common::{
    Fault, FaultProxy, Rule, ServiceProcess, TestWorld, doc_id, is_listing_of, now_iso,
    s3_configuration, secs,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// helpers

fn ids(bucket: &str, keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| doc_id(bucket, k)).collect()
}

/// `_id`s of every document of `index`.
async fn index_ids(world: &TestWorld, index: &str) -> BTreeSet<String> {
    world
        .search(index, json!({"match_all": {}}))
        .await
        .into_iter()
        .map(|h| h["_id"].as_str().expect("hit has _id").to_string())
        .collect()
}

/// `filename`s of every document of `index` (readable failure messages).
async fn index_filenames(world: &TestWorld, index: &str) -> BTreeSet<String> {
    world
        .search(index, json!({"match_all": {}}))
        .await
        .into_iter()
        .map(|h| {
            let s = &h["_source"];
            format!(
                "{}/{}",
                s["bucket"].as_str().unwrap_or("?"),
                s["filename"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// A basic rule as Kibana writes it.
fn rule(id: &str, order: u32, policy: &str, field: &str, kind: &str, value: &str) -> Value {
    let ts = "2026-01-02T03:04:05.678Z";
    json!({"id": id, "order": order, "policy": policy, "field": field, "rule": kind,
           "value": value, "created_at": ts, "updated_at": ts})
}

/// The DEFAULT catch-all rule at `order`.
fn default_rule(order: u32) -> Value {
    rule("DEFAULT", order, "include", "_", "regex", ".*")
}

/// A filtering object (`active` or `draft`).
fn filter(rules: Value, advanced: Value, state: &str) -> Value {
    let ts = now_iso();
    json!({"rules": rules,
           "advanced_snippet": {"value": advanced, "created_at": ts, "updated_at": ts},
           "validation": {"state": state, "errors": []}})
}

/// Replaces the connector's DEFAULT filtering (as a Kibana edit does).
async fn set_filtering(world: &TestWorld, id: &str, active: Value, draft: Value) {
    world
        .update_connector(
            id,
            json!({"filtering": [{"domain": "DEFAULT", "active": active, "draft": draft}]}),
        )
        .await;
}

/// The connector's DEFAULT filtering entry.
fn default_entry(connector: &Value) -> Value {
    connector["filtering"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["domain"] == "DEFAULT"))
        .cloned()
        .unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------------------------
// 1. basic rules

/// Rules (listed out of order on purpose; `order` decides): exclude `*.tmp` (1), include
/// `size_in_bytes > "100"` (2), exclude `regex private/` (3), DEFAULT (4).
///
/// * `big.tmp` (500 B): rule 1 matches first → excluded although rule 2 would include it;
/// * `private/big.txt` (500 B): rule 2 matches before rule 3 → included (first match decides,
///   not "exclude wins");
/// * `private/mid.txt` (99 B): `99 > 100` is false **numerically** (a string comparison
///   `"99" > "100"` would be true) → rule 3 → excluded;
/// * `private/small.txt` (10 B) → rule 3 → excluded;
/// * `x/private/a.txt` (10 B): `regex` is a prefix match (Python `re.match`), not a search →
///   nothing matches → included;
/// * `small.txt`, `a.TMP` (10 B): nothing matches (`ends_with` is case-sensitive) → included.
///
/// The first job runs with the DEFAULT rule only and indexes all 7; the second one's snapshot
/// has the rules, although the connector's active rules were reset before any job ran — so it
/// runs with its snapshot, and deletes the 3 indexed documents its rules exclude (docs/architecture.md#the-data-path).
#[tokio::test(flavor = "multi_thread")]
async fn basic_rules_first_match_by_order_decides_and_excluded_docs_are_deleted() {
    let world = TestWorld::start().await;
    let bucket = world.name("basic");
    world.create_bucket(&bucket, None).await;
    let objects: [(&str, usize); 7] = [
        ("big.tmp", 500),
        ("private/big.txt", 500),
        ("private/mid.txt", 99),
        ("private/small.txt", 10),
        ("x/private/a.txt", 10),
        ("small.txt", 10),
        ("a.TMP", 10),
    ];
    for (key, size) in objects {
        world.put_object(&bucket, key, &vec![b'x'; size]).await;
    }
    let (id, index) = world
        .configured_connector("basic", s3_configuration(&world, &bucket))
        .await;

    let job1 = world.create_pending_job(&id).await;

    let rules = json!([
        rule("r-private", 3, "exclude", "filename", "regex", "private/"),
        rule("r-tmp", 1, "exclude", "filename", "ends_with", ".tmp"),
        default_rule(4),
        rule("r-size", 2, "include", "size_in_bytes", ">", "100"),
    ]);
    let with_rules = filter(rules, json!({}), "valid");
    set_filtering(&world, &id, with_rules.clone(), with_rules).await;
    let job2 = world.create_pending_job(&id).await;
    let snapshot = world.job(&job2).await.unwrap();
    assert_eq!(
        snapshot["connector"]["filtering"]["rules"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    // Back to the DEFAULT rule only: job 2 must still use its snapshot.
    let plain = filter(json!([default_rule(0)]), json!({}), "valid");
    set_filtering(&world, &id, plain.clone(), plain).await;

    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let j1 = world.wait_completed(&job1, &svc).await;
    assert_eq!(j1["indexed_document_count"], 7, "{j1}");
    let j2 = world.wait_completed(&job2, &svc).await;

    let expected = ["private/big.txt", "x/private/a.txt", "small.txt", "a.TMP"];
    assert_eq!(
        index_filenames(&world, &index).await,
        expected.iter().map(|k| format!("{bucket}/{k}")).collect(),
    );
    assert_eq!(index_ids(&world, &index).await, ids(&bucket, &expected));
    assert_eq!(j2["indexed_document_count"], 4, "{j2}");
    assert_eq!(j2["deleted_document_count"], 3, "{j2}");
    assert_eq!(j2["total_document_count"], 4, "{j2}");
}

// ---------------------------------------------------------------------------------------------
// 2. advanced rules

/// The `prefix` query parameter of a request target (`None` when absent or empty).
fn prefix_param(target: &str) -> Option<String> {
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .find_map(|p| p.strip_prefix("prefix="))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Advanced rules `[{A, prefix docs/, extension [.txt]}, {B}]`: only `.txt` keys under `docs/` of A
/// and every key of B; bucket C (the `buckets` setting) is ignored entirely. Every LIST of A
/// carries `prefix=docs%2F` (the prefix narrows the LIST, A is never listed whole).
#[tokio::test(flavor = "multi_thread")]
async fn advanced_rules_list_only_their_buckets_and_prefixes() {
    let world = TestWorld::start().await;
    let (a, b, c) = (
        world.name("adv-a"),
        world.name("adv-b"),
        world.name("adv-c"),
    );
    for bucket in [&a, &b, &c] {
        world.create_bucket(bucket, None).await;
    }
    let a_keys = [
        "docs/a.txt",
        "docs/sub/c.txt",
        "docs/b.pdf",
        "docs/D.TXT",
        "docs/e.txt.bak",
        "docsx/f.txt",
        "other/g.txt",
        "h.txt",
    ];
    for key in a_keys {
        world.put_object(&a, key, b"a").await;
    }
    for key in ["b1.bin", "dir/b2.txt"] {
        world.put_object(&b, key, b"b").await;
    }
    world.put_object(&c, "c.txt", b"c").await;

    let proxy = FaultProxy::start(
        &world.s3_endpoint,
        vec![
            Rule::when(
                "list A with prefix docs/",
                {
                    let is_a = is_listing_of(&a);
                    move |m, t| is_a(m, t) && prefix_param(t).as_deref() == Some("docs%2F")
                },
                Fault::Delay(Duration::ZERO),
            ),
            Rule::when(
                "list A (any)",
                is_listing_of(&a),
                Fault::Delay(Duration::ZERO),
            ),
            Rule::when("list C", is_listing_of(&c), Fault::Delay(Duration::ZERO)),
            Rule::when("list B", is_listing_of(&b), Fault::Delay(Duration::ZERO)),
        ],
    )
    .await;
    let mut cfg = s3_configuration(&world, &c);
    cfg["endpoint_url"]["value"] = json!(proxy.url());
    let (id, index) = world.configured_connector("adv", cfg).await;
    let advanced = json!([{"bucket": a, "prefix": "docs/", "extension": [".txt"]}, {"bucket": b}]);
    let active = filter(json!([default_rule(0)]), advanced, "valid");
    set_filtering(&world, &id, active.clone(), active).await;

    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job = world.create_pending_job(&id).await;
    let done = world.wait_completed(&job, &svc).await;

    let mut expected = ids(&a, &["docs/a.txt", "docs/sub/c.txt"]);
    expected.extend(ids(&b, &["b1.bin", "dir/b2.txt"]));
    assert_eq!(
        index_ids(&world, &index).await,
        expected,
        "indexed: {:?}",
        index_filenames(&world, &index).await
    );
    assert_eq!(done["indexed_document_count"], 4, "{done}");
    assert!(proxy.hits(0) >= 1, "A was listed with prefix docs/");
    assert_eq!(
        proxy.hits(1),
        proxy.hits(0),
        "every LIST of A carries prefix=docs/ (A is never listed whole)"
    );
    assert_eq!(proxy.hits(2), 0, "the buckets setting is ignored");
    assert!(proxy.hits(3) >= 1, "B was listed");
}

/// Our additions: `glob` on the full key (`*` stays within a path segment, `**` crosses them,
/// case-sensitive) and `regex` matched at the start of the key.
#[tokio::test(flavor = "multi_thread")]
async fn advanced_glob_and_regex_rules_keep_matching_keys_only() {
    let world = TestWorld::start().await;
    let (g, r) = (world.name("glob"), world.name("regex"));
    world.create_bucket(&g, None).await;
    world.create_bucket(&r, None).await;
    let g_keys = [
        "reports/2024/q1.pdf",    // yes
        "reports/2024/q1/x.pdf",  // yes: ** crosses segments
        "reports/a.pdf",          // yes: **/ may be empty
        "reports/2024/q1.PDF",    // no: case-sensitive
        "reports/2024/q1.txt",    // no
        "old/reports/2024/x.pdf", // no: matched against the full key
    ];
    let r_keys = [
        "logs/2024/a.json",     // yes
        "logs/2025/b/c.json",   // yes
        "logs/abcd/a.json",     // no
        "x/logs/2024/a.json",   // no: anchored at the start
        "logs/2024/a.json.bak", // no: `$`
    ];
    for key in g_keys {
        world.put_object(&g, key, b"g").await;
    }
    for key in r_keys {
        world.put_object(&r, key, b"r").await;
    }
    let (id, index) = world
        .configured_connector("globre", s3_configuration(&world, "unused-bucket"))
        .await;
    let advanced = json!([
        {"bucket": g, "glob": ["reports/**/*.pdf"]},
        {"bucket": r, "regex": "logs/[0-9]{4}/.*\\.json$"}
    ]);
    let active = filter(json!([default_rule(0)]), advanced, "valid");
    set_filtering(&world, &id, active.clone(), active).await;

    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let job = world.create_pending_job(&id).await;
    let done = world.wait_completed(&job, &svc).await;

    let mut expected = ids(&g, &g_keys[..3]);
    expected.extend(ids(&r, &r_keys[..2]));
    assert_eq!(
        index_ids(&world, &index).await,
        expected,
        "indexed: {:?}",
        index_filenames(&world, &index).await
    );
    assert_eq!(done["indexed_document_count"], 5, "{done}");
}

// ---------------------------------------------------------------------------------------------
// 3. draft validation by the scheduler

/// A three-rule draft: r1/r2/r3.
fn r123() -> Value {
    json!([
        rule("r1", 0, "include", "bucket", "equals", "b"),
        rule("r2", 1, "exclude", "bucket", "equals", "b"),
        rule("r3", 2, "include", "filename", "regex", ".*"),
    ])
}

/// What the r1/r2/r3 draft validates to, in Elastic's words (docs/protocol.md#sync-rules).
fn r123_validation() -> Value {
    json!({"state": "invalid", "errors": [
        {"ids": ["r3"], "messages": ["Basic rule 3 (id: 'r...3') uses a match all regexps ['.*', '(.*)'], which are not allowed."]},
        {"ids": ["r2"], "messages": ["Basic rule 2 (id: 'r...2') is semantically equal to Basic rule 1 (id: 'r...1')."]},
        {"ids": ["r1"], "messages": ["Basic rule 1 (id: 'r...1') is semantically equal to Basic rule 2 (id: 'r...2')."]}
    ]})
}

/// Waits until the DEFAULT draft's validation state is `state`; returns the connector.
async fn wait_draft_state(world: &TestWorld, id: &str, state: &str, svc: &ServiceProcess) -> Value {
    world
        .wait_for(
            &format!("draft validation state {state}"),
            secs(15),
            async || {
                let c = world.connector(id).await.unwrap_or(Value::Null);
                if default_entry(&c)["draft"]["validation"]["state"] == state {
                    Ok(c)
                } else {
                    Err(format!(
                        "filtering: {}\nstatus: {} error: {}\n{}",
                        c["filtering"],
                        c["status"],
                        c["error"],
                        common::log_tail(&svc.logs(), 4000)
                    ))
                }
            },
        )
        .await
}

/// Direct-index mode: an invalid draft gets Elastic's errors and stays inactive; a valid one is
/// activated with its new validation, and the next job applies it.
#[tokio::test(flavor = "multi_thread")]
async fn invalid_draft_gets_elastic_errors_and_valid_draft_is_activated() {
    let world = TestWorld::start().await;
    let bucket = world.name("draft");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "a.txt", b"a").await;
    world.put_object(&bucket, "b.tmp", b"b").await;
    let (id, index) = world
        .configured_connector("draft", s3_configuration(&world, &bucket))
        .await;
    let active = filter(json!([default_rule(0)]), json!({}), "valid");
    set_filtering(
        &world,
        &id,
        active.clone(),
        filter(r123(), json!({}), "edited"),
    )
    .await;

    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let c = wait_draft_state(&world, &id, "invalid", &svc).await;
    let entry = default_entry(&c);
    assert_eq!(entry["draft"]["validation"], r123_validation());
    assert_eq!(entry["draft"]["rules"], r123(), "draft rules untouched");
    assert_eq!(entry["active"], active, "an invalid draft is not activated");
    // The check writes the draft's validation, then the connector's status: wait for the second.
    world
        .wait_for("connected after an invalid draft", secs(15), async || {
            let c = world.connector(&id).await.unwrap_or(Value::Null);
            if c["status"] == "connected" {
                Ok(())
            } else {
                Err(c)
            }
        })
        .await;

    // A valid draft: exclude *.tmp, then the default rule.
    let rules = json!([
        rule("no-tmp", 0, "exclude", "filename", "ends_with", ".tmp"),
        default_rule(1)
    ]);
    set_filtering(
        &world,
        &id,
        active.clone(),
        filter(rules.clone(), json!([]), "edited"),
    )
    .await;
    let c = wait_draft_state(&world, &id, "valid", &svc).await;
    let entry = default_entry(&c);
    assert_eq!(
        entry["draft"]["validation"],
        json!({"state": "valid", "errors": []})
    );
    assert_eq!(entry["draft"]["rules"], rules);
    assert_eq!(
        entry["active"], entry["draft"],
        "the valid draft became active"
    );

    let job = world.create_pending_job(&id).await;
    world.wait_completed(&job, &svc).await;
    assert_eq!(index_ids(&world, &index).await, ids(&bucket, &["a.txt"]));
}

/// An unknown rule type makes Elastic's validation raise: connector `status: error` with Elastic's
/// message, nothing written to the draft; fixing the draft brings the connector back.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_rule_type_sets_connector_error_and_leaves_the_draft() {
    let world = TestWorld::start().await;
    let bucket = world.name("nope");
    world.create_bucket(&bucket, None).await;
    let (id, _index) = world
        .configured_connector("nope", s3_configuration(&world, &bucket))
        .await;
    let active = filter(json!([default_rule(0)]), json!({}), "valid");
    let draft = filter(
        json!([
            rule("r1", 0, "include", "filename", "nope", "x"),
            default_rule(1)
        ]),
        json!({}),
        "edited",
    );
    set_filtering(&world, &id, active.clone(), draft.clone()).await;

    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let msg = "'nope' is an unknown value for the enum Rule. Allowed rules: Rule.RULES.";
    let c = world
        .wait_for("connector status error", secs(15), async || {
            let c = world.connector(&id).await.unwrap_or(Value::Null);
            if c["status"] == "error" {
                Ok(c)
            } else {
                Err(format!(
                    "{} {}\n{}",
                    c["status"],
                    c["error"],
                    common::log_tail(&svc.logs(), 4000)
                ))
            }
        })
        .await;
    assert_eq!(c["error"], msg, "{c}");
    let entry = default_entry(&c);
    assert_eq!(entry["draft"], draft, "nothing written to the draft");
    assert_eq!(entry["active"], active);

    // Fixed draft: validated, activated, connector healthy again.
    let fixed = filter(
        json!([
            rule("r1", 0, "include", "filename", "contains", "x"),
            default_rule(1)
        ]),
        json!({}),
        "edited",
    );
    set_filtering(&world, &id, active, fixed).await;
    wait_draft_state(&world, &id, "valid", &svc).await;
    let c = world
        .wait_for("connector connected again", secs(10), async || {
            let c2 = world.connector(&id).await.unwrap_or(Value::Null);
            if c2["status"] == "connected" {
                Ok(c2)
            } else {
                Err(c2["status"].clone())
            }
        })
        .await;
    assert_eq!(c["error"], Value::Null, "{c}");
}

/// `_connector` API mode: the validation goes through `PUT _filtering/_validation`, activation
/// through `PUT _filtering/_activate`. An invalid advanced snippet gets `data must be array`.
#[tokio::test(flavor = "multi_thread")]
async fn api_mode_validates_and_activates_drafts_through_the_filtering_endpoints() {
    const FILTERING: usize = 5;
    let world = TestWorld::start().await;
    let bucket = world.name("apidraft");
    world.create_bucket(&bucket, None).await;
    let (id, _index) = world
        .configured_connector("apidraft", s3_configuration(&world, &bucket))
        .await;
    let active = filter(json!([default_rule(0)]), json!({}), "valid");
    let bad = filter(json!([default_rule(0)]), json!({"bucket": ["x"]}), "edited");
    set_filtering(&world, &id, active.clone(), bad).await;

    let api = world.connector_api().await;
    let extra = format!(
        "elasticsearch.host: {}\nelasticsearch.feature_use_connectors_api: true\n",
        api.url()
    );
    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], &extra), &[]);
    let c = wait_draft_state(&world, &id, "invalid", &svc).await;
    let entry = default_entry(&c);
    assert_eq!(
        entry["draft"]["validation"],
        json!({"state": "invalid", "errors": [{"ids": ["advanced_snippet"], "messages": ["data must be array"]}]})
    );
    assert_eq!(entry["active"], active);
    let calls_after_invalid = api.hits(FILTERING);
    assert_eq!(calls_after_invalid, 1, "one _validation call, no _activate");

    let good = filter(
        json!([default_rule(0)]),
        json!([{"bucket": bucket}]),
        "edited",
    );
    set_filtering(&world, &id, active, good).await;
    wait_draft_state(&world, &id, "valid", &svc).await;
    // The double's _activate copies the draft: wait for it.
    let c = world
        .wait_for("draft activated", secs(10), async || {
            let c2 = world.connector(&id).await.unwrap_or(Value::Null);
            let e = default_entry(&c2);
            if e["active"] == e["draft"] {
                Ok(c2)
            } else {
                Err(e)
            }
        })
        .await;
    let entry = default_entry(&c);
    assert_eq!(
        entry["active"]["advanced_snippet"]["value"],
        json!([{"bucket": bucket}])
    );
    assert_eq!(
        entry["active"]["validation"],
        json!({"state": "valid", "errors": []})
    );
    assert_eq!(
        api.hits(FILTERING),
        calls_after_invalid + 2,
        "_validation + _activate"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. a job whose filtering snapshot is invalid

/// docs/protocol.md#a-jobs-life: the job's snapshot (not the connector's live rules) is validated at start; invalid
/// → the job fails with `Filtering in state …, errors: …` and nothing is indexed.
#[tokio::test(flavor = "multi_thread")]
async fn job_with_invalid_filtering_snapshot_fails() {
    let world = TestWorld::start().await;
    let bucket = world.name("badsnap");
    world.create_bucket(&bucket, None).await;
    world.put_object(&bucket, "a.txt", b"a").await;
    let (id, index) = world
        .configured_connector("badsnap", s3_configuration(&world, &bucket))
        .await;
    let invalid = filter(r123(), json!({}), "valid");
    set_filtering(&world, &id, invalid.clone(), invalid).await;
    let job = world.create_pending_job(&id).await;
    let plain = filter(json!([default_rule(0)]), json!({}), "valid");
    set_filtering(&world, &id, plain.clone(), plain).await;

    let svc = ServiceProcess::start(&world, &world.config_yaml(&[&id], ""), &[]);
    let done = world.wait_job(&job, ENDED, secs(20), &[&svc]).await;
    assert_eq!(done["status"], "error", "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    // Elastic renders the state with its enum repr (`FilteringValidationState.INVALID`).
    assert!(
        error.starts_with("Filtering in state FilteringValidationState.INVALID, errors: "),
        "{error}"
    );
    assert!(
        error.contains("uses a match all regexps") && error.ends_with('.'),
        "{error}"
    );
    assert_eq!(world.count(&index).await, 0);
    let c = world.connector(&id).await.unwrap();
    assert_eq!(c["last_sync_status"], "error", "{c}");
    assert_eq!(c["last_sync_error"], error, "{c}");
}
