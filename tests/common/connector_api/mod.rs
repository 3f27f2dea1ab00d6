//! A test double of Elasticsearch's `_connector` APIs, for an Elasticsearch that lacks them (the
//! integ-test distribution has no ent-search module; the osmem stand-in has none either).
//!
//! A [`FaultProxy`] in front of the real node answers the endpoints the service uses in API mode
//! (see docs/protocol.md) and `GET /` itself, reading and writing the connector and job indices
//! the way ES does; everything else is forwarded. Each endpoint follows its file in ES's REST
//! specification (rest-api-spec/src/main/resources/rest-api-spec/api/connector.*.json): method,
//! path, required body, the request class's parser (unknown fields and missing required fields are
//! 400s with ES's exception types and reasons), its validation, its 404s, and its success status and
//! body.
//!
//! The double pretends to be one Elasticsearch version ([`TestWorld::connector_api_version`]): it
//! reports that version on `GET /`, and an endpoint that version did not have answers as a node
//! without it does (`no handler found for uri [..] and method [..]`, and so on).
//!
//! Modules: [`version`] (versions, routes, answers of absent routes), [`parse`] (ES-style body
//! parsing and error bodies), [`requests`] (per-endpoint request validation, pure), [`handlers`]
//! (the index reads and writes).

pub mod handlers;
pub mod parse;
pub mod requests;
pub mod version;

pub use parse::EsError;
pub use version::EsVersion;

use std::sync::Arc;

use super::TestWorld;
use super::proxy::{Fault, FaultProxy, Handler, Rule};
use handlers::{Answer, Es};
use version::{Endpoint, absent_answer, segments, wrong_method};

/// Everything a request to the double needs.
#[derive(Clone)]
struct Double {
    es: Es,
    version: EsVersion,
    /// The upstream is a real Elasticsearch (without the API): an absent route is forwarded so the
    /// node itself answers. Against the stand-in the answer is synthesized the same way.
    upstream_is_es: bool,
}

async fn handle(d: Double, method: String, target: String, body: Vec<u8>) -> Answer {
    let seg = segments(&target);
    if seg.is_empty() && matches!(method.as_str(), "GET" | "HEAD") {
        // The integ-test node has no rest-root module (`GET /` is a 405): the double is the root.
        return (200, d.version.root_info().to_string());
    }
    let Some((endpoint, param)) = Endpoint::route(&seg) else {
        return forward(&d, &method, &target, body).await;
    };
    let (major, minor) = endpoint.since();
    if !d.version.at_least(major, minor) {
        if d.upstream_is_es {
            return forward(&d, &method, &target, body).await;
        }
        return absent_answer(&method, &target);
    }
    if method != endpoint.method() {
        // The collection paths (`/_connector`, `/_connector/_sync_job`) have more methods, for
        // endpoints the double does not serve: the upstream answers those.
        if matches!(endpoint, Endpoint::List | Endpoint::SyncJobPost) {
            return forward(&d, &method, &target, body).await;
        }
        return wrong_method(&method, &target, endpoint.method());
    }
    serve(&d, endpoint, param.unwrap_or(""), &method, &target, &body)
        .await
        .unwrap_or_else(|e| e.answer())
}

async fn serve(
    d: &Double,
    endpoint: Endpoint,
    id: &str,
    method: &str,
    target: &str,
    body: &[u8],
) -> Result<Answer, parse::EsError> {
    let es = &d.es;
    Ok(match endpoint {
        // connector.list.json
        Endpoint::List => handlers::list(es, requests::list_params(target)?).await,
        // connector.check_in.json
        Endpoint::CheckIn => {
            requests::no_body(method, target, body)?;
            handlers::check_in(es, id).await
        }
        // connector.sync_job_post.json
        Endpoint::SyncJobPost => handlers::post_job(es, requests::post_job(body)?).await,
        // connector.sync_job_claim.json
        Endpoint::SyncJobClaim => handlers::claim(es, id, requests::claim(body)?).await,
        // connector.sync_job_update_stats.json
        Endpoint::SyncJobStats => handlers::stats(es, id, requests::stats(body, &d.version)?).await,
        // connector.update_filtering_validation.json
        Endpoint::FilteringValidation => {
            let validation = requests::filtering_validation(body)?;
            handlers::filtering(es, id, Some(validation)).await
        }
        // connector.update_active_filtering.json
        Endpoint::FilteringActivate => {
            requests::no_body(method, target, body)?;
            handlers::filtering(es, id, None).await
        }
    })
}

/// Sends the request on to the real Elasticsearch and relays its answer.
async fn forward(d: &Double, method: &str, target: &str, body: Vec<u8>) -> Answer {
    let (status, out) = d.es.raw(method, target, body).await;
    (status, String::from_utf8_lossy(&out).into_owned())
}

fn path_of(t: &str) -> &str {
    t.split('?').next().unwrap_or(t)
}

fn endpoint_of(path: &str) -> Option<Endpoint> {
    Endpoint::route(&segments(path)).map(|(e, _)| e)
}

impl TestWorld {
    /// Starts the `_connector` API double in front of this world's Elasticsearch, pretending to be
    /// the current Elasticsearch (9.5.4); give the service its `url()` as `elasticsearch.host`.
    /// Rule `i` of the returned proxy counts requests (any method) to endpoint `i` in this order:
    /// probe (`GET /_connector`), check-in, create job, claim, stats, filtering (validation and
    /// activation); then come the `extra` rules of [`connector_api_with`](Self::connector_api_with),
    /// then `GET /`.
    pub async fn connector_api(&self) -> FaultProxy {
        self.connector_api_with(vec![]).await
    }

    /// Like [`connector_api`](Self::connector_api), with more rules after the six (e.g. delays).
    pub async fn connector_api_with(&self, extra: Vec<Rule>) -> FaultProxy {
        self.connector_api_as(EsVersion::current(), extra).await
    }

    /// Like [`connector_api`](Self::connector_api), pretending to be Elasticsearch `version`
    /// (`"8.14.3"`): `GET /` reports it, and the endpoints it did not have answer as on a node
    /// without them (before 8.12 none; `_filtering/_validation` and `_activate` from 8.14; `_claim`
    /// and the `metadata` of `_stats` from 8.15).
    pub async fn connector_api_version(&self, version: &str) -> FaultProxy {
        self.connector_api_as(EsVersion::parse(version), vec![])
            .await
    }

    /// [`connector_api_version`](Self::connector_api_version) with extra rules.
    pub async fn connector_api_version_with(&self, version: &str, extra: Vec<Rule>) -> FaultProxy {
        self.connector_api_as(EsVersion::parse(version), extra)
            .await
    }

    async fn connector_api_as(&self, version: EsVersion, extra: Vec<Rule>) -> FaultProxy {
        let double = Double {
            es: Es {
                http: reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .expect("reqwest client"),
                url: self.es_url.clone(),
                auth: self.es_auth.clone(),
            },
            version,
            upstream_is_es: !self.es_stand_in,
        };
        let handler: Handler = Arc::new(move |method, target, body| {
            Box::pin(handle(double.clone(), method, target, body))
        });
        let rule = |desc: &str, f: fn(&str) -> bool| {
            Rule::when(
                desc,
                move |_, t| f(path_of(t)),
                Fault::Handle(handler.clone()),
            )
        };
        let mut rules = vec![
            rule("probe", |p| p == "/_connector"),
            rule("check-in", |p| endpoint_of(p) == Some(Endpoint::CheckIn)),
            rule("create job", |p| p == "/_connector/_sync_job"),
            rule("claim", |p| endpoint_of(p) == Some(Endpoint::SyncJobClaim)),
            rule("stats", |p| endpoint_of(p) == Some(Endpoint::SyncJobStats)),
            rule("filtering", |p| {
                matches!(
                    endpoint_of(p),
                    Some(Endpoint::FilteringValidation | Endpoint::FilteringActivate)
                )
            }),
        ];
        rules.extend(extra);
        rules.push(Rule::when(
            "GET /",
            |m, t| matches!(m, "GET" | "HEAD") && path_of(t) == "/",
            Fault::Handle(handler.clone()),
        ));
        FaultProxy::start(&self.es_url, rules).await
    }
}
