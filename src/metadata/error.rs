//! Why reading metadata failed, with the URL or file and what to do about it.
//!
//! No message ever carries a token or credential: the EC2 session token travels only in
//! request headers, and the credentials document is never quoted.

use std::path::PathBuf;

/// What to do when the EC2 session token cannot be had and IMDSv1 is not allowed.
const IMDSV2_HINT: &str = "IMDSv1 fallback is off. On EC2 in a container, raise the instance's \
     metadata hop limit to 2 (http-put-response-hop-limit); if this metadata service only speaks \
     IMDSv1, set `allow-imdsv1: true` under `metadata:`";

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("invalid `metadata:` setting: {message}; fix the configuration")]
    Config { message: String },

    #[error("cannot set up the HTTP client for the {provider} metadata service: {message}")]
    Client { provider: &'static str, message: String },

    #[error(
        "cannot reach the {provider} metadata service at {url}: {message}; check that this \
         machine runs on {provider} and that metadata.base-url is right (this can pass while \
         the network comes up: retry)"
    )]
    Unreachable { provider: &'static str, url: String, message: String },

    #[error("the {provider} metadata service at {url} answered {status}; {hint}")]
    Status { provider: &'static str, url: String, status: u16, hint: String },

    #[error("cannot get an IMDSv2 session token (PUT {url}): {message}; {IMDSV2_HINT}")]
    Imdsv2Token { url: String, message: String, retryable: bool },

    #[error(
        "{url} answered without the header `Metadata-Flavor: Google`, so it is not the GCE \
         metadata server (or a proxy rewrote the answer); check metadata.provider and \
         metadata.base-url"
    )]
    NotGce { url: String },

    #[error(
        "the {provider} metadata at {url} is not valid: {message}; check that \
         metadata.provider matches this cloud"
    )]
    Invalid { provider: &'static str, url: String, message: String },

    #[error(
        "no IAM role is attached to this instance ({url} names none); attach an instance \
         profile whose role allows the calls etcdadm makes"
    )]
    NoIamRole { url: String },

    #[error(
        "cannot read the NoCloud seed file {path}: {source}; check metadata.seed-dir and that \
         the seed was provided"
    )]
    ReadFile { path: PathBuf, source: std::io::Error },

    #[error(
        "the NoCloud seed file {path} is not valid: {message}; fix the file (see cloud-init's \
         NoCloud documentation)"
    )]
    InvalidFile { path: PathBuf, message: String },
}

impl MetadataError {
    /// Whether the same call may succeed later: the service was unreachable or timed out, or
    /// answered 408, 429 or 5xx. Wrong settings, refusals and malformed answers are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            MetadataError::Unreachable { .. } => true,
            MetadataError::Status { status, .. } => status_is_retryable(*status),
            MetadataError::Imdsv2Token { retryable, .. } => *retryable,
            MetadataError::Config { .. }
            | MetadataError::Client { .. }
            | MetadataError::NotGce { .. }
            | MetadataError::Invalid { .. }
            | MetadataError::NoIamRole { .. }
            | MetadataError::ReadFile { .. }
            | MetadataError::InvalidFile { .. } => false,
        }
    }
}

pub(super) fn status_is_retryable(status: u16) -> bool {
    status == 408 || status == 429 || (500..=599).contains(&status)
}

/// The usual advice for an unexpected HTTP status.
pub(super) fn status_hint(status: u16) -> String {
    match status {
        401 | 403 => "the metadata service refused the request; check that it is enabled for \
                      this instance and not blocked by a firewall"
            .into(),
        404 => "the key is missing; check that metadata.provider and metadata.base-url match \
                this cloud"
            .into(),
        s if status_is_retryable(s) => "the metadata service is not ready; retry".into(),
        _ => "check metadata.base-url".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        let status = |status| MetadataError::Status {
            provider: "ec2",
            url: "u".into(),
            status,
            hint: String::new(),
        };
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(!status(403).is_retryable());
        assert!(MetadataError::Unreachable {
            provider: "gce",
            url: "u".into(),
            message: "m".into()
        }
        .is_retryable());
        assert!(!MetadataError::NotGce { url: "u".into() }.is_retryable());
        let token = |retryable| MetadataError::Imdsv2Token {
            url: "u".into(),
            message: "m".into(),
            retryable,
        };
        assert!(token(true).is_retryable());
        assert!(!token(false).is_retryable());
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = MetadataError::Imdsv2Token {
            url: "http://x/latest/api/token".into(),
            message: "m".into(),
            retryable: false,
        };
        let s = e.to_string();
        assert!(s.contains("http://x/latest/api/token") && s.contains("allow-imdsv1"), "{s}");
    }
}
