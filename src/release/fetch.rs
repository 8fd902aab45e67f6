//! Streaming transfers from `http(s)://` and `file://` URLs, hashing in the same pass.

use super::progress::Progress;
use super::ReleaseError;
use crate::digest::Sha256Digest;
use crate::error_chain::error_chain;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest SHA256SUMS we accept.
const SMALL_LIMIT: usize = 1 << 20;

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

fn client(connect_timeout: Duration) -> Result<reqwest::Client, ReleaseError> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .user_agent(concat!("etcdadm/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| fetch_err("(client)", e))
}

async fn get(url: &str, connect_timeout: Duration) -> Result<reqwest::Response, ReleaseError> {
    let resp = client(connect_timeout)?
        .get(url)
        .send()
        .await
        .map_err(|e| fetch_err(url, error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(fetch_err(url, format!("server answered {}", resp.status())));
    }
    Ok(resp)
}

/// Fetches a small file (SHA256SUMS) into memory.
pub async fn fetch_small(url: &str, connect_timeout: Duration) -> Result<Vec<u8>, ReleaseError> {
    if let Some(path) = file_path(url)? {
        return std::fs::read(&path).map_err(|e| fetch_err(url, e));
    }
    let resp = get(url, connect_timeout).await?;
    let bytes = resp.bytes().await.map_err(|e| fetch_err(url, error_chain(&e)))?;
    if bytes.len() > SMALL_LIMIT {
        return Err(fetch_err(url, "larger than 1 MiB; not a SHA256SUMS file"));
    }
    Ok(bytes.to_vec())
}

/// Streams `url` into `dest` (via a temporary file beside it), returning the SHA-256 of
/// what was written. The file appears at `dest` only once complete.
pub async fn download(
    url: &str,
    dest: &Path,
    connect_timeout: Duration,
) -> Result<Sha256Digest, ReleaseError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)
        .map_err(super::io_err(dir))?;
    let mut hasher = Sha256::new();
    let mut sink = |chunk: &[u8]| -> Result<(), ReleaseError> {
        hasher.update(chunk);
        tmp.write_all(chunk).map_err(super::io_err(dest))
    };
    if let Some(path) = file_path(url)? {
        let mut f = tokio::fs::File::open(&path).await.map_err(|e| fetch_err(url, e))?;
        let total = f.metadata().await.ok().map(|m| m.len());
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
        let resp = get(url, connect_timeout).await?;
        let mut progress = Progress::new(url, resp.content_length());
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| fetch_err(url, error_chain(&e)))?;
            sink(&chunk)?;
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
    }
    // Not synced: the cache is verified against the digest whenever it is used, so a file
    // torn by a crash is simply downloaded again.
    tmp.persist(dest).map_err(|e| super::io_err(dest)(e.error))?;
    Ok(hasher.finalize().into())
}
