//! Elastic's Data Extraction Service client (§8.4): `PUT {host}/extract_text/`, streaming the bytes or
//! pointing at a file in the shared volume. A file the service cannot parse yields an empty text,
//! as in Elastic's service; a service that does not answer (unreachable, timed out, 429, 5xx) is
//! [`Unavailable`], so that indexed text is not replaced by nothing.

use super::content::Unavailable;
use crate::config::ExtractionServiceConfig;
use serde_json::Value;

pub async fn extract(
    http: &reqwest::Client,
    cfg: &ExtractionServiceConfig,
    key: &str,
    bytes: Vec<u8>,
) -> Result<String, Unavailable> {
    let host = cfg
        .host
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let url = format!("{host}/extract_text/");
    let mut temp_file = None;
    let request = if cfg.use_file_pointers {
        let ext = crate::source::s3::file_extension(key).unwrap_or("");
        let path = std::path::Path::new(&cfg.shared_volume_dir).join(format!(
            "content-sync-{}-{}{ext}",
            std::process::id(),
            fastrand::u64(..)
        ));
        if let Err(e) = tokio::fs::write(&path, &bytes).await {
            tracing::error!(key, error = %e, "cannot write the file for the extraction service");
            return Err(Unavailable::Service(format!(
                "writing the shared file: {e}"
            )));
        }
        let request = http
            .put(&url)
            .query(&[("local_file_path", path.to_string_lossy().to_string())]);
        temp_file = Some(path);
        request
    } else {
        http.put(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes)
    };
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(cfg.timeout())
        .send()
        .await;
    if let Some(path) = temp_file {
        let _ = tokio::fs::remove_file(path).await;
    }
    let response = response.map_err(|e| Unavailable::Service(e.to_string()))?;
    let status = response.status();
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(Unavailable::Service(format!("status {}", status.as_u16())));
    }
    // An answer that breaks off is the service's trouble; one that is not JSON is its verdict.
    let raw = response
        .bytes()
        .await
        .map_err(|e| Unavailable::Service(format!("reading the answer: {e}")))?;
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    if status.is_success() && body.get("error").is_none() {
        return Ok(body
            .get("extracted_text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string());
    }
    let (error, message) = (body["error"].to_string(), body["message"].to_string());
    tracing::warn!(key, status = status.as_u16(), error = %error, message = %message,
        "extraction service could not parse the file");
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server answering `status` with `body`; returns its base URL.
    async fn answering(status: u16, body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(answer.as_bytes()).await;
        });
        url
    }

    fn config(host: String) -> ExtractionServiceConfig {
        ExtractionServiceConfig {
            host: Some(host),
            timeout: 5.0,
            ..ExtractionServiceConfig::default()
        }
    }

    async fn run(host: String) -> Result<String, Unavailable> {
        extract(
            &reqwest::Client::new(),
            &config(host),
            "a.pdf",
            b"%PDF".to_vec(),
        )
        .await
    }

    #[tokio::test]
    async fn a_service_in_trouble_is_unavailable_and_a_refused_file_is_empty() {
        let ok = answering(200, r#"{"extracted_text": "words"}"#).await;
        assert_eq!(run(ok).await.unwrap(), "words");
        let refused = answering(422, r#"{"error": "unparseable", "message": "no"}"#).await;
        assert_eq!(run(refused).await.unwrap(), "");
        let busy = answering(503, "{}").await;
        assert!(matches!(run(busy).await, Err(Unavailable::Service(_))));
        let closed = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        assert!(matches!(run(closed).await, Err(Unavailable::Service(_))));
    }
}
