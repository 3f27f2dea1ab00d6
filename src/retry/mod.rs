//! The one retry policy of our network calls (Elasticsearch, and S3 downloads), its backoff, and
//! the one list of transient HTTP statuses.
//!
//! The policy (how many attempts, how long to wait between them, when to give up because the
//! service stops) is separate from the classification (which outcome deserves another attempt):
//! each caller classifies its own outcomes — the Elasticsearch client by status and transport
//! error, the bulk sink by request and by item, preflight by "the system indices are not there
//! yet", S3 downloads by status, S3 error code and transport error.

pub mod backoff;

pub use backoff::Backoff;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Whether an HTTP status is transient: throttling, or a server error that may pass.
pub fn transient_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// What a caller makes of one attempt's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Success, or a failure another attempt would not change.
    Final,
    /// Worth another attempt, if the policy allows one.
    Retry,
}

/// The service stopped while a call waited to be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// At most `max_attempts` attempts, or as many as fit in a total time, with jittered exponential
/// pauses between them.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Backoff,
    /// Attempts stop once this much time has passed since the first one began.
    within: Option<Duration>,
}

impl RetryPolicy {
    /// `max_attempts` counts the first attempt; 0 is taken as 1.
    pub fn new(max_attempts: u32, backoff: Backoff) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            backoff,
            within: None,
        }
    }

    /// As many attempts as fit in `total`, counted from the first attempt's start: no pause runs
    /// past it, so the last attempt happens right at it, and a failure after it is final.
    pub fn within(total: Duration, backoff: Backoff) -> Self {
        Self {
            max_attempts: u32::MAX,
            backoff,
            within: Some(total),
        }
    }

    /// One attempt, no retry.
    pub fn once() -> Self {
        Self::new(1, Backoff::new(Duration::ZERO, Duration::ZERO))
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The pause before the attempt after `attempt` (1-based), or `None` when `attempt` was the
    /// last one allowed.
    pub fn pause_after(&self, attempt: u32) -> Option<Duration> {
        (attempt < self.max_attempts).then(|| self.backoff.delay(attempt))
    }

    /// The jittered pause after `attempt` (1-based), whether or not another attempt is allowed.
    pub fn pause(&self, attempt: u32) -> Duration {
        self.backoff.delay(attempt)
    }

    /// Calls `call` (with the attempt number, from 1) until `classify` calls its outcome
    /// [`Verdict::Final`] or the attempts run out, and returns the last outcome. Before each retry
    /// `on_retry` hears the attempt, the pause and the outcome (to log it); `cancel` firing during
    /// a pause ends the call with [`Interrupted`].
    pub async fn run<T, Fut>(
        &self,
        cancel: Option<&CancellationToken>,
        mut call: impl FnMut(u32) -> Fut,
        mut classify: impl FnMut(&T) -> Verdict,
        mut on_retry: impl FnMut(u32, Duration, &T),
    ) -> Result<T, Interrupted>
    where
        Fut: Future<Output = T>,
    {
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = call(attempt).await;
            let pause = match classify(&outcome) {
                Verdict::Final => None,
                Verdict::Retry => self
                    .pause_after(attempt)
                    .and_then(|pause| match self.within {
                        None => Some(pause),
                        Some(total) => {
                            let left = total.saturating_sub(started.elapsed());
                            (!left.is_zero()).then(|| pause.min(left))
                        }
                    }),
            };
            let Some(pause) = pause else {
                return Ok(outcome);
            };
            on_retry(attempt, pause, &outcome);
            match cancel {
                Some(cancel) => tokio::select! {
                    _ = cancel.cancelled() => return Err(Interrupted),
                    _ = tokio::time::sleep(pause) => {}
                },
                None => tokio::time::sleep(pause).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy::new(
            attempts,
            Backoff::new(Duration::from_millis(1), Duration::from_millis(2)),
        )
    }

    #[tokio::test]
    async fn retries_what_the_caller_calls_transient_up_to_the_limit() {
        let mut calls = Vec::new();
        let mut retries = 0;
        let last = quick(3)
            .run(
                None,
                |attempt| {
                    calls.push(attempt);
                    async move { 503u16 }
                },
                |status| {
                    if transient_status(*status) {
                        Verdict::Retry
                    } else {
                        Verdict::Final
                    }
                },
                |_, _, _| retries += 1,
            )
            .await;
        assert_eq!(last, Ok(503));
        assert_eq!(calls, [1, 2, 3]);
        assert_eq!(retries, 2);
    }

    #[tokio::test]
    async fn a_final_outcome_ends_at_once_and_a_cancel_interrupts_the_pause() {
        let mut calls = 0;
        let ok = quick(5)
            .run(
                None,
                |_| {
                    calls += 1;
                    async { 404u16 }
                },
                |s| {
                    if transient_status(*s) {
                        Verdict::Retry
                    } else {
                        Verdict::Final
                    }
                },
                |_, _, _| {},
            )
            .await;
        assert_eq!((ok, calls), (Ok(404), 1));
        let cancel = CancellationToken::new();
        cancel.cancel();
        let slow = RetryPolicy::new(
            5,
            Backoff::new(Duration::from_secs(60), Duration::from_secs(60)),
        );
        let interrupted = slow
            .run(
                Some(&cancel),
                |_| async { 429u16 },
                |_| Verdict::Retry,
                |_, _, _| {},
            )
            .await;
        assert_eq!(interrupted, Err(Interrupted));
    }

    #[tokio::test(start_paused = true)]
    async fn a_total_time_bounds_the_attempts_and_the_last_comes_right_at_it() {
        let policy = RetryPolicy::within(
            Duration::from_secs(10),
            Backoff::new(Duration::from_secs(4), Duration::from_secs(10)),
        );
        let started = tokio::time::Instant::now();
        let mut at = Vec::new();
        let last = policy
            .run(
                None,
                |attempt| {
                    at.push(started.elapsed());
                    async move { attempt }
                },
                |_| Verdict::Retry,
                |_, _, _| {},
            )
            .await
            .unwrap();
        assert_eq!(at.last(), Some(&Duration::from_secs(10)), "{at:?}");
        assert_eq!(last as usize, at.len());
        assert!(at.len() >= 3, "{at:?}");
        let none =
            RetryPolicy::within(Duration::ZERO, Backoff::new(Duration::ZERO, Duration::ZERO));
        let mut calls = 0;
        let _ = none
            .run(
                None,
                |_| {
                    calls += 1;
                    async {}
                },
                |_| Verdict::Retry,
                |_, _, _| {},
            )
            .await;
        assert_eq!(calls, 1);
    }

    #[test]
    fn the_transient_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(transient_status(s));
        }
        for s in [400, 401, 403, 404, 409, 413] {
            assert!(!transient_status(s));
        }
    }
}
