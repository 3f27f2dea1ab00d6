//! Holds a run's bulk requests back while its job is not known to be still its own
//! (docs/protocol.md, "Content writes").
//!
//! An instance paused or cut off from Elasticsearch past its lease finds its job taken over, and
//! often already resumed by another instance. Its job watcher notices at its next read and stops
//! the run; but the operations it had queued must not go out before that, or they could undo the
//! other run's work: delete a document whose object came back meanwhile, write an older version of
//! one. So every request of the run's sink first passes its [`Fence`]: open while the run's
//! ownership of its job was confirmed less than `fresh` ago (by a read sent then), closed from then
//! until the next confirmation. The watcher confirms every few seconds, so a run that never stalls
//! never waits at it; one that wakes from a pause longer than `fresh` waits for its watcher's
//! verdict, and is stopped by it if the job is no longer its own.

use super::{BulkResponse, BulkTransport};
use crate::es::error::EsError;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// When a run's ownership of its job was last confirmed, and how long that holds.
#[derive(Debug)]
pub struct Fence {
    /// When the last read that found the job ours was sent.
    confirmed: watch::Sender<Instant>,
    /// How long a confirmation keeps the fence open.
    fresh: Duration,
    /// How long a request waits at a closed fence before it fails (as a transient error: the
    /// sink's retries decide what follows, as for a cluster that does not answer).
    patience: Duration,
}

impl Fence {
    /// A fence confirmed now (the run has just claimed its job).
    pub fn new(fresh: Duration, patience: Duration) -> Self {
        Fence {
            confirmed: watch::Sender::new(Instant::now()),
            fresh,
            patience,
        }
    }

    /// A read sent at `asked` found the job still ours.
    pub fn confirm(&self, asked: Instant) {
        self.confirmed.send_if_modified(|at| {
            let later = asked > *at;
            if later {
                *at = asked;
            }
            later
        });
    }

    /// Returns once the fence is open; an error after `patience` without a fresh confirmation.
    pub async fn pass(&self) -> Result<(), EsError> {
        let open = |at: &Instant| at.elapsed() < self.fresh;
        if open(&self.confirmed.borrow()) {
            return Ok(());
        }
        // Only a request that must wait subscribes; `wait_for` looks at the current value first,
        // so a confirmation sent since the check above is not missed.
        let mut confirmed = self.confirmed.subscribe();
        let since = confirmed.borrow().elapsed();
        tracing::info!(
            confirmed_secs_ago = since.as_secs(),
            "holding bulk requests until this run's job is confirmed to be still its own"
        );
        // The sender lives in `self`: it cannot be dropped while this waits.
        let opened = matches!(
            tokio::time::timeout(self.patience, confirmed.wait_for(open)).await,
            Ok(Ok(_))
        );
        if opened {
            return Ok(());
        }
        Err(EsError::Transport {
            method: "POST".into(),
            path: "/_bulk".into(),
            cause: format!(
                "not sent: this run's job was last confirmed to be its own {} s ago",
                self.confirmed.borrow().elapsed().as_secs()
            ),
        })
    }
}

/// A transport whose requests pass a [`Fence`] first.
pub struct Fenced {
    inner: Arc<dyn BulkTransport>,
    fence: Arc<Fence>,
}

impl Fenced {
    pub fn new(inner: Arc<dyn BulkTransport>, fence: Arc<Fence>) -> Self {
        Fenced { inner, fence }
    }
}

#[async_trait]
impl BulkTransport for Fenced {
    async fn bulk_once(
        &self,
        ndjson: Vec<u8>,
        pipeline: Option<&str>,
    ) -> Result<BulkResponse, EsError> {
        self.fence.pass().await?;
        self.inner.bulk_once(ndjson, pipeline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: Duration = Duration::from_secs(15);
    const PATIENCE: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_fresh_confirmation_lets_requests_through_at_once() {
        let fence = Fence::new(FRESH, PATIENCE);
        tokio::time::advance(FRESH - Duration::from_secs(1)).await;
        let started = Instant::now();
        fence.pass().await.expect("open");
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_fence_holds_requests_until_the_next_confirmation() {
        let fence = Arc::new(Fence::new(FRESH, PATIENCE));
        // A pause longer than `fresh`: the next request waits.
        tokio::time::advance(FRESH + Duration::from_secs(5)).await;
        let waiting = tokio::spawn({
            let fence = fence.clone();
            async move {
                let started = Instant::now();
                fence.pass().await.map(|()| started.elapsed())
            }
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(
            !waiting.is_finished(),
            "a stale fence let a request through"
        );
        // A read sent before the pause confirms nothing now.
        fence.confirm(Instant::now() - FRESH - Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !waiting.is_finished(),
            "a stale confirmation opened the fence"
        );
        fence.confirm(Instant::now());
        let waited = waiting.await.expect("joined").expect("opened");
        assert_eq!(waited, Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fence_never_confirmed_again_fails_the_request_after_its_patience() {
        let fence = Fence::new(FRESH, PATIENCE);
        tokio::time::advance(FRESH).await;
        let started = Instant::now();
        let e = fence.pass().await.expect_err("closed");
        assert_eq!(started.elapsed(), PATIENCE);
        assert!(e.is_transient(), "{e}");
        assert!(
            e.to_string()
                .contains("this run's job was last confirmed to be its own 45 s ago"),
            "{e}"
        );
    }
}
