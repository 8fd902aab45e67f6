//! The HTTP client the metadata sources share: one timeout per request, no proxy, no
//! redirects, bodies capped, and errors that name the URL.

use super::error::{status_hint, MetadataError};
use crate::error_chain::error_chain;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use std::time::Duration;
use url::Url;

/// Largest answer accepted; metadata documents are a few KiB.
const BODY_LIMIT: usize = 1 << 20;

pub(super) struct Http {
    client: reqwest::Client,
    provider: &'static str,
    base: Url,
}

/// A complete answer.
pub(super) struct Reply {
    pub url: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Http {
    pub fn new(
        provider: &'static str,
        base_url: &str,
        timeout_seconds: u64,
    ) -> Result<Http, MetadataError> {
        let config = |message: String| MetadataError::Config { message };
        if timeout_seconds == 0 {
            return Err(config(format!("{provider}: timeout-seconds must be at least 1")));
        }
        let base = Url::parse(base_url)
            .map_err(|e| config(format!("{provider}: base-url {base_url:?} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(config(format!(
                "{provider}: base-url {base_url:?} must be an http:// or https:// URL with a host"
            )));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(config(format!(
                "{provider}: base-url {base_url:?} must not have a query or fragment"
            )));
        }
        let timeout = Duration::from_secs(timeout_seconds);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("etcdadm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MetadataError::Client { provider, message: error_chain(&e) })?;
        Ok(Http { client, provider, base })
    }

    /// `base` + `path` (fixed segments separated by `/`, a trailing `/` kept) + `extra`
    /// segments, which are percent-encoded (tag keys, role names, MAC addresses).
    pub fn url(&self, path: &str, extra: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            // Cannot fail: the base was checked to have a host, so it can be a base.
            let mut segments = url.path_segments_mut().expect("http URL with a host");
            segments.pop_if_empty();
            segments.extend(path.split('/'));
            segments.extend(extra);
        }
        url
    }

    /// Sends one request and reads the whole answer, whatever its status.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Reply, MetadataError> {
        let shown = url.to_string();
        tracing::trace!(provider = self.provider, %method, url = %shown, "metadata request");
        let mut req = self.client.request(method, url.clone());
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let unreachable = |e: reqwest::Error| MetadataError::Unreachable {
            provider: self.provider,
            url: shown.clone(),
            message: error_chain(&e.without_url()),
        };
        let mut resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > BODY_LIMIT {
                return Err(self.invalid(&shown, "the answer is larger than 1 MiB"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply { url: shown, status, headers, body })
    }

    pub fn invalid(&self, url: &str, message: impl Into<String>) -> MetadataError {
        MetadataError::Invalid { provider: self.provider, url: url.into(), message: message.into() }
    }

    pub fn status_error(&self, reply: &Reply) -> MetadataError {
        let status = reply.status.as_u16();
        MetadataError::Status {
            provider: self.provider,
            url: reply.url.clone(),
            status,
            hint: status_hint(status),
        }
    }

    /// The body of a 2xx answer as UTF-8 text, as served.
    pub fn raw_text(&self, reply: Reply) -> Result<String, MetadataError> {
        if !reply.status.is_success() {
            return Err(self.status_error(&reply));
        }
        String::from_utf8(reply.body)
            .map_err(|_| self.invalid(&reply.url, "the answer is not UTF-8 text"))
    }

    /// The body of a 2xx answer as trimmed UTF-8 text.
    pub fn text(&self, reply: Reply) -> Result<String, MetadataError> {
        self.raw_text(reply).map(|s| s.trim().to_string())
    }

    /// Like [`Http::raw_text`], but a 404 (the key does not exist here) is `None`.
    pub fn optional_raw_text(&self, reply: Reply) -> Result<Option<String>, MetadataError> {
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.raw_text(reply).map(Some)
    }

    /// Like [`Http::text`], but a 404 (the key does not exist here) is `None`.
    pub fn optional_text(&self, reply: Reply) -> Result<Option<String>, MetadataError> {
        Ok(self.optional_raw_text(reply)?.map(|s| s.trim().to_string()))
    }
}

/// The non-empty lines of a listing, trimmed.
pub(super) fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// Parses `text` as an address of type `T` (an `a.b.c.d/n` suffix is dropped).
pub(super) fn parse_ip<T: std::str::FromStr>(text: &str) -> Option<T> {
    let bare = text.trim();
    let bare = bare.split_once('/').map_or(bare, |(a, _)| a);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_and_encode() {
        let http = Http::new("ec2", "http://127.0.0.1:8080", 1).unwrap();
        assert_eq!(
            http.url("latest/meta-data/instance-id", &[]).as_str(),
            "http://127.0.0.1:8080/latest/meta-data/instance-id"
        );
        assert_eq!(
            http.url("latest/meta-data/tags/instance", &["a b/c?#%"]).as_str(),
            "http://127.0.0.1:8080/latest/meta-data/tags/instance/a%20b%2Fc%3F%23%25"
        );
        assert_eq!(
            http.url("latest/meta-data/iam/security-credentials/", &[]).as_str(),
            "http://127.0.0.1:8080/latest/meta-data/iam/security-credentials/"
        );
        let prefixed = Http::new("ec2", "http://[fd00:ec2::254]/prefix/", 1).unwrap();
        assert_eq!(
            prefixed.url("latest/api/token", &[]).as_str(),
            "http://[fd00:ec2::254]/prefix/latest/api/token"
        );
    }

    #[test]
    fn bad_settings_are_config_errors() {
        for (url, timeout) in [
            ("169.254.169.254", 5),
            ("file:///etc", 5),
            ("http://x?y=1", 5),
            ("http://169.254.169.254", 0),
        ] {
            let err = Http::new("ec2", url, timeout).err().expect(url);
            assert!(matches!(err, MetadataError::Config { .. }), "{err}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn ip_parsing() {
        assert_eq!(
            parse_ip::<std::net::Ipv4Addr>(" 10.0.0.5/24\n"),
            Some("10.0.0.5".parse().unwrap())
        );
        assert_eq!(parse_ip::<std::net::Ipv6Addr>("fd00::5"), Some("fd00::5".parse().unwrap()));
        assert_eq!(parse_ip::<std::net::Ipv4Addr>("fd00::5"), None);
    }
}
