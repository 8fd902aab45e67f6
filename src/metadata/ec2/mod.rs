//! AWS EC2 instance metadata service (IMDS), version 2.
//!
//! Every session starts with `PUT /latest/api/token` (header
//! `X-aws-ec2-metadata-token-ttl-seconds`); every read then carries the token in
//! `X-aws-ec2-metadata-token`. A read answered 401 (token expired) gets a fresh token and one
//! more try. Token-less IMDSv1 reads happen only when `allow-imdsv1` is set and no token can
//! be had. The token never appears in logs or errors.
//!
//! Keys read: `instance-id`, `local-hostname`, `local-ipv4`, `mac` then
//! `network/interfaces/macs/<mac>/ipv6s`, `placement/region`,
//! `placement/availability-zone`, and the instance tags under `tags/instance` (404 when the
//! instance does not expose tags in metadata). All but `instance-id` are optional.

use super::http::{lines, parse_ip, Http, Reply};
use super::{Ec2Config, InstanceMetadata, MetadataError};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use url::Url;

#[cfg(test)]
mod mock_tests;

const PROVIDER: &str = "ec2";
const TOKEN_PATH: &str = "latest/api/token";
const TOKEN_HEADER: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token");
const TOKEN_TTL_HEADER: HeaderName =
    HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds");
/// The longest session IMDS grants: six hours.
const TOKEN_TTL_SECONDS: &str = "21600";

pub use crate::aws_credentials::AwsCredentials;

pub(super) async fn fetch(cfg: &Ec2Config) -> Result<InstanceMetadata, MetadataError> {
    let mut imds = Imds::connect(cfg).await?;
    let instance_id = imds.required("instance-id").await?;
    let hostname = imds.optional("local-hostname").await?;
    let private_ipv4 = match imds.optional("local-ipv4").await? {
        Some(text) => Some(imds.address(&text, "local-ipv4")?),
        None => None,
    };
    let private_ipv6 = imds.primary_ipv6().await?;
    let region = imds.optional("placement/region").await?;
    let availability_zone = imds.optional("placement/availability-zone").await?;
    let attributes = imds.tags().await?;
    Ok(InstanceMetadata {
        provider: PROVIDER,
        instance_id,
        hostname,
        private_ipv4,
        private_ipv6,
        region,
        availability_zone,
        attributes,
    })
}

/// The temporary credentials of the IAM role attached to this instance, from
/// `iam/security-credentials/` (the role name) and `iam/security-credentials/<role>`.
pub async fn ec2_role_credentials(cfg: &Ec2Config) -> Result<AwsCredentials, MetadataError> {
    let mut imds = Imds::connect(cfg).await?;
    let list_url = imds.http.url("latest/meta-data/iam/security-credentials/", &[]);
    let reply = imds.get(&list_url).await?;
    let roles = match imds.http.optional_text(reply)? {
        Some(text) => text,
        None => return Err(MetadataError::NoIamRole { url: list_url.to_string() }),
    };
    let Some(role) = lines(&roles).next() else {
        return Err(MetadataError::NoIamRole { url: list_url.to_string() });
    };
    let url = imds.http.url("latest/meta-data/iam/security-credentials", &[role]);
    let reply = imds.get(&url).await?;
    if reply.status == StatusCode::NOT_FOUND {
        return Err(MetadataError::NoIamRole { url: url.to_string() });
    }
    let shown = reply.url.clone();
    let text = imds.http.text(reply)?;
    parse_credentials(&text).map_err(|message| imds.http.invalid(&shown, message))
}

/// The credentials document. Errors describe its shape only, never its values.
pub(super) fn parse_credentials(text: &str) -> Result<AwsCredentials, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Document {
        code: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        token: Option<String>,
        expiration: Option<String>,
    }
    let doc: Document = serde_json::from_str(text).map_err(|e| {
        format!(
            "the credentials document is not the expected JSON object (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    if let Some(code) = doc.code.as_deref().filter(|c| *c != "Success") {
        let code: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).take(64).collect();
        return Err(format!("the credentials are not available (Code {code:?})"));
    }
    let missing = |what: &str| format!("the credentials document has no {what}");
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(AwsCredentials {
        access_key_id: non_empty(doc.access_key_id).ok_or_else(|| missing("AccessKeyId"))?,
        secret_access_key: non_empty(doc.secret_access_key)
            .ok_or_else(|| missing("SecretAccessKey"))?,
        session_token: Some(non_empty(doc.token).ok_or_else(|| missing("Token"))?),
        expiration: Some(non_empty(doc.expiration).ok_or_else(|| missing("Expiration"))?),
    })
}

/// A session token. Debug does not show it.
struct Token(HeaderValue);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// An IMDS session: the token, or IMDSv1 mode when it is allowed and no token could be had.
struct Imds {
    http: Http,
    token: Option<Token>,
}

impl Imds {
    async fn connect(cfg: &Ec2Config) -> Result<Imds, MetadataError> {
        let http = Http::new(PROVIDER, &cfg.base_url, cfg.timeout_seconds)?;
        let mut imds = Imds { http, token: None };
        match imds.fetch_token().await {
            Ok(token) => imds.token = Some(token),
            Err(e) if cfg.allow_imdsv1 => {
                tracing::warn!(error = %e, "no IMDSv2 session token; using IMDSv1 as allow-imdsv1 permits");
            }
            Err(e) => return Err(e),
        }
        Ok(imds)
    }

    async fn fetch_token(&self) -> Result<Token, MetadataError> {
        let url = self.http.url(TOKEN_PATH, &[]);
        let ttl = (TOKEN_TTL_HEADER, HeaderValue::from_static(TOKEN_TTL_SECONDS));
        let token_error = |message: String, retryable: bool| MetadataError::Imdsv2Token {
            url: url.to_string(),
            message,
            retryable,
        };
        let reply = match self.http.send(Method::PUT, &url, &[ttl]).await {
            Ok(reply) => reply,
            Err(e) => {
                let retryable = e.is_retryable();
                let message = match e {
                    MetadataError::Unreachable { message, .. } => {
                        format!("{message} (this can pass while the network comes up: retry)")
                    }
                    other => other.to_string(),
                };
                return Err(token_error(message, retryable));
            }
        };
        if !reply.status.is_success() {
            let status = reply.status.as_u16();
            let message = format!("the service answered {}", reply.status);
            return Err(token_error(message, super::error::status_is_retryable(status)));
        }
        // The message must not quote the body: it is the token.
        let token = std::str::from_utf8(&reply.body).map(str::trim).unwrap_or("");
        match HeaderValue::from_str(token) {
            Ok(mut value) if !token.is_empty() => {
                value.set_sensitive(true);
                Ok(Token(value))
            }
            _ => Err(token_error("the answer is not a usable token".into(), false)),
        }
    }

    /// GET with the session token; on 401 a fresh token and one more try.
    async fn get(&mut self, url: &Url) -> Result<Reply, MetadataError> {
        let reply = self.get_once(url).await?;
        if reply.status != StatusCode::UNAUTHORIZED {
            return Ok(reply);
        }
        if self.token.is_none() {
            return Err(MetadataError::Status {
                provider: PROVIDER,
                url: reply.url,
                status: 401,
                hint:
                    "this instance requires IMDSv2 session tokens, and none could be had; see the \
                       earlier warning about the token request"
                        .into(),
            });
        }
        tracing::debug!(url = %url, "IMDSv2 token refused; fetching a fresh one");
        self.token = Some(self.fetch_token().await?);
        let reply = self.get_once(url).await?;
        if reply.status == StatusCode::UNAUTHORIZED {
            return Err(MetadataError::Status {
                provider: PROVIDER,
                url: reply.url,
                status: 401,
                hint: "a fresh IMDSv2 session token was refused as well; check the instance's \
                       metadata options"
                    .into(),
            });
        }
        Ok(reply)
    }

    async fn get_once(&self, url: &Url) -> Result<Reply, MetadataError> {
        match &self.token {
            Some(Token(value)) => {
                self.http.send(Method::GET, url, &[(TOKEN_HEADER, value.clone())]).await
            }
            None => self.http.send(Method::GET, url, &[]).await,
        }
    }

    async fn meta(&mut self, key: &str, extra: &[&str]) -> Result<Option<String>, MetadataError> {
        let url = self.http.url(&format!("latest/meta-data/{key}"), extra);
        let reply = self.get(&url).await?;
        self.http.optional_text(reply)
    }

    async fn optional(&mut self, key: &str) -> Result<Option<String>, MetadataError> {
        Ok(self.meta(key, &[]).await?.filter(|v| !v.is_empty()))
    }

    async fn required(&mut self, key: &str) -> Result<String, MetadataError> {
        let url = self.http.url(&format!("latest/meta-data/{key}"), &[]);
        let reply = self.get(&url).await?;
        let shown = reply.url.clone();
        let value = self.http.text(reply)?;
        if value.is_empty() {
            return Err(self.http.invalid(&shown, "the value is empty"));
        }
        Ok(value)
    }

    fn address<T: std::str::FromStr>(&self, text: &str, key: &str) -> Result<T, MetadataError> {
        parse_ip(text).ok_or_else(|| {
            let url = self.http.url(&format!("latest/meta-data/{key}"), &[]);
            self.http.invalid(url.as_str(), format!("{text:?} is not an IP address"))
        })
    }

    /// The first IPv6 address of the primary interface, if it has one.
    async fn primary_ipv6(&mut self) -> Result<Option<std::net::Ipv6Addr>, MetadataError> {
        let Some(mac) = self.optional("mac").await? else {
            return Ok(None);
        };
        let Some(list) = self.meta("network/interfaces/macs", &[&mac, "ipv6s"]).await? else {
            return Ok(None);
        };
        let first = lines(&list).next();
        match first {
            Some(first) => {
                self.address(first, &format!("network/interfaces/macs/{mac}/ipv6s")).map(Some)
            }
            None => Ok(None),
        }
    }

    /// The instance tags, when the instance exposes them in metadata.
    async fn tags(&mut self) -> Result<BTreeMap<String, String>, MetadataError> {
        let mut tags = BTreeMap::new();
        let Some(list) = self.meta("tags/instance", &[]).await? else {
            return Ok(tags);
        };
        for key in lines(&list) {
            // Values as served (they may have spaces at either end). A tag removed between
            // the listing and this read is simply gone.
            let url = self.http.url("latest/meta-data/tags/instance", &[key]);
            let reply = self.get(&url).await?;
            if let Some(value) = self.http.optional_raw_text(reply)? {
                tags.insert(key.to_string(), value);
            }
        }
        Ok(tags)
    }
}
