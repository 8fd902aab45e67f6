//! Streaming transfers from `http(s)://` and `file://` URLs, hashing in the same pass.
//!
//! A mirror is not trusted to behave: every transfer is bounded in time (connect, then the
//! answer and each chunk of the body must come within the idle timeout) and in size (the
//! body is counted while it streams; nothing is buffered beyond one chunk).

use super::follow::Writer;
use super::progress::Progress;
use super::ReleaseError;
use crate::bounded::{self, BodyError};
use crate::digest::Sha256Digest;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Largest SHA256SUMS we accept.
pub const SUMS_MAX_BYTES: u64 = 1 << 20;
/// Largest release archive we accept (etcd's are about 20 MB).
pub const ARCHIVE_MAX_BYTES: u64 = 1 << 30;

/// The bounds of one transfer (its connections are bounded by its `Client`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// For the answer, and then for each next chunk of the body: timeout-seconds.
    pub idle: Duration,
    pub max_bytes: u64,
}

fn fetch_err(url: &str, message: impl ToString) -> ReleaseError {
    ReleaseError::Fetch { url: url.into(), message: message.to_string() }
}

fn file_path(url: &str) -> Result<Option<PathBuf>, ReleaseError> {
    let parsed = url::Url::parse(url).map_err(|e| fetch_err(url, e))?;
    match parsed.scheme() {
        "file" => {
            parsed.to_file_path().map(Some).map_err(|_| fetch_err(url, "not a local file path"))
        }
        _ => Ok(None),
    }
}

/// The HTTP client of one release's transfers (SHA256SUMS and the archive), built on first
/// use: building one reads the system's TLS roots (a few hundred files, tens of milliseconds
/// on a busy first boot), so both transfers share it, and may run at the same time.
pub struct Client {
    connect: Duration,
    http: OnceLock<reqwest::Client>,
}

impl Client {
    /// `connect` bounds each TCP (and TLS) connection: download-connect-timeout-seconds.
    pub fn new(connect: Duration) -> Client {
        Client { connect, http: OnceLock::new() }
    }

    fn http(&self) -> Result<&reqwest::Client, ReleaseError> {
        if let Some(c) = self.http.get() {
            return Ok(c);
        }
        let built = reqwest::Client::builder()
            .connect_timeout(self.connect)
            .user_agent(concat!("etcdadm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| fetch_err("(client)", e))?;
        Ok(self.http.get_or_init(|| built))
    }
}

fn too_large(url: &str, limits: &Limits) -> ReleaseError {
    fetch_err(url, format!("larger than {} bytes; refusing the rest", limits.max_bytes))
}

fn bounded_err(url: &str, e: BodyError) -> ReleaseError {
    match e {
        BodyError::Stalled { .. } => fetch_err(url, format!("{e}: the mirror stalled")),
        e => fetch_err(url, e),
    }
}

/// Streams the body of `url` chunk by chunk into `sink`, within `limits` (see
/// `crate::bounded`).
async fn stream_into(
    client: &Client,
    url: &str,
    limits: &Limits,
    what: &'static str,
    sink: &mut (dyn FnMut(&[u8]) -> Result<(), ReleaseError> + Send),
) -> Result<(), ReleaseError> {
    let resp = bounded::send(client.http()?.get(url), limits.idle)
        .await
        .map_err(|e| bounded_err(url, e))?;
    if !resp.status().is_success() {
        return Err(fetch_err(url, format!("server answered {}", resp.status())));
    }
    let mut body = bounded::Body::new(resp, what, limits.max_bytes, limits.idle)
        .map_err(|e| bounded_err(url, e))?;
    let mut progress = Progress::new(url, body.declared_len());
    while let Some(chunk) = body.next().await.map_err(|e| bounded_err(url, e))? {
        let chunk = chunk.as_ref();
        sink(chunk)?;
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    Ok(())
}

/// Fetches a small file (SHA256SUMS) into memory.
pub async fn fetch_small(
    client: &Client,
    url: &str,
    limits: &Limits,
) -> Result<Vec<u8>, ReleaseError> {
    if let Some(path) = file_path(url)? {
        let len = std::fs::metadata(&path).map_err(|e| fetch_err(url, e))?.len();
        if len > limits.max_bytes {
            return Err(too_large(url, limits));
        }
        return std::fs::read(&path).map_err(|e| fetch_err(url, e));
    }
    let mut bytes = Vec::new();
    stream_into(client, url, limits, "SHA256SUMS", &mut |chunk| {
        bytes.extend_from_slice(chunk);
        Ok(())
    })
    .await?;
    Ok(bytes)
}

/// Streams `url` into `dest` (via a temporary file beside it), returning the SHA-256 of
/// what was written. The file appears at `dest` only once complete. `writer`'s follower
/// reads the temporary file as it grows (the release is unpacked in the same pass) and
/// reaches its end once the download stops, however it stops; it never slows it down.
pub async fn download(
    client: &Client,
    url: &str,
    dest: &Path,
    limits: &Limits,
    writer: Option<Writer>,
) -> Result<Sha256Digest, ReleaseError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)
        .map_err(super::io_err(dir))?;
    if let Some(w) = &writer {
        w.opened(tmp.as_file().try_clone().map_err(super::io_err(dir))?);
    }
    let mut hasher = Sha256::new();
    let mut sink = |chunk: &[u8]| -> Result<(), ReleaseError> {
        hasher.update(chunk);
        tmp.write_all(chunk).map_err(super::io_err(dest))?;
        if let Some(w) = &writer {
            w.grew(chunk.len() as u64);
        }
        Ok(())
    };
    if let Some(path) = file_path(url)? {
        let mut f = tokio::fs::File::open(&path).await.map_err(|e| fetch_err(url, e))?;
        let total = f.metadata().await.ok().map(|m| m.len());
        if total.is_some_and(|n| n > limits.max_bytes) {
            return Err(too_large(url, limits));
        }
        let mut progress = Progress::new(url, total);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut f, &mut buf)
                .await
                .map_err(|e| fetch_err(url, e))?;
            if n == 0 {
                break;
            }
            sink(&buf[..n])?;
            progress.advance(n as u64);
        }
        progress.finish();
    } else {
        stream_into(client, url, limits, "a release archive", &mut sink).await?;
    }
    // Not synced: the cache is verified against the digest whenever it is used, so a file
    // torn by a crash is simply downloaded again.
    tmp.persist(dest).map_err(|e| super::io_err(dest)(e.error))?;
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A mirror on loopback that reads the request, writes `head` and then, if `endless`,
    /// body bytes forever; otherwise it keeps the connection open and sends nothing more.
    async fn mirror(head: &'static str, endless: bool) -> String {
        // As main does: reqwest needs the process's crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v3.5.1/SHA256SUMS", listener.local_addr().unwrap());
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

    fn limits(max_bytes: u64) -> Limits {
        Limits { idle: Duration::from_secs(1), max_bytes }
    }

    fn client() -> Client {
        Client::new(Duration::from_secs(5))
    }

    /// Bounds the test itself: a transfer that hangs fails the test instead of hanging it.
    async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(60), f).await.expect("the transfer hung")
    }

    /// The follower starts reading only once the download is done, or after 30 s: a
    /// download paced by its reader (as through a bounded queue) waits for those 30 s.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_download_is_done_before_its_follower_reads_a_byte_and_the_follower_gets_every_byte()
    {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("archive");
        let size = 32u64 << 20; // twice what the queue this replaced held of a file:// source
        let mut content = std::fs::File::create(&src).unwrap();
        for i in 0..(size >> 20) {
            content.write_all(&vec![i as u8; 1 << 20]).unwrap();
        }
        let (writer, mut follower) = crate::release::follow::growing();
        let (done, download_done) = std::sync::mpsc::channel::<()>();
        let reading = std::thread::spawn(move || {
            let waited = download_done.recv_timeout(Duration::from_secs(30)).is_ok();
            let mut read = Vec::new();
            let n = std::io::Read::read_to_end(&mut follower, &mut read).unwrap();
            (waited, n as u64, Sha256Digest::from(Sha256::digest(&read)))
        });
        let url = url::Url::from_file_path(&src).unwrap().to_string();
        let dest = dir.path().join("cached");
        let written =
            bounded(download(&client(), &url, &dest, &limits(size), Some(writer))).await.unwrap();
        let _ = done.send(());
        let (download_done_first, n, read) = reading.join().unwrap();
        assert!(download_done_first, "the download waited for its follower to read");
        assert_eq!(n, size, "bytes the follower read");
        assert_eq!(read, written, "SHA-256 of what the follower read and of the download");
    }

    #[tokio::test]
    async fn a_mirror_that_accepts_and_then_sends_nothing_is_an_error_naming_timeout_seconds() {
        let url = mirror("", false).await;
        let e = bounded(fetch_small(&client(), &url, &limits(SUMS_MAX_BYTES))).await.unwrap_err();
        assert!(e.to_string().contains("no answer within 1s (timeout-seconds)"), "{e}");
    }

    #[tokio::test]
    async fn a_mirror_that_stalls_in_the_body_is_an_error_and_leaves_no_file() {
        let url = mirror("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", false).await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("etcd.tar.gz");
        let e = bounded(download(&client(), &url, &dest, &limits(ARCHIVE_MAX_BYTES), None))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no data within 1s (timeout-seconds)"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a file was left");
    }

    #[tokio::test]
    async fn an_endless_body_is_cut_at_the_size_limit_and_leaves_no_file() {
        let url = mirror("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", true).await;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("etcd.tar.gz");
        let e =
            bounded(download(&client(), &url, &dest, &limits(1 << 20), None)).await.unwrap_err();
        assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a file was left");
        let e = bounded(fetch_small(&client(), &url, &limits(SUMS_MAX_BYTES))).await.unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_before_the_body() {
        let url = mirror("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", false).await;
        let e = bounded(fetch_small(&client(), &url, &limits(SUMS_MAX_BYTES))).await.unwrap_err();
        assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
    }
}
