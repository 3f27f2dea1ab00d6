//! Running jobs: their live counters folded into the process totals, their progress gauges, and the
//! periodic progress line of the log.
//!
//! A job's [`Progress`] is the one source of its counts; [`refresh`] (run at each scrape and when a
//! job ends) adds what each running job did since the last refresh to the totals, so the totals
//! count every document exactly once and only go up.

use super::get;
use crate::sync::progress::Progress;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A job's counts at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Snapshot {
    listed: u64,
    excluded: u64,
    unchanged: u64,
    resumed: u64,
    indexed: u64,
    indexed_bytes: u64,
    deleted: u64,
    failed: u64,
    too_large: u64,
    item_retries: u64,
    request_retries: u64,
    downloaded_bytes: u64,
}

impl Snapshot {
    fn of(p: &Progress) -> Self {
        let l = &p.listing;
        let c = &p.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Self {
            listed: load(&l.listed),
            excluded: load(&l.excluded_by_rules),
            unchanged: load(&l.unchanged_skipped),
            resumed: load(&l.resumed_skipped),
            indexed: load(&c.indexed),
            indexed_bytes: load(&c.indexed_bytes),
            deleted: load(&c.deleted),
            failed: load(&c.item_errors),
            too_large: load(&c.dropped_too_large),
            item_retries: load(&c.item_retries),
            request_retries: load(&c.request_retries),
            downloaded_bytes: load(&p.content.downloaded_bytes),
        }
    }

    /// Adds what happened between `seen` and `self` to the totals.
    fn add_since(&self, seen: &Snapshot) {
        let m = get();
        let d = |now: u64, then: u64| now.saturating_sub(then);
        m.objects_listed.inc_by(d(self.listed, seen.listed));
        for (reason, now, then) in [
            ("excluded_by_rules", self.excluded, seen.excluded),
            ("unchanged", self.unchanged, seen.unchanged),
            ("resumed", self.resumed, seen.resumed),
        ] {
            m.objects_skipped
                .with_label_values(&[reason])
                .inc_by(d(now, then));
        }
        m.documents_indexed.inc_by(d(self.indexed, seen.indexed));
        m.indexed_bytes
            .inc_by(d(self.indexed_bytes, seen.indexed_bytes));
        m.documents_deleted.inc_by(d(self.deleted, seen.deleted));
        m.documents_failed.inc_by(d(self.failed, seen.failed));
        m.documents_too_large
            .inc_by(d(self.too_large, seen.too_large));
        m.bulk_retries
            .with_label_values(&["item"])
            .inc_by(d(self.item_retries, seen.item_retries));
        m.bulk_retries
            .with_label_values(&["request"])
            .inc_by(d(self.request_retries, seen.request_retries));
        m.downloaded_bytes
            .inc_by(d(self.downloaded_bytes, seen.downloaded_bytes));
    }
}

struct Running {
    job_id: String,
    labels: [String; 2],
    progress: Arc<Progress>,
    started: Instant,
    /// What the totals hold of this job so far.
    seen: Mutex<Snapshot>,
    /// Estimated objects (documents in the index when the job started; 0: unknown).
    expected: AtomicU64,
}

impl Running {
    fn labels(&self) -> [&str; 2] {
        [self.labels[0].as_str(), self.labels[1].as_str()]
    }

    /// Folds new counts into the totals and updates the gauges.
    fn refresh(&self) -> Snapshot {
        let now = Snapshot::of(&self.progress);
        let mut seen = self.seen.lock().expect("lock");
        now.add_since(&seen);
        *seen = now;
        drop(seen);
        let m = get();
        let l = self.labels();
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        m.job_objects_listed
            .with_label_values(&l)
            .set(gauge(now.listed));
        m.job_documents_indexed
            .with_label_values(&l)
            .set(gauge(now.indexed));
        m.job_documents_deleted
            .with_label_values(&l)
            .set(gauge(now.deleted));
        m.job_expected_objects
            .with_label_values(&l)
            .set(gauge(self.expected.load(Ordering::Relaxed)));
        now
    }
}

static RUNNING: Mutex<Vec<Arc<Running>>> = Mutex::new(Vec::new());

/// Folds every running job's new counts into the totals.
pub fn refresh() {
    let running: Vec<Arc<Running>> = RUNNING.lock().expect("lock").clone();
    for job in running {
        job.refresh();
    }
}

/// A job being watched, from [`start`] until [`JobWatch::end`] (or until it is dropped).
pub struct JobWatch {
    job: Arc<Running>,
    ended: std::sync::atomic::AtomicBool,
}

/// Starts watching a job that begins now with `progress` (whose counters may continue a resumed job's:
/// only what this run adds is counted).
pub fn start(
    job_id: &str,
    connector_id: &str,
    job_type: &str,
    progress: Arc<Progress>,
) -> JobWatch {
    let job = Arc::new(Running {
        job_id: job_id.to_owned(),
        labels: [connector_id.to_owned(), job_type.to_owned()],
        seen: Mutex::new(Snapshot::of(&progress)),
        progress,
        started: Instant::now(),
        expected: AtomicU64::new(0),
    });
    let m = get();
    let l = job.labels();
    m.job_running.with_label_values(&l).set(1);
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    m.job_start_time
        .with_label_values(&l)
        .set(i64::try_from(unix).unwrap_or(0));
    job.refresh();
    RUNNING.lock().expect("lock").push(job.clone());
    JobWatch {
        job,
        ended: std::sync::atomic::AtomicBool::new(false),
    }
}

impl JobWatch {
    /// Sets the estimated number of objects, which gives the progress line an ETA.
    pub fn expect(&self, objects: u64) {
        self.job.expected.store(objects, Ordering::Relaxed);
    }

    /// The job ended with `status` (the one written to Elasticsearch): its last counts go into the
    /// totals, its gauges go away, and the outcome and duration are recorded. Once; later calls do
    /// nothing.
    pub fn end(&self, status: &str) {
        if self.ended.swap(true, Ordering::Relaxed) {
            return;
        }
        self.job.refresh();
        RUNNING
            .lock()
            .expect("lock")
            .retain(|j| !Arc::ptr_eq(j, &self.job));
        let m = get();
        let l = self.job.labels();
        for gauge in [
            &m.job_running,
            &m.job_objects_listed,
            &m.job_documents_indexed,
            &m.job_documents_deleted,
            &m.job_expected_objects,
            &m.job_start_time,
        ] {
            let _ = gauge.remove_label_values(&l);
        }
        let job_type = l[1];
        m.jobs.with_label_values(&[job_type, status]).inc();
        m.job_duration
            .with_label_values(&[job_type])
            .observe(self.job.started.elapsed().as_secs_f64());
    }

    /// Logs one progress line: counts, rate, and an ETA when the expected total is known and not
    /// reached yet.
    pub fn log_progress(&self) {
        let now = self.job.refresh();
        let line = ProgressLine::new(
            now.listed,
            self.job.started.elapsed().as_secs_f64(),
            self.job.expected.load(Ordering::Relaxed),
        );
        tracing::info!(
            connector_id = %self.job.labels[0],
            job_id = %self.job.job_id,
            job_type = %self.job.labels[1],
            listed = now.listed,
            indexed = now.indexed,
            deleted = now.deleted,
            skipped = now.excluded + now.unchanged + now.resumed,
            failed = now.failed,
            objects_per_sec = line.rate,
            elapsed_secs = line.elapsed_secs,
            expected = line.expected,
            eta_secs = line.eta_secs,
            "sync progress"
        );
    }
}

impl Drop for JobWatch {
    /// The runner ends a job without a status of its own only when another instance took it over.
    fn drop(&mut self) {
        self.end("taken_over");
    }
}

/// The derived figures of a progress line.
#[derive(Debug, PartialEq)]
struct ProgressLine {
    /// Objects listed per second, one decimal.
    rate: f64,
    elapsed_secs: u64,
    expected: Option<u64>,
    eta_secs: Option<u64>,
}

impl ProgressLine {
    fn new(listed: u64, elapsed: f64, expected: u64) -> Self {
        let rate = if elapsed > 0.0 {
            listed as f64 / elapsed
        } else {
            0.0
        };
        let eta_secs = (expected > listed && rate > 0.0)
            .then(|| ((expected - listed) as f64 / rate).ceil() as u64);
        Self {
            rate: (rate * 10.0).round() / 10.0,
            elapsed_secs: elapsed as u64,
            expected: (expected > 0).then_some(expected),
            eta_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::bulk::Tally;

    #[test]
    fn eta_only_while_the_expected_total_is_ahead() {
        let l = ProgressLine::new(1_000, 10.0, 5_000);
        assert_eq!(l.rate, 100.0);
        assert_eq!(l.eta_secs, Some(40));
        assert_eq!(l.expected, Some(5_000));
        assert_eq!(ProgressLine::new(1_000, 10.0, 0).eta_secs, None);
        assert_eq!(ProgressLine::new(6_000, 10.0, 5_000).eta_secs, None);
        assert_eq!(ProgressLine::new(0, 0.0, 5_000).eta_secs, None);
    }

    #[test]
    fn totals_count_only_what_this_run_adds_and_once() {
        let m = get();
        let before = m.documents_indexed.get();
        // A resumed job: 40 documents were indexed by an earlier run.
        let base = Tally {
            indexed: 40,
            indexed_bytes: 4_000,
            deleted: 0,
        };
        let progress = Arc::new(Progress::new(base, None));
        let watch = start("job-1", "conn-1", "full", progress.clone());
        progress.counters.indexed.fetch_add(5, Ordering::Relaxed);
        refresh();
        refresh();
        progress.counters.indexed.fetch_add(2, Ordering::Relaxed);
        watch.end("completed");
        watch.end("error");
        drop(watch);
        // Other tests may index concurrently in this process: at least ours, counted once.
        let added = m.documents_indexed.get() - before;
        assert!((7..40).contains(&added), "{added}");
        assert!(m.jobs.with_label_values(&["full", "completed"]).get() >= 1);
        let text = super::super::render();
        assert!(
            !text.contains("conn-1"),
            "gauges of an ended job remain:\n{text}"
        );
    }
}
