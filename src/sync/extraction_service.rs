//! Elastic's Data Extraction Service client (§8.4): `PUT {host}/extract_text/`, streaming the bytes or
//! pointing at a file in the shared volume. Failures yield an empty text, as in Elastic's service.

use crate::config::ExtractionServiceConfig;
use serde_json::Value;

pub async fn extract(
    http: &reqwest::Client,
    cfg: &ExtractionServiceConfig,
    key: &str,
    bytes: Vec<u8>,
) -> String {
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
            return String::new();
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
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(key, error = %e, "extraction service request failed");
            return String::new();
        }
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() && body.get("error").is_none() {
        return body
            .get("extracted_text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
    }
    let (error, message) = (body["error"].to_string(), body["message"].to_string());
    tracing::warn!(key, status = status.as_u16(), error = %error, message = %message,
        "extraction service could not parse the file");
    String::new()
}
