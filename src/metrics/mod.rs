//! Prometheus metrics and the health state behind `/readyz`.
//!
//! Every metric name lives in this module; call sites use the small functions below (one line each).
//! Labels are bounded and carry no secret and no object key: S3 operation names, extraction formats
//! (the extractor family, or `other`), job types and statuses, and connector ids (gauges of running
//! jobs only). Per-job counters already kept by the sync (listed, indexed, deleted, bytes, retries)
//! are folded into the process totals by [`jobs`], so the sync code needs no extra calls for them.
//! `README.md` ("Operating content-sync") lists the metrics.

mod http;
pub mod jobs;

pub use http::{ListenError, Listener};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "content_sync";

/// Every metric of the process, registered once.
pub(crate) struct Metrics {
    registry: Registry,
    pub objects_listed: IntCounter,
    pub objects_skipped: IntCounterVec,
    pub documents_indexed: IntCounter,
    pub documents_deleted: IntCounter,
    pub documents_failed: IntCounter,
    pub documents_too_large: IntCounter,
    pub indexed_bytes: IntCounter,
    pub downloaded_bytes: IntCounter,
    extractions: IntCounterVec,
    bulk_requests: IntCounterVec,
    bulk_request_duration: Histogram,
    pub bulk_retries: IntCounterVec,
    s3_requests: IntCounterVec,
    s3_request_duration: HistogramVec,
    pub jobs: IntCounterVec,
    pub job_duration: HistogramVec,
    pub job_running: IntGaugeVec,
    pub job_objects_listed: IntGaugeVec,
    pub job_documents_indexed: IntGaugeVec,
    pub job_documents_deleted: IntGaugeVec,
    pub job_expected_objects: IntGaugeVec,
    pub job_start_time: IntGaugeVec,
    es_last_answer: IntGauge,
    concurrency_limit: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c =
        IntCounter::with_opts(Opts::new(name, help).namespace(NAMESPACE)).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help).namespace(NAMESPACE), labels)
        .expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g =
        IntGaugeVec::new(Opts::new(name, help).namespace(NAMESPACE), labels).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help)
        .namespace(NAMESPACE)
        .buckets(buckets);
    let h = HistogramVec::new(opts, labels).expect("valid metric");
    registry
        .register(Box::new(h.clone()))
        .expect("unique metric");
    h
}

/// Request latencies: 5 ms to ~41 s.
fn request_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.005, 2.0, 14).expect("valid buckets")
}

/// Job durations: 1 s to ~9 h.
fn job_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(1.0, 2.0, 16).expect("valid buckets")
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let job = ["connector_id", "job_type"];
        let bulk_request_duration = Histogram::with_opts(
            HistogramOpts::new(
                "bulk_request_duration_seconds",
                "Latency of one _bulk request to Elasticsearch.",
            )
            .namespace(NAMESPACE)
            .buckets(request_buckets()),
        )
        .expect("valid metric");
        r.register(Box::new(bulk_request_duration.clone()))
            .expect("unique metric");
        Self {
            objects_listed: counter(
                &r,
                "objects_listed_total",
                "S3 objects listed by sync jobs.",
            ),
            objects_skipped: counter_vec(
                &r,
                "objects_skipped_total",
                "Listed objects not sent to Elasticsearch, by reason (excluded_by_rules, unchanged, resumed).",
                &["reason"],
            ),
            documents_indexed: counter(
                &r,
                "documents_indexed_total",
                "Documents Elasticsearch acknowledged as indexed.",
            ),
            documents_deleted: counter(
                &r,
                "documents_deleted_total",
                "Documents deleted because their object is gone.",
            ),
            documents_failed: counter(
                &r,
                "documents_failed_total",
                "Bulk items Elasticsearch rejected for good (after item retries).",
            ),
            documents_too_large: counter(
                &r,
                "documents_too_large_total",
                "Documents dropped because they exceed the bulk size limits even without their body.",
            ),
            indexed_bytes: counter(
                &r,
                "indexed_bytes_total",
                "Bytes of documents acknowledged as indexed.",
            ),
            downloaded_bytes: counter(
                &r,
                "downloaded_bytes_total",
                "Bytes of object content downloaded from S3 for extraction.",
            ),
            extractions: counter_vec(
                &r,
                "extractions_total",
                "Content extraction outcomes by format (extracted, failed, unavailable, too_large, unsupported).",
                &["format", "outcome"],
            ),
            bulk_requests: counter_vec(
                &r,
                "bulk_requests_total",
                "_bulk requests sent to Elasticsearch, by outcome (ok: answered 2xx; error).",
                &["outcome"],
            ),
            bulk_request_duration,
            bulk_retries: counter_vec(
                &r,
                "bulk_retries_total",
                "Bulk retries: whole requests (kind=request) and single items (kind=item).",
                &["kind"],
            ),
            s3_requests: counter_vec(
                &r,
                "s3_requests_total",
                "S3 API calls by operation and outcome (ok, error), retries included in one call.",
                &["operation", "outcome"],
            ),
            s3_request_duration: histogram_vec(
                &r,
                "s3_request_duration_seconds",
                "Latency of one S3 API call (for GetObject: until the response headers).",
                &["operation"],
                request_buckets(),
            ),
            jobs: counter_vec(
                &r,
                "jobs_total",
                "Sync jobs ended by this process, by type and final status.",
                &["job_type", "status"],
            ),
            job_duration: histogram_vec(
                &r,
                "job_duration_seconds",
                "Duration of sync jobs run by this process (this run of the job).",
                &["job_type"],
                job_buckets(),
            ),
            job_running: gauge_vec(&r, "job_running", "1 while a sync job runs here.", &job),
            job_objects_listed: gauge_vec(
                &r,
                "job_objects_listed",
                "Objects listed so far by the running job.",
                &job,
            ),
            job_documents_indexed: gauge_vec(
                &r,
                "job_documents_indexed",
                "Documents indexed so far by the running job (resumed jobs include earlier runs).",
                &job,
            ),
            job_documents_deleted: gauge_vec(
                &r,
                "job_documents_deleted",
                "Documents deleted so far by the running job.",
                &job,
            ),
            job_expected_objects: gauge_vec(
                &r,
                "job_expected_objects",
                "Estimated objects of the running job: documents in its index when it started (0: unknown).",
                &job,
            ),
            job_start_time: gauge_vec(
                &r,
                "job_start_time_seconds",
                "Unix time at which the running job started here.",
                &job,
            ),
            es_last_answer: {
                let g = IntGauge::with_opts(
                    Opts::new(
                        "elasticsearch_last_answer_age_seconds",
                        "Seconds since Elasticsearch last answered a request of this process (-1: never).",
                    )
                    .namespace(NAMESPACE),
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            concurrency_limit: gauge_vec(
                &r,
                "concurrency_limit",
                "Requests the running jobs may have in flight, by stage (bulk: _bulk requests; download: S3 downloads); lowered when the server throttles or slows down.",
                &["stage"],
            ),
            registry: r,
        }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

pub(crate) fn get() -> &'static Metrics {
    &METRICS
}

/// The exposition, in Prometheus text format 0.0.4; running jobs' counters are folded in first.
pub fn render() -> String {
    jobs::refresh();
    let m = get();
    let age = health()
        .es_answer_age()
        .map_or(-1, |a| a.as_secs().try_into().unwrap_or(i64::MAX));
    m.es_last_answer.set(age);
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&m.registry.gather(), &mut out)
        .expect("text encoding of gathered metrics");
    String::from_utf8(out).expect("the text format is UTF-8")
}

/// One S3 API call ended (`operation` is the SDK's operation name, e.g. `ListObjectsV2`).
pub fn s3_request(operation: &str, elapsed: Duration, ok: bool) {
    let m = get();
    m.s3_requests
        .with_label_values(&[operation, outcome(ok)])
        .inc();
    m.s3_request_duration
        .with_label_values(&[operation])
        .observe(elapsed.as_secs_f64());
}

/// One `_bulk` request ended (`ok`: answered with 2xx).
pub fn bulk_request(elapsed: Duration, ok: bool) {
    let m = get();
    m.bulk_requests.with_label_values(&[outcome(ok)]).inc();
    m.bulk_request_duration.observe(elapsed.as_secs_f64());
}

/// A stage's adaptive concurrency limit moved by `delta` (created, adjusted, or its job ended).
pub fn concurrency_limit_moved(stage: &str, delta: i64) {
    get()
        .concurrency_limit
        .with_label_values(&[stage])
        .add(delta);
}

/// What happened to one object's content; `key` only picks the format label (never exported).
pub fn extraction(key: &str, outcome: &str) {
    let format = crate::extract::format_for(key)
        .map_or_else(|| "other".to_owned(), |f| format!("{f:?}").to_lowercase());
    get()
        .extractions
        .with_label_values(&[format.as_str(), outcome])
        .inc();
}

fn outcome(ok: bool) -> &'static str {
    if ok { "ok" } else { "error" }
}

/// What `/readyz` answers from: preflight done, and when Elasticsearch last answered.
pub struct Health {
    preflight_done: AtomicBool,
    /// Milliseconds after `epoch` of the last answer, plus one (0: never).
    last_answer_ms: AtomicU64,
    epoch: Instant,
}

static HEALTH: LazyLock<Health> = LazyLock::new(|| Health {
    preflight_done: AtomicBool::new(false),
    last_answer_ms: AtomicU64::new(0),
    epoch: Instant::now(),
});

pub fn health() -> &'static Health {
    &HEALTH
}

impl Health {
    pub fn set_preflight_done(&self) {
        self.preflight_done.store(true, Ordering::Relaxed);
    }

    pub fn preflight_done(&self) -> bool {
        self.preflight_done.load(Ordering::Relaxed)
    }

    /// Elasticsearch answered a request (any HTTP status but 5xx).
    pub fn es_answered(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.last_answer_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// How long ago Elasticsearch last answered, if ever.
    pub fn es_answer_age(&self) -> Option<Duration> {
        match self.last_answer_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms - 1)),
            ),
        }
    }
}

/// The S3 clients' interceptor: one [`s3_request`] per API call, named by the SDK's operation.
#[derive(Debug)]
pub struct S3Interceptor;

#[derive(Debug, Clone)]
struct CallStart(Instant);

impl aws_smithy_types::config_bag::Storable for CallStart {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for S3Interceptor {
    fn name(&self) -> &'static str {
        "content-sync metrics"
    }

    fn read_before_execution(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state().store_put(CallStart(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _runtime_components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let elapsed = cfg
            .load::<CallStart>()
            .map_or(Duration::ZERO, |s| s.0.elapsed());
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map_or("unknown", |m| m.name());
        let ok = matches!(context.output_or_error(), Some(Ok(_)));
        s3_request(operation, elapsed, ok);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions_and_render_as_text() {
        s3_request("ListObjectsV2", Duration::from_millis(12), true);
        bulk_request(Duration::from_millis(30), false);
        extraction("reports/q1.PDF", "extracted");
        extraction("a/b/no-extension", "unsupported");
        concurrency_limit_moved("download", 10);
        let text = render();
        for line in [
            "content_sync_s3_requests_total{operation=\"ListObjectsV2\",outcome=\"ok\"}",
            "content_sync_s3_request_duration_seconds_bucket{operation=\"ListObjectsV2\",le=\"0.02\"}",
            "content_sync_bulk_requests_total{outcome=\"error\"}",
            "content_sync_extractions_total{format=\"pdf\",outcome=\"extracted\"}",
            "content_sync_extractions_total{format=\"other\",outcome=\"unsupported\"}",
            "# TYPE content_sync_concurrency_limit gauge",
            "content_sync_concurrency_limit{stage=\"download\"}",
            "# TYPE content_sync_documents_indexed_total counter",
            "# TYPE content_sync_bulk_request_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        assert!(!text.contains("q1"), "an object key leaked into a label");
    }

    #[test]
    fn the_last_answer_age_grows_from_the_last_answer() {
        let h = Health {
            preflight_done: AtomicBool::new(false),
            last_answer_ms: AtomicU64::new(0),
            epoch: Instant::now() - Duration::from_secs(100),
        };
        assert_eq!(h.es_answer_age(), None);
        h.es_answered();
        assert!(h.es_answer_age().unwrap() < Duration::from_secs(50));
        assert!(!h.preflight_done());
        h.set_preflight_done();
        assert!(h.preflight_done());
    }
}
