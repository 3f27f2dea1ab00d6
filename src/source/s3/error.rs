//! Errors of the S3 source: one-line messages naming what failed and why, never any credential.

use super::paging::PagingError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use std::error::Error as StdError;

/// An S3 failure. `Display` is a single line such as
/// `listing bucket "x" failed: NoSuchBucket: The specified bucket does not exist`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    /// A request failed: `action` says what we tried, `cause` why it failed.
    #[error("{action} failed: {cause}")]
    Request {
        action: String,
        /// S3 error code (`NoSuchBucket`, `AccessDenied`, …) when the service answered with one.
        code: Option<String>,
        cause: String,
    },
    /// The server answered, but its pages cannot make up the whole listing (see [`PagingError`]).
    #[error("{action} failed: {cause}")]
    Paging { action: String, cause: PagingError },
    /// The settings cannot produce a working client (e.g. a malformed endpoint URL).
    #[error("invalid S3 configuration: {0}")]
    Config(String),
}

impl S3Error {
    /// Builds a [`S3Error::Request`] from an SDK error: `Code: message` for a service error, else the
    /// error's source chain (e.g. `dispatch failure: io error: …: Connection refused (os error 111)`).
    pub fn from_sdk<E>(action: impl Into<String>, err: SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        match &err {
            SdkError::ServiceError(ctx) => Self::answered(
                action,
                ctx.raw().status().as_u16(),
                err.code().map(str::to_owned),
                err.message().map(str::to_owned),
            ),
            _ => Self::transport(action, &source_chain(&err)),
        }
    }

    /// A request S3 answered with an error `status`, and the code and message of its `<Error>`
    /// document when it had one: `Code: message`, else `HTTP status 404[: message]`.
    pub fn answered(
        action: impl Into<String>,
        status: u16,
        code: Option<String>,
        message: Option<String>,
    ) -> Self {
        // The answer may come from any host a connector names: only a code shaped like S3's is kept.
        let code = code.filter(|c| is_error_code(c));
        let cause = match (code.as_deref(), message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            (None, Some(message)) => format!("HTTP status {status}: {message}"),
            (None, None) => format!("HTTP status {status}"),
        };
        S3Error::Request {
            action: action.into(),
            code,
            cause: summary(&cause),
        }
    }

    /// A request that got no answer: `cause` is its error's chain.
    pub fn transport(action: impl Into<String>, cause: &str) -> Self {
        S3Error::Request {
            action: action.into(),
            code: None,
            cause: summary(cause),
        }
    }

    /// The S3 error code, if the service returned one.
    pub fn code(&self) -> Option<&str> {
        match self {
            S3Error::Request { code, .. } => code.as_deref(),
            S3Error::Paging { .. } | S3Error::Config(_) => None,
        }
    }
}

/// `err: source: source…`, skipping a level whose text the previous level already contains.
pub(super) fn source_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.last().is_some_and(|prev| prev.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Characters of a cause kept in a message: S3's own messages are one sentence, while another host
/// (a connector may name any endpoint) can answer with a whole page, which does not belong in the
/// connector's `error` field.
const MAX_CAUSE_CHARS: usize = 200;

/// Whether `code` looks like an S3 error code (`NoSuchBucket`, `AccessDenied`, `SlowDown`…).
fn is_error_code(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `s` on one line, without control characters, cut to [`MAX_CAUSE_CHARS`] (ending `…` when cut).
fn summary(s: &str) -> String {
    let line = s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    match line.char_indices().nth(MAX_CAUSE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;
    use aws_sdk_s3::types::error::NoSuchBucket;

    #[test]
    fn service_error_shows_code_and_message() {
        let raw = aws_sdk_s3::config::http::HttpResponse::new(
            404.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        let meta = aws_sdk_s3::error::ErrorMetadata::builder()
            .code("NoSuchBucket")
            .message("The specified bucket does not exist")
            .build();
        let inner = ListObjectsV2Error::NoSuchBucket(NoSuchBucket::builder().meta(meta).build());
        let err = S3Error::from_sdk("listing bucket \"x\"", SdkError::service_error(inner, raw));
        assert_eq!(
            err.to_string(),
            "listing bucket \"x\" failed: NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(err.code(), Some("NoSuchBucket"));
    }

    #[test]
    fn a_foreign_body_is_cut_short_and_a_bad_code_dropped() {
        let raw = aws_sdk_s3::config::http::HttpResponse::new(
            403.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        let page = format!("{} END-OF-PAGE", "internal text\x1b[2J ".repeat(100));
        let meta = aws_sdk_s3::error::ErrorMetadata::builder()
            .code("<html>AccessDenied</html>")
            .message(page)
            .build();
        let inner = ListObjectsV2Error::generic(meta);
        let err = S3Error::from_sdk("listing buckets", SdkError::service_error(inner, raw));
        let text = err.to_string();
        assert!(
            !text.contains("END-OF-PAGE") && !text.contains('\x1b'),
            "{text}"
        );
        assert!(!text.contains("<html>"), "{text}");
        assert!(text.len() < 300, "{} bytes: {text}", text.len());
        assert!(text.starts_with("listing buckets failed: "), "{text}");
        assert!(text.ends_with('…'), "{text}");
        assert_eq!(err.code(), None);
    }

    #[test]
    fn transport_error_shows_the_chain() {
        let io = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused\n(os error 111)",
        );
        let err: SdkError<ListObjectsV2Error> =
            SdkError::dispatch_failure(aws_sdk_s3::error::ConnectorError::io(Box::new(io)));
        let err = S3Error::from_sdk("listing buckets", err);
        assert_eq!(err.code(), None);
        assert_eq!(
            err.to_string(),
            "listing buckets failed: dispatch failure: io error: Connection refused (os error 111)"
        );
    }
}
