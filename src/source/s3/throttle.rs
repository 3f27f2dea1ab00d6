//! Counts S3's throttling answers, retried ones included, for the download limit (docs/architecture.md,
//! "Back-pressure"): the SDK retries a `SlowDown` on its own, so the final outcome of a GetObject
//! says nothing of the refusals on the way.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether an S3 answer asks for fewer requests: 503 (`SlowDown`) or 429.
pub fn throttling(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// The interceptor: one count per attempt answered with a throttling status.
#[derive(Debug, Clone, Default)]
pub struct ThrottleCounter(pub Arc<AtomicU64>);

impl ThrottleCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// One more throttling answer (to a request sent outside the SDK).
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Intercept for ThrottleCounter {
    fn name(&self) -> &'static str {
        "content-sync throttle counter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context
            .response()
            .is_some_and(|r| throttling(r.status().as_u16()))
        {
            self.add();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_down_and_too_many_requests_are_throttling() {
        assert!(throttling(503) && throttling(429));
        assert!(!throttling(500) && !throttling(404) && !throttling(200));
    }
}
