//! Page sequencing of a paginated S3 listing (ListObjectsV2 of a bucket, ListBuckets), kept free of
//! any I/O so that every answer a server may give can be tested without S3.
//!
//! A listing that ends early makes the sync delete the documents of every key it did not see, so
//! [`Paging`] only calls a listing complete when the server said so, and refuses pages that show
//! the server lost its place: a repeated continuation token (the listing would never end), a page
//! that does not start after the previous one (keys repeated or the listing restarted), or a
//! truncated page that gives no way to go on. A truncated page without a continuation token (some
//! S3-compatible stores answer so) is followed by a request starting after its last key.

/// What one listing page said, as far as sequencing goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageView<'a> {
    /// First and last key (or bucket name) of the page, if it had any.
    pub first: Option<&'a str>,
    pub last: Option<&'a str>,
    /// The server says more follows (`IsTruncated`; for ListBuckets: a `ContinuationToken` came).
    pub truncated: bool,
    /// The token to send for the next page.
    pub next_token: Option<&'a str>,
}

/// Why the pages of a listing cannot be trusted. The listing fails; the caller says which one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    #[error(
        "the server sent back the continuation token it was given, so the listing would never end"
    )]
    RepeatedToken,
    #[error(
        "a page starts at {first:?}, which is not after {previous:?}, the last key of the page before"
    )]
    OutOfOrder { previous: String, first: String },
    #[error("the server said more follows but sent neither a key nor a continuation token")]
    NoProgress,
}

/// How the next request goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The listing is complete.
    Done,
    /// With the server's continuation token.
    Token,
    /// A truncated page came without a token: start after its last key.
    StartAfter,
}

/// Where the next request of a listing starts.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    start_after: Option<String>,
    token: Option<String>,
    /// Last key accepted so far, or the initial `start_after`: every later key must sort after it.
    bound: Option<String>,
    last: Option<String>,
    done: bool,
}

impl Paging {
    /// A listing that starts after `start_after` (or at the beginning).
    pub fn new(start_after: Option<String>) -> Self {
        let start_after = start_after.filter(|s| !s.is_empty());
        Paging {
            bound: start_after.clone(),
            start_after,
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

    /// Takes in the page just received. On an error the page must not be used: the listing is
    /// over and incomplete.
    pub fn advance(&mut self, page: PageView<'_>) -> Result<Advance, PagingError> {
        // Only the token just sent is remembered: keeping them all would grow with the bucket, and
        // a longer cycle repeats pages, which the order check above catches.
        if page.truncated && page.next_token.is_some() && page.next_token == self.token.as_deref() {
            return Err(PagingError::RepeatedToken);
        }
        // S3 lists keys in UTF-8 binary order, which is how `str` compares.
        if let (Some(previous), Some(first)) = (&self.bound, page.first)
            && first <= previous.as_str()
        {
            return Err(PagingError::OutOfOrder {
                previous: previous.clone(),
                first: first.to_owned(),
            });
        }
        if page.truncated && page.next_token.is_none() && page.last.is_none() {
            return Err(PagingError::NoProgress);
        }
        if let Some(last) = page.last {
            self.bound = Some(last.to_owned());
            self.last = Some(last.to_owned());
        }
        if !page.truncated {
            self.done = true;
            return Ok(Advance::Done);
        }
        match page.next_token {
            Some(token) => {
                self.token = Some(token.to_owned());
                Ok(Advance::Token)
            }
            None => {
                self.token = None;
                self.start_after = self.last.clone();
                Ok(Advance::StartAfter)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page<'a>(
        keys: Option<(&'a str, &'a str)>,
        truncated: bool,
        token: Option<&'a str>,
    ) -> PageView<'a> {
        PageView {
            first: keys.map(|k| k.0),
            last: keys.map(|k| k.1),
            truncated,
            next_token: token,
        }
    }

    #[test]
    fn follows_tokens_until_the_server_says_the_listing_is_complete() {
        let mut p = Paging::new(Some("a".into()));
        assert_eq!((p.token(), p.start_after()), (None, Some("a")));
        assert_eq!(
            p.advance(page(Some(("b", "c")), true, Some("t1"))),
            Ok(Advance::Token)
        );
        assert_eq!(
            (p.token(), p.last(), p.is_done()),
            (Some("t1"), Some("c"), false)
        );
        // A truncated page may be empty as long as the token moves on.
        assert_eq!(p.advance(page(None, true, Some("t2"))), Ok(Advance::Token));
        assert_eq!(
            p.advance(page(Some(("d", "e")), false, None)),
            Ok(Advance::Done)
        );
        assert!(p.is_done());
        assert_eq!(p.last(), Some("e"));
    }

    #[test]
    fn truncated_page_without_token_continues_after_its_last_key() {
        let mut p = Paging::new(None);
        assert_eq!(
            p.advance(page(Some(("a", "c")), true, None)),
            Ok(Advance::StartAfter)
        );
        assert!(!p.is_done(), "a truncated page never ends the listing");
        assert_eq!((p.token(), p.start_after()), (None, Some("c")));
        // Back to tokens once the server sends one again.
        assert_eq!(
            p.advance(page(Some(("d", "f")), true, Some("t"))),
            Ok(Advance::Token)
        );
        assert_eq!(p.token(), Some("t"));
        assert_eq!(
            p.advance(page(Some(("g", "g")), false, None)),
            Ok(Advance::Done)
        );
    }

    #[test]
    fn repeated_continuation_token_fails() {
        let mut p = Paging::new(None);
        p.advance(page(Some(("a", "b")), true, Some("t"))).unwrap();
        assert_eq!(
            p.advance(page(Some(("c", "d")), true, Some("t"))),
            Err(PagingError::RepeatedToken)
        );
        let mut empty = Paging::new(None);
        empty.advance(page(None, true, Some("t"))).unwrap();
        assert_eq!(
            empty.advance(page(None, true, Some("t"))),
            Err(PagingError::RepeatedToken)
        );
    }

    #[test]
    fn a_page_must_start_after_the_previous_one() {
        let mut p = Paging::new(None);
        p.advance(page(Some(("a", "m")), true, Some("t1"))).unwrap();
        assert_eq!(
            p.advance(page(Some(("m", "z")), true, Some("t2"))),
            Err(PagingError::OutOfOrder {
                previous: "m".into(),
                first: "m".into()
            })
        );
        // A listing that restarted from the beginning, after a StartAfter request.
        let mut restarted = Paging::new(None);
        restarted
            .advance(page(Some(("b", "c")), true, None))
            .unwrap();
        assert!(matches!(
            restarted.advance(page(Some(("a", "c")), false, None)),
            Err(PagingError::OutOfOrder { .. })
        ));
        // The first page of a resumed listing must start after `start_after`.
        let mut resumed = Paging::new(Some("k".into()));
        assert!(
            resumed
                .advance(page(Some(("j", "l")), false, None))
                .is_err()
        );
        // Byte order: "é" (0xC3 0xA9) sorts after "z".
        let mut utf8 = Paging::new(None);
        utf8.advance(page(Some(("a", "z")), true, Some("t")))
            .unwrap();
        assert_eq!(
            utf8.advance(page(Some(("é", "é")), false, None)),
            Ok(Advance::Done)
        );
    }

    #[test]
    fn a_truncated_page_without_keys_or_token_fails() {
        let mut p = Paging::new(None);
        p.advance(page(Some(("a", "b")), true, Some("t"))).unwrap();
        assert_eq!(
            p.advance(page(None, true, None)),
            Err(PagingError::NoProgress)
        );
        assert!(!p.is_done());
    }

    #[test]
    fn a_failed_page_changes_nothing() {
        let mut p = Paging::new(None);
        p.advance(page(Some(("a", "b")), true, Some("t"))).unwrap();
        let _ = p.advance(page(Some(("a", "z")), true, Some("u")));
        assert_eq!(
            (p.token(), p.last(), p.is_done()),
            (Some("t"), Some("b"), false)
        );
    }

    #[test]
    fn list_buckets_style_pages_end_without_a_token() {
        // ListBuckets has no IsTruncated: a token is the only sign that more follows.
        let mut p = Paging::new(None);
        assert_eq!(
            p.advance(page(Some(("a", "b")), true, Some("x"))),
            Ok(Advance::Token)
        );
        assert_eq!(
            p.advance(page(Some(("c", "d")), false, None)),
            Ok(Advance::Done)
        );
        // A store that ignores the token: the same names, with the same token or a new one.
        let mut looping = Paging::new(None);
        looping
            .advance(page(Some(("a", "b")), true, Some("x")))
            .unwrap();
        assert_eq!(
            looping.advance(page(Some(("a", "b")), true, Some("x"))),
            Err(PagingError::RepeatedToken)
        );
        assert_eq!(
            looping.advance(page(Some(("a", "b")), true, Some("y"))),
            Err(PagingError::OutOfOrder {
                previous: "b".into(),
                first: "a".into()
            })
        );
    }
}
