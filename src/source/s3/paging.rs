//! Page sequencing of a paginated S3 listing (ListObjectsV2 of a bucket, ListBuckets), kept free of
//! any I/O so that every answer a server may give can be tested without S3.
//!
//! [`Paging`] says what to send next (continuation token, start-after key) and decides, from what a
//! page said, whether the listing is complete.

/// What one listing page said, as far as sequencing goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageView<'a> {
    /// Last key (or bucket name) of the page, if it had any.
    pub last: Option<&'a str>,
    /// The server says more follows (`IsTruncated`; for ListBuckets: a `ContinuationToken` came).
    pub truncated: bool,
    /// The token to send for the next page.
    pub next_token: Option<&'a str>,
}

/// Where the next request of a listing starts.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    start_after: Option<String>,
    token: Option<String>,
    last: Option<String>,
    done: bool,
}

impl Paging {
    /// A listing that starts after `start_after` (or at the beginning).
    pub fn new(start_after: Option<String>) -> Self {
        Paging {
            start_after: start_after.filter(|s| !s.is_empty()),
            ..Paging::default()
        }
    }

    /// The listing is complete: request nothing more.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// `ContinuationToken` of the next request.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `StartAfter` of the next request.
    pub fn start_after(&self) -> Option<&str> {
        self.start_after.as_deref()
    }

    /// The last key of every page accepted so far.
    pub fn last(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// Takes in the page just received.
    pub fn advance(&mut self, page: PageView<'_>) {
        if let Some(last) = page.last {
            self.last = Some(last.to_owned());
        }
        self.token = page.next_token.map(str::to_owned);
        self.done = !page.truncated || self.token.is_none();
    }
}
