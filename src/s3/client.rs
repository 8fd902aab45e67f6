//! S3 REST calls (PUT, GET, DELETE, ListObjectsV2) over reqwest, signed with SigV4 in the
//! Authorization header by `aws-sigv4`. Host names resolve through reqwest's hickory
//! resolver (no libc NSS). Credentials go only into the signature and the
//! `x-amz-security-token` header; neither URLs nor errors carry them.

use super::{xml, S3Error, S3Url, Settings, MAC_META, SHA256_META};
use crate::aws_api::{sigv4_headers, Payload, SignRequest};
use crate::aws_credentials::AwsCredentials;
use crate::bounded::{self, BodyError};
use crate::digest::Sha256Digest;
use crate::error_chain::{error_chain, snippet};
use aws_credential_types::Credentials;
use sha2::{Digest, Sha256};
use std::io::{Seek, Write};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest object one PUT may upload (and so the largest snapshot a GET may return).
pub const MAX_PUT: u64 = 5 << 30;
/// The largest ListObjectsV2 page read (1000 keys of S3's longest are about 1.3 MB).
pub const MAX_LIST_PAGE: u64 = 4 << 20;
/// A listing stops with an error after this many pages...
pub const MAX_LIST_PAGES: usize = 100;
/// ... or this many objects: a backup prefix holds a few snapshots per member.
pub const MAX_LIST_OBJECTS: usize = 20_000;
/// The largest error document read (S3's are a few hundred bytes).
const MAX_ERROR_BODY: u64 = 64 << 10;
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// A client for one bucket. Every answer must come within `timeout-seconds` (the idle
/// time: for the answer, then for each chunk of its body), and every body is capped.
pub struct Client {
    http: reqwest::Client,
    idle: Duration,
    credentials: Credentials,
    settings: Settings,
    bucket: String,
}

/// An object's user metadata that restore checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// `x-amz-meta-sha256`, lower-case.
    pub sha256: Option<String>,
    /// `x-amz-meta-etcdadm-mac`.
    pub mac: Option<String>,
}

impl ObjectMeta {
    fn of(headers: &reqwest::header::HeaderMap) -> ObjectMeta {
        let get = |k: &str| {
            headers.get(k).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_ascii_lowercase())
        };
        ObjectMeta { sha256: get(SHA256_META), mac: get(MAC_META) }
    }
}

/// What a GET wrote: the metadata the object carries, and the SHA-256 of the bytes.
pub struct Got {
    pub meta: ObjectMeta,
    pub sha256: Sha256Digest,
    pub bytes: u64,
}

impl Client {
    pub fn new(
        settings: &Settings,
        bucket: &str,
        credentials: &AwsCredentials,
    ) -> Result<Client, S3Error> {
        // reqwest has no default crypto provider; main installs ring, and so does this for
        // other callers (tests). No-op when installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // Uploads: no answer while the body goes out is normal, but not for this long.
            .read_timeout(settings.retry_for)
            .hickory_dns(true)
            .user_agent(concat!("etcdadm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                S3Error::Invalid(format!(
                    "cannot set up the HTTP client for S3: {}",
                    error_chain(&e)
                ))
            })?;
        Ok(Client {
            http,
            idle: settings.retry_for,
            credentials: credentials.for_signing(),
            settings: settings.clone(),
            bucket: bucket.into(),
        })
    }

    pub fn endpoint(&self) -> String {
        self.settings.base_url()
    }

    fn target(&self, key: &str) -> String {
        S3Url { bucket: self.bucket.clone(), key: key.into() }.to_string()
    }

    /// The URL of `key` (the bucket itself for an empty key), path-style or virtual-hosted.
    fn url(&self, key: &str, query: &[(&str, &str)]) -> String {
        let base = self.settings.base_url();
        let mut u = if self.settings.path_style_for(&self.bucket) {
            if key.is_empty() {
                format!("{base}/{}", self.bucket)
            } else {
                format!("{base}/{}/{}", self.bucket, uri_encode(key, false))
            }
        } else {
            let (scheme, host) = base.split_once("://").unwrap_or(("https", base.as_str()));
            format!("{scheme}://{}.{host}/{}", self.bucket, uri_encode(key, false))
        };
        if !query.is_empty() {
            u.push('?');
            let pairs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
                .collect();
            u.push_str(&pairs.join("&"));
        }
        u
    }

    /// The SigV4 headers (authorization, x-amz-date, x-amz-content-sha256,
    /// x-amz-security-token) for a request with these headers and payload hash.
    fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&'static str, String)],
        payload_sha256: &str,
    ) -> Result<Vec<(&'static str, String)>, String> {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sigv4_headers(
            &self.credentials,
            &SignRequest {
                service: "s3",
                region: &self.settings.region,
                method,
                url,
                headers: &headers,
                payload: Payload::Sha256(payload_sha256),
            },
        )
    }

    /// One attempt: sends the request, returns a 2xx answer, else the store's error. A
    /// body comes with its length and SHA-256 (hex).
    async fn send(
        &self,
        op: &'static str,
        method: reqwest::Method,
        key: &str,
        query: &[(&str, &str)],
        headers: Vec<(&'static str, String)>,
        body: Option<(reqwest::Body, u64, &str)>,
    ) -> Result<reqwest::Response, S3Error> {
        let url = self.url(key, query);
        // A listing is about its prefix.
        let shown = query.iter().find(|(k, _)| *k == "prefix").map_or(key, |(_, v)| *v);
        let target = self.target(shown);
        let payload_sha256 = body.as_ref().map_or(EMPTY_SHA256, |(_, _, sha)| *sha);
        let signed = self
            .sign(method.as_str(), &url, &headers, payload_sha256)
            .map_err(|e| S3Error::Invalid(format!("cannot sign the request for {target}: {e}")))?;
        let mut req = self.http.request(method, &url);
        for (k, v) in headers.iter().chain(signed.iter()) {
            req = req.header(*k, v);
        }
        let resp = if let Some((body, len, _)) = body {
            // The upload itself may take long; the client's read timeout bounds the wait.
            req = req.header(reqwest::header::CONTENT_LENGTH, len).body(body);
            req.send()
                .await
                .map_err(|e| self.bounded(op, shown, BodyError::of(e, "answer", self.idle)))?
        } else {
            bounded::send(req, self.idle).await.map_err(|e| self.bounded(op, shown, e))?
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = bounded::read_text(resp, "an error document", MAX_ERROR_BODY, self.idle)
            .await
            .unwrap_or_default();
        let (code, message) = crate::aws_api::error_document(&text).unwrap_or_else(|| {
            (status.canonical_reason().unwrap_or("Error").replace(' ', ""), String::new())
        });
        Err(S3Error::Service {
            op,
            target,
            endpoint: self.endpoint(),
            status: status.as_u16(),
            code,
            message: snippet(&message),
        })
    }

    /// A bounded read's failure: a broken connection is a (retried) transport error; a
    /// stalled or oversized answer is final.
    fn bounded(&self, op: &'static str, key: &str, e: BodyError) -> S3Error {
        let (target, endpoint) = (self.target(key), self.endpoint());
        match e {
            BodyError::Transport(detail) => S3Error::Transport { op, target, endpoint, detail },
            e => S3Error::Bounded { op, target, endpoint, detail: e.to_string() },
        }
    }

    /// Uploads the file at `path` (`len` bytes, SHA-256 `sha256`) as `key`, recording the
    /// hash as object metadata; the store also checks the body against it
    /// (x-amz-content-sha256). Transient failures are retried.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        len: u64,
        sha256: &Sha256Digest,
        mac: &str,
    ) -> Result<(), S3Error> {
        if len > MAX_PUT {
            return Err(S3Error::Invalid(format!(
                "{} is {len} bytes, more than the 5 GiB one upload may hold; compact and defragment etcd first",
                path.display()
            )));
        }
        let hex = crate::digest::to_hex(sha256);
        let what = format!("upload to {}", self.target(key));
        crate::retry::retry_while(&what, self.settings.retry_for, S3Error::is_retryable, || async {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|source| S3Error::Io { path: path.into(), source })?;
            let headers = vec![
                ("content-type", "application/octet-stream".to_string()),
                (SHA256_META, hex.clone()),
                (MAC_META, mac.to_string()),
            ];
            self.send(
                "upload",
                reqwest::Method::PUT,
                key,
                &[],
                headers,
                Some((file_body(file), len, &hex)),
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Every object whose key starts with `prefix` and has no further `/` after it; at most
    /// `MAX_LIST_PAGES` pages and `MAX_LIST_OBJECTS` objects, else an error.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, S3Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let what = format!("list {}", self.target(prefix));
            let page = crate::retry::retry_while(
                &what,
                self.settings.retry_for,
                S3Error::is_retryable,
                || async {
                    let mut query =
                        vec![("list-type", "2"), ("prefix", prefix), ("delimiter", "/")];
                    if let Some(t) = &token {
                        query.push(("continuation-token", t));
                    }
                    let resp = self
                        .send("list", reqwest::Method::GET, "", &query, Vec::new(), None)
                        .await?;
                    let text = bounded::read_text(resp, "a listing page", MAX_LIST_PAGE, self.idle)
                        .await
                        .map_err(|e| self.bounded("list", prefix, e))?;
                    xml::list_objects(&text).map_err(|detail| S3Error::BadResponse {
                        op: "list",
                        target: self.target(prefix),
                        endpoint: self.endpoint(),
                        detail,
                    })
                },
            )
            .await?;
            out.extend(page.objects);
            if out.len() > MAX_LIST_OBJECTS {
                return Err(self.too_many(
                    prefix,
                    format!("more than {MAX_LIST_OBJECTS} objects; refusing to list further"),
                ));
            }
            match page.next_token {
                Some(t) if page.truncated => token = Some(t),
                _ => return Ok(out),
            }
        }
        Err(self.too_many(
            prefix,
            format!(
                "the store still says there is more after {MAX_LIST_PAGES} pages; refusing to list further"
            ),
        ))
    }

    fn too_many(&self, prefix: &str, detail: String) -> S3Error {
        S3Error::TooMany {
            target: self.target(prefix),
            endpoint: self.endpoint(),
            detail: format!("{detail}: give the backups (backup-s3-url) a prefix of their own"),
        }
    }

    /// The metadata of `key` (HEAD), without its body.
    pub async fn head(&self, key: &str) -> Result<ObjectMeta, S3Error> {
        let what = format!("inspect {}", self.target(key));
        crate::retry::retry_while(&what, self.settings.retry_for, S3Error::is_retryable, || async {
            let resp =
                self.send("inspect", reqwest::Method::HEAD, key, &[], Vec::new(), None).await?;
            Ok(ObjectMeta::of(resp.headers()))
        })
        .await
    }

    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let what = format!("delete {}", self.target(key));
        crate::retry::retry_while(&what, self.settings.retry_for, S3Error::is_retryable, || async {
            self.send("delete", reqwest::Method::DELETE, key, &[], Vec::new(), None)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Downloads `key` into `file` (truncated first, also before each retry), hashing it.
    pub async fn get_to_file(
        &self,
        key: &str,
        file: &std::fs::File,
        path: &Path,
    ) -> Result<Got, S3Error> {
        let what = format!("download {}", self.target(key));
        let io = |source| S3Error::Io { path: path.into(), source };
        let attempt = || async {
            let mut file = file;
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            let resp =
                self.send("download", reqwest::Method::GET, key, &[], Vec::new(), None).await?;
            let meta = ObjectMeta::of(resp.headers());
            let mut hasher = Sha256::new();
            let mut bytes = 0u64;
            let mut body = bounded::Body::new(resp, "a snapshot", MAX_PUT, self.idle)
                .map_err(|e| self.bounded("download", key, e))?;
            while let Some(chunk) =
                body.next().await.map_err(|e| self.bounded("download", key, e))?
            {
                let chunk = chunk.as_ref();
                hasher.update(chunk);
                file.write_all(chunk).map_err(io)?;
                bytes += chunk.len() as u64;
            }
            file.sync_all().map_err(io)?;
            Ok(Got { meta, sha256: hasher.finalize().into(), bytes })
        };
        crate::retry::retry_while(&what, self.settings.retry_for, S3Error::is_retryable, attempt)
            .await
    }
}

/// The file as a streamed body, read in 256 KiB chunks.
fn file_body(file: tokio::fs::File) -> reqwest::Body {
    let chunks = futures_util::stream::unfold(Some(file), |state| async move {
        let mut f = state?;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Vec<u8>, std::io::Error>(buf), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    reqwest::Body::wrap_stream(chunks)
}

/// S3's URI encoding: unreserved characters stay, `/` stays in paths, all else is %XX.
fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(path_style: bool, endpoint: Option<&str>) -> Client {
        let creds = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("token-xyz".into()),
            expiration: None,
        };
        let s =
            Settings::new(endpoint, Some("eu-west-1"), Some(path_style), Duration::from_secs(1))
                .unwrap();
        Client::new(&s, "bkt", &creds).unwrap()
    }

    #[test]
    fn urls_path_style_and_virtual_hosted() {
        let p = client(true, Some("http://127.0.0.1:9000"));
        assert_eq!(p.url("a b/m1+x.db", &[]), "http://127.0.0.1:9000/bkt/a%20b/m1%2Bx.db");
        assert_eq!(
            p.url("", &[("list-type", "2"), ("prefix", "p/q")]),
            "http://127.0.0.1:9000/bkt?list-type=2&prefix=p%2Fq"
        );
        let v = client(false, None);
        assert_eq!(v.url("p/k.db", &[]), "https://bkt.s3.eu-west-1.amazonaws.com/p/k.db");
        assert_eq!(v.url("", &[]), "https://bkt.s3.eu-west-1.amazonaws.com/");
    }

    #[test]
    fn signed_headers_carry_no_secret() {
        let c = client(true, Some("http://127.0.0.1:9000"));
        let h = c
            .sign(
                "PUT",
                &c.url("p/k.db", &[]),
                &[("content-type", "application/octet-stream".into()), (SHA256_META, "ab".into())],
                "ab",
            )
            .unwrap();
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let auth = get("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "{auth}");
        assert!(auth.contains("/eu-west-1/s3/aws4_request"), "{auth}");
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-sha256;x-amz-security-token"), "{auth}");
        assert_eq!(get("x-amz-content-sha256"), Some("ab"));
        assert_eq!(get("x-amz-security-token"), Some("token-xyz"));
        assert!(!h.iter().any(|(_, v)| v.contains("wJalr")));
    }
}
