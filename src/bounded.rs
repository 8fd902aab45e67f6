//! HTTP answers read within bounds, shared by every client that talks to a peer it does not
//! control (release mirrors, S3 stores, the AWS Query APIs, other members' peer ports): the
//! answer must come within the idle time (`timeout-seconds`), each next chunk of the body
//! too, and the body is counted
//! while it streams and cut at a cap; nothing is buffered beyond one chunk unless the caller
//! collects it (`read_to_vec`, itself capped).

use crate::error_chain::error_chain;
use std::time::Duration;

/// Why a bounded transfer stopped. The texts name the bound; callers add the URL/endpoint.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The peer accepted the connection but sent nothing (more) within the idle time.
    #[error("no {what} within {}s (timeout-seconds); the server stalled", .idle.as_secs_f64())]
    Stalled { what: &'static str, idle: Duration },
    /// The body (declared or sent) is larger than the cap.
    #[error("larger than {max} bytes (the cap for {what}); refusing the rest")]
    TooLarge { what: &'static str, max: u64 },
    /// The connection failed (refused, reset, TLS, DNS) or broke off.
    #[error("{0}")]
    Transport(String),
}

impl BodyError {
    /// A reqwest error: its own timeouts (a client's read timeout) are stalls too; a
    /// connection that could not be made in time is a transport error.
    pub fn of(e: reqwest::Error, what: &'static str, idle: Duration) -> BodyError {
        if e.is_timeout() && !e.is_connect() {
            BodyError::Stalled { what, idle }
        } else {
            BodyError::Transport(error_chain(&e.without_url()))
        }
    }

    /// Connection failures are worth another attempt; a stalled or oversized answer is not:
    /// the peer behaves that way on purpose or is broken, and the time is used up.
    pub fn is_transient(&self) -> bool {
        matches!(self, BodyError::Transport(_))
    }
}

/// Sends `req`, waiting at most `idle` for the answer's head.
pub async fn send(
    req: reqwest::RequestBuilder,
    idle: Duration,
) -> Result<reqwest::Response, BodyError> {
    tokio::time::timeout(idle, req.send())
        .await
        .map_err(|_| BodyError::Stalled { what: "answer", idle })?
        .map_err(|e| BodyError::of(e, "answer", idle))
}

/// The body of an answer, chunk by chunk, each within the idle time, in total within `max`.
pub struct Body {
    resp: reqwest::Response,
    idle: Duration,
    max: u64,
    what: &'static str,
    total: u64,
}

impl Body {
    /// `what` names the body in the cap's error ("a listing page", "SHA256SUMS"). A
    /// declared Content-Length over `max` is refused before any of the body is read.
    pub fn new(
        resp: reqwest::Response,
        what: &'static str,
        max: u64,
        idle: Duration,
    ) -> Result<Body, BodyError> {
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(BodyError::TooLarge { what, max });
        }
        Ok(Body { resp, idle, max, what, total: 0 })
    }

    /// The length the server declared, if any.
    pub fn declared_len(&self) -> Option<u64> {
        self.resp.content_length()
    }

    /// The next chunk, or None at the end.
    pub async fn next(&mut self) -> Result<Option<impl AsRef<[u8]> + use<>>, BodyError> {
        let chunk = tokio::time::timeout(self.idle, self.resp.chunk())
            .await
            .map_err(|_| BodyError::Stalled { what: "data", idle: self.idle })?
            .map_err(|e| BodyError::of(e, "data", self.idle))?;
        if let Some(c) = &chunk {
            self.total += c.len() as u64;
            if self.total > self.max {
                return Err(BodyError::TooLarge { what: self.what, max: self.max });
            }
        }
        Ok(chunk)
    }

    /// The whole body in memory (at most `max` bytes).
    pub async fn read_to_vec(mut self) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::new();
        while let Some(c) = self.next().await? {
            out.extend_from_slice(c.as_ref());
        }
        Ok(out)
    }
}

/// The whole body of `resp` as (lossy) UTF-8 text, within `max` and `idle`.
pub async fn read_text(
    resp: reqwest::Response,
    what: &'static str,
    max: u64,
    idle: Duration,
) -> Result<String, BodyError> {
    let bytes = Body::new(resp, what, max, idle)?.read_to_vec().await?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A peer that reads the request, writes `head`, then, if `endless`, body bytes forever;
    /// otherwise it holds the connection open and sends nothing more.
    async fn peer(head: &'static str, endless: bool) -> String {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn.write_all(head.as_bytes()).await;
                    let chunk = vec![b'x'; 64 * 1024];
                    while endless && conn.write_all(&chunk).await.is_ok() {}
                    tokio::time::sleep(Duration::from_secs(600)).await;
                });
            }
        });
        url
    }

    async fn get(url: &str, idle: Duration) -> Result<reqwest::Response, BodyError> {
        send(reqwest::Client::new().get(url), idle).await
    }

    async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(60), f).await.expect("the transfer hung")
    }

    #[tokio::test]
    async fn silence_stalls_the_answer_then_the_body() {
        let idle = Duration::from_secs(1);
        let e = bounded(get(&peer("", false).await, idle)).await.unwrap_err();
        assert_eq!(e.to_string(), "no answer within 1s (timeout-seconds); the server stalled");
        assert!(!e.is_transient());
        let url = peer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", false).await;
        let resp = bounded(get(&url, idle)).await.unwrap();
        let e = bounded(read_text(resp, "a test body", 100, idle)).await.unwrap_err();
        assert_eq!(e.to_string(), "no data within 1s (timeout-seconds); the server stalled");
    }

    #[tokio::test]
    async fn endless_and_declared_large_bodies_are_cut_at_the_cap() {
        let idle = Duration::from_secs(5);
        let url = peer("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", true).await;
        let resp = bounded(get(&url, idle)).await.unwrap();
        let e = bounded(read_text(resp, "a test body", 1 << 20, idle)).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "larger than 1048576 bytes (the cap for a test body); refusing the rest"
        );
        let url = peer("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", false).await;
        let resp = bounded(get(&url, idle)).await.unwrap();
        assert!(matches!(
            Body::new(resp, "a test body", 1000, idle),
            Err(BodyError::TooLarge { max: 1000, .. })
        ));
        let url = peer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false).await;
        let resp = bounded(get(&url, idle)).await.unwrap();
        assert_eq!(bounded(read_text(resp, "a test body", 5, idle)).await.unwrap(), "hello");
    }
}
