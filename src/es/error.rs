//! Errors of the Elasticsearch client.

use reqwest::StatusCode;

/// An Elasticsearch call that failed. Display is one line and never contains credentials.
#[derive(Debug, thiserror::Error)]
pub enum EsError {
    /// ES answered with an error status. `kind` is ES's `error.type` when the body had one.
    #[error("elasticsearch returned {status} for {method} {path}: {kind}: {reason}")]
    Status {
        status: StatusCode,
        method: String,
        path: String,
        kind: String,
        reason: String,
    },
    /// A write guarded by `if_seq_no`/`if_primary_term` lost the race (HTTP 409).
    #[error("version conflict on {path}")]
    Conflict { path: String },
    /// The request never got an answer (connect error, reset, timeout), after retries.
    #[error("elasticsearch request {method} {path} failed: {cause}")]
    Transport {
        method: String,
        path: String,
        cause: String,
    },
    /// The answer was not the JSON we expected.
    #[error("unexpected response to {path}: {cause}")]
    Decode { path: String, cause: String },
    /// The client could not be built (bad URL, unreadable CA file, bad header).
    #[error("elasticsearch client setup: {0}")]
    Setup(String),
}

impl EsError {
    /// The HTTP status, when ES answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            EsError::Status { status, .. } => Some(*status),
            EsError::Conflict { .. } => Some(StatusCode::CONFLICT),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, EsError::Conflict { .. })
    }
}

impl EsError {
    /// Whether another attempt of the same call may succeed: no answer, or a transient status.
    pub fn is_transient(&self) -> bool {
        match self {
            EsError::Transport { .. } => true,
            other => other
                .status()
                .is_some_and(|s| crate::retry::transient_status(s.as_u16())),
        }
    }
}

/// Renders a reqwest error with its causes on one line (reqwest's own Display hides the cause).
pub fn transport_cause(err: &reqwest::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    // A URL with user:password@ would be echoed by reqwest; we never put credentials in URLs,
    // but strip any userinfo defensively.
    strip_userinfo(&out)
}

fn strip_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail.find(['/', ' ', ')']).unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***@");
                rest = &tail[at + 1..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_masked() {
        assert_eq!(
            strip_userinfo("error sending request for url (http://elastic:pw@h:9200/x)"),
            "error sending request for url (http://***@h:9200/x)"
        );
        assert_eq!(strip_userinfo("http://h:9200/"), "http://h:9200/");
    }
}
