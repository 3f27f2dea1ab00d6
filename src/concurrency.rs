//! Adaptive concurrency: how many requests of one kind a job keeps in flight (docs/architecture.md,
//! "Back-pressure").
//!
//! An [`AdaptiveLimit`] holds a limit between 1 and the configured maximum (the ceiling, and the
//! start). A caller takes a [`Permit`] per request attempt and reports how the attempt went:
//!
//! * **multiplicative decrease** — halved at once on a throttling answer (HTTP 429 or 503, S3
//!   `SlowDown`) to a request sent since the last decrease (a burst sent under the old limit counts
//!   once); cut by a tenth when a window's mean round-trip time rose well above its baseline (an
//!   exponentially weighted moving average, with its deviation);
//! * otherwise the limit moves at most once per *window*, as long as the baseline round trip;
//! * **additive increase** — one more when the window was fast, unthrottled and used every permit.
//!
//! Only successful attempts are timed: a refusal is often quick and would lower the baseline.
//! Lowering the limit never cancels a request: permits in use are retired as they come back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Weight of a new window in the moving baseline.
const EWMA_ALPHA: f64 = 0.4;
/// A window is slow when its mean exceeds the baseline by this many deviations...
const DEVIATION_SCALE: f64 = 2.5;
/// ...and by at least this fraction of the baseline (steady round trips have no deviation).
const MIN_RISE: f64 = 0.25;
/// The window before any success has given a round-trip time.
const FIRST_WINDOW: Duration = Duration::from_millis(100);
/// The decrease after a throttling answer: the server said so.
const THROTTLED_RATIO: f64 = 0.5;
/// The decrease after a latency rise: a guess, so a gentler one.
const SLOW_RATIO: f64 = 0.9;

/// How one attempt went, as the limit sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Answered and accepted after this round trip.
    Ok(Duration),
    /// The server asked us to slow down (429, 503, S3 `SlowDown`).
    Throttled,
    /// Failed for another reason: no signal either way.
    Failed,
}

/// Why the limit moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Raised,
    Throttled,
    Slow,
}

/// The moving baseline of round-trip times, in seconds.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    mean: f64,
    variance: f64,
}

impl Baseline {
    fn update(&mut self, sample: f64) {
        let diff = sample - self.mean;
        self.mean += EWMA_ALPHA * diff;
        self.variance = (1.0 - EWMA_ALPHA) * (self.variance + EWMA_ALPHA * diff * diff);
    }

    fn slow(&self, sample: f64) -> bool {
        let rise = (DEVIATION_SCALE * self.variance.sqrt()).max(MIN_RISE * self.mean);
        sample > self.mean + rise
    }
}

/// The arithmetic of the limit, without the semaphore: fed outcomes with their times.
#[derive(Debug)]
struct Controller {
    max: usize,
    limit: usize,
    in_flight: usize,
    baseline: Option<Baseline>,
    window_end: Option<Instant>,
    /// Sum and count of the current window's successful round trips.
    sum: f64,
    count: u32,
    throttled: bool,
    /// Every permit was in use at some point of the window.
    saturated: bool,
    /// Counts decreases: a refusal of a request sent before the last one is old news.
    epoch: u64,
}

impl Controller {
    fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            max,
            limit: max,
            in_flight: 0,
            baseline: None,
            window_end: None,
            sum: 0.0,
            count: 0,
            throttled: false,
            saturated: false,
            epoch: 0,
        }
    }

    /// One attempt starts; returns its epoch, to give back with its outcome.
    fn started(&mut self) -> u64 {
        self.in_flight += 1;
        if self.in_flight >= self.limit {
            self.saturated = true;
        }
        self.epoch
    }

    /// An attempt of `epoch` ended at `now`; returns the new limit when this closed a window and
    /// moved it. A burst sent under a higher limit is refused as one: only its first refusal counts.
    fn ended(&mut self, now: Instant, outcome: Outcome, epoch: u64) -> Option<(usize, Change)> {
        self.in_flight = self.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Throttled if epoch < self.epoch => {}
            Outcome::Ok(rtt) => {
                self.sum += rtt.as_secs_f64();
                self.count += 1;
            }
            Outcome::Throttled => self.throttled = true,
            Outcome::Failed => {}
        }
        let mean = (self.count > 0).then(|| self.sum / f64::from(self.count));
        let end = match self.window_end {
            Some(end) => end,
            // The first success sets the baseline and opens the first window.
            None if mean.is_some() => {
                let mean = mean.unwrap_or_default();
                self.baseline = Some(Baseline {
                    mean,
                    variance: 0.0,
                });
                self.window_end = Some(now + Duration::from_secs_f64(mean));
                self.reset_window();
                return None;
            }
            // A server that refuses everything from the start must still slow us down.
            None if self.throttled => now,
            None => return None,
        };
        // A refusal acts at once: it frees its permit at once too, and within one window that
        // permit alone would draw refusal after refusal.
        if now < end && !self.throttled {
            return None;
        }
        let change = self.adjust(mean);
        if let Some(mean) = mean {
            match &mut self.baseline {
                Some(b) => b.update(mean),
                None => {
                    self.baseline = Some(Baseline {
                        mean,
                        variance: 0.0,
                    })
                }
            }
        }
        let window = self
            .baseline
            .map_or(FIRST_WINDOW, |b| Duration::from_secs_f64(b.mean));
        self.window_end = Some(now + window);
        self.reset_window();
        change.map(|c| (self.limit, c))
    }

    fn adjust(&mut self, mean: Option<f64>) -> Option<Change> {
        let (limit, change) = match (self.baseline, mean) {
            _ if self.throttled => (scaled(self.limit, THROTTLED_RATIO), Change::Throttled),
            (Some(b), Some(m)) if b.slow(m) => (scaled(self.limit, SLOW_RATIO), Change::Slow),
            (Some(b), Some(m)) if self.saturated && m <= b.mean && self.limit < self.max => {
                (self.limit + 1, Change::Raised)
            }
            _ => return None,
        };
        (limit != self.limit).then(|| {
            if limit < self.limit {
                self.epoch += 1;
            }
            self.limit = limit;
            change
        })
    }

    fn reset_window(&mut self) {
        (self.sum, self.count) = (0.0, 0);
        self.throttled = false;
        self.saturated = false;
    }
}

/// `limit × ratio`, rounded down, at least 1.
fn scaled(limit: usize, ratio: f64) -> usize {
    ((limit as f64 * ratio) as usize).max(1)
}

struct Shared {
    stage: &'static str,
    semaphore: Arc<Semaphore>,
    state: Mutex<State>,
}

struct State {
    controller: Controller,
    /// Permits still to retire after a decrease (they were in use when it happened).
    debt: usize,
    /// When false the limit stays at the maximum (`elasticsearch.bulk.adaptive_concurrency`).
    adaptive: bool,
}

/// The adaptive limit of one stage of one job; cheap to clone (the clones share the limit).
#[derive(Clone)]
pub struct AdaptiveLimit {
    shared: Arc<Shared>,
}

impl AdaptiveLimit {
    /// A limit for `stage` (the metric's label, e.g. `bulk`) starting at `max`, its ceiling. With
    /// `adaptive` false it stays at `max`: a plain semaphore.
    pub fn new(stage: &'static str, max: usize, adaptive: bool) -> Self {
        let controller = Controller::new(max);
        let limit = controller.limit;
        crate::metrics::concurrency_limit_moved(stage, limit as i64);
        Self {
            shared: Arc::new(Shared {
                stage,
                semaphore: Arc::new(Semaphore::new(limit)),
                state: Mutex::new(State {
                    controller,
                    debt: 0,
                    adaptive,
                }),
            }),
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.shared.lock().controller.limit
    }

    /// Waits for a free permit; hold it for one attempt, then [`Permit::record`] how it went.
    pub async fn acquire(&self) -> Permit {
        let permit = self
            .shared
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (epoch, probing) = {
            let mut state = self.shared.lock();
            let epoch = state.controller.started();
            (epoch, state.adaptive && state.controller.limit > 1)
        };
        Permit {
            shared: self.shared.clone(),
            epoch,
            probing,
            permit: Some(permit),
            outcome: None,
            started: Instant::now(),
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state holds no invariant a panic could break half-way that matters more than going on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(&self, permit: OwnedSemaphorePermit, outcome: Outcome, epoch: u64) {
        let mut state = self.lock();
        let before = state.controller.limit;
        let moved = state.controller.ended(Instant::now(), outcome, epoch);
        if !state.adaptive {
            state.controller.limit = before;
        } else if let Some((limit, change)) = moved {
            self.resize(&mut state, before, limit);
            match change {
                Change::Raised => {
                    tracing::debug!(stage = self.stage, limit, "concurrency limit raised")
                }
                Change::Throttled | Change::Slow => tracing::info!(
                    stage = self.stage,
                    limit,
                    cause = if change == Change::Throttled {
                        "throttled"
                    } else {
                        "latency"
                    },
                    "concurrency limit lowered"
                ),
            }
        }
        if state.debt > 0 {
            state.debt -= 1;
            permit.forget();
        }
    }

    fn resize(&self, state: &mut State, before: usize, after: usize) {
        if after > before {
            let mut add = after - before;
            let repaid = add.min(state.debt);
            state.debt -= repaid;
            add -= repaid;
            self.semaphore.add_permits(add);
        } else {
            let cut = before - after;
            let forgotten = self.semaphore.forget_permits(cut);
            state.debt += cut - forgotten;
        }
        crate::metrics::concurrency_limit_moved(self.stage, after as i64 - before as i64);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let limit = self.lock().controller.limit;
        crate::metrics::concurrency_limit_moved(self.stage, -(limit as i64));
    }
}

/// Leave to send one request; dropping it without [`record`](Self::record) counts as
/// [`Outcome::Failed`].
pub struct Permit {
    shared: Arc<Shared>,
    epoch: u64,
    probing: bool,
    permit: Option<OwnedSemaphorePermit>,
    outcome: Option<Outcome>,
    started: Instant,
}

impl Permit {
    /// How long since the permit was granted: the round trip of a request sent right away.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether the limit was still above its floor of 1 when this permit was granted: a refusal
    /// then is the limit finding the server's level (it halves, or probes one above it), not yet
    /// proof that the server cannot take even one request.
    pub fn probing(&self) -> bool {
        self.probing
    }

    /// Records how the attempt went; the permit is given back when dropped.
    pub fn record(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.shared
                .release(permit, self.outcome.unwrap_or(Outcome::Failed), self.epoch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Runs `n` attempts per window, all at once (saturating the limit when `n` ≥ it), each with
    /// `outcome`, closing the window after `rtt`; returns the limit after each window.
    fn windows(
        c: &mut Controller,
        t: &mut Instant,
        n: usize,
        outcome: Outcome,
        count: usize,
    ) -> Vec<usize> {
        let rtt = match outcome {
            Outcome::Ok(rtt) => rtt,
            _ => 10 * MS,
        };
        (0..count)
            .map(|_| {
                let epochs: Vec<u64> = (0..n.min(c.limit)).map(|_| c.started()).collect();
                *t += rtt;
                for epoch in epochs {
                    c.ended(*t, outcome, epoch);
                }
                c.limit
            })
            .collect()
    }

    #[test]
    fn starts_at_the_ceiling_and_halves_on_throttling_down_to_one() {
        let (mut c, mut t) = (Controller::new(16), Instant::now());
        windows(&mut c, &mut t, 16, Outcome::Ok(10 * MS), 3);
        assert_eq!(c.limit, 16, "fast answers at the ceiling keep it");
        let limits = windows(&mut c, &mut t, 16, Outcome::Throttled, 6);
        assert_eq!(limits, [8, 4, 2, 1, 1, 1]);
    }

    #[test]
    fn a_server_that_refuses_from_the_start_still_lowers_the_limit() {
        let (mut c, t) = (Controller::new(8), Instant::now());
        let (a, b) = (c.started(), c.started());
        assert_eq!(
            c.ended(t, Outcome::Throttled, a),
            Some((4, Change::Throttled))
        );
        assert_eq!(c.ended(t, Outcome::Throttled, b), None, "the same burst");
        assert_eq!(c.limit, 4);
    }

    #[test]
    fn a_refusal_acts_at_once_even_within_a_window() {
        let (mut c, mut t) = (Controller::new(4), Instant::now());
        windows(&mut c, &mut t, 4, Outcome::Ok(100 * MS), 2);
        let first = c.started();
        assert_eq!(
            c.ended(t + MS, Outcome::Throttled, first),
            Some((2, Change::Throttled))
        );
        // The freed permit is taken again and refused again: a request of the new limit, so it counts.
        let again = c.started();
        assert_eq!(
            c.ended(t + 2 * MS, Outcome::Throttled, again),
            Some((1, Change::Throttled))
        );
    }

    #[test]
    fn grows_back_one_at_a_time_while_fast_and_saturated_up_to_the_ceiling() {
        let (mut c, mut t) = (Controller::new(6), Instant::now());
        windows(&mut c, &mut t, 6, Outcome::Ok(10 * MS), 2);
        windows(&mut c, &mut t, 6, Outcome::Throttled, 2);
        assert_eq!(c.limit, 1);
        let limits = windows(&mut c, &mut t, 6, Outcome::Ok(10 * MS), 7);
        assert_eq!(limits, [2, 3, 4, 5, 6, 6, 6]);
    }

    #[test]
    fn does_not_grow_without_demand() {
        let (mut c, mut t) = (Controller::new(6), Instant::now());
        windows(&mut c, &mut t, 6, Outcome::Ok(10 * MS), 1);
        windows(&mut c, &mut t, 6, Outcome::Throttled, 1);
        assert_eq!(c.limit, 3);
        let limits = windows(&mut c, &mut t, 1, Outcome::Ok(10 * MS), 4);
        assert_eq!(
            limits,
            [3, 3, 3, 3],
            "one request at a time never needs more permits"
        );
    }

    #[test]
    fn a_latency_rise_well_above_the_baseline_lowers_gently_and_noise_does_not() {
        let (mut c, mut t) = (Controller::new(20), Instant::now());
        windows(&mut c, &mut t, 20, Outcome::Ok(10 * MS), 5);
        // 11 ms against a 10 ms baseline: within the allowed rise.
        assert_eq!(windows(&mut c, &mut t, 20, Outcome::Ok(11 * MS), 1), [20]);
        let limits = windows(&mut c, &mut t, 20, Outcome::Ok(100 * MS), 2);
        assert_eq!(limits, [18, 16]);
    }

    #[test]
    fn failures_other_than_throttling_do_not_move_the_limit() {
        let (mut c, mut t) = (Controller::new(4), Instant::now());
        windows(&mut c, &mut t, 4, Outcome::Ok(10 * MS), 2);
        assert_eq!(windows(&mut c, &mut t, 4, Outcome::Failed, 3), [4, 4, 4]);
    }

    #[test]
    fn the_baseline_follows_a_moving_average() {
        let mut b = Baseline {
            mean: 1.0,
            variance: 0.0,
        };
        b.update(2.0);
        assert!((b.mean - 1.4).abs() < 1e-9);
        assert!((b.variance - 0.6 * 0.4).abs() < 1e-9);
        assert!(!b.slow(1.5) && b.slow(3.0));
    }

    #[tokio::test]
    async fn permits_follow_the_limit_and_in_use_ones_retire_when_lowered() {
        let limit = AdaptiveLimit::new("test", 4, true);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(limit.acquire().await);
        }
        assert_eq!(limit.shared.semaphore.available_permits(), 0);
        // The first answer is a refusal: 4 → 2, and two of the permits in use will be retired.
        let mut first = held.pop().unwrap();
        first.record(Outcome::Throttled);
        drop(first);
        assert_eq!(limit.limit(), 2);
        held.pop();
        assert_eq!(limit.shared.semaphore.available_permits(), 0, "retired");
        held.clear();
        assert_eq!(limit.shared.semaphore.available_permits(), 2);
        let a = limit.acquire().await;
        let _b = limit.acquire().await;
        let third = tokio::time::timeout(Duration::from_millis(20), limit.acquire()).await;
        assert!(third.is_err(), "a third request waits");
        drop(a);
        let _c = limit.acquire().await;
    }

    #[tokio::test]
    async fn a_fixed_limit_never_moves() {
        let limit = AdaptiveLimit::new("test", 3, false);
        for _ in 0..5 {
            let mut p = limit.acquire().await;
            p.record(Outcome::Throttled);
        }
        assert_eq!(limit.limit(), 3);
        assert_eq!(limit.shared.semaphore.available_permits(), 3);
    }
}
