//! `service.max_errors` within `service.max_errors_span` (docs/protocol.md#service-loops-and-logs): each service loop counts the
//! unexpected errors of its polls; one error too many stops that loop, and with it the process,
//! so that a supervisor (Docker's restart policy, systemd) starts a fresh one.

use std::time::{Duration, Instant};

/// Why a service loop gave up.
#[derive(Debug, thiserror::Error)]
#[error(
    "too many errors in the {service}: {count} within {span_secs:.0} s (service.max_errors is {max}); last error: {last}"
)]
pub struct TooManyErrors {
    pub service: &'static str,
    pub count: u32,
    pub max: u32,
    pub span_secs: f64,
    pub last: String,
}

/// Counts errors in a window that starts at the first error and restarts once `span` has passed.
#[derive(Debug)]
pub struct ErrorBudget {
    service: &'static str,
    max: u32,
    span: Duration,
    count: u32,
    window_start: Option<Instant>,
}

impl ErrorBudget {
    pub fn new(service: &'static str, max: u32, span: Duration) -> ErrorBudget {
        ErrorBudget {
            service,
            max,
            span,
            count: 0,
            window_start: None,
        }
    }

    /// Records one error seen at `now`; `Err` when that makes more than `max` in the window.
    pub fn record(
        &mut self,
        now: Instant,
        error: &dyn std::fmt::Display,
    ) -> Result<(), TooManyErrors> {
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) <= self.span => {}
            _ => {
                self.window_start = Some(now);
                self.count = 0;
            }
        }
        self.count += 1;
        if self.count > self.max {
            return Err(TooManyErrors {
                service: self.service,
                count: self.count,
                max: self.max,
                span_secs: self.span.as_secs_f64(),
                last: error.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max: u32) -> ErrorBudget {
        ErrorBudget::new("scheduler", max, Duration::from_secs(600))
    }

    #[test]
    fn stops_on_the_error_after_max() {
        let mut b = budget(2);
        let t = Instant::now();
        assert!(b.record(t, &"one").is_ok());
        assert!(b.record(t + Duration::from_secs(1), &"two").is_ok());
        let err = b.record(t + Duration::from_secs(2), &"boom").unwrap_err();
        assert_eq!(err.count, 3);
        let msg = err.to_string();
        assert!(msg.contains("scheduler"), "{msg}");
        assert!(msg.contains("service.max_errors is 2"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
    }

    #[test]
    fn the_window_restarts_after_the_span() {
        let mut b = budget(2);
        let t = Instant::now();
        b.record(t, &"a").unwrap();
        b.record(t + Duration::from_secs(300), &"b").unwrap();
        // 601 s after the first error: a new window, so this is its first error.
        b.record(t + Duration::from_secs(601), &"c").unwrap();
        b.record(t + Duration::from_secs(602), &"d").unwrap();
        assert!(b.record(t + Duration::from_secs(603), &"e").is_err());
    }

    #[test]
    fn zero_tolerates_nothing() {
        let mut b = budget(0);
        assert!(b.record(Instant::now(), &"x").is_err());
    }
}
