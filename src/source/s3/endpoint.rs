//! Which S3 endpoint to use and how to address buckets on it.

use super::settings::S3Settings;
use std::net::IpAddr;

impl S3Settings {
    /// The endpoint to use, from the process environment (see [`S3Settings::resolve_endpoint_with`]).
    pub fn resolve_endpoint(&self) -> Option<String> {
        self.resolve_endpoint_with(|name| std::env::var(name).ok())
    }

    /// The endpoint to use: the `endpoint_url` setting; else env `AWS_ENDPOINT_URL`, with `:<AWS_PORT>`
    /// appended when `AWS_PORT` is set and the URL has no port (Elastic's ftest pair); else `None`
    /// (standard AWS endpoints). `env` looks up an environment variable; empty values count as unset.
    pub fn resolve_endpoint_with(&self, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        if let Some(url) = &self.endpoint_url {
            return Some(url.clone());
        }
        let env = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let url = env("AWS_ENDPOINT_URL")?;
        match env("AWS_PORT") {
            Some(port) if !has_port(&url) => Some(with_port(&url, &port)),
            _ => Some(url),
        }
    }
}

/// Splits `scheme://authority/rest` into (`scheme://`, authority, `/rest`).
fn split_url(url: &str) -> (&str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    (&url[..start], &url[start..end], &url[end..])
}

fn has_port(url: &str) -> bool {
    let (_, authority, _) = split_url(url);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    // For `[::1]:9000` only look after the closing bracket.
    let after_host = host_port.rfind(']').map_or(host_port, |i| &host_port[i..]);
    after_host.contains(':')
}

fn with_port(url: &str, port: &str) -> String {
    let (scheme, authority, rest) = split_url(url);
    format!("{scheme}{authority}:{port}{rest}")
}

/// `url` with its user info, if any, replaced by `***` (`http://u:p@host` → `http://***@host`), for
/// messages and logs.
pub(crate) fn redact_userinfo(url: &str) -> String {
    let (scheme, authority, rest) = split_url(url);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}{rest}"),
        None => url.to_owned(),
    }
}

/// Whether the endpoint's host is `localhost` or an IP address (virtual-host addressing cannot work).
pub(super) fn is_local_or_ip(url: &str) -> bool {
    let (_, authority, _) = split_url(url);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host_port.split(':').next().unwrap_or(host_port),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let mut s = S3Settings::default();
        assert_eq!(s.resolve_endpoint_with(env(&[])), None);
        assert_eq!(s.resolve_endpoint_with(env(&[("AWS_PORT", "1")])), None);
        assert_eq!(
            s.resolve_endpoint_with(env(&[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1"),
                ("AWS_PORT", "5001")
            ]))
            .unwrap(),
            "http://127.0.0.1:5001"
        );
        assert_eq!(
            s.resolve_endpoint_with(env(&[
                ("AWS_ENDPOINT_URL", "http://h:9/"),
                ("AWS_PORT", "5001")
            ]))
            .unwrap(),
            "http://h:9/"
        );
        assert_eq!(
            s.resolve_endpoint_with(env(&[
                ("AWS_ENDPOINT_URL", "http://[::1]/p"),
                ("AWS_PORT", "7")
            ]))
            .unwrap(),
            "http://[::1]:7/p"
        );
        assert_eq!(
            s.resolve_endpoint_with(env(&[("AWS_ENDPOINT_URL", "http://h")]))
                .unwrap(),
            "http://h"
        );
        s.endpoint_url = Some("https://r2.example".into());
        assert_eq!(
            s.resolve_endpoint_with(env(&[("AWS_ENDPOINT_URL", "http://h"), ("AWS_PORT", "1")]))
                .unwrap(),
            "https://r2.example"
        );
    }

    #[test]
    fn user_info_is_redacted() {
        assert_eq!(
            redact_userinfo("http://key:secret@minio:9000/p"),
            "http://***@minio:9000/p"
        );
        assert_eq!(redact_userinfo("https://r2.example"), "https://r2.example");
        assert_eq!(redact_userinfo("u:p@minio:9000"), "***@minio:9000");
    }

    #[test]
    fn local_or_ip_endpoints() {
        for url in [
            "http://localhost:9000",
            "http://127.0.0.1:5001",
            "http://[::1]:9000/",
            "https://10.0.0.2",
        ] {
            assert!(is_local_or_ip(url), "{url}");
        }
        for url in [
            "https://s3.example.com",
            "http://minio:9000",
            "https://acct.r2.cloudflarestorage.com",
        ] {
            assert!(!is_local_or_ip(url), "{url}");
        }
    }
}
