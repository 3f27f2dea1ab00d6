use super::*;
use tokio::io::AsyncWriteExt;

/// [`feed`] into memory.
async fn read_within(
    reader: impl AsyncRead + Unpin,
    limit: u64,
    deadline: Duration,
) -> Result<Vec<u8>, Unavailable> {
    let mut bytes = Vec::new();
    feed(reader, limit, &Deadline::new(deadline), 3, &mut bytes)
        .await
        .map_err(Fed::into_unavailable)?;
    Ok(bytes)
}

#[test]
fn the_deadline_grows_with_the_size() {
    let floor = Duration::from_secs(30);
    assert_eq!(download_deadline(floor, 0), floor);
    assert_eq!(
        download_deadline(floor, 10 * 1_048_576),
        Duration::from_secs(40)
    );
}

#[tokio::test]
async fn a_stalled_body_fails_at_its_deadline() {
    let (mut tx, rx) = tokio::io::duplex(64);
    tx.write_all(b"first bytes").await.unwrap();
    // `tx` stays open and silent: the body stalls.
    let started = std::time::Instant::now();
    let err = read_within(rx, 1000, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, Unavailable::Deadline(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(tx);
}

#[tokio::test]
async fn a_body_that_breaks_off_or_outgrows_the_limit_is_unavailable() {
    let open = breaking_reader(b"partial", std::io::ErrorKind::ConnectionReset);
    let err = read_within(open, 1000, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Unavailable::Body(_)), "{err}");
    let open = &b"0123456789"[..];
    let err = read_within(open, 4, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Unavailable::Grew(4)), "{err}");
    let open = &b"0123"[..];
    assert_eq!(
        read_within(open, 4, Duration::from_secs(5)).await.unwrap(),
        b"0123"
    );
}

/// A reader that yields `data`, then fails with `kind`.
fn breaking_reader(data: &'static [u8], kind: std::io::ErrorKind) -> impl AsyncRead + Unpin {
    struct Breaking(&'static [u8], std::io::ErrorKind);
    impl AsyncRead for Breaking {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0.is_empty() {
                return std::task::Poll::Ready(Err(self.1.into()));
            }
            let n = self.0.len().min(buf.remaining());
            buf.put_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }
    Breaking(data, kind)
}
