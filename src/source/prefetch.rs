//! Listing one page ahead, in a task of its own: while the sync indexes a page, the next one is
//! requested and parsed, on another core when one is free (docs/architecture.md#memory-and-cpu).
//! At most one finished page waits in the channel, so memory stays a few pages whatever the bucket.

use super::{Listed, PageLister, SourceError};
use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

type PageResult = Result<Option<Vec<Listed>>, SourceError>;

/// A [`PageLister`] that runs another one in a spawned task. Dropping it stops that task.
pub struct Prefetch {
    pages: mpsc::Receiver<PageResult>,
    /// The listing's end was handed out: later calls keep answering it.
    complete: bool,
    _task: AbortOnDropHandle<()>,
}

impl Prefetch {
    pub fn start(mut lister: Box<dyn PageLister>) -> Self {
        let (tx, pages) = mpsc::channel(1);
        let listing = async move {
            loop {
                let page = lister.next_page().await;
                let last = !matches!(page, Ok(Some(_)));
                if tx.send(page).await.is_err() || last {
                    break;
                }
            }
        };
        // The lister's log lines keep the job's labels.
        let task = tokio::spawn(listing.instrument(tracing::Span::current()));
        Self {
            pages,
            complete: false,
            _task: AbortOnDropHandle::new(task),
        }
    }
}

#[async_trait]
impl PageLister for Prefetch {
    /// The next page. Once the task stopped — after an error, or a panic — every later call is an
    /// error: a listing is complete only when the lister said so.
    async fn next_page(&mut self) -> PageResult {
        if self.complete {
            return Ok(None);
        }
        match self.pages.recv().await {
            Some(Ok(None)) => {
                self.complete = true;
                Ok(None)
            }
            Some(page) => page,
            None => Err(SourceError::new(
                "the listing stopped before its end (after an error)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Document;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Pages of one object each, `pages` of them, then an error when `fail` else the end.
    struct Scripted {
        pages: usize,
        fail: bool,
        calls: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl PageLister for Scripted {
        async fn next_page(&mut self) -> PageResult {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.pages {
                return Ok(Some(vec![Listed {
                    key: format!("k{n}"),
                    size: 1,
                    etag: None,
                    document: Document::default(),
                }]));
            }
            if self.fail {
                return Err(SourceError::new("boom"));
            }
            if n > self.pages {
                panic!("asked again after the end");
            }
            Ok(None)
        }
    }

    fn keys(page: PageResult) -> Vec<String> {
        page.unwrap().unwrap().into_iter().map(|l| l.key).collect()
    }

    #[tokio::test]
    async fn pages_arrive_in_order_then_the_end_stays_the_end() {
        let calls = Arc::new(AtomicUsize::new(0));
        let inner = Scripted {
            pages: 3,
            fail: false,
            calls: calls.clone(),
        };
        let mut p = Prefetch::start(Box::new(inner));
        for i in 0..3 {
            assert_eq!(keys(p.next_page().await), [format!("k{i}")]);
        }
        assert!(p.next_page().await.unwrap().is_none());
        assert!(p.next_page().await.unwrap().is_none(), "asked again");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "the inner lister is not asked past its end"
        );
    }

    #[tokio::test]
    async fn after_an_error_the_listing_never_looks_complete() {
        let inner = Scripted {
            pages: 1,
            fail: true,
            calls: Arc::default(),
        };
        let mut p = Prefetch::start(Box::new(inner));
        assert_eq!(keys(p.next_page().await), ["k0"]);
        assert_eq!(p.next_page().await.unwrap_err().to_string(), "boom");
        for _ in 0..2 {
            let again = p.next_page().await.unwrap_err();
            assert!(
                again.to_string().contains("stopped before its end"),
                "{again}"
            );
        }
    }

    #[tokio::test]
    async fn it_lists_at_most_one_page_ahead() {
        let calls = Arc::new(AtomicUsize::new(0));
        let inner = Scripted {
            pages: 100,
            fail: false,
            calls: calls.clone(),
        };
        let mut p = Prefetch::start(Box::new(inner));
        assert_eq!(keys(p.next_page().await), ["k0"]);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // One page in the channel, one waiting to be sent: two pages past the one handed out.
        assert!(calls.load(Ordering::SeqCst) <= 3, "{calls:?}");
    }
}
