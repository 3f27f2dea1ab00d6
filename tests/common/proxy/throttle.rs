//! A server that can take only so many requests at once: [`Fault::Throttle`](super::Fault) refuses
//! a matching request (with a status and body, e.g. 429 or S3's `503 SlowDown`) while `cap` others
//! are in flight, and holds each admitted one for `hold` before forwarding it (a busy server).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The throttle's state, shared by the proxy's connections; read its counters after a run.
pub struct Throttle {
    cap: usize,
    pub(super) hold: Duration,
    pub(super) status: u16,
    pub(super) body: String,
    in_flight: AtomicUsize,
    admitted: AtomicUsize,
    refused: AtomicUsize,
}

/// An admitted request's place; the place frees when this drops (after the response is written).
pub struct Slot(Arc<Throttle>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Throttle {
    /// At most `cap` requests in flight, each held `hold`; the others answered `status` + `body`.
    pub fn new(cap: usize, hold: Duration, status: u16, body: impl Into<String>) -> Arc<Throttle> {
        Arc::new(Throttle {
            cap,
            hold,
            status,
            body: body.into(),
            in_flight: AtomicUsize::new(0),
            admitted: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        })
    }

    /// A place for one more request, or `None` (counted as refused) when `cap` are in flight.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.cap).then_some(n + 1)
            });
        if taken.is_ok() {
            self.admitted.fetch_add(1, Ordering::SeqCst);
            Some(Slot(self.clone()))
        } else {
            self.refused.fetch_add(1, Ordering::SeqCst);
            None
        }
    }

    /// Requests refused so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Requests forwarded so far.
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::SeqCst)
    }
}
