//! `s3.*` (content-sync addition): limits on what a connector's S3 settings may make this host do.
//!
//! Anyone allowed to edit a connector in Kibana writes its S3 settings. Without these limits they
//! could read every bucket the host's own AWS identity can read (empty keys select the default
//! credential chain), or point the service at any host reachable from it (`endpoint_url`).

use serde::Deserialize;

use super::de::{from_defaults, yaml_bool};

/// `s3.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Whether a connector whose two key fields are empty may use the AWS default credential chain
    /// (environment, profile, web identity, ECS task role, instance profile). Off by default.
    #[serde(default, deserialize_with = "yaml_bool")]
    pub allow_default_credentials: bool,
    /// The endpoints a connector's `endpoint_url` may name (`scheme://host[:port][/path]`); `None`
    /// (the default) allows any, an empty list allows none (AWS's own endpoints only).
    #[serde(default)]
    pub allowed_endpoints: Option<Vec<String>>,
}

impl Default for S3Config {
    fn default() -> Self {
        from_defaults()
    }
}

/// An endpoint reduced to what decides where requests go: scheme, host, port and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointKey {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
}

impl EndpointKey {
    /// Parses an `http(s)://` URL; `None` when it is not one, or carries user info (a credential
    /// in a URL is never a valid way to name an endpoint here).
    pub fn parse(url: &str) -> Option<EndpointKey> {
        let parsed = reqwest::Url::parse(url.trim()).ok()?;
        if !matches!(parsed.scheme(), "http" | "https")
            || !parsed.username().is_empty()
            || parsed.password().is_some()
        {
            return None;
        }
        Some(EndpointKey {
            scheme: parsed.scheme().to_owned(),
            host: parsed.host_str()?.to_ascii_lowercase(),
            port: parsed.port_or_known_default(),
            path: parsed.path().trim_end_matches('/').to_owned(),
        })
    }
}

impl S3Config {
    /// Whether a connector may use `endpoint_url` (`None`: AWS's own endpoints, always allowed).
    pub fn endpoint_allowed(&self, endpoint_url: Option<&str>) -> bool {
        let (Some(url), Some(allowed)) = (endpoint_url, &self.allowed_endpoints) else {
            return true;
        };
        let Some(key) = EndpointKey::parse(url) else {
            return false;
        };
        allowed
            .iter()
            .any(|a| EndpointKey::parse(a).as_ref() == Some(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(allowed: &[&str]) -> S3Config {
        S3Config {
            allowed_endpoints: Some(allowed.iter().map(|s| s.to_string()).collect()),
            ..S3Config::default()
        }
    }

    #[test]
    fn defaults_refuse_the_default_chain_and_allow_any_endpoint() {
        let c = S3Config::default();
        assert!(!c.allow_default_credentials);
        assert!(c.endpoint_allowed(Some("http://169.254.169.254")));
        assert!(c.endpoint_allowed(None));
    }

    #[test]
    fn endpoints_match_on_scheme_host_port_and_path() {
        let c = with(&["http://MinIO:9000/", "https://r2.example"]);
        assert!(c.endpoint_allowed(Some("http://minio:9000")));
        assert!(c.endpoint_allowed(Some("https://r2.example:443/")));
        assert!(c.endpoint_allowed(None));
        for refused in [
            "https://minio:9000",
            "http://minio:9001",
            "http://minio:9000/other",
            "http://user:pw@minio:9000",
            "http://169.254.169.254",
            "minio:9000",
        ] {
            assert!(!c.endpoint_allowed(Some(refused)), "{refused}");
        }
        assert!(!with(&[]).endpoint_allowed(Some("http://minio:9000")));
        assert!(with(&[]).endpoint_allowed(None));
    }
}
