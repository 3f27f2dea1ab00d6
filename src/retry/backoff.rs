//! Bounded, jittered exponential backoff shared by every retry loop.

use std::time::Duration;

/// Exponential backoff with "equal jitter": attempt `n` (1-based) sleeps a random time in
/// `[d/2, d]` where `d = min(base × factor^(n-1), max)`, the factor being 2 unless set. Callers
/// bound the number of attempts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    factor: f64,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            factor: 2.0,
        }
    }

    /// The same backoff growing by `factor` per attempt instead of 2 (at least 1: it never shrinks).
    pub const fn with_factor(self, factor: f64) -> Self {
        Self {
            factor: factor.max(1.0),
            ..self
        }
    }

    /// The ceiling of the delay before retry number `attempt` (1-based), without jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let steps = attempt.saturating_sub(1).min(64);
        if self.factor == 2.0 {
            let factor = 2u32.saturating_pow(steps.min(20));
            return self.base.saturating_mul(factor).min(self.max);
        }
        let grown = self.base.as_secs_f64() * self.factor.powi(steps as i32);
        Duration::try_from_secs_f64(grown).map_or(self.max, |d| d.min(self.max))
    }

    /// The jittered delay before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_and_stays_jittered_within_bounds() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(3), Duration::from_millis(400));
        assert_eq!(b.ceiling(10), Duration::from_secs(1));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
        for attempt in 1..8 {
            let d = b.delay(attempt);
            assert!(d >= b.ceiling(attempt) / 2 && d <= b.ceiling(attempt));
        }
    }

    #[test]
    fn another_factor_grows_by_it_and_never_shrinks() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(100)).with_factor(3.0);
        assert_eq!(b.ceiling(1), Duration::from_secs(1));
        assert_eq!(b.ceiling(3), Duration::from_secs(9));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(100));
        let flat = Backoff::new(Duration::from_secs(1), Duration::from_secs(100)).with_factor(0.5);
        assert_eq!(flat.ceiling(5), Duration::from_secs(1));
    }
}
