//! Signed calls of the AWS Query APIs (form-encoded POST, XML answer) over reqwest, paced by
//! the limiter of the process's discovery state.

use crate::aws_api::{error_document, sigv4_headers, Payload, SignRequest};
use crate::discovery::{AwsCredentials, DiscoveryError};
use crate::error_chain::{error_chain, snippet};
use aws_credential_types::Credentials;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Larger answers are not DescribeAutoScalingGroups/DescribeInstances answers for a cluster.
const MAX_BODY: u64 = 8 << 20;
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    AutoScaling,
    Ec2,
}

impl Service {
    /// The signing name, also the endpoint prefix.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Service::AutoScaling => "autoscaling",
            Service::Ec2 => "ec2",
        }
    }

    fn version(self) -> &'static str {
        match self {
            Service::AutoScaling => "2011-01-01",
            Service::Ec2 => "2016-11-15",
        }
    }
}

pub(crate) struct QueryClient<'a> {
    http: reqwest::Client,
    limiter: &'a RateLimiter,
    credentials: Credentials,
    region: String,
    autoscaling_url: String,
    ec2_url: String,
    min_interval: Duration,
}

impl<'a> QueryClient<'a> {
    /// `endpoint` replaces both service URLs; otherwise the regional public endpoints.
    /// `max_requests_per_second` must be positive and finite (see `aws::validate`). Calls
    /// wait for their slot in `limiter`, shared by every client of the process.
    pub(crate) fn new(
        limiter: &'a RateLimiter,
        credentials: &AwsCredentials,
        region: &str,
        endpoint: Option<&str>,
        max_requests_per_second: f64,
    ) -> Result<QueryClient<'a>, DiscoveryError> {
        // reqwest is built without a default crypto provider; main installs ring, and so does
        // this, for callers that are not main (tests, other binaries). No-op when installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("etcdadm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                DiscoveryError::Config(format!("cannot set up the HTTP client for AWS: {e}"))
            })?;
        let url = |service: Service| match endpoint {
            Some(e) => e.to_string(),
            None => default_endpoint(service, region),
        };
        Ok(QueryClient {
            http,
            limiter,
            credentials: credentials.for_signing(),
            region: region.to_string(),
            autoscaling_url: url(Service::AutoScaling),
            ec2_url: url(Service::Ec2),
            min_interval: Duration::from_secs_f64(1.0 / max_requests_per_second),
        })
    }

    pub(crate) fn url(&self, service: Service) -> &str {
        match service {
            Service::AutoScaling => &self.autoscaling_url,
            Service::Ec2 => &self.ec2_url,
        }
    }

    /// One signed call; the XML body of a 2xx answer, else the AWS error.
    pub(crate) async fn call(
        &self,
        service: Service,
        action: &'static str,
        params: &[(&str, &str)],
    ) -> Result<String, DiscoveryError> {
        let url = self.url(service);
        let body = form_body(service, action, params);
        let http_err = |detail: String, retryable: bool| DiscoveryError::Http {
            action,
            endpoint: url.to_string(),
            detail,
            retryable,
        };
        // Wait for the slot first, so that the signature's time is the sending time.
        self.limiter.pace(self.min_interval).await;
        let headers = self
            .sign(service, url, &body)
            .map_err(|e| http_err(format!("cannot sign the request: {e}"), false))?;
        let mut req =
            self.http.post(url).header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE).body(body);
        for (name, value) in &headers {
            req = req.header(*name, value);
        }
        let resp = req.send().await.map_err(|e| http_err(error_chain(&e), true))?;
        let status = resp.status();
        // Counted while it streams (the request's overall timeout bounds the time).
        let text = match crate::bounded::read_text(resp, "an AWS answer", MAX_BODY, REQUEST_TIMEOUT)
            .await
        {
            Ok(text) => text,
            Err(crate::bounded::BodyError::Transport(e)) => {
                return Err(http_err(format!("reading the answer: {e}"), true))
            }
            Err(e) => {
                return Err(DiscoveryError::BadResponse {
                    action,
                    endpoint: url.to_string(),
                    service: service.name(),
                    detail: e.to_string(),
                })
            }
        };
        if status.is_success() {
            return Ok(text);
        }
        let (code, message) = error_document(&text)
            .unwrap_or_else(|| (format!("HTTP {}", status.as_u16()), snippet(&text)));
        Err(DiscoveryError::Aws {
            action,
            endpoint: url.to_string(),
            status: status.as_u16(),
            code,
            message: snippet(&message),
        })
    }

    /// The SigV4 headers (authorization, x-amz-date, x-amz-security-token) for a POST of `body`.
    fn sign(
        &self,
        service: Service,
        url: &str,
        body: &str,
    ) -> Result<Vec<(&'static str, String)>, String> {
        sigv4_headers(
            &self.credentials,
            &SignRequest {
                service: service.name(),
                region: &self.region,
                method: "POST",
                url,
                headers: &[("content-type", CONTENT_TYPE)],
                payload: Payload::Bytes(body.as_bytes()),
            },
        )
    }
}

/// `https://<service>.<region>.amazonaws.com/` (`.com.cn` in the China regions).
pub(crate) fn default_endpoint(service: Service, region: &str) -> String {
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    format!("https://{}.{region}.{suffix}/", service.name())
}

fn form_body(service: Service, action: &str, params: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", action).append_pair("Version", service.version());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    form.finish()
}

/// Paces the AWS calls of a process: each starts at least the caller's `min_interval` after
/// the one before. One per process (in its discovery state), shared by all its clients.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    /// The earliest instant the next call may start.
    next_call: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// Waits for this call's slot. The slot is taken before waiting, so concurrent callers
    /// queue up in order.
    pub(crate) async fn pace(&self, min_interval: Duration) {
        let wait = {
            let mut next = self.next_call.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + min_interval);
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            default_endpoint(Service::AutoScaling, "eu-west-1"),
            "https://autoscaling.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            default_endpoint(Service::Ec2, "cn-north-1"),
            "https://ec2.cn-north-1.amazonaws.com.cn/"
        );
    }

    #[test]
    fn bodies() {
        let b = form_body(
            Service::AutoScaling,
            "DescribeAutoScalingGroups",
            &[("AutoScalingGroupNames.member.1", "etcd a&b")],
        );
        assert_eq!(b, "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1=etcd+a%26b");
    }

    #[test]
    fn signing_headers_and_no_secret_in_them() {
        let creds = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("token-xyz".into()),
            expiration: None,
        };
        let limiter = RateLimiter::default();
        let c = QueryClient::new(&limiter, &creds, "us-east-1", Some("http://127.0.0.1:1/"), 5.0)
            .unwrap();
        let h = c
            .sign(Service::Ec2, c.url(Service::Ec2), "Action=DescribeInstances&Version=2016-11-15")
            .unwrap();
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        let auth = get("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "{auth}");
        assert!(auth.contains("/us-east-1/ec2/aws4_request"), "{auth}");
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date"), "{auth}");
        assert_eq!(get("x-amz-security-token"), Some("token-xyz"));
        assert!(get("x-amz-date").is_some());
        assert!(!h.iter().any(|(_, v)| v.contains("wJalr")));
    }

    #[tokio::test]
    async fn calls_are_paced() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        for _ in 0..4 {
            limiter.pace(Duration::from_millis(40)).await;
        }
        // The first call goes at once, the others 40 ms apart.
        assert!(start.elapsed() >= Duration::from_millis(120), "{:?}", start.elapsed());
    }

    /// An endpoint that answers every request with 200 and then body bytes forever.
    async fn endless_endpoint() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 8192];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n").await;
                    let chunk = vec![b'<'; 64 * 1024];
                    while conn.write_all(&chunk).await.is_ok() {}
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_at_the_cap_while_it_streams() {
        let creds = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
            expiration: None,
        };
        let limiter = RateLimiter::default();
        let url = endless_endpoint().await;
        let c = QueryClient::new(&limiter, &creds, "us-east-1", Some(&url), 5.0).unwrap();
        let call = c.call(Service::Ec2, "DescribeInstances", &[]);
        let e = tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .expect("the call hung")
            .unwrap_err();
        assert!(!e.is_retryable());
        let msg = e.to_string();
        assert!(msg.contains(&url), "{msg}");
        assert!(msg.contains("larger than 8388608 bytes (the cap for an AWS answer)"), "{msg}");
    }

    #[test]
    fn snippets() {
        assert_eq!(snippet("a\n  b\tc"), "a b c");
        let long = "é".repeat(400);
        assert_eq!(snippet(&long).chars().count(), 301);
    }
}
