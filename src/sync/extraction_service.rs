//! Elastic's Data Extraction Service client (docs/architecture.md#content): `PUT {host}/extract_text/`, streaming the bytes or
//! pointing at a file in the shared volume. A file the service cannot parse yields an empty text,
//! as in Elastic's service; a service that does not answer (unreachable, timed out, 429, 5xx) is
//! [`Unavailable`], so that indexed text is not replaced by nothing.

use super::content::{Consumer, Deadline, Fed, Unavailable, feed};
use crate::config::ExtractionServiceConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncWriteExt};

/// Pieces of the object queued for the request body.
const UPLOAD_QUEUE: usize = 4;

/// The request body's end of the upload.
struct Upload(tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>);

/// The request is gone (answered early, or failed).
#[derive(Debug)]
struct Closed;

impl Consumer for Upload {
    type Error = Closed;
    async fn take(&mut self, piece: &[u8]) -> Result<(), Closed> {
        self.0.send(Ok(piece.to_vec())).await.map_err(|_| Closed)
    }
}

/// Into the shared file.
impl Consumer for tokio::fs::File {
    type Error = std::io::Error;
    async fn take(&mut self, piece: &[u8]) -> Result<(), std::io::Error> {
        self.write_all(piece).await
    }
}

/// A file written to the shared volume for the extraction service, deleted when dropped: a canceled
/// or failed sync drops the extraction mid-request (or mid-write), and the volume must not fill up
/// with its copies of bucket content.
struct SharedFile(PathBuf);

impl Drop for SharedFile {
    fn drop(&mut self) {
        // Blocking, but a single unlink; an async delete could not run from `drop`.
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), error = %e, "cannot remove the extraction service's file");
        }
    }
}

/// Sends the object, as it downloads from `body` (`length` bytes when S3 said so), to the service
/// and returns its text and the bytes downloaded. Nothing here holds more than a few pieces of the
/// object: they go into the request body as they come (backpressure included), or into the shared
/// file; the download keeps its `deadline`, and the service has `timeout` after it. No size cap
/// applies in this mode (as in Elastic, `service.max_file_download_size` does not).
pub(super) async fn extract<R>(
    http: &reqwest::Client,
    cfg: &ExtractionServiceConfig,
    key: &str,
    body: R,
    length: Option<u64>,
    deadline: &Deadline,
) -> Result<(String, u64), Unavailable>
where
    R: AsyncRead + Unpin,
{
    let host = cfg
        .host
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let url = format!("{host}/extract_text/");
    let piece = cfg.stream_chunk_size.get();
    let mut shared_file = None;
    let (response, downloaded) = if cfg.use_file_pointers {
        let ext = crate::source::s3::file_extension(key).unwrap_or("");
        let file = SharedFile(Path::new(&cfg.shared_volume_dir).join(format!(
            "content-sync-{}-{}{ext}",
            std::process::id(),
            fastrand::u64(..)
        )));
        let written = async {
            let mut out = tokio::fs::File::create(&file.0)
                .await
                .map_err(Fed::Consumer)?;
            let n = feed(body, u64::MAX, deadline, piece, &mut out).await?;
            out.flush().await.map_err(Fed::Consumer)?;
            Ok(n)
        };
        // Created before the first byte: dropped (canceled, failed), it is removed.
        let downloaded = match written.await {
            Ok(n) => n,
            Err(Fed::Download(e)) => return Err(e),
            Err(Fed::Consumer(e)) => {
                tracing::error!(key, error = %e, "cannot write the file for the extraction service");
                return Err(Unavailable::Service(format!(
                    "writing the shared file: {e}"
                )));
            }
        };
        let request = http
            .put(&url)
            .query(&[("local_file_path", file.0.to_string_lossy().to_string())])
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(cfg.timeout);
        shared_file = Some(file);
        (request.send().await, downloaded)
    } else {
        let (pieces, rx) = tokio::sync::mpsc::channel(UPLOAD_QUEUE);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|piece| (piece, rx))
        });
        let mut request = http
            .put(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(deadline.remaining() + cfg.timeout)
            .body(reqwest::Body::wrap_stream(stream));
        if let Some(length) = length {
            request = request.header(reqwest::header::CONTENT_LENGTH, length);
        }
        let upload = async move {
            let mut upload = Upload(pieces);
            let fed = feed(body, u64::MAX, deadline, piece, &mut upload).await;
            if fed.is_err() {
                // Ends the request body in error, so the service never sees a cut file whole.
                let _ = upload
                    .0
                    .send(Err(std::io::Error::other("the download failed")))
                    .await;
            }
            fed
        };
        let (fed, response) = tokio::join!(upload, request.send());
        match fed {
            Ok(n) => (response, n),
            Err(Fed::Download(e)) => return Err(e),
            // The request ended before the body did: its outcome says why.
            Err(Fed::Consumer(Closed)) => (response, 0),
        }
    };
    // The service has read the file once it answers.
    drop(shared_file);
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
        let text = body
            .get("extracted_text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Ok((text, downloaded));
    }
    let (error, message) = (body["error"].to_string(), body["message"].to_string());
    tracing::warn!(key, status = status.as_u16(), error = %error, message = %message,
        "extraction service could not parse the file");
    Ok((String::new(), downloaded))
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
            timeout: std::time::Duration::from_secs(5),
            ..ExtractionServiceConfig::default()
        }
    }

    fn deadline() -> Deadline {
        Deadline::new(std::time::Duration::from_secs(30))
    }

    async fn run(host: String) -> Result<String, Unavailable> {
        let body = &b"%PDF"[..];
        extract(
            &reqwest::Client::new(),
            &config(host),
            "a.pdf",
            body,
            Some(4),
            &deadline(),
        )
        .await
        .map(|(text, _)| text)
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

    fn file_pointers(host: String, dir: &Path) -> ExtractionServiceConfig {
        ExtractionServiceConfig {
            host: Some(host),
            use_file_pointers: true,
            shared_volume_dir: dir.to_string_lossy().into_owned(),
            ..ExtractionServiceConfig::default()
        }
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[tokio::test]
    async fn the_shared_file_is_removed_when_the_extraction_is_canceled() {
        let dir = tempfile::tempdir().unwrap();
        // A service that takes requests and never answers, so the extraction is dropped mid-request.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let cfg = file_pointers(host, dir.path());
        let http = reqwest::Client::new();
        let deadline = deadline();
        let extraction = extract(&http, &cfg, "a.pdf", &b"%PDF"[..], Some(4), &deadline);
        let written = async {
            while files_in(dir.path()) == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            text = extraction => panic!("the silent service answered: {text:?}"),
            () = written => {}
        }
        // `extraction` is dropped here, as a canceled sync drops it.
        assert_eq!(files_in(dir.path()), 0);
        server.abort();
    }

    #[tokio::test]
    async fn the_shared_file_is_removed_when_the_request_fails() {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = file_pointers(format!("http://127.0.0.1:{port}"), dir.path());
        let text = extract(
            &reqwest::Client::new(),
            &cfg,
            "a.pdf",
            &b"%PDF"[..],
            Some(4),
            &deadline(),
        )
        .await;
        assert!(
            text.is_err(),
            "an unreachable service is unavailable: {text:?}"
        );
        assert_eq!(files_in(dir.path()), 0);
    }
}
