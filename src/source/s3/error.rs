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
        let code = err.code().map(str::to_owned);
        let cause = match (&err, err.code(), err.message()) {
            (_, Some(code), Some(message)) => format!("{code}: {message}"),
            (_, Some(code), None) => code.to_owned(),
            (SdkError::ServiceError(ctx), None, _) => {
                format!("HTTP status {}", ctx.raw().status().as_u16())
            }
            _ => source_chain(&err),
        };
        S3Error::Request {
            action: action.into(),
            code,
            cause: one_line(&cause),
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
fn source_chain(err: &(dyn StdError + 'static)) -> String {
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

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
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
