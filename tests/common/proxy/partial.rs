//! [`super::Fault::Partial`]: forward the request, then send the response's head and only the
//! first bytes of its body, and either reset the connection at once (a body that breaks off
//! mid-way) or first stall (a store or network that stops sending without closing).

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

/// How much of the body to send, and how long to wait before the connection is reset.
#[derive(Clone, Debug)]
pub struct Partial {
    /// Bytes of the body sent (as on the wire) before the break.
    pub body_bytes: usize,
    /// Silence before the reset; zero resets at once.
    pub stall: Duration,
}

impl Partial {
    /// The head and `body_bytes` of the body, then a reset.
    pub fn cut(body_bytes: usize) -> Partial {
        Partial {
            body_bytes,
            stall: Duration::ZERO,
        }
    }

    /// The head and `body_bytes` of the body, then nothing for `stall`, then a reset.
    pub fn stall(body_bytes: usize, stall: Duration) -> Partial {
        Partial { body_bytes, stall }
    }

    /// Writes the partial answer of `response` (head and body as received upstream) and waits;
    /// the caller then resets the connection.
    pub async fn answer(&self, out: &mut OwnedWriteHalf, response: &[u8]) -> io::Result<()> {
        let head_end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(response.len(), |p| p + 4);
        let end = (head_end + self.body_bytes).min(response.len());
        out.write_all(&response[..end]).await?;
        out.flush().await?;
        tokio::time::sleep(self.stall).await;
        Ok(())
    }
}
