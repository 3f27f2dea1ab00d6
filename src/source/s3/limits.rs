//! What config.yml lets a connector's S3 settings do (`s3.*`), checked before any request is made,
//! and the scrubbing of what the connector's `error` field may show.

use super::endpoint::redact_userinfo;
use super::settings::S3Settings;
use crate::config::S3Config;

/// Why config.yml refuses a connector's settings. Each message names the key that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error(
        "aws_access_key_id and aws_secret_access_key are empty, and config.yml does not let connectors \
         use this host's AWS default credential chain: set both keys in the connector's configuration, \
         or set `s3.allow_default_credentials: true` in config.yml"
    )]
    DefaultCredentials,
    #[error(
        "endpoint_url {endpoint:?} is not allowed by config.yml: use an endpoint listed in \
         `s3.allowed_endpoints`, or add it there"
    )]
    Endpoint { endpoint: String },
}

/// Checks `settings` against `limits`.
pub fn check(limits: &S3Config, settings: &S3Settings) -> Result<(), LimitError> {
    let no_keys = settings.access_key_id.is_none() && settings.secret_access_key.is_none();
    if no_keys && !limits.allow_default_credentials {
        return Err(LimitError::DefaultCredentials);
    }
    let endpoint = settings.endpoint_url.as_deref();
    if !limits.endpoint_allowed(endpoint) {
        return Err(LimitError::Endpoint {
            endpoint: redact_userinfo(endpoint.unwrap_or_default()),
        });
    }
    Ok(())
}

/// `message` with the connector's secret and session token replaced by `***`: a hostile endpoint
/// may echo the request (the token travels in a header) into the error it answers.
pub fn scrub(settings: &S3Settings, message: &str) -> String {
    let mut out = message.to_owned();
    for secret in [&settings.secret_access_key, &settings.session_token]
        .into_iter()
        .flatten()
    {
        let value = secret.expose();
        if !value.is_empty() {
            out = out.replace(value, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn keys() -> S3Settings {
        S3Settings {
            access_key_id: Some("AKID".into()),
            secret_access_key: Some(Secret::new("the-secret")),
            session_token: Some(Secret::new("the-token")),
            ..S3Settings::default()
        }
    }

    #[test]
    fn empty_keys_need_the_config_to_allow_the_default_chain() {
        let mut limits = S3Config::default();
        let err = check(&limits, &S3Settings::default()).unwrap_err();
        assert_eq!(err, LimitError::DefaultCredentials);
        assert!(
            err.to_string()
                .contains("`s3.allow_default_credentials: true`")
        );
        assert_eq!(check(&limits, &keys()), Ok(()));
        limits.allow_default_credentials = true;
        assert_eq!(check(&limits, &S3Settings::default()), Ok(()));
    }

    #[test]
    fn endpoints_outside_the_list_are_refused_without_their_user_info() {
        let limits = S3Config {
            allowed_endpoints: Some(vec!["http://minio:9000".into()]),
            ..S3Config::default()
        };
        let mut s = keys();
        assert_eq!(check(&limits, &s), Ok(()));
        s.endpoint_url = Some("http://minio:9000/".into());
        assert_eq!(check(&limits, &s), Ok(()));
        s.endpoint_url = Some("http://user:pw@10.0.0.1:9000".into());
        let err = check(&limits, &s).unwrap_err().to_string();
        assert!(err.contains("`s3.allowed_endpoints`"), "{err}");
        assert!(err.contains("\"http://***@10.0.0.1:9000\""), "{err}");
        assert!(!err.contains("pw"), "{err}");
    }

    #[test]
    fn scrub_hides_the_secret_and_the_token() {
        let text = scrub(
            &keys(),
            "AccessDenied: x-amz-security-token: the-token; the-secret; AKID",
        );
        assert_eq!(text, "AccessDenied: x-amz-security-token: ***; ***; AKID");
    }
}
