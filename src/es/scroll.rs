//! Reading every hit of a search with a scroll: the one place that opens, follows and clears
//! scroll contexts. `from`/`size` paging (what Elastic's helper does) stops at 10 000 hits without
//! a word; a scroll does not.

use super::client::{Body, EsClient, Hit, Retry, decode_typed, hits_of};
use super::error::EsError;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// How long a scroll context of `search_all` lives between two pages.
const SEARCH_ALL_KEEP_ALIVE: &str = "1m";
/// Page size of [`EsClient::search_all`] (Elastic uses 100).
pub const SEARCH_PAGE_SIZE: usize = 100;

/// A page a scroll can follow: it carries the id of the next one.
pub trait ScrollPage: DeserializeOwned {
    fn scroll_id(&self) -> Option<&str>;
}

impl ScrollPage for Value {
    fn scroll_id(&self) -> Option<&str> {
        self.get("_scroll_id").and_then(Value::as_str)
    }
}

/// What a page callback of [`EsClient::scroll`] wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    More,
    Stop,
}

/// What a callback of [`EsClient::scroll_pages`] read of a page: the id of the scroll context
/// (as soon as the page could be read, so that the context is cleared even when the page is then
/// refused), and what it wants next.
#[derive(Debug)]
pub struct Scrolled<E> {
    pub scroll_id: Option<String>,
    pub next: Result<Next, E>,
}

impl EsClient {
    /// Searches `index` with `body` and scroll context `keep_alive`, and hands each page, decoded
    /// as `P`, to `page` until it answers [`Next::Stop`] or fails, the pages run out (no scroll id), or a
    /// request fails. The scroll context is cleared whatever happened. The first request's error
    /// is returned as is (a caller may read 404 as "no index").
    pub async fn scroll<P: ScrollPage, E: From<EsError>>(
        &self,
        index: &str,
        params: &[(&str, String)],
        body: Value,
        keep_alive: &str,
        mut page: impl FnMut(&P) -> Result<Next, E>,
    ) -> Result<(), E> {
        self.scroll_pages(
            index,
            params,
            body,
            keep_alive,
            |bytes, path| match decode_typed::<P>(bytes, || path.to_string()) {
                Ok(p) => Scrolled {
                    scroll_id: p.scroll_id().map(str::to_string),
                    next: page(&p),
                },
                Err(e) => Scrolled {
                    scroll_id: None,
                    next: Err(e.into()),
                },
            },
        )
        .await
    }

    /// [`EsClient::scroll`] handing each page's answer as it came (`path` names its request), for
    /// a caller that reads a page borrowing from it (`sync/existing.rs`: the index's ids).
    pub async fn scroll_pages<E: From<EsError>>(
        &self,
        index: &str,
        params: &[(&str, String)],
        body: Value,
        keep_alive: &str,
        mut page: impl FnMut(&[u8], &str) -> Scrolled<E>,
    ) -> Result<(), E> {
        let mut query: Vec<(&str, String)> = params.to_vec();
        query.push(("scroll", keep_alive.to_string()));
        let mut current = self
            .transient(
                Method::POST,
                &[index, "_search"],
                &query,
                Some(Body::Json(body)),
            )
            .await?;
        let search = format!("/{index}/_search");
        let mut path = search.as_str();
        let mut scroll_id = None;
        let result = loop {
            let read = page(&current, path);
            if read.scroll_id.is_some() {
                scroll_id = read.scroll_id;
            }
            match read.next {
                Ok(Next::More) => {}
                Ok(Next::Stop) => break Ok(()),
                Err(e) => break Err(e),
            }
            let Some(sid) = scroll_id.clone() else {
                break Ok(());
            };
            let next = json!({"scroll_id": sid, "scroll": keep_alive});
            current = match self
                .transient(
                    Method::POST,
                    &["_search", "scroll"],
                    &[],
                    Some(Body::Json(next)),
                )
                .await
            {
                Ok(bytes) => bytes,
                Err(e) => break Err(e.into()),
            };
            path = "/_search/scroll";
        };
        if let Some(sid) = scroll_id {
            self.clear_scroll(sid).await;
        }
        result
    }

    async fn clear_scroll(&self, scroll_id: String) {
        let clear = json!({"scroll_id": scroll_id});
        if let Err(e) = self
            .send(
                Method::DELETE,
                &["_search", "scroll"],
                &[],
                Some(Body::Json(clear)),
                Retry::Never,
            )
            .await
            && !e.is_not_found()
        {
            tracing::debug!(error = %e, "could not clear a scroll");
        }
    }

    /// Every hit of `query` (connectors, jobs), read with a scroll of 100 per page. A page that
    /// says it is partial (failed shards, timed out) is an error, never a silently shorter list;
    /// a missing index has no hits.
    pub async fn search_all(
        &self,
        index: &str,
        query: Value,
        sort: Option<Value>,
    ) -> Result<Vec<Hit>, EsError> {
        let mut body =
            json!({"query": query, "size": SEARCH_PAGE_SIZE, "seq_no_primary_term": true});
        if let Some(s) = sort {
            body["sort"] = s;
        }
        let params = [("expand_wildcards", "hidden".to_string())];
        let mut out = Vec::new();
        let read = self
            .scroll(
                index,
                &params,
                body,
                SEARCH_ALL_KEEP_ALIVE,
                |page: &Value| {
                    let hits = complete_hits(page, index)?;
                    let n = hits.len();
                    out.extend(hits);
                    // A short page is the last one: no request for an empty page after it.
                    Ok::<_, EsError>(if n == SEARCH_PAGE_SIZE {
                        Next::More
                    } else {
                        Next::Stop
                    })
                },
            )
            .await;
        match read {
            Ok(()) => Ok(out),
            Err(e) if e.is_not_found() && out.is_empty() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// The hits of a search page, unless the page says it missed some (failed shards, timed out).
fn complete_hits(page: &Value, index: &str) -> Result<Vec<Hit>, EsError> {
    let failed = page
        .pointer("/_shards/failed")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if failed > 0 || page.get("timed_out").and_then(Value::as_bool) == Some(true) {
        return Err(EsError::Decode {
            path: format!("/{index}/_search"),
            cause: format!("partial results ({failed} shards failed or the search timed out)"),
        });
    }
    hits_of(page, index)
}
