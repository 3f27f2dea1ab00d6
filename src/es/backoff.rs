//! Bounded, jittered exponential backoff shared by every retry loop.

use std::time::Duration;

/// Exponential backoff with "equal jitter": attempt `n` (1-based) sleeps a random time in
/// `[d/2, d]` where `d = min(base × 2^(n-1), max)`. Callers bound the number of attempts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The ceiling of the delay before retry number `attempt` (1-based), without jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.base.saturating_mul(factor).min(self.max)
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
}
