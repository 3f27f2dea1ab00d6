//! Elastic's per-sync error monitor (docs/architecture.md#the-data-path): too many failed bulk items fail the sync.

use crate::config::ErrorMonitorConfig;
use std::collections::VecDeque;

/// Tracks bulk item outcomes; `record_error` says when the sync must stop.
#[derive(Debug)]
pub struct ErrorMonitor {
    cfg: ErrorMonitorConfig,
    total: u64,
    consecutive: u64,
    /// The last `error_window_size` outcomes, `true` = error.
    window: VecDeque<bool>,
    window_errors: usize,
    /// The last `error_queue_size` error messages.
    pub last_errors: VecDeque<String>,
}

impl ErrorMonitor {
    pub fn new(cfg: ErrorMonitorConfig) -> Self {
        Self {
            window: VecDeque::with_capacity(cfg.error_window_size),
            last_errors: VecDeque::with_capacity(cfg.error_queue_size.get()),
            cfg,
            total: 0,
            consecutive: 0,
            window_errors: 0,
        }
    }

    pub fn total_errors(&self) -> u64 {
        self.total
    }

    fn push(&mut self, is_error: bool) {
        if self.cfg.error_window_size == 0 {
            return;
        }
        if self.window.len() == self.cfg.error_window_size && self.window.pop_front() == Some(true)
        {
            self.window_errors -= 1;
        }
        self.window.push_back(is_error);
        if is_error {
            self.window_errors += 1;
        }
    }

    pub fn record_success(&mut self) {
        self.consecutive = 0;
        self.push(false);
    }

    /// Records an item error; `Err(message)` when a threshold is crossed (the sync must end `error`).
    pub fn record_error(&mut self, message: String) -> Result<(), String> {
        self.total += 1;
        self.consecutive += 1;
        self.push(true);
        if self.last_errors.len() == self.cfg.error_queue_size.get() {
            self.last_errors.pop_front();
        }
        self.last_errors.push_back(message.clone());
        if !self.cfg.enabled {
            return Ok(());
        }
        if self.consecutive > self.cfg.max_consecutive_errors {
            return Err(format!(
                "Exceeded maximum consecutive errors - saw {} errors in a row. Last error: {message}",
                self.consecutive
            ));
        }
        if self.total > self.cfg.max_total_errors {
            return Err(format!(
                "Exceeded maximum total error count - saw {} errors. Last error: {message}",
                self.total
            ));
        }
        let size = self.cfg.error_window_size;
        if size > 0 && self.window_errors as f64 / size as f64 > self.cfg.max_error_rate {
            return Err(format!(
                "Exceeded maximum error ratio of {} for last {size} operations. Last error: {message}",
                self.cfg.max_error_rate
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ErrorMonitorConfig {
        ErrorMonitorConfig {
            enabled: true,
            max_total_errors: 1000,
            max_consecutive_errors: 10,
            max_error_rate: 0.15,
            error_window_size: 100,
            error_queue_size: std::num::NonZeroUsize::new(10).unwrap(),
        }
    }

    #[test]
    fn eleven_consecutive_errors_stop_the_sync() {
        let mut m = ErrorMonitor::new(cfg());
        for _ in 0..10 {
            m.record_error("e".into()).unwrap();
        }
        let err = m.record_error("boom".into()).unwrap_err();
        assert_eq!(
            err,
            "Exceeded maximum consecutive errors - saw 11 errors in a row. Last error: boom"
        );
    }

    #[test]
    fn error_ratio_over_the_window() {
        let mut m = ErrorMonitor::new(cfg());
        // 15 errors out of 100 is allowed, the 16th is not.
        for i in 0..100 {
            if i % 6 == 5 && m.total_errors() < 15 {
                m.record_error("e".into()).unwrap();
            } else {
                m.record_success();
            }
        }
        let err = m.record_error("x".into()).unwrap_err();
        assert!(
            err.starts_with("Exceeded maximum error ratio of 0.15 for last 100 operations."),
            "{err}"
        );
    }

    #[test]
    fn disabled_monitor_only_counts() {
        let mut m = ErrorMonitor::new(ErrorMonitorConfig {
            enabled: false,
            ..cfg()
        });
        for _ in 0..50 {
            m.record_error("e".into()).unwrap();
        }
        assert_eq!(m.total_errors(), 50);
        assert_eq!(m.last_errors.len(), 10);
    }
}
