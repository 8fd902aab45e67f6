//! Snapshots in S3-compatible object stores (AWS S3, MinIO, moto): where they go
//! (`s3://bucket/prefix/`), how requests are signed and sent (`client`), which credentials
//! sign them (`credentials`), and the backup/restore operations on top (`snapshots`).

mod client;
mod credentials;
mod mac;
mod snapshots;
mod xml;

pub use client::{Client, ObjectInfo, ObjectMeta, MAX_LIST_OBJECTS, MAX_LIST_PAGES};
pub use credentials::credentials;
pub use mac::{BackupKey, MAC_META};
pub use snapshots::{
    download_snapshot, prune_remote, snapshot_name_stamp, stamp_of, upload_snapshot, Downloaded,
    Skipped, CLOCK_SKEW,
};

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The user-defined metadata key (`x-amz-meta-sha256`) holding an uploaded snapshot's SHA-256.
pub const SHA256_META: &str = "x-amz-meta-sha256";

pub use crate::cli::values::S3Url;

/// `init --snapshot` takes a local file or an `s3://` URL.
pub fn snapshot_url_of(arg: &Path) -> Result<Option<S3Url>, S3Error> {
    match arg.to_str() {
        Some(s) if s.starts_with("s3://") => S3Url::parse(s).map(Some).map_err(S3Error::Invalid),
        _ => Ok(None),
    }
}

/// How to reach the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Base URL of an S3-compatible store (`http://10.0.0.1:9000`); None: AWS S3 in `region`.
    pub endpoint: Option<String>,
    pub region: String,
    /// `ENDPOINT/BUCKET/KEY` instead of `BUCKET.ENDPOINT/KEY`; None: see `path_style_for`.
    pub path_style: Option<bool>,
    /// How long transient failures (connection errors, 5xx, throttling) are retried.
    pub retry_for: Duration,
}

impl Settings {
    /// From the `backup-s3-*` settings; the region falls back to `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, then `us-east-1`.
    pub fn new(
        endpoint: Option<&str>,
        region: Option<&str>,
        path_style: Option<bool>,
        retry_for: Duration,
    ) -> Result<Settings, S3Error> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let region = region
            .map(String::from)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        if region.is_empty() || !region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(S3Error::Invalid(format!(
                "backup-s3-region {region:?} is not a region name such as eu-west-1"
            )));
        }
        if let Some(e) = endpoint {
            crate::cli::values::check_endpoint(e).map_err(S3Error::Invalid)?;
        }
        Ok(Settings {
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
            path_style,
            region,
            retry_for,
        })
    }

    /// Whether `bucket` is addressed path-style: as configured, else with a custom endpoint
    /// (MinIO, moto, IP addresses) and for AWS buckets with dots in their names (which do
    /// not match the wildcard TLS certificate of virtual-hosted names).
    pub fn path_style_for(&self, bucket: &str) -> bool {
        self.path_style.unwrap_or(self.endpoint.is_some() || bucket.contains('.'))
    }

    /// The store's base URL, for requests and error messages (never holds credentials).
    pub fn base_url(&self) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None if self.region.starts_with("cn-") => {
                format!("https://s3.{}.amazonaws.com.cn", self.region)
            }
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NoCredentials(String),
    /// The store answered with an error.
    #[error("{op} {target} at {endpoint} failed: HTTP {status} {code}{}; {}", message_part(.message), hint(.code, *.status))]
    Service {
        op: &'static str,
        target: String,
        endpoint: String,
        status: u16,
        code: String,
        message: String,
    },
    /// No answer: connection refused, DNS, TLS, timeout, or the body broke off.
    #[error("{op} {target} at {endpoint} failed: {detail}; check backup-s3-endpoint and that the store is reachable from here")]
    Transport { op: &'static str, target: String, endpoint: String, detail: String },
    /// An answer that is not what S3 sends.
    #[error("{op} {target} at {endpoint}: unexpected answer: {detail}")]
    BadResponse { op: &'static str, target: String, endpoint: String, detail: String },
    /// A stalled answer or one over its size cap (not retried: the time or room is used up).
    #[error("{op} {target} at {endpoint} failed: {detail}; check backup-s3-endpoint: the store does not answer as S3 does")]
    Bounded { op: &'static str, target: String, endpoint: String, detail: String },
    /// A listing that goes on beyond the page or object bound.
    #[error("list {target} at {endpoint}: {detail}")]
    TooMany { target: String, endpoint: String, detail: String },
    /// A downloaded object that does not match its recorded SHA-256, or has none.
    #[error("{target}: {detail}")]
    Integrity { target: String, detail: String },
    /// An object that is not signed with this cluster's backup key, or is stamped in the
    /// future: not restored.
    #[error("{target}: {detail}; refusing to restore it, nothing was changed")]
    Authenticity { target: String, detail: String },
    /// A prefix under which no snapshot passed the checks.
    #[error("no genuine snapshot under {prefix} at {endpoint}; skipped: {skipped}")]
    NoneGenuine { prefix: String, endpoint: String, skipped: String },
    /// The cluster CA key, from which the backup MAC key is derived, is missing or unusable.
    #[error("{path}: {detail}")]
    BackupKey { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn message_part(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

/// What to do about an error the store answered with.
fn hint(code: &str, status: u16) -> &'static str {
    match code {
        "NoSuchBucket" => "the bucket does not exist at this endpoint: create it, or correct the bucket (backup-s3-url, --upload) or backup-s3-endpoint",
        "NoSuchKey" | "NotFound" => "no such object: list the bucket to find the snapshot's key, or give the prefix (ending in /) to restore the newest",
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken" | "TokenRefreshRequired" | "InvalidSecurity" => {
            "the store rejected the credentials: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (or the instance role) and the clock"
        }
        "AccessDenied" | "AllAccessDisabled" => "the credentials may not do this: allow s3:PutObject, s3:GetObject, s3:ListBucket and s3:DeleteObject on the bucket and prefix",
        "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => "the bucket is in another region: set backup-s3-region to the bucket's region",
        "RequestTimeTooSkewed" => "this machine's clock is off: synchronise it (NTP) and try again",
        "EntityTooLarge" => "the snapshot is larger than one PUT may be (5 GiB); compact and defragment etcd",
        _ if status == 429 || status >= 500 => "the store is failing or throttling; it was retried until the retry time ran out: try again later",
        _ if status == 403 => "check the credentials and the bucket policy",
        _ => "check backup-s3-url, backup-s3-endpoint and backup-s3-region",
    }
}

impl S3Error {
    /// Transient: worth another attempt.
    pub fn is_retryable(&self) -> bool {
        match self {
            S3Error::Transport { .. } => true,
            S3Error::Service { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || matches!(
                        code.as_str(),
                        "SlowDown"
                            | "Throttling"
                            | "RequestTimeout"
                            | "InternalError"
                            | "ServiceUnavailable"
                    )
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = S3Url::parse("s3://my-bucket/etcd/prod/").unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.key.as_str(), u.is_prefix()),
            ("my-bucket", "etcd/prod/", true)
        );
        assert_eq!(u.to_string(), "s3://my-bucket/etcd/prod/");
        let o = S3Url::parse("s3://b.example/x/m1-20260101T000000.000Z.db").unwrap();
        assert!(!o.is_prefix());
        assert_eq!(S3Url::parse("s3://bkt").unwrap().key, "");
        assert!(S3Url::parse("s3://bkt").unwrap().is_prefix());
        assert_eq!(S3Url::parse("s3://bkt/p").unwrap().as_prefix().key, "p/");
        for bad in [
            "http://b/k",
            "s3://",
            "s3://ab/k",
            "s3://Upper/k",
            "s3://b_b/k",
            "s3://bkt//k",
            "s3://bkt/a//b",
            "s3://-bk/k",
            "s3://bkt/a\nb",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(snapshot_url_of(Path::new("/root/x.db")).unwrap(), None);
        assert!(snapshot_url_of(Path::new("s3://bkt/p/")).unwrap().is_some());
        assert!(snapshot_url_of(Path::new("s3://B/p/")).is_err());
    }

    #[test]
    fn settings() {
        let t = Duration::from_secs(1);
        let s = Settings::new(Some("http://10.0.0.1:9000/"), Some("eu-west-1"), None, t).unwrap();
        assert!(s.path_style_for("bkt"));
        assert_eq!(s.base_url(), "http://10.0.0.1:9000");
        let aws = Settings::new(None, Some("eu-west-1"), None, t).unwrap();
        assert!(!aws.path_style_for("bkt"));
        assert!(aws.path_style_for("b.example.com"));
        assert!(!Settings::new(None, None, Some(false), t)
            .unwrap()
            .path_style_for("b.example.com"));
        assert_eq!(aws.base_url(), "https://s3.eu-west-1.amazonaws.com");
        assert_eq!(
            Settings::new(None, Some("cn-north-1"), None, t).unwrap().base_url(),
            "https://s3.cn-north-1.amazonaws.com.cn"
        );
        for bad in ["ftp://h", "http://h/path", "http://u:p@h", "not a url", "http://h?x=1"] {
            assert!(Settings::new(Some(bad), Some("us-east-1"), None, t).is_err(), "{bad}");
        }
        assert!(Settings::new(None, Some("eu west"), None, t).is_err());
    }

    #[test]
    fn errors_say_what_to_do_and_which_are_transient() {
        let e = |status: u16, code: &str| S3Error::Service {
            op: "upload",
            target: "s3://b/k".into(),
            endpoint: "http://h".into(),
            status,
            code: code.into(),
            message: "msg".into(),
        };
        let s = e(404, "NoSuchBucket").to_string();
        assert!(s.contains("upload s3://b/k at http://h failed: HTTP 404 NoSuchBucket: msg; the bucket does not exist"), "{s}");
        assert!(e(403, "InvalidAccessKeyId").to_string().contains("AWS_ACCESS_KEY_ID"));
        assert!(e(503, "SlowDown").is_retryable());
        assert!(e(500, "InternalError").is_retryable());
        assert!(!e(403, "AccessDenied").is_retryable());
        assert!(!e(404, "NoSuchBucket").is_retryable());
    }
}
