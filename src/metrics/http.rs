//! The opt-in HTTP listener (`service.http.listen`): `/metrics`, `/healthz` and `/readyz`.
//!
//! `/healthz` answers 200 while the process serves requests at all. `/readyz` answers 200 once
//! preflight is done and Elasticsearch answered within the last [`READY_WINDOW`] — when no request of
//! the service did, the probe itself asks Elasticsearch (`GET /_cluster/health`, at most
//! [`PING_TIMEOUT`]) — and 503 otherwise, and from the moment a shutdown begins.

use super::{health, render};
use crate::es::EsClient;
use crate::es::client::Retry;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How recent an answer of Elasticsearch must be for `/readyz` to trust it without asking.
pub const READY_WINDOW: Duration = Duration::from_secs(10);
/// How long `/readyz` waits for its own request to Elasticsearch.
pub const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// A client must send its request headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {addr} (service.http.listen): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound listener; serving runs in a background task until the process ends.
pub struct Listener {
    pub addr: SocketAddr,
}

struct State {
    es: EsClient,
    shutdown: CancellationToken,
}

impl Listener {
    /// Binds `addr` and starts serving. `es` is the service's client, used by `/readyz` when nothing
    /// else asked Elasticsearch recently.
    pub async fn start(
        addr: SocketAddr,
        es: EsClient,
        shutdown: CancellationToken,
    ) -> Result<Listener, ListenError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ListenError::Bind { addr, source })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let state = Arc::new(State { es, shutdown });
        tokio::spawn(accept(listener, state));
        tracing::info!(address = %addr, "serving /metrics, /healthz and /readyz");
        Ok(Listener { addr })
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&state, &req).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}

async fn answer(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let mut resp = text(StatusCode::OK, render());
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match readiness(state).await {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n",
        ),
    }
}

async fn readiness(state: &State) -> Result<(), &'static str> {
    if state.shutdown.is_cancelled() {
        return Err("shutting down");
    }
    let h = health();
    if !h.preflight_done() {
        return Err("preflight checks not done");
    }
    if h.es_answer_age().is_some_and(|age| age < READY_WINDOW) {
        return Ok(());
    }
    // Any answer counts (the client records it); only the transport failing does not.
    let ping = state.es.send(
        hyper::Method::GET,
        &["_cluster", "health"],
        &[],
        None,
        Retry::Never,
    );
    let _ = tokio::time::timeout(PING_TIMEOUT, ping).await;
    match h.es_answer_age() {
        Some(age) if age < READY_WINDOW => Ok(()),
        _ => Err("elasticsearch did not answer"),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
